"""vLLM's FP8 expert GEMMs as its table measured them: FlashInfer's CUTLASS fused MoE on its fallback tile (seconds,
one GPU). Serving predictions use the tuned kernel instead (see the end of this docstring); this model is what
benchmarks/serve_engine_fit.py fits and evaluates vLLM's measured FP8 MoE rows with.

vLLM 0.24.0 runs FP8 experts with per-tensor scales (ModelOpt FP8) on Hopper through FlashInfer's CUTLASS fused
MoE (FlashInferExperts). Which GEMM tile it uses is chosen by FlashInfer's autotuner; without a tuned entry for
the shape (aiconfigurator-core's collector builds the FusedMoE layer directly and never runs vLLM's startup
FlashInfer autotune, vllm/model_executor/warmup/kernel_warmup.py flashinfer_autotune) AutoTuner.choose_one returns
tactic -1, and the runner takes the first profile of its list (flashinfer csrc/fused_moe/cutlass_backend/
flashinfer_cutlass_fused_moe_binding.cu setRunnerProfiles: mAllProfiles.front() for GEMM 1 and for GEMM 2), the
first SM90 grouped-GEMM tile of cutlass_heuristic.cpp get_candidate_tiles_sm90: CtaShape128x16x128B, cluster 1x1x1,
operands not swapped. So every expert's token rows are cut into 128-row tiles, the output into 16-column tiles,
the depth walked 128 FP8 elements per main-loop step (FALLBACK_TILE, a fact of the sources, not fitted). For a
layer whose hit experts hold `r` rows each, per (k x n) expert GEMM:

  row tiles   per expert: ⌊r/128⌋ full ones and one partial tile when r is not a multiple of 128, whose
              128 - (r mod 128) empty rows the TMA loads fill with zeros (out of bounds of the expert's rows)
  tiles       T = hit · ⌈r/128⌉ · ⌈n/16⌉ output tiles over S SMs, each with a fixed cost t_tile (pipeline fill,
              epilogue, the per-expert tensor-map update of the grouped kernel)
  main loop   2 · 128 · ⌈n/16⌉·16 · ⌈k/128⌉·128 FLOPs per row tile at e_moe of the FP8 peak; a partial row tile
              costs (1 + π · empty rows / 128) of a full one (π: measured, partial tiles are slower than full
              ones by a share that grows with the empty rows and with k; no shape is faster with fewer rows)
      compute = T · t_tile / S + 2·128·n_pad·k_pad · (tiles_m + π · empty_m) / (P_fp8 · e_moe)
  memory      t_floor + (hit·k·n + σ·(s·k + s·2·n)) / (BW · η_moe)   (expert weights once, slot traffic)
  t = t_moe + max(compute, memory)

t_tile and π are the kernel constants moe_fp8_tile_s and moe_fp8_oob_penalty (fitted by
benchmarks/serve_engine_fit.py to vLLM's measured FP8 MoE table; > 0 only for engines whose FP8 experts run this
kernel); t_moe, e_moe, η_moe and σ are the FP8 grouped GEMM's (moe_fp8_*).

A vLLM server does not run the fallback tile, so serving (costmodels/serving_kernels.py grouped_gemm_s) times vLLM's
FP8 experts with TensorRT-LLM's fitted FP8 MoE model and constants of the same device (EngineKernels.tuned_moe).
Evidence, from the sources (read, not copied):
  vLLM serves with the autotune on: `vllm serve` runs at -O2, and the optimisation levels O1-O3 set
      kernel_config.enable_flashinfer_autotune = True (O0 False; `--kernel-config '{"enable_flashinfer_autotune":
      false}'` turns it off); kernel_warmup (vllm/model_executor/warmup/kernel_warmup.py) then runs
      flashinfer_autotune on SM >= 90: one dummy forward of max_num_batched_tokens tokens under FlashInfer's
      autotune(tune_mode=True), which profiles every token bucket up to it for each op that asks AutoTuner.choose_one
      (the CUTLASS fused MoE does, for GEMM 1 and GEMM 2: flashinfer/fused_moe/core.py), cached and broadcast so
      every rank runs the same tactics.
  FlashInfer CUTLASS is the backend of per-tensor FP8 experts on Hopper: every FP8 row of vLLM 0.24.0's table names
      it (kernel_source vllm_modeloptfp8moe_flashinfer_cutlass_flashinferexperts), and aiconfigurator's collector
      (collector/vllm/collect_moe.py) builds the ModelOpt FP8 FusedMoE through vLLM's own backend selection, with
      no autotune call.
  TensorRT-LLM's FP8 rows time the same kernel tuned: aiconfigurator's TensorRT-LLM collector (collector/trtllm/
      collect_moe.py, trtllm >= 1.3.0rc20) sets moe_backend "cutlass" for per-tensor FP8 on Hopper and runs the
      layer once under tensorrt_llm._torch.autotuner.autotune() (cached per shape) before timing it (kernel_source
      moe_torch_flow_cutlass); FlashInfer's CUTLASS fused MoE is TensorRT-LLM's kernel (flashinfer csrc/fused_moe/
      cutlass_backend builds on csrc/nv_internal/tensorrt_llm: same grouped GEMMs, same tactic list).
  Measured (aiconfigurator-core 0.12.0, Qwen3-30B-A3B layer, 16 tokens, TP 2, H100): vLLM FP8 0.730 ms on the
      fallback tile vs vLLM BF16 0.234 ms, TensorRT-LLM FP8 tuned 0.134 ms (H200: 0.717, 0.174, 0.111 ms).
"""

import math

from costmodels import serving_gemm
from costmodels.hardware import DeviceSpec
from costmodels.serving_constants import KernelConstants

FALLBACK_TILE = (128, 16, 128)
"""(token rows, output columns, depth in FP8 elements) of FlashInfer's CUTLASS MoE fallback tactic on SM90"""


def uniform_rows(slots: float, local_experts: float) -> tuple[tuple[float, float], ...]:
    """(rows of one expert, experts with that many rows) when `slots` uniform slots fall on `local_experts`
    experts: the expected experts hit, sharing the slots evenly."""
    if local_experts <= 0 or slots <= 0:
        return ()
    hit = max(serving_gemm.experts_hit(local_experts, slots), 1.0)
    return ((slots / hit, hit),)


def row_tiles(rows: tuple[tuple[float, float], ...]) -> tuple[float, float]:
    """(row tiles, empty rows in units of a whole tile) of the experts' rows cut into FALLBACK_TILE row tiles."""
    tile = FALLBACK_TILE[0]
    tiles = empty = 0.0
    for r, count in rows:
        if r <= 0:
            continue
        whole = math.ceil(r / tile)
        tiles += count * whole
        empty += count * (whole * tile - r) / tile
    return tiles, empty


def grouped_gemm_s(dev: DeviceSpec, k: KernelConstants, rows: tuple[tuple[float, float], ...], n: float,
                   kk: float) -> float:
    """One FP8 grouped expert GEMM of (kk x n) weights on FlashInfer's fallback tile; `rows` as (rows of one
    expert, experts with that many rows) pairs (uniform_rows for uniform routing)."""
    tiles_m, empty_m = row_tiles(rows)
    if tiles_m <= 0:
        return 0.0
    tile_m, tile_n, tile_k = FALLBACK_TILE
    n_pad = math.ceil(n / tile_n) * tile_n
    k_pad = math.ceil(kk / tile_k) * tile_k
    tiles = tiles_m * n_pad / tile_n
    main = 2.0 * tile_m * n_pad * k_pad * (tiles_m + k.moe_fp8_oob_penalty * empty_m)
    compute_s = tiles * k.moe_fp8_tile_s / k.gemm_sms + main / (dev.peak_flops_per_s("fp8") * k.moe_fp8_efficiency)
    hit = sum(count for r, count in rows if r > 0)
    slots = sum(r * count for r, count in rows)
    memory_s = serving_gemm.moe_memory_s(dev, k, hit * kk * n, slots, slots, n, kk, fp8=True)
    return k.moe_fp8_floor_s + max(compute_s, memory_s)


GEN_TILES = (8, 16, 32, 64, 128)
"""token rows per tile (tile_N) of FlashInfer's TensorRT-LLM-gen fused MoE launchers for BF16 and FP8 experts
(flashinfer csrc/trtllm_fused_moe_kernel_launcher.cu mSupportedTileNums, a fact of the source)"""


def trtllm_gen_tile(slots: float, local_experts: float) -> float:
    """Token rows per tile of FlashInfer's TensorRT-LLM-gen fused MoE (vLLM and SGLang on B200) without an autotuned
    tactic, as the measured tables ran it: computeSelectedTileN centres its candidates on t = nextPowerOfTwo(⌊tokens
    · top_k / local experts⌋) clamped to GEN_TILES, and resolveMoeTileAndConfig's fallback (tactic -1,
    selectDefaultTileN) takes the smallest candidate, t's lower neighbour (t itself at 8). `slots`: tokens · top_k
    of the whole layer (the kernel routes every token). Each expert's rows are cut into tiles of this many rows,
    and its weights stream once per tile (serving_gemm.weight_passes)."""
    avg = int(slots / max(local_experts, 1.0))
    t = 1 << max(avg - 1, 0).bit_length()  # nextPowerOfTwo: avg itself when a power of two
    t = min(max(t, GEN_TILES[0]), GEN_TILES[-1])
    return float(max(t // 2, GEN_TILES[0]))


def trtllm_gen_launched_ctas(routed_slots: float, local_experts: float) -> float:
    """CTAs along the token dimension that each grouped GEMM of FlashInfer's TensorRT-LLM-gen fused MoE launches
    (include/flashinfer/trtllm/fused_moe/runner.h Routing::getMaxNumCtasInBatchDim, read, not copied): the grid is
    sized before the routing is known, for the worst case of the layer's `routed_slots` (tokens · top_k of all
    GPUs) over the `local_experts`: one tile for each of min(E_l, slots) experts holding a single slot, plus one per
    whole token tile (trtllm_gen_tile) of the slots left; the CTAs beyond the routed tiles exit at once
    (ptrNumNonExitingCtas)."""
    tile = trtllm_gen_tile(routed_slots, local_experts)
    single = min(max(local_experts, 1.0), routed_slots)
    return single + math.floor((routed_slots - single) / tile)


def trtllm_gen_launch_s(k: KernelConstants, routed_slots: float, local_experts: float) -> float:
    """Time one grouped GEMM of FlashInfer's TensorRT-LLM-gen fused MoE spends per token-dimension CTA it launches
    (trtllm_gen_launched_ctas): t_cta · CTAs (moe_gen_cta_s; 0 for other kernels). A fixed time per launched token
    tile, whether it computes or exits, grows with the experts a small batch reaches (top_k experts at 1 token, all
    local ones from E_l / top_k tokens) where a flat per-GEMM floor cannot: SGLang's B200 tables run Qwen3-30B-A3B's
    layer at 1 token in 17-20 µs at any TP and EP, yet in 39-40 µs at 16 tokens over its 128 experts at TP 8-16
    (EP 1: 0.3-0.6 MB of FP8 weights per expert, 38-75 MB in all: 5-9 µs of HBM time). Fitted on the BF16 rows and
    kept for FP8 (the same launcher and grid rule); the mechanism behind the time per CTA (launch, its read of the
    routing metadata, the exit of a CTA with no tile) is not isolated by the tables. Tested on SGLang's training rows
    (BF16 / FP8 median/p90 |error|, each fitted on BF16 and kept for FP8) and not kept: a time per hit expert
    (6.7/17.6, 7.7/19.6 %), per routed token tile (7.1/18.5, 7.0/17.5 %), per launched CTA counting 128-row weight
    tiles over the SMs (5.3/15.6, 6.9/17.5 %: as good, but on an assumed weight tile); this term 5.6/15.3, 7.5/17.6 %.
    vLLM and SGLang run this kernel on B200 and fit the same terms on it (benchmarks/serve_engine_fit.py
    TRTLLM_GEN_MOE): this one, the L2 re-read share of serving_gemm.weight_passes (moe_gen_l2_bytes) and the slot
    traffic inside the grouped GEMM (moe_fp8_slot_bytes), each constant per engine. A time per routed slot of the
    layer (each GEMM walking the routing's permutation), fitted for vLLM before, was dropped: fitted beside this
    term one of the two ran to its lower bound in each engine (vLLM: this one, at 0.1 ns; SGLang: the slot time).
    With this term instead, vLLM's training rows (median/p90) move BF16 3.5/12.2 -> 3.7/12.6 %, FP8 5.9/17.2 ->
    6.5/17.8 %, block FP8 6.1/20.1 -> 5.6/18.1 %; fitted 20 ns per CTA for vLLM, 28 ns for SGLang."""
    return k.moe_gen_cta_s * trtllm_gen_launched_ctas(routed_slots, local_experts) if k.moe_gen_cta_s else 0.0


def trtllm_gen_activation_s(k: KernelConstants, routed_slots: float, width: float) -> float:
    """Time of the activation kernel between the two grouped GEMMs of FlashInfer's TensorRT-LLM-gen fused MoE with
    block-scaled (DeepSeek) FP8 experts, whose first GEMM has no fused activation (csrc/trtllm_fused_moe_runner.cu
    Runner::run: activation::run for DeepSeek FP8 only). Its activationDeepSeekKernel (csrc/fused_moe/trtllm_backend/
    trtllm_fused_moe_dev_kernel.cu) runs a grid of (width / 128 scale blocks, token chunks, top_k) CTAs, each walking
    every token · top_k slot of the layer across its width: a slot routed to another GPU (permutedIdx -1) skips its
    load but still takes part in the block's SwiGLU and 128-element amax reduction. So its time grows with the
    layer's `routed_slots` (all GPUs', whatever the expert-parallel size) times `width`, the expert width per GPU:
    t_act · slots · width (moe_gen_act_s; 0 for every other kernel). Measured: SGLang's B200 FP8 rows at EP 32-256,
    where the expert GEMMs shrink, approach 3.4-5.3 ps per slot and width element in every MoE shape of its table."""
    return k.moe_gen_act_s * routed_slots * width
