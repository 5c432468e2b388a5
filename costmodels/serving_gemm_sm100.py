"""Dense GEMM tiles of the engines' Blackwell (SM100) kernels: which output tiles a GEMM runs and on how many work
units they fill waves, for the GEMM formulas of costmodels/serving_gemm.py (one formula per dtype for both
generations; this module only supplies the SM100 tile dispatch that the Hopper tables there do not describe).

Blackwell's tensor cores (tcgen05 MMA, accumulators in tensor memory) can run one MMA over a pair of SMs (a 2-CTA
cluster): an M-mode of 128 or 256 rows split between the two SMs of the pair, each CTA streaming half of the
operand tiles. B200 has 148 SMs (74 pairs). Where an engine's SM100 kernel is known from its source, a 0/1 kernel
constant selects its tiles (set per engine and device in the device profile by benchmarks/serve_engine_fit.py from
benchmarks/serve_engine_ops.GEMM_SM100; never fitted):

  fp8_sm100_tiles = 1: vLLM 0.24.0's per-tensor FP8 linear layer (CutlassFP8ScaledMMLinearKernel, the table's
      kernel_source) runs cutlass_scaled_mm, whose SM100 dispatch picks the tile by m
      (csrc/quantization/w8a8/cutlass/c3x/scaled_mm_sm100_fp8_dispatch.cuh, cutlass_gemm_sm100_fp8_dispatch):
        m <= 16:   MMA 128 (n) x 32 (m) x 128, operands swapped, cluster 4 x 1 (along n)
        m <= 64:   MMA 128 (n) x 64 (m) x 256, swapped, cluster 4 x 1; m = 64 with k < 4096: 64 x 64 x 128, no swap,
                   cluster 1 x 1 x 1
        m <= 256:  MMA 128 x 128 x 128, cluster 2 x 1 x 1
        m > 256:   MMA 256 x 128 x 128, cluster 2 x 2 x 1
      with KernelScheduleAuto: an even cluster M-mode runs the MMA on a CTA pair, each CTA holding half of its
      M-mode (64 of 128, 128 of 256) and one work unit per SM; T = CTAs, rounded up to whole clusters, on S SMs in
      waves (serving_gemm.wave_factor). The Hopper terms the SM90 kernels needed are absent (GEMM_SM100 sets them
      to 0: each ran to its lower bound on B200): no per-tile prologue/epilogue k_0 (the epilogue of one tile runs
      from tensor memory under the next tile's main loop), no out-of-bounds row cost π and no separate large-GEMM
      kernel (the 256 x 128 MMA serves every m > 256).
  fp4_pair_tiles = 1: TensorRT-LLM 1.3's NVFP4 linear layer runs its CUTLASS SM100 FP4 GEMM on autotuned tactics
      (cpp/tensorrt_llm/kernels/cutlass_kernels/fp4_gemm/fp4_gemm_template.h, dispatchNVFP4xNVFP4GemmCTAShapeSm10x:
      CTA tiles 128 x 64/128/256 with 1- or 2-CTA clusters, "M-mode size should be 128 or 256 for 2 CTA cluster MMA");
      its tables step as whole waves of the widest of them: 128 x 256 CTA tiles paired into 256 x 256 MMA tiles
      (FP4_PAIR_TILE) over the S / 2 SM pairs (e.g. n 4096: 1280, 2305 and 3584 rows each add a wave of 16 pairs'
      tiles; the 128 x 128 one-SM tiles of serving_gemm.FP4_TILE ran their wave weight to its bound 1). vLLM's and
      SGLang's NVFP4 rows run FlashInfer's CuTe-DSL kernel (kernel_source FlashInferCuteDslNvFp4LinearKernel,
      sglang_flashinfer_cutedsl_nvfp4): fp4_pair_tiles 0 (both on that kernel's rule).
  fp4_cutedsl_tiles = 1: SGLang 0.5.14's and vLLM 0.24.0's NVFP4 rows (aiconfigurator collector/sglang/
      collect_gemm.py: mm_fp4 backend "cute-dsl" on SM100, as initialize_fp4_gemm_config picks; collector/vllm/
      collect_gemm.py: the layer's FlashInferCuteDslNvFp4LinearKernel; both called outside FlashInfer's autotune(), no
      bundled config for it: AutoTuner.search_cache returns the fallback tactic -1) run FlashInfer 0.6.12's (the
      version both pin) CuTe-DSL persistent kernel on _select_sm100_mm_fp4_cute_dsl_tactic's pick (flashinfer/gemm/
      kernels/utils.py, _compute_tactic_for_m; cutedsl_fp4_ctas): m takes the largest power of two <= m (at most
      4096); A and B swap where that bucket is 8 or 16, m is 8-aligned and n > m (or n is not 8-aligned); of eight MMA
      tiles, 128 or 256 (a CTA pair) rows x 64-256 columns, the highest score rows·CTAs·fill_n·rate / (tile rows ·
      waves · S), rate = sqrt(area / 256²)·(short side / long side)^¼, halved for tiles above 128 x 128 at k <= 1024
      (0.8 at k <= 2048); a problem one tile tall clusters up to 4 CTAs along n. With each CTA's traffic through its
      SM (serving_gemm.cutedsl_fp4_s) it fits both engines' tables better than fixed 128 x 128 tiles, held-aside
      SGLang 9.3/24.6 -> 8.3/20.2 %, vLLM 6.1/16.1 -> 6.0/14.1 % (benchmarks/fp4_cutedsl_tiles.py; with vLLM's
      quantise input read from L2, serving_gemm.fp4_quant_s, 6.1/14.0 %)
  bf16_sm100_tile = 1: the BF16 GEMMs of all three engines (torch's F.linear, cuBLASLt, which picks its kernel per
      shape by heuristics not in any engine's source) counted in waves of 128 x 256 tiles on the S SMs (BF16_TILE: the
      largest one-SM tcgen05 MMA tile), where Hopper's model counts 64 x 256 (serving_gemm.BF16_TILE): of 64 x 256,
      128 x 128, 128 x 192 and 128 x 256 per SM and 256 x 128, 256 x 256 per SM pair, the one the B200 tables of all
      three engines fit best (held-aside p90 vLLM 15.1 -> 13.5 %, SGLang 19.6 -> 19.0 %, TensorRT-LLM 16.4 -> 15.9 %
      from 64 x 256; the pair tiles fit worst, 16.2-20.8 %). An empirical choice like Hopper's, not read from source.

Not modelled: vLLM's B200 (and GB200) per-tensor FP8 rows at m = 1 run ~13 µs longer than at m = 2 whatever n and k
(GB200: 10-18 µs on all 483 (n, k) of the table; B200: 8-18 µs on 415, none on 68 scattered ones, which GB200 has it
on: not a kernel chosen by shape; Hopper: no step). Its collector (aiconfigurator collector/vllm/collect_gemm.py, vLLM
0.24.0) builds Fp8Config with activation_scheme "dynamic", so the layer quantises per token (fp8.py:
kFp8DynamicTokenSym where CUTLASS FP8 is supported) and times it with the GEMM in a CUDA graph. The only m == 1 branch
on that path in vLLM 0.24.0's source is the scaled epilogue reading a one-element token scale as a scalar
(csrc/cutlass_extensions/epilogue/scaled_mm_epilogues_c3x.hpp, args_from_tensor: numel() != 1), shared with SM90, and
the SM100 dispatch has none (m <= 16: the M16 swap-AB tile for m = 1 and 2 alike): no mechanism read from source, so
no term (leaving out the 11 held-aside m = 1 points, p90 21.1 -> 19.7 %).
Not a term of any shape either: the scatter of vLLM's B200 per-tensor FP8 table, which sets its held-aside p90
(benchmarks/serve_fp8_scatter.py, results/serve_fp8_scatter.md). 2173 of 34114 points run > 15 % slower than the
next larger n (H100 44, H200 65, GB200's run of the same SM100 kernels and collector 49). Where the dispatch above
runs one config and one CTA row for every m (2-16) and the quantise program is one kernel for every m > 1, 620 of
7245 points are > 15 % above their (n, k) group's median, no group more than 5 of 15 (a kernel chosen by shape makes
whole groups slow), the next m slow too 11 % of the time against 8.6 %; GB200 6 points. No tile feature of the shape
selects them (m bucket, one wave or more on 148 SMs, odd or even CTAs along n, cluster padding: 4.9-9.2 % each).
Their excess over the group median is, at every k from 768 to 16384, 2·L·(⌈k/256⌉ − ⌈k/2048⌉) with L = 0.36 µs
within 4.7 % (a cost linear in k misses by up to 36 %, 128- or 512-element chunks by 21-22 %): the per-token
quantise program (serving_gemm.token_quant_s) run with 256-element chunks instead of 2048, the chunk Inductor
compiles for a k hint of 256 and then keeps for every later shape (serving_gemm, token quantise); which chunk a point
ran with depends on the collector process that took it, not on its shape. The model fitted on B200 predicts its
held-aside points at 4.8/20.7 % against B200's times and 6.2/12.6 % against GB200's times of the same shapes; 91 %
of the points it under-predicts by > 20 % run > 15 % slower on B200 than on GB200 (median point: 1.01x).
vLLM's NVFP4 rows do time the input's quantise kernel (kernels/linear/nvfp4/flashinfer.py,
FlashInferCuteDslNvFp4LinearKernel.apply_weights: _custom_ops.scaled_fp4_quant -> torch.ops._C.scaled_fp4_quant, a
kernel of its own, then the CuTe-DSL GEMM), so its fixed time fp4_quant_s is not 0 by source; on those rows it is not
separable from the GEMM's fp4_gemm_half_flops (held at vLLM's fitted FP8 quantise kernel time, 2.16 µs, the refit
moves F_half 31.8 -> 22.5 GFLOP and η 0.61 -> 0.69 at held-aside 6.0/16.0 -> 6.1/16.1 %): fitted, it sits at its
bound.
"""

import functools
import math
from typing import NamedTuple

from costmodels.serving_constants import KernelConstants

VLLM_FP8_TILES: tuple[tuple[float, int, int, int, int], ...] = (
    # (largest m, CTA rows (m), CTA columns (n), CTAs per cluster along m, along n) of vLLM's SM100 cutlass_scaled_mm
    (16, 32, 64, 1, 4),  # M16_swap_ab: 128 (n) x 32 (m) on a CTA pair (64 n each), cluster 4 along n
    (64, 64, 64, 1, 4),  # M64_swap_ab: 128 (n) x 64 (m) on a CTA pair, cluster 4 along n
    (256, 64, 128, 2, 1),  # M256: 128 x 128 on a CTA pair (64 rows each), cluster 2 along m
    (math.inf, 128, 128, 2, 2),  # default: 256 x 128 on a CTA pair (128 rows each), cluster 2 x 2
)
VLLM_FP8_M64_SMALL_K = (64, 4096, 64, 64)
"""(m, k below which, CTA rows, CTA columns): vLLM's M64 config without swap (one CTA, cluster 1 x 1 x 1)"""
BF16_TILE = (128, 256)
"""(rows, columns) of the output tiles whose waves the BF16 GEMM model counts on Blackwell (bf16_sm100_tile 1)"""
FP4_PAIR_TILE = (256, 256)
"""(rows, columns) of TensorRT-LLM's NVFP4 MMA tile on a CTA pair (two 128 x 256 CTA tiles)"""


def vllm_fp8_tiles(m: float, n: float, kk: float) -> tuple[float, float, float]:
    """(padded rows, padded columns, CTAs) of vLLM's SM100 FP8 GEMM of m rows, n columns and depth kk: the CTA tile
    of m's bucket, its CTA counts along m and n rounded up to whole clusters."""
    small_m, small_k, small_rows, small_cols = VLLM_FP8_M64_SMALL_K
    for largest, rows, cols, cluster_m, cluster_n in VLLM_FP8_TILES:
        if m <= largest:
            if m == small_m and kk < small_k:
                rows, cols, cluster_m, cluster_n = small_rows, small_cols, 1, 1
            m_ctas = math.ceil(math.ceil(m / rows) / cluster_m) * cluster_m
            n_ctas = math.ceil(math.ceil(n / cols) / cluster_n) * cluster_n
            return m_ctas * rows, n_ctas * cols, m_ctas * n_ctas
    raise AssertionError("VLLM_FP8_TILES ends with an unbounded bucket")


def fp8_tiles(k: KernelConstants, m: float, n: float, kk: float) -> tuple[float, float, float] | None:
    """The SM100 tiles of the engine's FP8 GEMM (padded rows, padded columns, work units), or None where it runs
    serving_gemm's Hopper tiles (fp8_sm100_tiles 0)."""
    return vllm_fp8_tiles(m, n, kk) if k.fp8_sm100_tiles else None


def bf16_tile(k: KernelConstants) -> tuple[int, int] | None:
    """The output tile of the engine's BF16 GEMM waves on SM100 (bf16_sm100_tile 1), else None (Hopper's)."""
    return BF16_TILE if k.bf16_sm100_tile else None


def fp4_tiles(k: KernelConstants) -> tuple[tuple[int, int], float] | None:
    """(MMA tile, work units it runs on in waves) of the engine's NVFP4 GEMM on SM100: TensorRT-LLM's 2-CTA tile
    over the SM pairs (fp4_pair_tiles 1), else None (serving_gemm.FP4_TILE on every SM)."""
    return (FP4_PAIR_TILE, k.gemm_sms / 2.0) if k.fp4_pair_tiles else None


CUTEDSL_FP4_TILES = ((128, 64), (256, 64), (128, 128), (256, 128), (128, 192), (256, 192), (128, 256), (256, 256))
"""MMA tiles (rows, columns; 256 rows: a CTA pair) FlashInfer 0.6.12's untuned CuTe-DSL NVFP4 GEMM scores, in its
order (flashinfer/gemm/kernels/utils.py, _SM100_MMA_TILER_MN_CANDIDATES: the first of equal scores wins)"""
CUTEDSL_FP4_LARGEST_BUCKET = 4096
"""largest m bucket of the rule (_M_BUCKETS, powers of two 1-4096; an m takes the largest power of two <= m)"""


@functools.cache
def _cutedsl_fp4_bucket(rep_m: int, n: int, kk: int, sms: int, aligned: bool) -> tuple[tuple[int, int], int, bool]:
    """FlashInfer 0.6.12's _compute_tactic_for_m: (MMA tile, CTAs per cluster along the kernel's n, swap A/B)."""
    swap = aligned and (8 <= rep_m <= 16 and n > rep_m or n % 8 != 0)  # aligned m 8, 16, 24; unaligned n
    rows, cols = (n, rep_m) if swap else (rep_m, n)
    small_k = 0.5 if kk <= 1024 else 0.8 if kk <= 2048 else 1.0  # tiles larger than 128 x 128 at short k

    def score(tile: tuple[int, int]) -> float:
        tm, tn = tile
        n_tiles, ctas = math.ceil(cols / tn), math.ceil(rows / tm) * math.ceil(cols / tn)
        balance = math.sqrt(math.sqrt(min(tile) / max(tile)))  # (short side / long side)^¼
        rate = math.sqrt(tm * tn / 256**2) * balance * (small_k if tm * tn > 128**2 else 1.0)
        return rows * ctas * cols / (n_tiles * tn) * rate / (tm * math.ceil(ctas / sms) * sms)

    tile = max(CUTEDSL_FP4_TILES, key=score)
    n_tiles = math.ceil(cols / tile[1])  # a problem one tile tall clusters up to 4 CTAs along n
    cluster_n = 1 if rows > tile[0] else 4 if n_tiles % 4 == 0 or n_tiles > 10 else 2 if n_tiles % 2 == 0 else 1
    return tile, cluster_n, swap


class CuteDslCtas(NamedTuple):
    """The CTAs of a CuTe-DSL NVFP4 GEMM (cutedsl_fp4_ctas)."""

    rows: float
    """rows of one CTA's MMA output tile (128 of a pair's 256)"""
    cols: float
    """its columns"""
    a_rows: float
    """rows of A one CTA loads, within the problem (TMA fills rows past its edge with zeros, reading nothing)"""
    b_cols: float
    """columns of B one CTA loads, within the problem (half of a pair's tile)"""
    out_cols: float
    """columns of its output tile within the problem"""
    ctas: float
    """CTAs, rounded up to whole clusters"""


def cutedsl_fp4_ctas(m: float, n: float, kk: float, sms: float) -> CuteDslCtas:
    """The CTAs FlashInfer 0.6.12's untuned CuTe-DSL NVFP4 GEMM runs for an (m x kk) @ (kk x n) GEMM on `sms` SMs, one
    CTA per SM, a 256-row tile on a CTA pair (each CTA holds 128 of its rows and loads half of B's columns); A and B
    swapped where the rule swaps them (the kernel's rows are then n)."""
    bucket = min(1 << (int(m).bit_length() - 1), CUTEDSL_FP4_LARGEST_BUCKET)
    (tm, tn), cluster_n, swap = _cutedsl_fp4_bucket(bucket, int(n), int(kk), int(sms), int(m) % 8 == 0)
    rows, cols = (n, m) if swap else (m, n)
    pair = 2 if tm == 256 else 1
    ctas = math.ceil(rows / tm) * pair * math.ceil(math.ceil(cols / tn) / cluster_n) * cluster_n
    return CuteDslCtas(tm / pair, tn, min(tm / pair, rows), min(tn / pair, cols), min(tn, cols), ctas)
