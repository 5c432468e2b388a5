"""Attention kernel times of a serving engine on one GPU (seconds).

The constants are an engine's `KernelConstants` (fitted per device by benchmarks/serve_engine_fit.py to the
engines' measured per-op tables); `EngineKernels` carries them with the device.

  prefill attention, F FLOPs, rows of c keys, n work units (sequence x query head x 128-row query tile), keys
  whose K and V take K bytes:  max(floor, t_attn,0 + F / (P_bf16 · eff(c, 128)) + n · t_tile + r · K / BW)
      (r: passes over K and V from HBM; with few KV heads, query tiles of one KV head share them through L2)
      on Blackwell (SM100) kernels the longest unit's tail and one-token batches: costmodels/serving_attention_sm100.py
  decode attention of b sequences, g KV heads and h query heads per GPU, context c, K bytes of KV cache:
      work units u = b·g (one per sequence and KV head; the query heads of a KV head are packed together)
      t = floor_kv + ‖ max(u − u_free, 0)·t_unit,  K / (BW · η_kv),  [FP8 KV] (K / 1 B)·t_deq ‖_p
            + t_split · c / (c + c_split)
      ‖·‖_p = (Σ xᵢᵖ)^(1/p), a smooth maximum of the terms that overlap in the kernel (p = 1: their sum);
      floor and t_unit per kernel: GQA with BF16 KV, GQA with FP8 KV, MHA (h = g, either KV dtype; its own
      t_deq); the
      first u_free units run on otherwise idle SMs; the split-KV reduction adds a time that
      grows to t_split as the context is split into more chunks; bounded below by the compute time
      F / (P_bf16 · e_attn) and the smallest kernel
      an engine with a multi-block heuristic (TensorRT-LLM's XQA, GQA only) runs n = `split_blocks` thread
      blocks per unit, chosen from the history length and the SM count: u = b·g·n, and the reduction term
      only when n > 1 (its time doubles from c = 127 to 255, where 256-token histories split in two)
      that engine runs XQA only when 4·b·g·max(n, 1) blocks reach the SM count (`runs_gqa_kernel`, BF16 KV):
      below it, its MHA kernel (MMHA) on every query head, u = b·h, reading each KV head h/g times
      MMHA splits a history into ⌈SMs / u⌉ chunks, no more than one per 256 tokens (`mha_chunks`), and a thread
      block streams its chunk at a latency-bound rate: a fourth term ((c+1) / chunks)·t_token in the smooth max,
      and the reduction term only when chunks > 1 (its multi-block mode)
      its FP8-KV XQA pads a unit's h/g query heads to a multiple of 8: t_unit × ⌈(h/g) / 8⌉ (`head_tiles`)
      and MMHA's unit term counts whole waves of its thread blocks (`mha_waves`, 4·SMs unit slots a wave):
      (waves − 1) · 4·SMs · t_unit in place of max(u − u_free, 0) · t_unit
  (the TP all-reduce: costmodels/serving_allreduce.py)
"""

import math

from costmodels import compute, serving_attention_sm100
from costmodels.serving_constants import KernelConstants
from costmodels.serving_kernels import ATTENTION_REF_WIDTH, EngineKernels

QUERY_TILE = 128
"""query rows of one flash-attention work unit (the engines' prefill kernels tile queries by 128 on Hopper)"""


def prefill_attention_s(ek: EngineKernels, flops: float, row_keys: float, tiles: float = 0.0,
                        kv_bytes: float = 0.0, tile_flops: float = 0.0) -> float:
    """Causal flash attention doing `flops` FLOPs (BF16 math) over query rows of `row_keys` keys on average, in
    `tiles` (sequence, query head, 128-row query tile) work units (`query_tiles`), over keys whose K and V
    take `kv_bytes` on this GPU; `tile_flops`: FLOPs of the longest unit (Blackwell's tail term:
    serving_attention_sm100.tail_tile_s)."""
    if flops <= 0:
        return 0.0
    k, dev = ek.k, ek.device
    eff = compute.attention_efficiency(max(row_keys, 1.0), ATTENTION_REF_WIDTH, dev.calibration)
    t = k.attention_floor_s + flops / (dev.bf16_flops_per_s * eff) + tiles * k.attention_tile_s
    t += serving_attention_sm100.tail_tile_s(ek, tile_flops, eff)
    return max(k.kernel_floor_s, t + k.prefill_kv_passes * kv_bytes / dev.hbm_bytes_per_s)


def query_tiles(seqs: float, heads: float, new_tokens: float) -> float:
    """Work units of a prefill attention kernel: one per sequence, query head and QUERY_TILE rows of new tokens."""
    return seqs * heads * math.ceil(new_tokens / QUERY_TILE)


def decode_attention_s(ek: EngineKernels, seqs: float, kv_heads: float, heads: float, context: float,
                       kv_bytes: float, flops: float, kv_fp8: bool = False, warm_l2: bool = False) -> float:
    """Decode attention of `seqs` sequences with `kv_heads` KV heads and `heads` query heads on this GPU, each
    over `context` cached tokens, reading `kv_bytes` of KV cache (FP8 when `kv_fp8`) and doing `flops` FLOPs;
    `warm_l2`: the KV cache was left in L2 by a previous call (a per-op benchmark's repeats, never serving:
    serving_attention_sm100.kv_read_s)."""
    if kv_bytes <= 0:
        return 0.0
    k, dev = ek.k, ek.device
    units = seqs * kv_heads
    dequant, split, stream = k.kv_dequant_s, True, 0.0
    if (heads <= kv_heads and not k.decode_mha_as_gqa) or not runs_gqa_kernel(k, units, context, kv_fp8):
        # MHA, or GQA the engine runs on its MHA kernel: one unit per query head, each reading its KV head
        floor, per_unit, dequant = k.decode_mha_floor_s, k.decode_mha_seq_s, k.decode_mha_dequant_s
        units, kv_bytes = seqs * max(heads, kv_heads), kv_bytes * max(heads / kv_heads, 1.0)
        if k.decode_mha_block_tokens > 0:  # each thread block streams its chunk of the history at its own rate,
            chunks = mha_chunks(k.decode_mha_block_tokens, k.gemm_sms, units, context)  # reduced if several
            stream, split = (context + 1) / chunks * k.decode_mha_token_s, chunks > 1
    else:  # GQA: an engine with a multi-block heuristic runs `blocks` thread blocks per unit, reduced if > 1
        floor, per_unit = ((k.decode_fp8_floor_s, k.decode_fp8_seq_s * head_tiles(k, heads / kv_heads)) if kv_fp8
                           else (k.decode_attention_floor_s, k.decode_seq_s))
        blocks = split_blocks(k.decode_split_block_tokens, k.gemm_sms, units, context)
        units, split = units * blocks, blocks > 1 or k.decode_split_block_tokens <= 0
    if stream > 0:  # MMHA: whole waves of thread blocks, each after the first taking the time of its unit slots
        slots = MMHA_THREADS_PER_SM / MMHA_BLOCK_THREADS * k.gemm_sms
        unit_t = (mha_waves(k.gemm_sms, units) - 1) * slots * per_unit
    else:  # the first u_free units run on idle SMs, each further one adds its time
        unit_t = max(units - k.decode_free_units, 0.0) * per_unit
    terms = (unit_t,
             serving_attention_sm100.kv_read_s(ek, kv_bytes, warm_l2),
             kv_bytes * dequant if kv_fp8 else 0.0, stream)
    t = floor + smooth_max(terms, k.decode_overlap_exponent)
    t += k.decode_split_s * context / (context + k.decode_split_tokens) if split else 0.0
    return max(k.kernel_floor_s, t, flops / (dev.bf16_flops_per_s * k.attention_efficiency))


def runs_gqa_kernel(k: KernelConstants, units: float, context: float, kv_fp8: bool) -> bool:
    """Whether an engine runs its GQA decode kernel for `units` (sequence, KV head) pairs over `context` cached
    tokens (TensorRT-LLM's XQA `mayHavePerfGain`): always over an FP8 KV cache (its source picks XQA there in any
    case: MMHA lacks BF16 queries over an FP8 cache) or without a selection rule (decode_gqa_min_block_factor 0),
    else only when its thread blocks, units · max(⌊(c+1) / block_tokens⌋, 1), times the factor reach the SM
    count; below that its MHA kernel runs."""
    if kv_fp8 or k.decode_gqa_min_block_factor <= 0:
        return True
    chunks = max(math.floor((context + 1) / k.decode_split_block_tokens), 1) if k.decode_split_block_tokens > 0 else 1
    return units * chunks * k.decode_gqa_min_block_factor >= k.gemm_sms


def head_tiles(k: KernelConstants, group: float) -> int:
    """Tiles of decode_fp8_head_tile query heads that a unit's `group` query heads (per KV head) fill in the FP8-KV
    GQA kernel (TensorRT-LLM's Hopper XQA pads them to a multiple of 8, the GMMA N of its swapped-AB tile): its
    per-unit time scales with them; 1 without such a tile."""
    return max(math.ceil(group / k.decode_fp8_head_tile), 1) if k.decode_fp8_head_tile > 0 else 1


MMHA_BLOCK_THREADS = 256
"""threads of TensorRT-LLM's MMHA decode block before its launcher enlarges them for few units"""
MMHA_THREADS_PER_SM = 1024
"""threads of MMHA blocks resident on one SM (its launcher: at most 32 warps per SM, limited by registers)"""


def mha_waves(sms: float, units: float) -> int:
    """Waves of TensorRT-LLM's MMHA thread blocks over `units` (sequence, head) pairs: from 4·SMs units on, blocks
    of 256 threads, 4 per SM; below that its launcher enlarges them by ⌈4·SMs / u⌉ (at most 4x), used as 256, 512
    or 1024 threads, which leaves 1024 / size blocks per SM."""
    per_sm = MMHA_THREADS_PER_SM // MMHA_BLOCK_THREADS
    size = MMHA_BLOCK_THREADS * min(math.ceil(per_sm * sms / units), per_sm) if units < per_sm * sms else 0
    size = 1024 if size >= 1024 else (512 if size >= 512 else MMHA_BLOCK_THREADS)
    return max(math.ceil(units / (sms * MMHA_THREADS_PER_SM / size)), 1)


def mha_chunks(block_tokens: float, sms: float, units: float, context: float) -> int:
    """Thread blocks per (sequence, head) of an MHA decode kernel with a multi-block mode (TensorRT-LLM's MMHA):
    enough to fill the SMs once, ⌈sms / units⌉, but no more than chunks of `block_tokens` in the history of c + 1
    tokens (one pass of its KV loop per block)."""
    return max(min(math.ceil(sms / units), math.ceil((context + 1) / block_tokens)), 1)


SPLIT_TARGET_WAVES = 8.0
"""waves of thread blocks a split-KV launch aims to stay under (TensorRT-LLM's XQA multi-block heuristic)"""


def split_blocks(block_tokens: float, sms: float, units: float, context: float) -> int:
    """Thread blocks per work unit of a decode kernel that splits the KV history (context + 1 tokens, with
    the new one) into chunks of at least `block_tokens` (0: no such split, one block per unit): n = ⌊(c+1) /
    block_tokens⌋, capped at round(√(8n)) (a bounded reduction), then cut by the factor by which u·n blocks
    exceed SPLIT_TARGET_WAVES waves over `sms` SMs."""
    if block_tokens <= 0:
        return 1
    n = max(math.floor((context + 1) / block_tokens), 1)
    n = max(min(n, round(math.sqrt(8.0 * n))), 1)
    excess = units * n / sms / SPLIT_TARGET_WAVES
    return max(math.floor(n / excess), 1) if excess > 1.0 else n


def smooth_max(terms: tuple[float, ...], p: float) -> float:
    """(Σ xᵢᵖ)^(1/p) of non-negative times: their sum at p = 1, tending to their maximum as p grows (computed
    in microseconds, scale-free)."""
    scale = 1e6
    return float(sum((x * scale) ** p for x in terms) ** (1.0 / p) / scale)
