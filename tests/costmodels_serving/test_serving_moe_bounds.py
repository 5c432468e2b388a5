"""The serial parts of FP8 MoE kernels (serving_gemm.serial_s): the per-local-expert walk of TensorRT-LLM's
block-scaled DeepGEMM scheduler (t_e·E_l) and the slot traffic of the separate kernels around the grouped GEMM
(σ_s·(s·k + S·2·n) / (BW·η_moe)), checked by hand: zero where the term is off, its exact value where it is on; the
per-tile prologue/epilogue k_0 of vLLM's block-scaled Triton kernel (k_0 more k elements at the kernel's full rate)
and the block-scaled efficiency bounded by the FP8 peak (1 / the curve's eff_max) instead of the curve."""

import dataclasses

import pytest
from kernel_constants import kernel_constants

import profiles
from costmodels import serving_gemm
from costmodels.errors import SpecError
from costmodels.serving_constants import KernelConstants
from costmodels.serving_kernels import EngineKernels, block_fp8_constants, block_fp8_kernels, grouped_gemm_s

MOE = dict(moe_fp8_efficiency=0.5, moe_fp8_block_rows=64.0, moe_fp8_floor_s=1e-5, moe_fp8_hbm_efficiency=0.9,
           moe_fp8_slot_bytes=1.0, moe_efficiency=0.5, moe_block_rows=64.0, moe_floor_s=1e-5)
"""the MoE kernel constants these tests exercise (the rest: kernel_constants.DENSE)"""
N, KK = 4096.0, 7168.0


def _constants(**over: float) -> KernelConstants:
    return kernel_constants(**{**MOE, **over})


def _dev():
    return profiles.load_device("h100-sxm")


def test_serial_terms_zero_when_off_and_for_bf16():
    dev = _dev()
    off = _constants()
    assert off.moe_fp8_expert_s == 0.0 and off.moe_fp8_serial_bytes == 0.0
    assert serving_gemm.serial_s(dev, off, "fp8", 256, 64, 0, N, KK) == 0.0
    on = _constants(moe_fp8_expert_s=1e-7, moe_fp8_serial_bytes=3.0)
    assert serving_gemm.serial_s(dev, on, "bf16", 256, 64, 0, N, KK) == 0.0
    # BF16 experts run without them: the same time with the FP8 serial constants set
    assert serving_gemm.grouped_gemm_s(dev, on, 64, 256, N, KK, "bf16") == serving_gemm.grouped_gemm_s(
        dev, off, 64, 256, N, KK, "bf16")


def test_expert_walk_by_hand():
    # 256 local experts at 0.1 µs each: 25.6 µs on top of the kernel, whatever the slots
    dev = _dev()
    off, on = _constants(), _constants(moe_fp8_expert_s=1e-7)
    for slots in (1.0, 32.0, 4096.0):
        delta = (serving_gemm.grouped_gemm_s(dev, on, slots, 256, N, KK, "fp8")
                 - serving_gemm.grouped_gemm_s(dev, off, slots, 256, N, KK, "fp8"))
        assert delta == pytest.approx(25.6e-6, rel=1e-9)
    # an uneven split counts every local expert, those without rows too: 250 empty + 6 with one row = 256
    rows = ((0, 250), (1, 6))
    delta = (serving_gemm.grouped_gemm_rows_s(dev, on, rows, N, KK, "fp8")
             - serving_gemm.grouped_gemm_rows_s(dev, off, rows, N, KK, "fp8"))
    assert delta == pytest.approx(25.6e-6, rel=1e-9)


def test_serial_slot_traffic_by_hand():
    # σ_s = 2: 64 slots in (FP8, 1 byte) and out (BF16): 2·(64·7168 + 64·2·4096) = 1,966,080 bytes at 90 % of HBM
    dev = _dev()
    on = _constants(moe_fp8_serial_bytes=2.0)
    want = 2.0 * (64 * 7168 + 64 * 2 * 4096) / (dev.hbm_bytes_per_s * 0.9)
    assert serving_gemm.serial_s(dev, on, "fp8", 16, 64, 0, N, KK) == pytest.approx(want, rel=1e-12)
    assert want == pytest.approx(1_966_080 / (3.35e12 * 0.9), rel=1e-2)  # the H100 profile's 3.35 TB/s
    # a kernel walking all 512 slots of the layer writes 512 output rows
    walked = 2.0 * (64 * 7168 + 512 * 2 * 4096) / (dev.hbm_bytes_per_s * 0.9)
    assert serving_gemm.serial_s(dev, on, "fp8", 16, 64, 512, N, KK) == pytest.approx(walked, rel=1e-12)
    off = _constants()
    delta = (serving_gemm.grouped_gemm_s(dev, on, 64, 16, N, KK, "fp8")
             - serving_gemm.grouped_gemm_s(dev, off, 64, 16, N, KK, "fp8"))
    assert delta == pytest.approx(want, rel=1e-9)


BLOCK = dict(moe_blockfp8_efficiency=0.6, moe_blockfp8_block_rows=128.0, moe_blockfp8_floor_s=8e-6,
             moe_blockfp8_hbm_efficiency=0.9, moe_blockfp8_slot_bytes=1.0, moe_blockfp8_expert_s=1e-7,
             moe_blockfp8_serial_bytes=2.0)


def test_block_kernel_carries_its_serial_terms_per_tensor_does_not():
    dev = _dev()
    k = _constants(**BLOCK)
    block = block_fp8_constants(k)
    assert block is not None and block.moe_fp8_expert_s == 1e-7 and block.moe_fp8_serial_bytes == 2.0
    ek = EngineKernels(dev, k)
    no_serial = EngineKernels(dev, _constants(**{**BLOCK, "moe_blockfp8_expert_s": 0.0,
                                                 "moe_blockfp8_serial_bytes": 0.0}))
    want = 256 * 1e-7 + 2.0 * (64 * 7168 + 64 * 2 * 4096) / (dev.hbm_bytes_per_s * 0.9)
    got = grouped_gemm_s(ek, 64, 256, N, KK, "fp8", True, block_scaled=True)
    assert got - grouped_gemm_s(no_serial, 64, 256, N, KK, "fp8", True, block_scaled=True) == pytest.approx(
        want, rel=1e-9)
    # per-tensor FP8 experts keep their own (serial-free) constants
    assert grouped_gemm_s(ek, 64, 256, N, KK, "fp8", True) == grouped_gemm_s(no_serial, 64, 256, N, KK, "fp8", True)


@pytest.mark.parametrize("device", ["h100-sxm", "h200"])
def test_fitted_block_constants_off_their_bounds_and_shared_with_vllm(device):
    dev = profiles.load_device(device)
    cals = {c.engine: c for c in dev.serving_engines}
    trt = cals["trtllm"]
    # the fit's bounds: HBM efficiency (0.02, 1], slot traffic (0.01, 100)
    assert 0.5 < trt.moe_blockfp8_hbm_efficiency < 0.99
    assert trt.moe_blockfp8_expert_s > 0 and 0.5 < trt.moe_blockfp8_serial_bytes < 50
    assert trt.moe_blockfp8_slot_bytes == 1.0  # the GEMM's own slot I/O, not fitted
    # vLLM's block-FP8 experts at EP > 1 run TensorRT-LLM's block constants, serial terms included
    vllm = EngineKernels(dev, KernelConstants.of_engine(cals["vllm"]))
    block = block_fp8_kernels(vllm, ep=2)
    assert block is not None and block[1].moe_fp8_expert_s == trt.moe_blockfp8_expert_s
    assert block[1].moe_fp8_serial_bytes == trt.moe_blockfp8_serial_bytes


def test_block_tile_overhead_by_hand():
    # k_0 = 512 on 4096 slots of one expert (64 blocks of 64 rows): 2·4096·4096·512 more FLOPs at the kernel's full
    # rate, the FP8 curve's eff_max 0.7 times e_block 0.6, not at the size curve's lower rate
    plain = {**BLOCK, "moe_blockfp8_block_rows": 64.0, "moe_blockfp8_expert_s": 0.0, "moe_blockfp8_serial_bytes": 0.0}
    dev = EngineKernels(_dev(), _constants(**plain)).device  # the engine's FP8 curve (eff_max 0.7) as calibration
    block = block_fp8_constants(_constants(**plain))
    slow = block_fp8_constants(_constants(**plain, moe_blockfp8_k_overhead=512.0))
    assert block is not None and slow is not None
    want = 2 * 4096 * 4096 * 512 / (1978.9e12 * 0.7 * 0.6)
    assert want == pytest.approx(20.67e-6, rel=1e-3)
    for default_rows in (0.0, 64.0):  # a default tile config (efficiency 1 here) the same
        delta = (serving_gemm.grouped_gemm_s(dev, slow, 4096, 1, N, 1024.0, "fp8", default_rows)
                 - serving_gemm.grouped_gemm_s(dev, block, 4096, 1, N, 1024.0, "fp8", default_rows))
        assert delta == pytest.approx(want, rel=1e-9)
    # BF16 experts leave it out
    assert serving_gemm.grouped_gemm_s(dev, slow, 64, 16, N, KK, "bf16") == serving_gemm.grouped_gemm_s(
        dev, block, 64, 16, N, KK, "bf16")


def test_block_efficiency_bounded_by_the_fp8_peak():
    # relative to the FP8 curve: up to 1 / fp8_gemm_efficiency_max, i.e. at most the device's FP8 peak
    trt = {c.engine: c for c in profiles.load_device("h200").serving_engines}["trtllm"]
    top = 1.0 / trt.fp8_gemm_efficiency_max
    assert top > 1.2  # TensorRT-LLM's FP8 curve on H200 tops out near 0.81 of the peak
    assert dataclasses.replace(trt, moe_blockfp8_efficiency=top).moe_blockfp8_efficiency == top
    with pytest.raises(SpecError, match="moe_blockfp8_efficiency"):
        dataclasses.replace(trt, moe_blockfp8_efficiency=top * 1.01)


@pytest.mark.parametrize("device", ["h100-sxm", "h200"])
def test_hopper_block_constants_off_their_bounds(device):
    """vLLM's default-config efficiency (bound 1) and TensorRT-LLM's block efficiency (bound: the FP8 peak) come off
    their bounds; vLLM's per-tile k_0 is fitted alike on both devices, TensorRT-LLM runs without it (SGLang's, its
    FP8 constants' own: test_serving_moe_sglang_tile.py)."""
    cals = {c.engine: c for c in profiles.load_device(device).serving_engines}
    vllm, trt = cals["vllm"], cals["trtllm"]
    assert 0.05 < vllm.moe_blockfp8_default_efficiency < 0.99
    assert 300.0 < vllm.moe_blockfp8_k_overhead < 1500.0
    assert trt.moe_blockfp8_k_overhead == 0.0
    assert 0.5 < trt.moe_blockfp8_efficiency < 0.99 / trt.fp8_gemm_efficiency_max


def test_b200_has_no_block_tile_overhead():
    assert all(c.moe_blockfp8_k_overhead == 0.0 for c in profiles.load_device("b200").serving_engines)
