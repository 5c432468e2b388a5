"""Blackwell (SM100) GEMM tiles (costmodels/serving_gemm_sm100.py), checked by hand: vLLM's SM100 FP8 tile dispatch
by m bucket with its clusters, TensorRT-LLM's NVFP4 2-CTA tiles in waves over the SM pairs, selection by the 0/1
kernel constants the B200 profile sets, and the Hopper path untouched where they are 0."""

import dataclasses

import pytest
from kernel_constants import kernel_constants

import profiles
from costmodels.errors import SpecError
from costmodels.serving_gemm import FP4_TILE, fp8_tiles, gemm_bf16_s, gemm_fp4_s, gemm_fp8_s, wave_factor
from costmodels.serving_gemm_sm100 import BF16_TILE, FP4_PAIR_TILE, bf16_tile, fp4_tiles, vllm_fp8_tiles
from costmodels.serving_kernels import EngineKernels, engine_calibration

B200_FP8 = 4500e12
B200_FP4 = 9000e12


@pytest.mark.parametrize(("m", "n", "kk", "expected"), [
    (1, 4096, 4096, (32, 4096, 64)),    # m <= 16: 32 x 64 per CTA (swapped 128 x 32 MMA on a pair), 64 CTAs
    (16, 1100, 4096, (32, 1280, 20)),   # 18 column CTAs -> 20 (clusters of 4 along n)
    (64, 1100, 2048, (64, 1152, 18)),   # m = 64, k < 4096: 64 x 64 without swap, no cluster
    (64, 1100, 8192, (64, 1280, 20)),   # m = 64, k >= 4096: swapped 128 x 64 MMA, clusters of 4 along n
    (65, 4096, 4096, (128, 4096, 64)),  # (64, 256]: 64 x 128 per CTA (128 x 128 on a pair), 2 along m
    (257, 4096, 4096, (512, 4096, 128)),  # > 256: 128 x 128 per CTA, 3 row CTAs -> 4 (2 x 2 clusters)
    (300, 1100, 4096, (512, 1280, 40)),   # 9 column CTAs -> 10
])
def test_vllm_sm100_fp8_tiles_follow_its_dispatch(m, n, kk, expected):
    assert vllm_fp8_tiles(m, n, kk) == expected


def _b200(**over: float) -> tuple:
    dev = profiles.load_device("b200")
    k = kernel_constants(gemm_sms=148.0, fp8_wave_weight=1.0, fp8_hbm_efficiency=1.0, **over)
    return EngineKernels(dev, k).device, k


def test_fp8_selector_puts_vllm_sm100_tiles_in_the_fp8_formula():
    """m 129, n 4096, k 32768 (compute-bound): vLLM's SM100 kernel runs 64-row CTAs, 3 -> 4 along m (clusters of two)
    x 32 along n = 128 CTAs on 148 SMs, one wave at w = 148/128 (ω 1); the Hopper tiles (128 x 128, 2 row tiles)
    pad the same 256 rows but as 64 tiles, w = 148/64: the selector alone halves the predicted time's wave factor."""
    dev, k = _b200(fp8_sm100_tiles=1.0)
    m, n, kk = 129, 4096, 32768
    assert vllm_fp8_tiles(m, n, kk) == (256, 4096, 128) and fp8_tiles(m, n, kk) == (256, 4096, 64)
    work = 2.0 * 256 * 4096 * kk
    memory = 4e-6 + (m * kk + kk * n + 2.0 * m * n) / 8.0e12
    assert gemm_fp8_s(dev, k, m, n, kk) == pytest.approx((work * 148 / 128 + 2e9) / (B200_FP8 * 0.7))
    hopper = dataclasses.replace(k, fp8_sm100_tiles=0.0)
    assert gemm_fp8_s(dev, hopper, m, n, kk) == pytest.approx((work * 148 / 64 + 2e9) / (B200_FP8 * 0.7))
    assert memory < gemm_fp8_s(dev, k, m, n, kk)


def test_fp8_selector_off_is_the_hopper_path():
    dev, k = _b200()
    m, n, kk = 1025, 5120, 4096
    rows, cols, tiles = fp8_tiles(m, n, kk)  # Hopper: 128 x 128 tiles, 9 -> 10 row tiles, 40 column tiles
    assert (rows, cols, tiles) == (1280, 5120, 400)
    compute = (2.0 * rows * cols * kk * wave_factor(tiles, 148, 1.0) + 2e9) / (B200_FP8 * 0.7)
    memory = 4e-6 + (m * kk + kk * n + 2.0 * m * n) / 8.0e12
    assert gemm_fp8_s(dev, k, m, n, kk) == pytest.approx(max(compute, memory))


def test_trtllm_fp4_pair_tiles_waves_by_hand():
    """n 4096: 16 column tiles of 256. m 1024: 4 x 16 = 64 pair tiles on 74 pairs, one wave (w = 74/64); m 1280:
    5 x 16 = 80 tiles, two waves (w = 148/80): the step the measured table has at 1280 rows, where 128 x 128 tiles
    (8 x 32 = 256 -> 10 x 32 = 320 on 148 SMs, 2 -> 3 waves) step at 1025 as well."""
    dev, k = _b200(fp4_pair_tiles=1.0, fp4_gemm_efficiency_max=0.5, fp4_wave_weight=1.0, fp4_hbm_efficiency=1.0,
                   fp4_quant_s=0.0, fp4_quant_bytes=0.0)
    assert fp4_tiles(k) == (FP4_PAIR_TILE, 74.0)
    n, kk = 4096, 16384
    for m, work in ((1024, 2.0 * 1024 * 4096 * kk * 74 / 64), (1280, 2.0 * 1280 * 4096 * kk * 148 / 80)):
        assert gemm_fp4_s(dev, k, m, n, kk) == pytest.approx((work + 0.0) / (B200_FP4 * 0.5))
    one_sm = dataclasses.replace(k, fp4_pair_tiles=0.0)
    assert fp4_tiles(one_sm) is None and FP4_TILE == (128, 128)
    work = 2.0 * 1280 * 4096 * kk * 3 * 148 / 320  # 320 tiles of 128 x 128 on 148 SMs: 3 waves
    assert gemm_fp4_s(dev, one_sm, 1280, n, kk) == pytest.approx(work / (B200_FP4 * 0.5))


def test_b200_profile_selects_the_engines_sm100_tiles():
    """The selectors read from the engines' source, as the fit writes them into profiles/hardware/b200.yaml; Hopper
    profiles never set them (their FP8 and FP4 paths are the Hopper ones)."""
    b200 = profiles.load_device("b200")
    want = {"vllm": (1.0, 0.0), "trtllm": (0.0, 1.0), "sglang": (0.0, 0.0)}
    for engine, (fp8, fp4) in want.items():
        cal = engine_calibration(b200, engine)
        assert (cal.fp8_sm100_tiles, cal.fp4_pair_tiles, cal.bf16_sm100_tile) == (fp8, fp4, 1.0)
    vllm, trtllm = engine_calibration(b200, "vllm"), engine_calibration(b200, "trtllm")
    assert vllm.fp8_k_overhead == 0.0 and vllm.fp8_oob_penalty == 0.0 and vllm.fp8_large_efficiency_max == 0.0
    assert trtllm.fp8_k_overhead == 0.0 and trtllm.fp8_oob_penalty == 0.0 and trtllm.fp8_wave_weight == 0.0  # cuBLASLt
    for name in ("h100-sxm", "h200"):
        for cal in profiles.load_device(name).serving_engines:
            assert cal.fp8_sm100_tiles == 0.0 and cal.fp4_pair_tiles == 0.0 and cal.bf16_sm100_tile == 0.0
            assert fp4_tiles(cal) is None


def test_selector_must_be_zero_or_one():
    cal = engine_calibration(profiles.load_device("b200"), "vllm")
    with pytest.raises(SpecError, match="fp8_sm100_tiles"):
        dataclasses.replace(cal, fp8_sm100_tiles=0.5)
    with pytest.raises(SpecError, match="fp4_pair_tiles"):
        dataclasses.replace(cal, fp4_pair_tiles=2.0)
    assert dataclasses.replace(cal, fp4_pair_tiles=1.0).fp4_pair_tiles == 1.0


def test_bf16_sm100_tile_waves_by_hand():
    """m 1100, n 4096, k 4096 (compute-bound): 128 x 256 tiles, 9 x 16 = 144 on 148 SMs, one wave (w = 148/144 at
    ω 1) over 1152 padded rows; Hopper's 64 x 256 tiles: 18 x 16 = 288, two waves (w = 296/288)."""
    dev, k = _b200(bf16_sm100_tile=1.0, gemm_wave_weight=1.0)
    assert bf16_tile(k) == BF16_TILE == (128, 256)
    m, n, kk = 1100, 4096, 4096
    eff, half = 0.8, 1e9  # kernel_constants' BF16 curve
    sm100 = (2.0 * 1152 * 4096 * kk * 148 / 144 + half) / (2250e12 * eff)
    assert gemm_bf16_s(dev, k, m, n, kk) == pytest.approx(sm100)
    hopper = dataclasses.replace(k, bf16_sm100_tile=0.0)
    assert bf16_tile(hopper) is None
    assert gemm_bf16_s(dev, hopper, m, n, kk) == pytest.approx((2.0 * 1152 * 4096 * kk * 296 / 288 + half)
                                                               / (2250e12 * eff))
