"""GEMM and grouped-expert (MoE) GEMM kernel times of a serving engine on one GPU (seconds).

Arithmetic on the shape and the constants of one engine on one device (`KernelConstants`, fitted by
benchmarks/serve_engine_fit.py to measured per-op tables).

  BF16 GEMM (m x k) @ (k x n) (cuBLAS, torch's F.linear in vLLM and SGLang): the compute layer's curve
      (eff_max, half) on the FLOPs of whole BF16_TILE output tiles, T = ⌈m/64⌉·⌈n/256⌉ of them in waves over
      the S SMs:
      t = max((2·m_pad·n_pad·k·w(T) + half) / (P · e), t_floor + bytes / (BW · η_hbm))
      w(T) as for FP8 below with the BF16 weight ω_bf16; e = eff_max, or for m >= BF16_LARGE_M the large-GEMM
      efficiency where fitted (vLLM's and SGLang's F.linear runs measurably slower there, TensorRT-LLM's not)
      (ω_bf16 = 0, the legacy/modern constants: m padded to the compute layer's 128-row tiles, no waves)
  FP8 GEMM (CUTLASS SM90 kernels without split-k in vLLM and SGLang; TensorRT-LLM's fit finds ω ≈ 0, i.e. its
      kernels fill partial waves): the engine picks the output tile by m (FP8_TILES; small m swaps the operands so
      the weight's n fills the 64-wide tile side; vLLM on Blackwell: serving_gemm_sm100's SM100 tiles);
      T = ⌈m/t_m⌉·⌈n/t_n⌉ tiles (m tiles rounded up to whole clusters; m >= 8192 with k >= 6144: 256 x 128 tiles
      at their own e_max, LARGE_FP8_TILE) run on S SMs in waves:
      compute = 2·(m_pad + π·(m_pad − m))·n_pad·k·w(T)·(1 + k_0/k) / (P_fp8 · e_max) + F_half / (P_fp8 · e_max)
          w(T) = 1 + ω·(⌈T/S⌉·S/T − 1): the idle share of the last wave, weighted by ω (0: stream-k fills it,
          1: whole waves); k_0 = the per-tile prologue/epilogue in k-loop iterations' worth (0 for vLLM on Hopper,
          read from its source: Pingpong kernels, one warp group's epilogue under the other's main loop, two scalar
          scales; SGLang's load per-token and per-channel scale vectors in every tile's epilogue: fitted k_0 > 0);
          π: a padded (out-of-bounds, zero-filled) row of the last row tiles costs 1 + π real rows (vLLM's and
          SGLang's fixed-bucket CUTLASS kernels: one row more than a multiple of 256 costs far more than its added
          tiles, e.g. H200 vLLM n 51200, k 5120: 1024 -> 1025 rows 336 -> 618 µs where the tiles grow 1.25x; fitted
          π ≈ 0.5-1.4; 0 for TensorRT-LLM, read from its source: cuBLASLt picks its kernel per shape, and its
          tables run 1025 rows as fast as 1024)
      memory  = t_floor + bytes / min(BW · η_fp8, min(T, S) · B_cta): only T thread blocks stream the operands
          when the GEMM has fewer tiles than SMs, each at most B_cta
      t = (compute^p + memory^p)^(1/p) (loads and MMAs overlap imperfectly; p = 0: max) + m·t_g + quantisation of
      the input
      unless fused into the preceding kernel (costmodels/serving_fusions.py):
          t_q + m·t_row + max(λ·q·m·k / (BW · η_hbm), q·m·k / (m · B_row))  (q HBM bytes per element; t_row per
          row: per-token scales; λ < 1 where the BF16 input and FP8 output, 3·m·k bytes, fit in L2 (L): an input
          just written, or re-read by the benchmark, comes from L2; B_row: vLLM launches one thread block per row,
          so few rows cannot reach HBM bandwidth (vLLM m 1, k 51200: 6 µs, TensorRT-LLM's grid-stride kernel 1.5))
      the static-scale quantise kernel of a per-tensor FP8 checkpoint (its input_scale): TensorRT-LLM's GEMM table
      rows quantise dynamically instead (its collector loads no input_scale, so FP8QDQLinearMethod runs
      quantize_e4m3_per_tensor: an amax pass, then the quantise kernel), which its fit takes off with the measured
      compute_scale table (benchmarks/aic_quant_tables.py). The quantise kernel's constants are fitted to its own
      measured table (scale_matrix) where that times a kernel of the engine (TensorRT-LLM, vLLM; SGLang's times
      another: fitted inside its GEMM rows). t_g: vLLM's rows quantise per token in a kernel of their own (below),
      priced m·t_g (t_g = fp8_gemm_row_s + 2·⌈k/2048⌉·fp8_gemm_row_chunk_s: token_quant_s) on top of the static
      kernel's bytes; 0 for the other engines but TensorRT-LLM's small fitted t_g
  vLLM's per-token quantise kernel (token_quant_s): aiconfigurator's vLLM 0.24.0 GEMM collector (collector/vllm/
      collect_gemm.py at d5bad971c) builds Fp8Config(activation_scheme="dynamic") under a default VllmConfig(), so
      Fp8LinearMethod picks per-token dynamic scales (fp8.py: kFp8DynamicTokenSym where CUTLASS FP8 runs) and the
      linear layer quantises with QuantFP8 (ScaledMMLinearKernel.apply_weights). VllmConfig() is optimization level
      O2: compilation mode VLLM_COMPILE with the Inductor backend, so custom ops default to "none" (config/vllm.py;
      "+quant_fp8" is added only for block-scaled weights) and QuantFP8 runs forward_native (row amax, scale,
      multiply, clamp, cast) compiled by torch.compile(dynamic=True) (custom_op.py maybe_compile), not vLLM's CUDA
      dynamic_per_token_scaled_fp8_quant (which the compute_scale table times: 23 µs at m 32768, k 32 on H100, where
      the GEMM rows carry 216 µs). Inductor (torch/_inductor/runtime/triton_heuristics.py _reduction_configs, read
      in a recent PyTorch; vLLM 0.24.0 pins torch 2.11) gives an inner reduction one config: XBLOCK 1 row per program
      (2 where the row's hint is <= 2048) and R0_BLOCK = min(k, MAX_R0_BLOCK = 2048): one program per row loops
      ⌈k/2048⌉ times over it to find the amax, then again to quantise and store (2 passes). Rows run as independent
      programs in waves over the SMs, each latency-bound (one load per iteration in flight), so the time is linear
      in the rows:
          t_tq = m·(t_p + 2·⌈k/2048⌉·t_c)
      t_p the program's fixed time and t_c one iteration's, both per row of the concurrent waves (fitted:
      fp8_gemm_row_s, fp8_gemm_row_chunk_s). It is why the n 32 rows' time per row is independent of n, flat up to
      k 2048 and rises in steps of 2048 k (benchmarks/results/serve_hopper_bounds.md). Serving prices the same term
      with the static kernel (input_quant_s) for every vLLM FP8 linear layer whose input no preceding kernel
      quantises: a served per-token FP8 checkpoint (compressed-tensors FP8-dynamic) runs the same QuantFP8
      forward_native, traced into the model's graph, where Inductor fuses it with a preceding RMSNorm or SiLU-mul
      (serving_fusions.MEASURED_FUSED_QUANT: those inputs pay neither kernel); the attention output's quantisation
      runs apart (the table's program is priced)
  what Inductor does not change in that program (read in pytorch/pytorch snapshots of torch/_inductor, choices.py at
      0012d881, ir.py Reduction.num_splits, codegen/triton.py; not the 2.11 tag, the lines named are alike in each):
      no persistent reduction: choices.should_use_persistent_reduction takes the whole row in one block only where
      statically_known_leq(k, 1024) (INNER hint; 64 otherwise; x16 with multi_kernel, off by default), with no device
      and no XBLOCK term, and under torch.compile(dynamic=True) k is a size symbol (Dynamo specialises sizes 0 and 1
      only), so every k loops; the extra whole-row autotune config (add_persistent_rblock) needs a statically known
      2048 < k <= 32768, off too. A split reduction at m = 1 and k > 8192 only: num_splits sends a static single
      output (numel 1) to choices.reduction_split_factor, which returns 1 for k <= 8192 and otherwise ⌈k/(32·256)⌉
      programs (2 at k 10240, 8 at 65536; the SM count enters only its thresholds, alike for 132 and 148 SMs) and a
      second kernel (Triton declares REDUCE_TO_SINGLE_ELEMENT only with cooperative reductions, off). The tables agree:
      median over n of t(m 1) − t(m 2): H100/H200 −0.3 to −1.1 µs at k 10240-16384 and −2.6 to −3.8 µs at 51200-65536
      (0 ± 2 below), as a parallel amax in place of one program's serial chunks would be; B200 11.0-11.3 µs there
      against 13.4 (9.3-14.8) at k <= 8192; small, not modelled. B200's scatter is this program too, but not as a
      function of the shape timed: the chunk is fixed when the program is compiled, from that call's k hint
      (_reduction_configs: R0_BLOCK = the hint where 256 <= hint < 2048, never above it), and reused for later shapes
      (dynamic=True), so it depends on the history of the collector process that took the point (worker processes
      taking tasks from a shared queue: aiconfigurator collector/collect.py); B200's points slower than the next larger
      n ran 256-element chunks (serving_gemm_sm100, "Not modelled"): no term of the shape, and they stay in the fit
  NVFP4 GEMM (Blackwell; FP4 E2M1 weights and input, an FP8 scale per 16 elements: β4 = 0.5 + 1/16 bytes):
      t = max((2·m_pad·n_pad·k·w(T) + F_half) / (P_fp4 · e_max), t_floor + (β4·(m·k + k·n) + 2·m·n) / (BW · η))
          + t_q4 + q4·m·k / (BW · η_hbm)
      whole 128 x 128 tiles T in waves (weight ω4; TensorRT-LLM's 256 x 256 2-CTA tiles on the SM pairs:
      serving_gemm_sm100), and the input's quantisation kernel (never fused: every engine's NVFP4 linear layer
      quantises its BF16 input itself; q4 bytes per element, 2.56 for one pass); fitted to the table's nvfp4 rows
      ('gemm fp4', which time that quantisation with the GEMM).
      SGLang 0.5.14's rows (fp4_cutedsl_tiles, fp4_quant_tma: benchmarks/serve_engine_ops.GEMM_SM100) run FlashInfer
      0.6.12's CuTe-DSL kernel on the tactic its untuned path picks per (n, k, m bucket) (serving_gemm_sm100): its
      C CTAs, one per SM, in waves, each CTA's tile taking the longer of its MMAs and its traffic through the SM,
          t_CTA = max(2·r·c·k·S / (P_fp4 · e_max), (β4·k·(r_A + c_B) + 2·r_A·c_out) / B_SM)
          compute = (C / S)·w(C)·t_CTA + F_half / (P_fp4 · e_max)
      (r x c its MMA tile, r_A rows of A and c_B columns of B it loads, c_out output columns within the problem; B_SM
      bytes per second into and out of one SM, fitted: 123 GB/s on B200, 18 TB/s over its 148 SMs; a 128 x 128 tile
      moves 144 bytes per k element for 32768 FLOPs, 128 x 256 216 for 65536: without the term the k <= 2048 rows,
      where the rule picks 128 x 128, ran 10-20 % slower than predicted and the k >= 4096 ones 10-20 % faster), and
      the quantise kernel its collector calls (flashinfer.fp4_quantize, CUDA backend): where m >= 1024 and 512 | k,
      a TMA kernel of one CTA per 16-row tile, at most 2 per SM (fp4_quant_s: its busiest CTA's BF16 rows at a fitted
      rate, 20 GB/s, where that is longer than one pass: m 1024-2367 run fewer CTAs than SMs). Fitted without them
      q4 ran to 5.45 bytes per element; with them 2.63, one pass (2.5625). vLLM 0.24.0's rows run the same GEMM
      (fp4_cutedsl_tiles) after its own quantise kernel (_C.scaled_fp4_quant), and its collector replays one layer on
      one input (aiconfigurator collector/vllm/collect_gemm.py: outside_loop_count 1 for nvfp4; TensorRT-LLM's and
      SGLang's time up to 5 and 6 copies, each with its own weights): where that input, its FP4 copy, the weights and
      the output fit in L2 (4646 of the table's 5256 points) the kernel reads its 2 bytes per element from L2 at the
      engine's fitted L2 rate (kv_l2_bytes_per_s, fp4_quant_warm_l2; never a server). Fitted with every read from HBM q4
      ran to 2.03 (fixed tiles) or 1.34 (the rule), below one pass; with the L2 reads 2.44. Serving prices SGLang's
      NVFP4 layers on these terms, the kernels its table times; SGLang 0.5.14 itself autotunes mm_fp4 at startup
      (model_executor/runner/base_runner.py, _should_run_flashinfer_autotune: modelopt_fp4 on flashinfer_cutedsl) and
      quantises with FlashInfer's CuTe-DSL kernel (fp4_utils: backend "cute-dsl" on SM100), which no table times; the
      autotuner profiles the valid tactics (get_valid_tactics), the rule's pick among them, so a tuned GEMM is at most
      as slow as the one the table times
  grouped expert GEMMs (one MoE kernel), s token-expert slots over E_l local experts of (k x n) weights:
      hit = E_l·(1 − (1 − 1/E_l)^s) experts receive r = s/hit rows each, padded to the kernel's block rows b
      (token sorting aligns every expert's rows to whole blocks): F_pad = 2·hit·⌈r/b⌉·b·n·k
      t = t_moe + ‖F_pad / (P_d · eff(F_pad) · e_moe), t_floor + (hit·β·k·n·w + σ·(s·β·k + S·2·n)) / (BW · η_moe)‖_p
          + t_e·E_l + σ_s·(s·k + S·2·n) / (BW · η_moe)
      w = 1 + ρ·(⌈r/b⌉ − 1): an expert's weights stream from HBM once, plus the share ρ for each further row block
      (vLLM's Triton kernel: each block's programs load the weight tiles again and L2 keeps only part; ρ = 0 else)
      (‖c, m‖_p = (c^p + m^p)^(1/p), p per dtype; p = 0: max(c, m); SGLang's Triton kernel fits p ≈ 2: its weight
      streaming and MMAs do not overlap fully); vLLM's block-scaled Triton kernel on Hopper: compute plus
      2·F_pad·k_0/k / (P_d · eff_max · e_moe), each output tile's fixed prologue/epilogue (filling its num_stages
      load pipeline, loading the tile's sorted token ids and expert id, the masked scatter of its output rows) as
      k_0 more k elements of main loop at the kernel's full rate, as the dense FP8 GEMM's k_0 (at the size curve's
      rate instead, small layers' compute swelled: max error 53 % H100); it weighs where k is short (the down
      projection at TP 8-16: k 96-256); fitted k_0 ≈ 660-690 on H100 and H200 alike
      eff the dense GEMM curve of the dtype; e_moe the fused MoE kernel's efficiency relative to it (at most
      1 / eff_max: never above the peak; DeepGEMM's grouped block-FP8 kernel runs above cuBLASLt's curve), t_moe the
      fixed time of one grouped GEMM with its share of the routing, alignment and finalize kernels, b and η_moe
      (weight streaming) and σ its own, per dtype (BF16 and FP8 run different kernels: Triton, CUTLASS); σ the slot
      traffic (gather, activation, scatter) relative to one read of the input and one write of the output;
      β weight bytes per element. Where vLLM's or SGLang's Triton kernel has no tuned tile config for the shape
      (costmodels/serving_moe_configs.py) it runs the release's default config: b its BLOCK_SIZE_M, e_moe times
      the default config's own efficiency e_def; and under expert parallelism it walks all S slots of the layer
      (an output row each, zeros for other GPUs' experts), not only the s of its own experts (S = s elsewhere);
      grouped_gemm_rows_s takes an uneven split of the rows (each expert padded to blocks on its own);
      serial parts of FP8 MoE kernels (serial_s, 0 for BF16): t_e·E_l, the tile scheduler of TensorRT-LLM's
      block-scaled DeepGEMM GroupedWithOffset MoE walking every local expert's row offsets (1 token of DeepSeek-V3 at
      TP 16 runs 111 µs on H100 for 22 MB of weights, 69 µs at EP 2: ~0.15 µs per local expert and GEMM; t_e = 0
      elsewhere), and σ_s, the slot traffic of the separate kernels around the GEMM, which add to it instead of
      hiding under its MMAs: TensorRT-LLM's permute/quantise/activation/finalize kernels (block FP8; inside the max
      they pushed σ to 11-16 input reads and e_moe to 0.42), SGLang's per-token-group FP8 quantisation of the
      input rows (block FP8; inside the max they pushed η_moe to its bound 1); σ_s = 0 elsewhere
      the layer's input quantisation (moe_input_quant_s, once per layer, not per GEMM): TensorRT-LLM's CutlassFusedMoE
      with per-tensor FP8 experts quantises its whole BF16 input, T tokens x h, in the static-scale kernel of its FP8
      linear layers (fp8_quant_s) before the fused op, on every GPU at any expert-parallel size
"""

import math

from costmodels import compute, serving_gemm_sm100
from costmodels.errors import require
from costmodels.hardware import DeviceSpec
from costmodels.serving_constants import KernelConstants
from costmodels.serving_moe_configs import FileRows

FP8_TILES: tuple[tuple[float, int, int, int], ...] = (
    # (largest m, tile rows, tile columns, thread blocks per cluster along m): the m buckets of the CUTLASS SM90
    # FP8 kernels vLLM and SGLang dispatch (m <= 64: operands swapped, the 64-wide side runs along n)
    (16, 16, 64, 1),
    (64, 64, 64, 1),
    (128, 64, 128, 2),
    (float("inf"), 128, 128, 2),
)
BF16_TILE = (64, 256)
"""(rows, columns) of the output tiles whose waves the BF16 GEMM model counts (of 64/128 x 128/256, the one
the measured Hopper tables of all three engines fit best; Blackwell's: serving_gemm_sm100.BF16_TILE)"""
BF16_LARGE_M = 8192
"""rows from which a BF16 GEMM runs at gemm_large_efficiency_max (the tables' m grid steps from 4353 to 8192)"""
LARGE_FP8_TILE = (8192, 6144, 256, 128, 2)
"""(smallest m, smallest k, tile rows, tile columns, blocks per cluster) of vLLM's large-GEMM FP8 kernel (cooperative
256 x 128 tiles), which runs at its own efficiency (fp8_large_efficiency_max)"""


def fp8_tiles(m: float, n: float, kk: float = 0.0) -> tuple[float, float, float]:
    """(padded rows, padded columns, output tiles) of an FP8 GEMM of m rows, n columns and depth kk."""
    min_m, min_k, big_rows, big_cols, big_cluster = LARGE_FP8_TILE
    buckets = ((float("inf"), big_rows, big_cols, big_cluster),) if m >= min_m and kk >= min_k else FP8_TILES
    for largest, rows, cols, cluster in buckets:
        if m <= largest:
            m_tiles = math.ceil(math.ceil(m / rows) / cluster) * cluster
            n_tiles = math.ceil(n / cols)
            return m_tiles * rows, n_tiles * cols, m_tiles * n_tiles
    raise AssertionError("FP8_TILES ends with an unbounded bucket")


def wave_factor(tiles: float, sms: float, weight: float) -> float:
    """Time of `tiles` output tiles on `sms` SMs relative to perfectly balanced work: the idle share of the last
    (or only) wave, counted with `weight` (0: split-k / stream-k fills it; 1: whole waves)."""
    full = math.ceil(tiles / sms) * sms / tiles
    return 1.0 + weight * (full - 1.0)


def tile_wave_flops(m: float, n: float, kk: float, tile: tuple[int, int], sms: float, weight: float) -> float:
    """FLOPs of the whole (rows, columns) output tiles an (m x kk) @ (kk x n) GEMM computes, times the wave factor
    of running them over `sms` SMs (wave_factor, ω = `weight`): 2·m_pad·n_pad·k·w(T)."""
    rows, cols = tile
    m_tiles, n_tiles = math.ceil(m / rows), math.ceil(n / cols)
    return 2.0 * m_tiles * rows * n_tiles * cols * kk * wave_factor(m_tiles * n_tiles, sms, weight)


def gemm_bf16_s(dev: DeviceSpec, k: KernelConstants, m: float, n: float, kk: float) -> float:
    """BF16 GEMM on the compute layer's curve (dev carries the engine's GEMM and HBM constants as its calibration,
    as EngineKernels.device does)."""
    eff_max, half = compute.gemm_curve("bf16", dev.calibration)
    if m >= BF16_LARGE_M and k.gemm_large_efficiency_max > 0:
        eff_max = k.gemm_large_efficiency_max
    if k.gemm_wave_weight > 0:
        work = tile_wave_flops(m, n, kk, serving_gemm_sm100.bf16_tile(k) or BF16_TILE, k.gemm_sms, k.gemm_wave_weight)
    else:
        work = 2.0 * _padded(m) * n * kk
    compute_s = (work + half) / (dev.bf16_flops_per_s * eff_max)
    moved = 2.0 * (m * kk + kk * n) + 2.0 * m * n
    return max(compute_s, k.kernel_floor_s + compute.memory_bound_time_s(moved, dev))


def gemm_fp8_s(dev: DeviceSpec, k: KernelConstants, m: float, n: float, kk: float) -> float:
    """FP8 GEMM kernel alone (per-tensor scales in the epilogue): waves of tiles, main loop, operand streaming; on
    the engine's Blackwell tiles where its constants select them (serving_gemm_sm100.fp8_tiles)."""
    m_pad, n_pad, tiles = serving_gemm_sm100.fp8_tiles(k, m, n, kk) or fp8_tiles(m, n, kk)
    large = m >= LARGE_FP8_TILE[0] and kk >= LARGE_FP8_TILE[1] and k.fp8_large_efficiency_max > 0
    peak = dev.peak_flops_per_s("fp8") * (k.fp8_large_efficiency_max if large else k.fp8_gemm_efficiency_max)
    waves = wave_factor(tiles, k.gemm_sms, k.fp8_wave_weight)
    rows = m_pad + k.fp8_oob_penalty * (m_pad - m)
    compute_s = (2.0 * rows * n_pad * kk * waves * (1.0 + k.fp8_k_overhead / kk) + k.fp8_gemm_half_flops) / peak
    bandwidth = dev.hbm_bytes_per_s * (k.fp8_hbm_efficiency or k.hbm_efficiency)
    if k.fp8_cta_bytes_per_s > 0:
        bandwidth = min(bandwidth, min(tiles, k.gemm_sms) * k.fp8_cta_bytes_per_s)
    memory_s = k.kernel_floor_s + (m * kk + kk * n + 2.0 * m * n) / bandwidth
    return overlap_s(compute_s, memory_s, k.fp8_overlap_exponent)


INDUCTOR_R0_BLOCK = 2048
"""row elements one loop iteration of an Inductor inner-reduction program covers (torch/_inductor/runtime/
triton_heuristics.py _reduction_configs: R0_BLOCK = min(rnumel, MAX_R0_BLOCK = 2048)); on
B200 too: later torch versions lower MAX_R0_BLOCK to 1024 on SM >= 100, but vLLM's B200 n 32 rows are flat to k 2048
and step up at 2560 as on Hopper"""
TOKEN_QUANT_PASSES = 2
"""passes of vLLM's per-token quantise program over its row (QuantFP8.forward_native: the row's amax, then the
scaled, clamped cast of every element)"""


def input_quant_s(dev: DeviceSpec, k: KernelConstants, m: float, kk: float) -> float:
    """The kernels quantising an FP8 GEMM's (m x kk) BF16 input where no preceding kernel writes it in FP8: the
    static-scale quantise kernel (fp8_quant_s) and the per-row quantise program (token_quant_s: vLLM's; 0 for
    engines without its constants); an input quantised inside the producing kernel (serving_fusions) pays neither."""
    return fp8_quant_s(dev, k, m, kk) + token_quant_s(k, m, kk)


def token_quant_s(k: KernelConstants, m: float, kk: float) -> float:
    """vLLM's per-token FP8 input quantisation of an (m x kk) input as its FP8 GEMM rows run it (Inductor-compiled
    QuantFP8.forward_native, one program per row looping over 2048-element chunks, twice): m·(t_p + 2·⌈kk/2048⌉·t_c);
    0 for engines without the constants."""
    chunks = math.ceil(kk / INDUCTOR_R0_BLOCK)
    return m * (k.fp8_gemm_row_s + TOKEN_QUANT_PASSES * chunks * k.fp8_gemm_row_chunk_s)


FP4_TILE = (128, 128)
"""output tile of the NVFP4 GEMMs (rows, columns) on every SM where no kernel rule of the engine is modelled (no B200
engine: TensorRT-LLM's pair tiles and the CuTe-DSL rule of vLLM and SGLang, serving_gemm_sm100;
benchmarks/fp4_cutedsl_tiles.py compares it with the rule on both CuTe-DSL engines)"""
FP4_WEIGHT_BYTES = 0.5 + 1.0 / 16.0
"""bytes per NVFP4 element: a 4-bit E2M1 value and an FP8 (E4M3) scale per 16 elements"""


def gemm_fp4_s(dev: DeviceSpec, k: KernelConstants, m: float, n: float, kk: float, warm_l2: bool = False) -> float:
    """NVFP4 GEMM with its input's quantisation (BF16 -> E2M1 + per-16 FP8 scales, a kernel of its own in every
    engine's NVFP4 linear layer): whole 128 x 128 tiles in waves at the FP4 peak, or its operands streamed from
    HBM (FP4 weights and input with their scales, BF16 output); `warm_l2`: a benchmark repeating the layer on one
    input finds that input in L2 (fp4_quant_s); SpecError on a device without an FP4 peak."""
    require(k.fp4_gemm_efficiency_max > 0, f"no fitted NVFP4 GEMM constants on {dev.name!r} for this engine "
            "(benchmarks/serve_engine_fit.py 'gemm fp4': devices with NVFP4 tables)", field="dtype")
    peak = dev.peak_flops_per_s("fp4") * k.fp4_gemm_efficiency_max
    if k.fp4_cutedsl_tiles:  # FlashInfer's CuTe-DSL kernel on its untuned tactic (vLLM's and SGLang's NVFP4 linear)
        compute_s = cutedsl_fp4_s(k, peak, m, n, kk)
    else:
        tile, units = serving_gemm_sm100.fp4_tiles(k) or (FP4_TILE, k.gemm_sms)  # TensorRT-LLM: 2-CTA tiles, SM pairs
        compute_s = (tile_wave_flops(m, n, kk, tile, units, k.fp4_wave_weight) + k.fp4_gemm_half_flops) / peak
    moved = FP4_WEIGHT_BYTES * (m * kk + kk * n) + 2.0 * m * n
    memory_s = k.kernel_floor_s + moved / (dev.hbm_bytes_per_s * (k.fp4_hbm_efficiency or k.hbm_efficiency))
    return max(compute_s, memory_s) + fp4_quant_s(dev, k, m, kk, warm_l2)


def cutedsl_fp4_s(k: KernelConstants, peak: float, m: float, n: float, kk: float) -> float:
    """The CTAs of FlashInfer's CuTe-DSL NVFP4 GEMM (serving_gemm_sm100.cutedsl_fp4_ctas) in waves on the SMs (weight
    ω4), each CTA's tile taking its MMAs at the SM's share of the fitted FP4 rate `peak`, or its traffic through the SM
    (operands in, BF16 output out) at fp4_sm_bytes_per_s, whichever is longer; plus F_half at `peak`."""
    c = serving_gemm_sm100.cutedsl_fp4_ctas(m, n, kk, k.gemm_sms)
    tile_s = 2.0 * c.rows * c.cols * kk * k.gemm_sms / peak
    if k.fp4_sm_bytes_per_s > 0:
        traffic = FP4_WEIGHT_BYTES * kk * (c.a_rows + c.b_cols) + 2.0 * c.a_rows * c.out_cols
        tile_s = max(tile_s, traffic / k.fp4_sm_bytes_per_s)
    waves = c.ctas / k.gemm_sms * wave_factor(c.ctas, k.gemm_sms, k.fp4_wave_weight)
    return waves * tile_s + k.fp4_gemm_half_flops / peak


FP4_QUANT_TMA = (1024, 512, 16, 128, 2)
"""FlashInfer 0.6.12's CUDA NVFP4 quantise kernel (csrc/nv_internal/cpp/kernels/quantization.cu, invokeFP4Quantization,
BF16 input, 16-element scales): (smallest m, multiple of k, rows per CTA, row padding of the swizzled scale layout,
CTAs per SM) of its TMA variant (launchFP4QuantizationTma: 8 consumer warps of 64 columns, 16-row tiles of the rows
padded to the 128-row scale layout, computeEffectiveRows; grid min(tiles, 2 x SMs), each CTA looping over tiles)"""


def fp4_quant_s(dev: DeviceSpec, k: KernelConstants, m: float, kk: float, warm_l2: bool = False) -> float:
    """The kernel quantising an NVFP4 GEMM's (m x kk) BF16 input: t_q4 + one pass of q4 bytes per element through HBM,
    or, FlashInfer's TMA kernel (fp4_quant_tma), its busiest CTA reading its 16-row tiles of BF16 input at
    fp4_quant_cta_bytes_per_s where that is longer (few CTAs: m 1024-2367 run fewer than one per SM); `warm_l2` on an
    engine with fp4_quant_warm_l2 (a benchmark replaying one layer on one input that fits in L2 with the layer's
    operands; never a server): its 2 BF16 bytes per element come from L2 at kv_l2_bytes_per_s, the rest of q4 (the
    FP4 values and scales written) through HBM."""
    if warm_l2 and k.fp4_quant_warm_l2:
        l2_s = 2.0 * m * kk / k.kv_l2_bytes_per_s
        return k.fp4_quant_s + l2_s + compute.memory_bound_time_s(max(k.fp4_quant_bytes - 2.0, 0.0) * m * kk, dev)
    t = compute.memory_bound_time_s(k.fp4_quant_bytes * m * kk, dev)
    min_m, k_step, tile_rows, sf_rows, per_sm = FP4_QUANT_TMA
    if k.fp4_quant_tma and m >= min_m and kk % k_step == 0:
        tiles = math.ceil(m / sf_rows) * sf_rows / tile_rows
        cta_bytes = math.ceil(tiles / min(tiles, per_sm * k.gemm_sms)) * tile_rows * kk * 2.0  # BF16 rows read
        t = max(t, cta_bytes / k.fp4_quant_cta_bytes_per_s)
    return k.fp4_quant_s + t


def overlap_s(compute_s: float, memory_s: float, p: float) -> float:
    """Kernel time of its compute and memory times: (c^p + m^p)^(1/p) (loads and MMAs overlap imperfectly);
    p <= 0: max(c, m)."""
    return max(compute_s, memory_s) if p <= 0 else float((compute_s ** p + memory_s ** p) ** (1.0 / p))


def fp8_quant_s(dev: DeviceSpec, k: KernelConstants, m: float, kk: float) -> float:
    """The kernel quantising an (m x kk) BF16 activation to FP8 with a static per-tensor scale before the GEMM
    (dev: EngineKernels.device); a dynamic per-tensor scale's amax pass is not included; vLLM's per-token dynamic
    quantisation adds token_quant_s (input_quant_s: both)."""
    nbytes = k.fp8_quant_bytes * m * kk
    t = compute.memory_bound_time_s(nbytes * (k.fp8_quant_l2_share if 3.0 * m * kk <= dev.l2_bytes else 1.0),
                                    dev)
    if k.fp8_quant_row_bytes_per_s > 0:
        t = max(t, nbytes / (m * k.fp8_quant_row_bytes_per_s))
    return k.fp8_quant_s + m * k.fp8_quant_row_s + t


def moe_input_quant_s(dev: DeviceSpec, k: KernelConstants, tokens: float, hidden: float) -> float:
    """The static-scale FP8 quantisation of a MoE layer's whole input (`tokens` x `hidden`, every token entering the
    layer, whatever the expert-parallel size) where the engine runs it as a kernel of its own before the fused MoE op
    (moe_input_quant: TensorRT-LLM's CutlassFusedMoE with per-tensor FP8 experts, quantize_input ->
    static_quantize_e4m3_per_tensor, the kernel of its FP8 linear layers; tensorrt_llm/_torch/modules/fused_moe/
    fused_moe_cutlass.py), priced by that kernel's fitted constants (fp8_quant_s); 0 for every other MoE kernel."""
    return fp8_quant_s(dev, k, tokens, hidden) if k.moe_input_quant and tokens > 0 else 0.0


def experts_hit(local_experts: float, slots: float) -> float:
    """Expected distinct experts among `local_experts` that receive at least one of `slots` uniform slots."""
    if local_experts <= 0 or slots <= 0:
        return 0.0
    return float(local_experts * (1 - (1 - 1 / local_experts) ** slots))


def grouped_gemm_s(dev: DeviceSpec, k: KernelConstants, slots: float, local_experts: float, n: float, kk: float,
                   dtype: str, default_rows: float = 0.0, all_slots: float = 0.0) -> float:
    """One grouped expert GEMM (the kernel alone, FP8 input quantisation not included); `dev` carries the
    engine's GEMM curve as its calibration; `default_rows` > 0: the engine's Triton kernel runs its default tile
    config with blocks of that many rows (no tuned config file for the shape, costmodels/serving_moe_configs.py);
    `all_slots` > slots: the kernel walks that many slots, writing an output row for each (zeros for other
    GPUs' experts)."""
    block = _moe_block(k, dtype, default_rows)
    hit = max(experts_hit(local_experts, slots), 1.0)
    padded = hit * math.ceil(slots / hit / block) * block
    return (_grouped_s(dev, k, padded, hit, slots, n, kk, dtype, default_rows, all_slots)
            + serial_s(dev, k, dtype, local_experts, slots, all_slots, n, kk))


def grouped_gemm_rows_s(dev: DeviceSpec, k: KernelConstants, rows: tuple[tuple[float, int], ...], n: float,
                        kk: float, dtype: str, default_rows: float = 0.0, all_slots: float = 0.0,
                        warm_l2: bool = False) -> float:
    """grouped_gemm_s for a known, uneven split of the rows: `rows` as (rows of one expert, experts with that
    many rows) pairs; each expert's rows padded to whole blocks on their own; `warm_l2`: the expert weights are read
    from L2 (moe_memory_s)."""
    block = _moe_block(k, dtype, default_rows)
    hit = max(sum(count for r, count in rows if r > 0), 1)
    padded = sum(count * math.ceil(r / block) * block for r, count in rows)
    slots = sum(r * count for r, count in rows)
    experts = sum(count for _, count in rows)
    return (_grouped_s(dev, k, padded, hit, slots, n, kk, dtype, default_rows, all_slots, warm_l2)
            + serial_s(dev, k, dtype, experts, slots, all_slots, n, kk))


def serial_s(dev: DeviceSpec, k: KernelConstants, dtype: str, local_experts: float, slots: float, all_slots: float,
             n: float, kk: float) -> float:
    """Time of an FP8 grouped GEMM's parts that do not overlap its main loop: t_e·E_l, its tile scheduler walking
    the row offsets of all `local_experts` (hit or not), plus σ_s·(s·k + S·2·n) / (BW · η_moe), the slot traffic of
    the separate kernels around it (TensorRT-LLM's block-scaled DeepGEMM MoE: every CTA steps expert by expert
    through the offsets, two dependent loads each, and its CutlassMoeFCRunner runs permute/quantise/activation/
    finalize kernels one after another; SGLang's Triton MoE: the per-token-group FP8 quantisation kernels of its
    inputs); 0 for kernels without them (t_e = σ_s = 0) and for BF16."""
    if dtype != "fp8":
        return 0.0
    bandwidth = dev.hbm_bytes_per_s * (k.moe_fp8_hbm_efficiency or k.hbm_efficiency)
    return (k.moe_fp8_expert_s * local_experts
            + k.moe_fp8_serial_bytes * slot_traffic(slots, all_slots, n, kk, 1.0) / bandwidth)


def slot_traffic(slots: float, all_slots: float, n: float, kk: float, elem_bytes: float) -> float:
    """Bytes of one read of `slots` input rows (`elem_bytes` per element) and one BF16 write of max(slots,
    all_slots) output rows: s·β·k + S·2·n."""
    return slots * elem_bytes * kk + max(slots, all_slots) * 2.0 * n


def _moe_block(k: KernelConstants, dtype: str, default_rows: float) -> float:
    """Rows per block of the grouped GEMM: the config's BLOCK_SIZE_M (the default config's, or a tuned file's:
    serving_moe_configs.config_block_rows), else the fitted one of the dtype."""
    if default_rows > 0:
        return default_rows
    return k.moe_fp8_block_rows if dtype == "fp8" else k.moe_block_rows


def _grouped_s(dev: DeviceSpec, k: KernelConstants, padded: float, hit: float, slots: float, n: float, kk: float,
               dtype: str, default_rows: float, all_slots: float, warm_l2: bool = False) -> float:
    """Grouped GEMM time of `padded` computed rows over `hit` experts holding `slots` token rows."""
    fp8 = dtype == "fp8"
    floor_s, eff_moe = (k.moe_fp8_floor_s, k.moe_fp8_efficiency) if fp8 else (k.moe_floor_s, k.moe_efficiency)
    if default_rows > 0 and not isinstance(default_rows, FileRows) and not k.moe_trtllm_gen:  # a Triton default
        # config (a tuned file's rows: its tuned tiles; TRT-LLM-gen: its own token tiles)
        eff_moe *= k.moe_fp8_default_efficiency if fp8 else k.moe_default_efficiency
    eff = compute.gemm_efficiency(padded, n, kk, dtype, dev.calibration) * eff_moe
    compute_s = 2.0 * padded * n * kk / (dev.peak_flops_per_s(dtype) * eff)
    if fp8 and k.moe_fp8_k_overhead > 0:  # per-tile prologue/epilogue, k_0 k elements at full rate: vLLM's and
        # SGLang's block-scaled Triton kernels (block_fp8_constants fills the slot, SGLang's FP8 constants are that
        # kernel's: EngineCalibration; the per-tensor kernels leave it 0)
        top = compute.gemm_curve(dtype, dev.calibration)[0] * eff_moe
        compute_s += 2.0 * padded * n * k.moe_fp8_k_overhead / (dev.peak_flops_per_s(dtype) * top)
    expert = (1.0 if fp8 else 2.0) * kk * n
    weights = hit * expert * weight_passes(k, padded / hit / _moe_block(k, dtype, default_rows), expert)
    memory_s = moe_memory_s(dev, k, weights, slots, all_slots, n, kk, fp8, warm_l2)
    return floor_s + overlap_s(compute_s, memory_s, k.moe_fp8_overlap_exponent if fp8 else k.moe_overlap_exponent)


def moe_memory_s(dev: DeviceSpec, k: KernelConstants, weight_bytes: float, slots: float, all_slots: float, n: float,
                 kk: float, fp8: bool, warm_l2: bool = False) -> float:
    """Memory time of a grouped expert GEMM: t_floor + (weights + σ·(s·β·k + S·2·n)) / (BW · η_moe), the expert
    weights read (`weight_bytes`) plus the slot traffic of `slots` rows in and max(slots, all_slots) rows out;
    `warm_l2` (a per-op benchmark repeating one layer whose weights fit in L2, moe_warm_l2; never a server): the
    weights come from L2 instead, W / r_L2 (kv_l2_bytes_per_s)."""
    e_w = 1.0 if fp8 else 2.0
    sigma = (k.moe_fp8_slot_bytes or k.moe_slot_bytes) if fp8 else k.moe_slot_bytes
    hbm = k.moe_fp8_hbm_efficiency if fp8 else k.moe_hbm_efficiency
    l2_s = weight_bytes / k.kv_l2_bytes_per_s if warm_l2 and k.moe_warm_l2 and k.kv_l2_bytes_per_s > 0 else 0.0
    moved = (0.0 if l2_s else weight_bytes) + sigma * slot_traffic(slots, all_slots, n, kk, e_w)
    return k.kernel_floor_s + l2_s + moved / (dev.hbm_bytes_per_s * (hbm or k.hbm_efficiency))


def weight_passes(k: KernelConstants, blocks: float, expert_bytes: float = 0.0) -> float:
    """Times an expert's weights come from HBM when its rows span `blocks` row blocks (a mean over the experts
    hit): once, plus the share ρ = moe_block_weight_reads for every further block. Where the kernel's re-reads
    compete for L2 (moe_gen_l2_bytes = C > 0: FlashInfer's TensorRT-LLM-gen MoE on B200), an expert GEMM's
    `expert_bytes` W of weights miss L2 on a further tile with the share ρ + (1 - ρ)·W/(W + C): small slices stay
    in L2 between tiles, slices much wider than C stream from HBM every tile."""
    share = k.moe_block_weight_reads
    if k.moe_trtllm_gen and k.moe_gen_l2_bytes > 0:
        share += (1.0 - share) * expert_bytes / (expert_bytes + k.moe_gen_l2_bytes)
    return 1.0 + share * max(blocks - 1.0, 0.0)


def _padded(rows: float) -> float:
    """Rows a cuBLAS-style GEMM computes: `rows` padded to whole row tiles (compute.GEMM_TILE)."""
    return float(math.ceil(rows / compute.GEMM_TILE) * compute.GEMM_TILE)
