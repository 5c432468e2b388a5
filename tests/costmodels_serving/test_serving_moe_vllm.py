"""vLLM's FP8 experts as measured: FlashInfer's CUTLASS fused MoE on its fallback 128 x 16 x 128 tile
(costmodels/serving_moe_flashinfer.py), checked by hand; and as served: the autotuned CUTLASS MoE, timed with
TensorRT-LLM's fitted FP8 MoE constants of the same device."""

import dataclasses
import functools
import pathlib
import sys

import pytest
from kernel_constants import kernel_constants

import profiles
from costmodels import serving_gemm
from costmodels.serving import InstanceShape, decode_step_time
from costmodels.serving_constants import EngineCalibration, KernelConstants
from costmodels.serving_kernels import EngineKernels, engine_calibration, grouped_gemm_s
from costmodels.serving_moe_configs import config_block_rows, flashinfer_fallback_tile, walks_all_slots
from costmodels.serving_moe_flashinfer import FALLBACK_TILE, row_tiles, uniform_rows
from costmodels.serving_moe_flashinfer import grouped_gemm_s as flashinfer_s

MOE = dict(moe_fp8_efficiency=0.25, moe_fp8_floor_s=2e-5, moe_fp8_hbm_efficiency=0.5, moe_fp8_slot_bytes=2.0,
           moe_fp8_tile_s=1e-6, moe_fp8_oob_penalty=1.5, gemm_sms=132.0)
"""the MoE kernel constants these tests exercise (the rest: kernel_constants.DENSE)"""


def _constants(**over: float) -> KernelConstants:
    return kernel_constants(**{**MOE, **over})


def test_fallback_tile_is_the_first_sm90_grouped_tile():
    assert FALLBACK_TILE == (128, 16, 128)
    assert flashinfer_fallback_tile("vllm", "fp8")
    assert not flashinfer_fallback_tile("vllm", "bf16") and not flashinfer_fallback_tile("trtllm", "fp8")
    assert not flashinfer_fallback_tile("sglang", "fp8")


def test_rows_cut_into_128_row_tiles_with_their_empty_rows():
    assert row_tiles(((128.0, 8.0),)) == (8.0, 0.0)                    # whole tiles, nothing empty
    assert row_tiles(((192.0, 8.0),)) == (16.0, pytest.approx(4.0))    # 1 full + 1 half-empty tile per expert
    assert row_tiles(((1.0, 2.0),)) == (2.0, pytest.approx(2 * 127 / 128))
    assert row_tiles(((0.0, 5.0), (256.0, 1.0))) == (2.0, 0.0)         # experts without rows run nothing
    # uniform routing: 16 slots over 128 experts hit 128·(1 - (127/128)^16) experts with the slots shared evenly
    hit = 128 * (1 - (127 / 128) ** 16)
    (r, count), = uniform_rows(16.0, 128.0)
    assert count == pytest.approx(hit) and r * count == pytest.approx(16.0)
    assert uniform_rows(0.0, 8.0) == ()


def test_compute_bound_layer_by_hand():
    h100 = profiles.load_device("h100-sxm")
    k = _constants(moe_fp8_hbm_efficiency=0.9)
    n, kk = 32768.0, 6144.0                      # Mixtral-8x22B gate+up at expert TP 1
    rows = ((128.0, 8.0),)                       # 512 tokens, top-2 over 8 experts: one full row tile each
    tiles = 8 * 32768 / 16
    main = 2 * 128 * 32768 * 6144 * 8
    compute_s = tiles * 1e-6 / 132 + main / (h100.peak_flops_per_s("fp8") * 0.25)
    moved = 8 * 6144 * 32768 + 2.0 * (1024 * 6144 + 1024 * 2 * 32768)
    memory_s = 4e-6 + moved / (h100.hbm_bytes_per_s * 0.9)
    assert compute_s > memory_s
    assert flashinfer_s(h100, k, rows, n, kk) == pytest.approx(2e-5 + compute_s)


def test_partial_row_tile_costs_its_empty_rows_and_depth_pads_to_128():
    h100 = profiles.load_device("h100-sxm")
    k = _constants(moe_fp8_hbm_efficiency=1.0, moe_fp8_slot_bytes=0.01)
    n, kk = 32768.0, 6144.0
    full = flashinfer_s(h100, k, ((128.0, 8.0),), n, kk)
    half = flashinfer_s(h100, k, ((64.0, 8.0),), n, kk)  # same tiles, half of each row tile empty
    extra = 1.5 * (8 * 64 / 128) * 2 * 128 * 32768 * 6144 / (h100.peak_flops_per_s("fp8") * 0.25)
    assert half - full == pytest.approx(extra)
    assert half > full  # fewer rows, slower: the measured FlashInfer fallback behaviour
    # a depth of 96 FP8 elements runs one whole 128-deep main-loop step (compute-bound: many rows)
    assert flashinfer_s(h100, k, ((1024.0, 8.0),), 2048.0, 96.0) == pytest.approx(
        flashinfer_s(h100, k, ((1024.0, 8.0),), 2048.0, 128.0), rel=1e-9)


def test_engine_kernels_switch_only_with_tile_constant():
    # a device without TensorRT-LLM constants: vLLM's FP8 experts keep the fallback-tile model (nothing tuned to use)
    bare = dataclasses.replace(profiles.load_device("h100-sxm"), serving_engines=())
    slots, experts, n, kk = 2048.0, 8.0, 28672.0, 4096.0
    on = EngineKernels(bare, _constants())
    assert on.tuned_moe is None
    assert grouped_gemm_s(on, slots, experts, n, kk, "fp8", True) == pytest.approx(
        flashinfer_s(on.device, on.k, uniform_rows(slots, experts), n, kk))
    off = EngineKernels(profiles.load_device("h100-sxm"), _constants(moe_fp8_tile_s=0.0))
    assert off.tuned_moe is None  # engines whose FP8 experts are not FlashInfer's CUTLASS MoE run their own
    assert grouped_gemm_s(off, slots, experts, n, kk, "fp8", True) == pytest.approx(
        serving_gemm.grouped_gemm_s(off.device, off.k, slots, experts, n, kk, "fp8"))
    # BF16 experts never take the FlashInfer path
    assert grouped_gemm_s(on, slots, experts, n, kk, "bf16") == pytest.approx(
        serving_gemm.grouped_gemm_s(on.device, on.k, slots, experts, n, kk, "bf16"))


def test_served_fp8_experts_run_the_tuned_cutlass_moe_by_hand():
    # the device's TensorRT-LLM constants (made up here, max() overlap) time vLLM's FP8 experts in serving
    trt = dict(moe_fp8_efficiency=0.5, moe_fp8_floor_s=8e-6, moe_fp8_hbm_efficiency=0.7, moe_fp8_slot_bytes=1.5,
               moe_fp8_block_rows=64.0, fp8_gemm_efficiency_max=0.6, fp8_gemm_half_flops=0.0)
    base = dataclasses.asdict(_constants(moe_fp8_tile_s=0.0, moe_fp8_oob_penalty=0.0, **trt))
    h100 = profiles.load_device("h100-sxm")
    dev = dataclasses.replace(h100, serving_engines=(EngineCalibration(engine="trtllm", **base),))
    ek = EngineKernels(dev, _constants())        # vLLM: FlashInfer's CUTLASS MoE (moe_fp8_tile_s > 0)
    assert ek.tuned_moe is not None and ek.tuned_moe.k.moe_fp8_floor_s == 8e-6
    # Qwen3-30B-A3B gate+up at TP 2, 16 decode tokens x top-8 over 128 experts
    slots, experts, n, kk = 128.0, 128.0, 768.0, 2048.0
    hit = 128 * (1 - (127 / 128) ** 128)         # ≈ 81 experts, 1.58 rows each: one 64-row block each
    padded = hit * 64                            # 5190 rows: 41 tiles of 128 rows on the GEMM curve
    eff = 0.6 * 2 * padded * n * kk / (2 * 41 * 128 * n * kk) * 0.5  # curve x moe_fp8_efficiency
    compute_s = 2 * padded * n * kk / (h100.peak_flops_per_s("fp8") * eff)
    moved = hit * kk * n + 1.5 * (slots * kk + slots * 2 * n)       # FP8 weights once + slot traffic
    memory_s = 4e-6 + moved / (h100.hbm_bytes_per_s * 0.7)
    assert memory_s > compute_s
    assert grouped_gemm_s(ek, slots, experts, n, kk, "fp8", True) == pytest.approx(8e-6 + memory_s)
    # ... and not the fallback tile's 16-column tiles the table timed (far slower on this shape)
    assert flashinfer_s(h100, ek.k, uniform_rows(slots, experts), n, kk) > 2 * (8e-6 + memory_s)


@pytest.mark.parametrize("device", ["h100-sxm", "h200"])
def test_served_vllm_fp8_experts_equal_trtllm_constants(device: str):
    dev = profiles.load_device(device)
    vllm = EngineKernels(dev, KernelConstants.of_engine(engine_calibration(dev, "vllm")))
    trt = EngineKernels(dev, KernelConstants.of_engine(engine_calibration(dev, "trtllm")))
    for slots, experts, n, kk in ((128.0, 128.0, 768.0, 2048.0), (4096.0, 8.0, 14336.0, 4096.0)):
        assert grouped_gemm_s(vllm, slots, experts, n, kk, "fp8", True) == pytest.approx(
            grouped_gemm_s(trt, slots, experts, n, kk, "fp8", True), rel=1e-12)


@pytest.mark.parametrize("device", ["h100-sxm", "h200"])
def test_profiles_carry_the_tile_constants_for_vllm_only(device: str):
    dev = profiles.load_device(device)
    assert engine_calibration(dev, "vllm").moe_fp8_tile_s > 0
    for engine in ("trtllm", "sglang"):
        cal = engine_calibration(dev, engine)
        assert cal.moe_fp8_tile_s == 0.0 and cal.moe_fp8_oob_penalty == 0.0


def test_weight_passes_add_a_share_per_further_row_block():
    k = _constants(moe_block_weight_reads=0.4)
    assert serving_gemm.weight_passes(k, 1.0) == 1.0
    assert serving_gemm.weight_passes(k, 3.0) == pytest.approx(1.0 + 0.4 * 2)
    assert serving_gemm.weight_passes(_constants(), 5.0) == 1.0  # 0 (every other engine): weights once


def test_triton_experts_memory_bound_with_weight_rereads_by_hand():
    h100 = profiles.load_device("h100-sxm")
    k = _constants(moe_block_weight_reads=0.5, moe_block_rows=64.0, moe_efficiency=1.0, moe_floor_s=1e-5,
                   moe_slot_bytes=1.0, moe_hbm_efficiency=0.8)
    ek = EngineKernels(h100, k)
    n, kk = 28672.0, 4096.0                      # Mixtral-8x7B gate+up: weights far beyond L2
    rows = ((80.0, 8),)                          # 80 rows per expert: 2 blocks of 64
    weights = 8 * 2 * kk * n * (1 + 0.5 * (2 - 1))
    slot_bytes = 1.0 * (640 * 2 * kk + 640 * 2 * n)
    memory_s = 4e-6 + (weights + slot_bytes) / (h100.hbm_bytes_per_s * 0.8)
    got = serving_gemm.grouped_gemm_rows_s(ek.device, k, rows, n, kk, "bf16")
    assert got == pytest.approx(1e-5 + memory_s)
    one_block = serving_gemm.grouped_gemm_rows_s(ek.device, k, ((64.0, 8),), n, kk, "bf16")
    assert got > 1.4 * one_block  # the second block re-streams half the weights: the measured 256 -> 320 step


def test_fit_times_vllm_on_the_collectors_balanced_rows():
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "benchmarks"))
    import serve_engine_ops
    from aic_moe_workload import measured_rows

    # 16 tokens x top-8 over 128 experts, stride 16: token t -> t + 16j, every expert gets exactly one row (uniform
    # random routing would hit only 128·(1 - (127/128)^128) ≈ 81 experts)
    assert measured_rows(16, 128, 8, 1, False)[1:] == (((1, 128),), 128)
    # EP 4: GPU 0 holds experts 0-31, each still one row; the Triton kernel walks all 128 slots
    assert measured_rows(16, 128, 8, 4, False)[1:] == (((1, 32),), 128)
    h100 = profiles.load_device("h100-sxm")
    ek = EngineKernels(h100, _constants())
    assert ek.tuned_moe is not None  # serving would time the tuned kernel; the fit evaluates the table as collected
    point = (16.0, 2048.0, 768.0, 8.0, 128.0, 1.0, 1.0, "fp8", 1.0)
    by_hand = (flashinfer_s(h100, ek.k, ((1.0, 128.0),), 1536.0, 2048.0)
               + flashinfer_s(h100, ek.k, ((1.0, 128.0),), 2048.0, 768.0))
    assert serve_engine_ops.predict_moe(ek, point, engine="vllm") == pytest.approx(by_hand)


@functools.cache
def _moe_table(device: str, engine: str) -> dict[tuple, float]:
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "benchmarks"))
    from aiconfigurator_tables import load

    return {p[:8]: p[8] for p in load(device, engine).moe}


@pytest.mark.parametrize("device", ["h100-sxm", "h200"])
def test_qwen3_30b_fp8_decode_on_vllm_not_slower_than_bf16(device: str):
    """Qwen3-30B-A3B, TP 2, 16 decoding sequences: the MoE layer's FP8/BF16 ratio is the measured tables' tuned
    CUTLASS FP8 layer (TensorRT-LLM's table) over vLLM's BF16 Triton layer, 0.134/0.234 = 0.57 (H100) and
    0.111/0.174 = 0.64 (H200) ms; vLLM's own FP8 rows (fallback tile) would say 3.1x / 4.1x slower."""
    pytest.importorskip("aiconfigurator_core", reason="needs aiconfigurator-core (optional extra `aiconfigurator`): "
                                                      "the measured per-op tables")
    dev, model = profiles.load_device(device), profiles.load_model("qwen3-30b-a3b")
    ek = EngineKernels(dev, KernelConstants.of_engine(engine_calibration(dev, "vllm")))
    tokens, h, inter, topk, experts, tp = 16, 2048, 768, 8, 128, 2

    def layer_s(dtype: str) -> float:  # as costmodels/serving.py _routed_experts issues it
        rows = config_block_rows("vllm", device, tokens, experts, inter / tp, dtype)
        walked = tokens * topk if walks_all_slots("vllm", dtype) else 0.0
        return sum(grouped_gemm_s(ek, tokens * topk, experts, n, kk, dtype, True, rows, walked)
                   for n, kk in ((2 * inter / tp, h), (h, inter / tp)))

    key = (tokens, h, inter, topk, experts, tp, 1)
    measured = _moe_table(device, "trtllm")[(*key, "fp8")] / _moe_table(device, "vllm")[(*key, "bf16")]
    assert measured < 0.7
    assert layer_s("fp8") / layer_s("bf16") == pytest.approx(measured, rel=0.15)
    step = {dt: decode_step_time(model, dev, InstanceShape(tp=2), batch=16, context_len=1024, engine="vllm",
                                 dtype=dt)["time_s"] for dt in ("bf16", "fp8")}
    assert step["fp8"] < step["bf16"]  # was 24.9 vs 11.6 ms (H100) on the fallback tile
