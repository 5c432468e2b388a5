"""SGLang's and vLLM's B200 NVFP4 GEMM kernels, checked by hand: FlashInfer 0.6.12's untuned CuTe-DSL tactic rule
(costmodels/serving_gemm_sm100.cutedsl_fp4_ctas), its CTAs' MMA time or traffic through the SM in waves
(serving_gemm.cutedsl_fp4_s), FlashInfer's TMA quantise kernel's few-CTA bound (serving_gemm.fp4_quant_s), the
L2-resident quantise input of vLLM's one-layer table (fp4_quant_warm_l2), and the selectors the fit writes per
engine."""

import dataclasses
import math
import sys
from pathlib import Path

import pytest
from kernel_constants import kernel_constants

import profiles
from costmodels.errors import SpecError
from costmodels.serving_gemm import FP4_WEIGHT_BYTES, cutedsl_fp4_s, fp4_quant_s, gemm_fp4_s
from costmodels.serving_gemm_sm100 import CuteDslCtas, cutedsl_fp4_ctas
from costmodels.serving_kernels import EngineKernels, engine_calibration

B200_FP4 = 9000e12
B200_HBM = 8.0e12


def _score(rows: int, cols: int, tile: tuple[int, int], small_k: float = 1.0) -> float:
    """The rule's score, written out: rows x CTAs x column fill x rate / (tile rows x waves x 148)."""
    tm, tn = tile
    n_tiles = math.ceil(cols / tn)
    ctas = math.ceil(rows / tm) * n_tiles
    rate = math.sqrt(tm * tn / 65536) * (min(tile) / max(tile)) ** 0.25 * (small_k if tm * tn > 16384 else 1.0)
    return rows * ctas * cols / (n_tiles * tn) * rate / (tm * math.ceil(ctas / 148) * 148)


def test_one_token_runs_128_x_64_tiles_clustered_along_n():
    """m 1 (not 8-aligned: no swap), n k 4096: 128 x 64 scores 64 x 0.297 / (128 x 148) = 1.00e-3, ahead of 128 x 128
    (0.85e-3); one tile tall, 64 column tiles: clusters of 4 along n, 64 CTAs; the CTA loads 1 row of A, 64 of B."""
    assert _score(1, 4096, (128, 64)) == pytest.approx(64 * math.sqrt(1 / 8) * 0.5**0.25 / (128 * 148))
    assert _score(1, 4096, (128, 64)) > _score(1, 4096, (128, 128)) > _score(1, 4096, (128, 192))
    assert cutedsl_fp4_ctas(1, 4096, 4096, 148) == CuteDslCtas(128, 64, 1, 64, 64, 64)


def test_aligned_m_8_swaps_a_and_b():
    """m 8 (bucket 8, 8-aligned, n > 8): A and B swap, the kernel's rows are n: 32 CTAs of 128 x 64 (8 of its 64
    columns within the problem), no cluster (the problem is taller than a tile); m 9 (not aligned) does not swap."""
    assert _score(4096, 8, (128, 64)) > _score(4096, 8, (128, 128)) > _score(4096, 8, (256, 64))
    assert cutedsl_fp4_ctas(8, 4096, 4096, 148) == CuteDslCtas(128, 64, 128, 8, 8, 32)
    assert cutedsl_fp4_ctas(9, 4096, 4096, 148) == CuteDslCtas(128, 64, 9, 64, 64, 64)
    assert cutedsl_fp4_ctas(24, 4096, 4096, 148).ctas == 32  # bucket 16, aligned: swapped too


def test_large_m_picks_the_widest_tile_and_short_k_halves_it():
    """m n k 4096: 128 x 256 (512 CTAs, 4 waves: 16.46) edges 128 x 192 (16.34) and 128 x 128 (15.81); at k 1024
    tiles above 128 x 128 score half, and 128 x 128 wins; m 5000 takes the 4096 bucket's tactic."""
    big = {t: _score(4096, 4096, t) for t in ((128, 256), (128, 192), (128, 128), (256, 256))}
    assert max(big, key=big.get) == (128, 256) and big[(128, 256)] == pytest.approx(16.456, abs=1e-3)
    assert cutedsl_fp4_ctas(4096, 4096, 4096, 148) == CuteDslCtas(128, 256, 128, 256, 256, 512)
    assert _score(4096, 4096, (128, 128), 0.5) > _score(4096, 4096, (128, 256), 0.5)
    assert cutedsl_fp4_ctas(4096, 4096, 1024, 148) == CuteDslCtas(128, 128, 128, 128, 128, 1024)
    assert cutedsl_fp4_ctas(5000, 4096, 4096, 148) == CuteDslCtas(128, 256, 128, 256, 256, 640)


def _b200(**over: float) -> tuple:
    dev = profiles.load_device("b200")
    k = kernel_constants(gemm_sms=148.0, fp4_gemm_efficiency_max=0.5, fp4_gemm_half_flops=0.0, fp4_wave_weight=1.0,
                         fp4_hbm_efficiency=1.0, fp4_quant_s=0.0, fp4_quant_bytes=2.5625, **over)
    return EngineKernels(dev, k).device, k


def test_cta_tiles_run_their_mmas_or_their_traffic_in_whole_waves():
    """m n k 4096: 512 CTAs of 128 x 256 on 148 SMs, 4 whole waves (ω 1); one tile's MMAs 2·128·256·4096 FLOPs at
    1/148 of the rate; with 1e11 B/s through the SM its traffic, 0.5625·4096·(128 + 256) + 2·128·256 bytes, is longer
    (9.50 µs against 8.83) and sets the time."""
    _, k = _b200(fp4_cutedsl_tiles=1.0)
    peak = B200_FP4 * 0.5
    mma = 2.0 * 128 * 256 * 4096 * 148 / peak
    assert cutedsl_fp4_s(k, peak, 4096, 4096, 4096) == pytest.approx(4 * mma)
    fed = dataclasses.replace(k, fp4_sm_bytes_per_s=1e11)
    traffic = FP4_WEIGHT_BYTES * 4096 * (128 + 256) + 2.0 * 128 * 256
    assert traffic / 1e11 > mma
    assert cutedsl_fp4_s(fed, peak, 4096, 4096, 4096) == pytest.approx(4 * traffic / 1e11)


def test_tma_quantise_kernel_bounds_few_ctas():
    """m 1024, k 4096: 64 CTAs of 16 rows, each reading 16·4096·2 bytes at 2e10 B/s (6.55 µs) against one pass of
    2.5625 bytes per element through HBM (1.58 µs at 8 TB/s x 0.85); m 1023 and k 768 run the row kernel (one pass);
    m 8192: 512 tiles on 296 CTAs, 2 each."""
    dev, k = _b200(fp4_quant_tma=1.0, fp4_quant_cta_bytes_per_s=2e10)
    hbm = dev.hbm_bytes_per_s * dev.calibration.hbm_efficiency
    assert fp4_quant_s(dev, k, 1024, 4096) == pytest.approx(16 * 4096 * 2.0 / 2e10)
    assert fp4_quant_s(dev, k, 1023, 4096) == pytest.approx(2.5625 * 1023 * 4096 / hbm)
    assert fp4_quant_s(dev, k, 2048, 768) == pytest.approx(2.5625 * 2048 * 768 / hbm)
    assert fp4_quant_s(dev, k, 8192, 4096) == pytest.approx(max(2 * 16 * 4096 * 2.0 / 2e10, 2.5625 * 8192 * 4096 / hbm))
    off = dataclasses.replace(k, fp4_quant_tma=0.0)
    assert fp4_quant_s(dev, off, 1024, 4096) == pytest.approx(2.5625 * 1024 * 4096 / hbm)


def test_warm_quantise_input_is_read_from_l2():
    """fp4_quant_warm_l2 with a warm call: m 1024, k 4096 reads 2 bytes per element at the L2 rate (1e13 B/s:
    0.84 µs) and writes the other 0.5625 through HBM; a cold call, or an engine without the selector, one pass;
    the selector needs an L2 rate."""
    dev, k = _b200(fp4_quant_warm_l2=1.0, kv_l2_bytes_per_s=1e13)
    hbm = dev.hbm_bytes_per_s * dev.calibration.hbm_efficiency
    warm = 2.0 * 1024 * 4096 / 1e13 + 0.5625 * 1024 * 4096 / hbm
    assert fp4_quant_s(dev, k, 1024, 4096, warm_l2=True) == pytest.approx(warm)
    assert fp4_quant_s(dev, k, 1024, 4096) == pytest.approx(2.5625 * 1024 * 4096 / hbm)
    off = dataclasses.replace(k, fp4_quant_warm_l2=0.0)
    assert fp4_quant_s(dev, off, 1024, 4096, warm_l2=True) == pytest.approx(2.5625 * 1024 * 4096 / hbm)
    with pytest.raises(SpecError, match="fp4_quant_warm_l2"):
        dataclasses.replace(engine_calibration(profiles.load_device("b200"), "trtllm"), fp4_quant_warm_l2=1.0,
                            kv_l2_bytes_per_s=0.0)


def test_fit_predictor_warms_the_input_where_the_layer_fits_l2():
    """vLLM's B200 rows: m n k 4096 (input, output 33.6 MB each, FP4 input and weights 9.4: 86 MB < 126 MiB) read the
    quantise input from L2, m 16384, k 8192 (256 MiB of input alone) from HBM; serving (serving_kernels.gemm_s)
    never does."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    ops = pytest.importorskip("serve_engine_ops")
    from costmodels.serving_kernels import gemm_s
    b200 = profiles.load_device("b200")
    ek = EngineKernels(b200, engine_calibration(b200, "vllm"))
    for m, n, kk, warm in ((4096, 4096, 4096, True), (16384, 4096, 8192, False)):
        got = ops.predict_gemm(ek, (m, n, kk, "fp4", 0.0))
        assert got == pytest.approx(gemm_fp4_s(ek.device, ek.k, m, n, kk, warm_l2=warm))
        assert (got < gemm_s(ek, m, n, kk, "fp4")) == warm


def test_gemm_fp4_adds_the_quantise_kernel_to_the_cutedsl_tiles():
    dev, k = _b200(fp4_cutedsl_tiles=1.0, fp4_quant_tma=1.0, fp4_quant_cta_bytes_per_s=2e10)
    m, n, kk = 4096, 4096, 4096
    memory = 4e-6 + (FP4_WEIGHT_BYTES * (m * kk + kk * n) + 2.0 * m * n) / dev.hbm_bytes_per_s
    compute = cutedsl_fp4_s(k, B200_FP4 * 0.5, m, n, kk)
    assert gemm_fp4_s(dev, k, m, n, kk) == pytest.approx(max(compute, memory) + fp4_quant_s(dev, k, m, kk))


def test_b200_profile_sets_each_engines_nvfp4_kernels():
    """SGLang's NVFP4 rows run both FlashInfer kernels, vLLM's the CuTe-DSL GEMM after its own quantise kernel, whose
    input its one-layer table finds in L2 (GEMM_SM100); TensorRT-LLM's keep all off, with no rate; a TMA quantise
    kernel needs a rate."""
    b200 = profiles.load_device("b200")
    sglang = engine_calibration(b200, "sglang")
    assert (sglang.fp4_cutedsl_tiles, sglang.fp4_quant_tma, sglang.fp4_quant_warm_l2) == (1.0, 1.0, 0.0)
    assert sglang.fp4_sm_bytes_per_s > 0 and sglang.fp4_quant_cta_bytes_per_s > 0
    vllm = engine_calibration(b200, "vllm")
    assert (vllm.fp4_cutedsl_tiles, vllm.fp4_quant_tma, vllm.fp4_quant_warm_l2) == (1.0, 0.0, 1.0)
    assert vllm.fp4_sm_bytes_per_s > 0 and vllm.fp4_quant_cta_bytes_per_s == 0.0 and vllm.kv_l2_bytes_per_s > 0
    trtllm = engine_calibration(b200, "trtllm")
    assert (trtllm.fp4_cutedsl_tiles, trtllm.fp4_quant_tma, trtllm.fp4_quant_warm_l2, trtllm.fp4_sm_bytes_per_s,
            trtllm.fp4_quant_cta_bytes_per_s) == (0.0, 0.0, 0.0, 0.0, 0.0)
    with pytest.raises(SpecError, match="fp4_quant_cta_bytes_per_s"):
        dataclasses.replace(engine_calibration(b200, "vllm"), fp4_quant_tma=1.0)
    with pytest.raises(SpecError, match="fp4_cutedsl_tiles"):
        dataclasses.replace(sglang, fp4_cutedsl_tiles=0.5)


def test_ablation_ends_on_the_profiles_rule():
    """benchmarks/fp4_cutedsl_tiles.py's last variant of each engine is what the fit writes (GEMM_SM100): SGLang's
    with both rates fitted, vLLM's with the L2 input and the TMA rate unfitted; vLLM's variants never switch on
    FlashInfer's quantise kernel, which its collector does not run, nor SGLang's the one-layer L2 input."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    tiles = pytest.importorskip("fp4_cutedsl_tiles")
    ops = pytest.importorskip("serve_engine_ops")
    for engine, rates in (("sglang", tiles.RATES), ("vllm", tiles.RATES[:1])):
        rule = ops.GEMM_SM100[(engine, "b200")]
        _, selectors, fitted = tiles.ENGINES[engine][-1]
        assert all(rule.get(n, 0.0) == v for n, v in selectors.items()) and fitted == rates
    assert all(not s["fp4_quant_tma"] for _, s, _ in tiles.ENGINES["vllm"])
    assert all(not s["fp4_quant_warm_l2"] for _, s, _ in tiles.ENGINES["sglang"])
