"""A per-op MoE table that repeats one layer's call finds the weights of the experts it hits in the L2 when they fit
(moe_warm_l2: every engine's MoE rows on B200, serve_engine_ops.MOE_WARM_L2) and reads them at the fitted L2
rate kv_l2_bytes_per_s; a server never does (serving_kernels.grouped_gemm_s passes no warm_l2). Checked by hand."""

import dataclasses
import pathlib
import sys

import pytest

import profiles
from costmodels import serving_gemm
from costmodels.serving_constants import KernelConstants
from costmodels.serving_kernels import EngineKernels, engine_calibration, grouped_gemm_s

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "benchmarks"))
import serve_engine_ops  # noqa: E402


def _trtllm(selector: float = 1.0) -> EngineKernels:
    dev = profiles.load_device("b200")
    k = KernelConstants.of_engine(engine_calibration(dev, "trtllm"))
    return EngineKernels(dev, dataclasses.replace(k, moe_warm_l2=selector))


def test_profile_selects_warm_l2_for_every_engine_on_b200_only():
    """One collector (the same routed batch repeated, no L2 flush) for all three engines: one selector on B200."""
    dev = profiles.load_device("b200")
    assert {c.engine: c.moe_warm_l2 for c in dev.serving_engines} == {"sglang": 1.0, "trtllm": 1.0, "vllm": 1.0}
    want = {(e, "b200"): dict(moe_warm_l2=1.0) for e in ("trtllm", "vllm", "sglang")}
    assert want == serve_engine_ops.MOE_WARM_L2
    for hopper in ("h100-sxm", "h200"):
        assert all(c.moe_warm_l2 == 0.0 for c in profiles.load_device(hopper).serving_engines)


def test_memory_time_reads_weights_from_l2_by_hand():
    ek = _trtllm()
    k, dev = ek.k, ek.device
    w, slots, n, kk = 40e6, 64.0, 3072.0, 4096.0
    slot_bytes = k.moe_fp8_slot_bytes * (slots * 1.0 * kk + slots * 2.0 * n)
    hbm = dev.hbm_bytes_per_s * k.moe_fp8_hbm_efficiency
    cold = k.kernel_floor_s + (w + slot_bytes) / hbm
    warm = k.kernel_floor_s + w / k.kv_l2_bytes_per_s + slot_bytes / hbm
    assert serving_gemm.moe_memory_s(dev, k, w, slots, 0.0, n, kk, True) == pytest.approx(cold, rel=1e-12)
    assert serving_gemm.moe_memory_s(dev, k, w, slots, 0.0, n, kk, True, True) == pytest.approx(warm, rel=1e-12)
    assert warm < cold  # B200's L2 rate (kv_l2_bytes_per_s) is above its HBM rate
    off = _trtllm(0.0)  # without the selector the flag changes nothing
    assert serving_gemm.moe_memory_s(dev, off.k, w, slots, 0.0, n, kk, True, True) == pytest.approx(cold, rel=1e-12)


def test_residency_by_the_hit_experts_weight_bytes():
    ek = _trtllm()
    assert ek.device.l2_bytes == 126 * 2**20
    # Mixtral-8x7B (hidden 4096, width 14336): 3·4096·14336 B = 176 MB of FP8 per expert; all 8 hit
    rows = ((64.0, 8),)
    assert serve_engine_ops.warm_weights(ek, rows, 4096, 14336 / 16, "fp8")  # 16 GPUs: 88 MB <= 126 MiB
    assert not serve_engine_ops.warm_weights(ek, rows, 4096, 14336 / 8, "fp8")  # 8 GPUs: 176 MB
    assert not serve_engine_ops.warm_weights(ek, rows, 4096, 14336 / 16, "bf16")  # BF16: twice the bytes
    # only the experts hit count: 1 of 8 experts at 8 GPUs' width (22 MB) fits
    assert serve_engine_ops.warm_weights(ek, ((1.0, 1), (0.0, 7)), 4096, 14336 / 8, "fp8")
    assert not serve_engine_ops.warm_weights(_trtllm(0.0), rows, 4096, 14336 / 16, "fp8")


def test_collector_row_faster_where_weights_fit_and_serving_unchanged():
    on, off = _trtllm(), _trtllm(0.0)
    point = (4, 4096, 14336, 2, 8, 4, 4, "fp8", 0.0)  # Mixtral-8x7B, moe_tp 4 x EP 4: 88 MB per GPU
    assert serve_engine_ops.predict_moe(on, point, "trtllm") < serve_engine_ops.predict_moe(off, point, "trtllm")
    wide = (4, 4096, 14336, 2, 8, 2, 4, "fp8", 0.0)  # moe_tp 2 x EP 4: 176 MB, from HBM either way
    assert serve_engine_ops.predict_moe(on, wide, "trtllm") == serve_engine_ops.predict_moe(off, wide, "trtllm")
    for dtype in ("bf16", "fp8"):  # a server streams every layer's weights: never warm
        assert (grouped_gemm_s(on, 8.0, 2.0, 2 * 14336 / 16, 4096, dtype)
                == grouped_gemm_s(off, 8.0, 2.0, 2 * 14336 / 16, 4096, dtype))
