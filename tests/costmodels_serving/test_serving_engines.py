"""Measured-engine kernel constants, dtypes, FP8-block split check, MoE skew (serving cost model)."""

import dataclasses
import math
import pathlib

import pytest
from click.testing import CliRunner

import profiles
from cli import main
from costmodels.errors import InfeasibleError, SpecError
from costmodels.hardware import MEASURED_ENGINES
from costmodels.serving import InstanceShape, decode_step_time, kv_capacity_tokens, prefill_time
from costmodels.serving_constants import KernelConstants
from costmodels.serving_kernels import EngineKernels, engine_calibration, gemm_s
from costmodels.serving_shapes import quant_block_problem
from planner.serve import estimate_serving


@pytest.mark.parametrize("gpu", ["h100-sxm", "h200"])
def test_profiles_carry_fitted_constants_with_provenance(gpu):
    dev = profiles.load_device(gpu)
    assert tuple(c.engine for c in dev.serving_engines) == MEASURED_ENGINES
    for cal in dev.serving_engines:
        assert "aiconfigurator-core" in cal.source and "serve_engine_fit.py" in cal.source
        # no fitted efficiency sits on the edge of its range (that would mean a missing physical term)
        for name in ("gemm_efficiency_max", "fp8_gemm_efficiency_max", "hbm_efficiency", "kv_read_efficiency"):
            assert 0.05 < getattr(cal, name) < 1.0


def test_engine_without_measurements_is_a_clear_error():
    a100 = profiles.load_device("a100-80gb")
    with pytest.raises(SpecError, match="no measured kernel constants for engine 'vllm'"):
        engine_calibration(a100, "vllm")
    r = CliRunner().invoke(main, ["estimate", "serve", "--model", "llama3-8b", "--gpu", "a100-80gb", "--tp", "1",
                                  "--batch", "1", "--isl", "100", "--osl", "10", "--engine", "vllm"])
    assert r.exit_code == 2 and "vllm" in r.output and "Traceback" not in r.output


def test_gemm_formula_by_hand():
    h100 = profiles.load_device("h100-sxm")
    # the compute layer's curve (tiles and waves, the large-m efficiency: tests/costmodels_serving/test_serving_gemm.py)
    k = dataclasses.replace(KernelConstants.of_engine(engine_calibration(h100, "vllm")), gemm_wave_weight=0.0,
                            gemm_large_efficiency_max=0.0)
    ek = EngineKernels(h100, k)
    # compute bound: 8192³ GEMM, F = 2·8192³; eff = e_max·F/(F + F_half) (m a multiple of the 128-row tile)
    f = 2 * 8192.0 ** 3
    assert gemm_s(ek, 8192, 8192, 8192, "bf16") == pytest.approx(
        f / (989.4e12 * k.gemm_efficiency_max * f / (f + k.gemm_half_flops)))
    # FP8 (tiles, waves, quantisation): tests/costmodels_serving/test_serving_gemm.py
    # memory bound: one token through an 8192 x 8192 BF16 weight: floor + (2·8192² + 2·8192 + 2·8192) bytes at η_hbm
    moved = 2 * 8192 * 8192 + 2 * 8192 + 2 * 8192
    assert gemm_s(ek, 1, 8192, 8192, "bf16") == pytest.approx(k.kernel_floor_s + moved / (3.35e12 * k.hbm_efficiency))


@pytest.mark.parametrize("engine", MEASURED_ENGINES)
def test_measured_engines_price_fp8_at_its_own_rate(engine):
    llama = profiles.load_model("llama3.1-70b")
    h100 = profiles.load_device("h100-sxm")
    shape = InstanceShape(tp=8)
    bf16 = prefill_time(llama, h100, shape, batch=1, prompt_len=8192, engine=engine)["gemm_s"]
    fp8 = prefill_time(llama, h100, shape, batch=1, prompt_len=8192, engine=engine, dtype="fp8")["gemm_s"]
    # measured prefill-size GEMMs run 1.4x-1.6x faster in FP8 with the input quantisation (benchmarks/results/
    # serve_fp8.md); these engines fuse it into the norm, so the GEMMs alone are faster still
    assert bf16 / fp8 > 1.3
    d16 = decode_step_time(llama, h100, shape, batch=8, context_len=2000, engine=engine)["gemm_s"]
    d8 = decode_step_time(llama, h100, shape, batch=8, context_len=2000, engine=engine, dtype="fp8")["gemm_s"]
    assert d8 < d16  # weight streaming halves


def test_kv_dtype_doubles_kv_room_and_halves_kv_reads():
    llama = profiles.load_model("llama3.1-70b")
    h100 = profiles.load_device("h100-sxm")
    shape = InstanceShape(tp=4)
    bf16 = kv_capacity_tokens(llama, h100, shape)
    fp8kv = kv_capacity_tokens(llama, h100, shape, "bf16", "fp8")
    assert fp8kv == pytest.approx(2 * bf16)
    a = decode_step_time(llama, h100, shape, batch=64, context_len=8000, engine="vllm")["attention_s"]
    b = decode_step_time(llama, h100, shape, batch=64, context_len=8000, engine="vllm", kv_dtype="fp8")["attention_s"]
    assert b < a
    with pytest.raises(SpecError, match="kv_dtype"):
        decode_step_time(llama, h100, shape, batch=1, context_len=10, kv_dtype="int3")


def test_fp8_block_split_check_names_block():
    qwen = profiles.load_model("qwen3-235b-a22b")
    assert qwen.moe.expert_ffn == 1536
    assert "128" in quant_block_problem(qwen, InstanceShape(tp=8, ep=1), 128)  # 1536/8 = 192
    assert quant_block_problem(qwen, InstanceShape(tp=8, ep=8), 128) == ""     # experts whole
    assert quant_block_problem(qwen, InstanceShape(tp=8, ep=1), 0) == ""
    h200 = profiles.load_device("h200")
    with pytest.raises(InfeasibleError, match="128"):
        estimate_serving(qwen, h200, tp=8, ep=1, batch=1, isl=100, osl=10, dtype="fp8", quant_block=128)
    r = CliRunner().invoke(main, ["estimate", "serve", "--model", "qwen3-235b-a22b", "--gpu", "h200", "--tp", "8",
                                  "--batch", "1", "--isl", "100", "--osl", "10", "--dtype", "fp8",
                                  "--quant-block", "128"])
    assert r.exit_code == 3 and "128" in r.output


def test_moe_skew_slows_the_busiest_expert_gpu():
    qwen = profiles.load_model("qwen3-235b-a22b")
    h200 = profiles.load_device("h200")
    shape = InstanceShape(tp=8, ep=8)
    even = prefill_time(qwen, h200, shape, batch=1, prompt_len=4096, engine="sglang")
    skewed = prefill_time(qwen, h200, shape, batch=1, prompt_len=4096, engine="sglang", skew=1.5)
    assert skewed["gemm_s"] > even["gemm_s"] and skewed["alltoall_s"] == pytest.approx(even["alltoall_s"] * 1.5,
                                                                                         rel=0.2)
    with pytest.raises(SpecError, match="moe-skew"):
        prefill_time(qwen, h200, shape, batch=1, prompt_len=10, skew=0.5)


def test_unknown_engine_key_in_profile_is_rejected(tmp_path):
    body = (pathlib.Path(profiles.__file__).parent / "hardware" / "h100-sxm.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(body.replace("    kv_read_efficiency:", "    kv_read_eff:", 1))
    with pytest.raises(SpecError) as err:
        profiles.load_device(str(bad))
    assert "kv_read_eff" in str(err.value)


def test_engine_calibration_is_recorded_in_estimates():
    plan = estimate_serving(profiles.load_model("llama3-8b"), profiles.load_device("h200"), tp=1, batch=4, isl=512,
                            osl=64, engine="trtllm")
    engines = plan["inputs"]["device"]["serving_engines"]
    assert [e["engine"] for e in engines] == list(MEASURED_ENGINES)
    assert math.isfinite(plan["predicted"]["prefill_s"]) and dataclasses.is_dataclass(
        profiles.load_device("h200").serving_engines[0])
