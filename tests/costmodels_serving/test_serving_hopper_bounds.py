"""benchmarks/serve_hopper_bounds.py (issue 12's Hopper constants): its arithmetic on hand-made tables, and the measured
facts its report rests on (those skip without aiconfigurator-core)."""

import sys
from pathlib import Path

import pytest
from bench_modules import bench_modules

import profiles

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
bounds = pytest.importorskip("serve_hopper_bounds")


def test_row_excess_is_the_time_per_row_beyond_the_quantise_kernel() -> None:
    assert bounds.row_excess_s(240e-6, 22e-6, 32768) == pytest.approx(218e-6 / 32768)


def test_slow_points_are_large_gemms_below_share_of_their_median() -> None:
    flops = 2.0 * 8192 * 8192 * 5120
    table = {(8192, 8192, 5120): flops / 1e15, (16384, 8192, 5120): 2 * flops / 1e15,
             (8192, 16384, 5120): 2 * flops / 0.7e15,  # 0.7 PFLOP/s against a median of 1: slow
             (4096, 8192, 5120): flops / 2 / 0.1e15,  # m < 8192: not a large point, however slow
             (8192, 8192, 4096): flops * 0.8 / 0.1e15}  # another k
    typical, slow = bounds.slow_points(table, 5120)
    assert typical == pytest.approx(1e15)
    assert slow == [(8192, 16384, 5120)]


def test_only_the_16_gpu_qwen3_30b_layer_fits_hopper_l2() -> None:
    (bounds_mod,) = bench_modules("serve_hopper_bounds", needs="SGLang's H200 MoE table")
    pts = bounds_mod.moe_points("h200")
    l2 = profiles.load_device("h200").l2_bytes
    assert l2 == 50 * bounds_mod.MIB
    resident = {round(w / bounds_mod.MIB) for w, *_ in pts if w <= l2}
    assert resident == {36}  # 128 experts / 16 x 3 x 2048 x 768 / 1 FP8 bytes = 36 MiB


def test_vllm_fp8_rows_carry_a_time_per_row_no_quantise_kernel_has() -> None:
    (bounds_mod,) = bench_modules("serve_hopper_bounds", needs="vLLM's Hopper GEMM and quantise tables")
    for device in bounds_mod.DEVICES:
        row = next(r for r in bounds_mod._vllm_row_excess(device, 32768) if "| 32768 | 32 |" in r)
        excess_ns = float(row.rstrip(" |").rsplit("|", 1)[1])
        assert 5.0 < excess_ns < 8.0  # 218 µs of 240 at m 32768, n 32, k 32; the quantise kernels run 22 µs


def test_h200_sglang_fp8_dip_is_one_of_several_isolated_slow_points() -> None:
    (bounds_mod, aic) = bench_modules("serve_hopper_bounds", "aiconfigurator_tables", needs="SGLang's GEMM tables")
    table = {(int(p[0]), int(p[1]), int(p[2])): p[4] for p in aic.load("h200", "sglang").gemm if p[3] == "fp8"}
    _, slow = bounds_mod.slow_points(table, 5120)
    assert (8192, 51200, 5120) in slow and (16384, 51200, 5120) not in slow
    assert (8192, 65536, 5120) not in slow  # its neighbour along n runs at the usual rate
    assert len(slow) >= 3  # not the only one: other (m, n) at k 5120 fall as low


def test_tuned_block_rows_reads_sglang_fp8_files_of_domain_shapes(tmp_path: Path) -> None:
    import json
    import zipfile

    configs = "sglang/srt/layers/moe/moe_runner/triton_utils/configs/triton_3_2_0/"
    cfg = {"1": {"BLOCK_SIZE_M": 64}, "4": {"BLOCK_SIZE_M": 16}, "256": {"BLOCK_SIZE_M": 64}}
    wheel = tmp_path / "sglang-0.5.14-cp311-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(configs + "E=128,N=768,device_name=NVIDIA_H200,dtype=fp8_w8a8,block_shape=[128, 128].json",
                   json.dumps(cfg))  # Qwen3-30B-A3B at TP 1 on H200: a tuned file in 0.5.14
        z.writestr(configs + "E=128,N=768,device_name=NVIDIA_H200.json", json.dumps(cfg))  # BF16: not read
        z.writestr(configs + "E=160,N=640,device_name=NVIDIA_H200,dtype=fp8_w8a8,block_shape=[128, 128].json",
                   json.dumps(cfg))  # tuned, but no shipped model runs E 160, N 640
    assert bounds.tuned_block_rows(wheel) == {("h200", 128, 768): {1: 64, 4: 16, 256: 64}}
