"""The tuned Triton MoE config files' own row blocks (costmodels/serving_moe_blocks.py, read by
serving_moe_configs.config_block_rows): the lookup by hand, no default-config efficiency on them, serving and the
fit's predictor on the same block, and the generator's check against the released wheels."""

import json
import pathlib
import subprocess
import sys
import zipfile

import pytest
from kernel_constants import kernel_constants

import profiles
from costmodels import serving_gemm
from costmodels.serving import InstanceShape, decode_step_time, engine_calibration
from costmodels.serving_constants import KernelConstants
from costmodels.serving_kernels import EngineKernels
from costmodels.serving_moe_blocks import BLOCKS
from costmodels.serving_moe_configs import FileRows, config_block_rows, default_config

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("tokens", "rows"), [
    (1, 16), (4, 16), (100, 16), (128, 16),
    (192, 16),   # halfway between the keys 128 (16) and 256 (64): the first in file order, as min() picks
    (193, 64), (256, 64), (4096, 64), (20000, 64),
])
def test_file_rows_are_the_nearest_token_key(tokens: int, rows: float):
    got = config_block_rows("sglang", "h200", tokens, 128, 384, "fp8", block_scaled=True)
    assert got == rows and isinstance(got, FileRows)
    assert config_block_rows("sglang", "h200", tokens, 128, 384, "fp8") == rows  # SGLang's only FP8 files


def test_the_newest_triton_folder_holding_a_file_is_read():
    # (257, 256) on H200 ships under triton_3_2_0, 3_3_1 and 3_5_1: 512 tokens -> 16 in the older two, 32 in 3.5.1
    assert config_block_rows("sglang", "h200", 512, 257, 256, "fp8", True) == 32.0
    assert config_block_rows("sglang", "h200", 1024, 257, 256, "fp8", True) == 64.0


def test_unlisted_files_keep_the_fitted_block_and_defaults_stay_plain():
    assert config_block_rows("sglang", "h200", 4, 128, 384, "bf16") == 0.0   # tuned BF16 file, rows not listed
    default = config_block_rows("sglang", "h200", 4, 8, 384, "fp8", True)     # no file: the default config's 64
    assert default == 64.0 and not isinstance(default, FileRows)
    assert default_config("sglang", "h200", 8, 384, "fp8", True)
    assert not default_config("sglang", "h200", 128, 384, "fp8", True)
    assert all(key[0] == "sglang" and key[2] == "fp8" and pairs for key, pairs in BLOCKS.items())


def test_a_file_block_pads_rows_without_the_default_config_efficiency():
    """4 slots over 4 experts (one row each), n = k = 4096, FP8: a file's 16-row block computes 4 x 16 rows at the
    tuned efficiency; the default config's 16 the same rows at its own efficiency (0.5 here: twice the time)."""
    dev = profiles.load_device("h200")
    k = kernel_constants(moe_fp8_efficiency=0.5, moe_fp8_block_rows=64.0, moe_fp8_floor_s=0.0,
                         moe_fp8_default_efficiency=0.5, moe_fp8_hbm_efficiency=1e6)
    own, default = (serving_gemm.grouped_gemm_s(dev, k, 4.0, 4.0, 4096.0, 4096.0, "fp8", rows)
                    for rows in (FileRows(16.0), 16.0))
    fitted = serving_gemm.grouped_gemm_s(dev, k, 4.0, 4.0, 4096.0, 4096.0, "fp8")  # the fitted 64-row block
    curve = serving_gemm.compute.gemm_efficiency(64.0, 4096.0, 4096.0, "fp8", dev.calibration)
    by_hand = 2.0 * 64 * 4096 * 4096 / (dev.peak_flops_per_s("fp8") * curve * 0.5)
    assert own == pytest.approx(by_hand, rel=1e-3)
    assert default > 1.9 * own and fitted > own


def _blocks_seen(monkeypatch) -> list[float]:
    seen: list[float] = []
    real = serving_gemm._moe_block

    def spy(k, dtype, default_rows):
        seen.append(default_rows)
        return real(k, dtype, default_rows)

    monkeypatch.setattr(serving_gemm, "_moe_block", spy)
    return seen


def test_serving_and_the_fit_predictor_take_the_same_file_block(monkeypatch):
    """Qwen3-30B-A3B FP8 on SGLang, H200, TP 2, 4 decoding sequences: serving's routed experts and the fit's
    predictor (benchmarks/serve_engine_ops.predict_moe on the table's point) both run the file's 16-row block."""
    pytest.importorskip("aiconfigurator_core", reason="needs aiconfigurator-core: the fit's predictor module")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import serve_engine_ops

    dev, model = profiles.load_device("h200"), profiles.load_model("qwen3-30b-a3b")
    seen = _blocks_seen(monkeypatch)
    decode_step_time(model, dev, InstanceShape(tp=2), batch=4, context_len=1024, engine="sglang", dtype="fp8")
    serving = {rows for rows in seen if isinstance(rows, FileRows)}
    seen.clear()
    ek = EngineKernels(dev, KernelConstants.of_engine(engine_calibration(dev, "sglang")))
    serve_engine_ops.predict_moe(ek, (4, 2048, 768, 8, 128, 2, 1, "fp8", 0.0), engine="sglang")
    assert serving == {16.0} and set(seen) == {16.0} and all(isinstance(rows, FileRows) for rows in seen)


def _fake_wheel(folder: pathlib.Path) -> None:
    """An SGLang 0.5.14 wheel holding every BLOCKS file (newest folder only) and a vLLM wheel with TUNED's names."""
    from costmodels.serving_moe_configs import TUNED

    sglang = "sglang/srt/layers/moe/moe_runner/triton_utils/configs/triton_3_5_1/"
    devices = {"h100-sxm": "NVIDIA_H100_80GB_HBM3", "h200": "NVIDIA_H200"}
    with zipfile.ZipFile(folder / "sglang-0.5.14-cp311-cp311-manylinux_2_34_x86_64.whl", "w") as whl:
        for (engine, device, dtype), shapes in TUNED.items():
            if engine != "sglang":
                continue
            suffix = ",dtype=fp8_w8a8,block_shape=[128, 128]" if dtype == "fp8" else ""
            for e, n in shapes:
                pairs = BLOCKS.get((engine, device, dtype, e, n), ((1, 16),))
                body = json.dumps({str(t): {"BLOCK_SIZE_M": r} for t, r in pairs})
                whl.writestr(f"{sglang}E={e},N={n},device_name={devices[device]}{suffix}.json", body)
    with zipfile.ZipFile(folder / "vllm-0.24.0-cp38-abi3-manylinux_2_28_x86_64.whl", "w") as whl:
        for (engine, device, dtype), shapes in TUNED.items():
            if engine != "vllm":
                continue
            suffix = ",dtype=fp8_w8a8,block_shape=[128,128]" if dtype == "fp8_block" else ""
            for e, n in shapes:
                whl.writestr(f"vllm/model_executor/layers/fused_moe/configs/E={e},N={n},device_name="
                             f"{devices[device]}{suffix}.json", "{}")


def test_generator_checks_the_table_against_the_wheels(tmp_path):
    _fake_wheel(tmp_path)
    script = [sys.executable, str(ROOT / "benchmarks" / "moe_tuned_configs.py"), "--wheels", str(tmp_path)]
    ok = subprocess.run(script, capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "BLOCKS matches the wheels" in ok.stdout
    name = next(n for n in zipfile.ZipFile(tmp_path / "sglang-0.5.14-cp311-cp311-manylinux_2_34_x86_64.whl").namelist()
                if "E=128,N=384,device_name=NVIDIA_H200" in n)
    (tmp_path / "sglang-0.5.14-cp311-cp311-manylinux_2_34_x86_64.whl").unlink()
    with zipfile.ZipFile(tmp_path / "sglang-0.5.14-cp311-cp311-manylinux_2_34_x86_64.whl", "w") as whl:
        whl.writestr(name, json.dumps({"1": {"BLOCK_SIZE_M": 32}}))  # one file's block changed, the rest gone
    bad = subprocess.run(script, capture_output=True, text=True, check=False)
    assert bad.returncode == 1 and "differs" in bad.stdout
