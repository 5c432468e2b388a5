"""vLLM's FP8 experts as measured: FlashInfer's CUTLASS fused MoE on its fallback 128 x 16 x 128 tile
(costmodels/serving_moe_flashinfer.py), checked by hand."""

import pathlib
import sys

import pytest

import profiles
from costmodels import serving_gemm
from costmodels.hardware import KernelConstants
from costmodels.serving_kernels import EngineKernels, engine_calibration, grouped_gemm_s
from costmodels.serving_moe_configs import flashinfer_fallback_tile
from costmodels.serving_moe_flashinfer import FALLBACK_TILE, row_tiles, uniform_rows
from costmodels.serving_moe_flashinfer import grouped_gemm_s as flashinfer_s


def _constants(**over: float) -> KernelConstants:
    base = dict(gemm_efficiency_max=0.8, gemm_half_flops=1e9, fp8_gemm_efficiency_max=0.7, fp8_gemm_half_flops=2e9,
                fp8_quant_s=2e-6, hbm_efficiency=0.8, kernel_floor_s=4e-6, attention_efficiency=0.5,
                attention_floor_s=0.0, attention_half_work=0.0, kv_read_efficiency=0.8, decode_attention_floor_s=0.0,
                decode_seq_s=0.0, allreduce_call_s=0.0, allreduce_hop_s=0.0, allreduce_efficiency=0.5,
                moe_fp8_efficiency=0.25, moe_fp8_floor_s=2e-5, moe_fp8_hbm_efficiency=0.5, moe_fp8_slot_bytes=2.0,
                moe_fp8_tile_s=1e-6, moe_fp8_oob_penalty=1.5, gemm_sms=132.0)
    return KernelConstants(**{**base, **over})


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
    h100 = profiles.load_device("h100-sxm")
    slots, experts, n, kk = 2048.0, 8.0, 28672.0, 4096.0
    on = EngineKernels(h100, _constants())
    assert grouped_gemm_s(on, slots, experts, n, kk, "fp8", True) == pytest.approx(
        flashinfer_s(on.device, on.k, uniform_rows(slots, experts), n, kk))
    off = EngineKernels(h100, _constants(moe_fp8_tile_s=0.0))
    assert grouped_gemm_s(off, slots, experts, n, kk, "fp8", True) == pytest.approx(
        serving_gemm.grouped_gemm_s(off.device, off.k, slots, experts, n, kk, "fp8"))
    # BF16 experts never take the FlashInfer path
    assert grouped_gemm_s(on, slots, experts, n, kk, "bf16") == pytest.approx(
        serving_gemm.grouped_gemm_s(on.device, on.k, slots, experts, n, kk, "bf16"))


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
    import serve_engine_fit
    from aic_moe_workload import measured_rows

    # 16 tokens x top-8 over 128 experts, stride 16: token t -> t + 16j, every expert gets exactly one row (uniform
    # random routing would hit only 128·(1 - (127/128)^128) ≈ 81 experts)
    assert measured_rows(16, 128, 8, 1, False)[1:] == (((1, 128),), 128)
    # EP 4: GPU 0 holds experts 0-31, each still one row; the Triton kernel walks all 128 slots
    assert measured_rows(16, 128, 8, 4, False)[1:] == (((1, 32),), 128)
    h100 = profiles.load_device("h100-sxm")
    ek = EngineKernels(h100, _constants())
    point = (16.0, 2048.0, 768.0, 8.0, 128.0, 1.0, 1.0, "fp8", 1.0)
    by_hand = (flashinfer_s(h100, ek.k, ((1.0, 128.0),), 1536.0, 2048.0)
               + flashinfer_s(h100, ek.k, ((1.0, 128.0),), 2048.0, 768.0))
    assert serve_engine_fit._moe(ek, point, engine="vllm") == pytest.approx(by_hand)
