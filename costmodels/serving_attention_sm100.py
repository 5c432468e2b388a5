"""Attention terms of the Blackwell (SM100) kernels the engines run, on top of costmodels/serving_attention.py.

On B200 all three engines' attention runs TensorRT-LLM-gen FMHA kernels (TensorRT-LLM 1.3.0rc20 natively; vLLM 0.24.0
through FlashInfer: vllm/utils/flashinfer.py use_trtllm_attention picks them for prefill with a BF16 KV cache on
SM100; SGLang 0.5.14: server_args get_default_attn_backend, "Use trtllm_mha for SM100/SM103" for MHA/GQA models).
Two behaviours the Hopper formulas lack, each switched on by a 0/1 kernel constant read from the engine's source
(set per engine in profiles/hardware/b200.yaml by benchmarks/serve_engine_fit.py ENGINE_DEVICE_CONSTANTS; not fitted):

  prefill_tail_tile: the work units (sequence, query head, 128-row query tile) are taken by the SMs in turn, so the
      kernel ends when its last unit does: after the whole work spread over the SMs, F / (P_bf16 · eff), at worst one
      more unit, the longest (the last query tile of the longest sequence, 128 rows over all its keys), run at one
      SM's share of the peak:  + F_tile · SMs / (P_bf16 · eff)   (the list-scheduling bound: mean + longest job)
      It dominates where few units carry long rows (one sequence of a few heads: 32 units of a 4096-token prompt
      on 148 SMs take 2.3x the spread-out time), and vanishes against many short units.
  prefill_one_token_decode: a batch whose sequences each bring one new token runs the engine's decode kernel
      (vLLM's FlashInfer backend splits a batch by query length, reorder_batch_threshold 1: one-token requests go
      to its decode wrapper, the table's kernel_source vllm_flashinfer_trtllmdecode), which packs the query heads of
      a KV head into one work unit: serving_attention.decode_attention_s over a one-token context, not b · h
      query tiles of one row each (that overestimate was the 862 % worst point of vLLM's B200 prefill rows).
  decode_mha_as_gqa: TensorRT-LLM-gen decode packs the query heads of a KV head into one unit whatever their number,
      so MHA (one query head per KV head) runs that kernel with a group of one, on the GQA constants
      (serving_attention.decode_attention_s), not a kernel of its own (Hopper: decode_mha_*); TensorRT-LLM on SM100
      runs it for generation (attentionOp.h mUseTllmGen), not its Hopper XQA/MMHA pair (their selection rule,
      multi-block split and 8-head padding are off on B200).
And one term of the measured tables, never of a server: a per-op benchmark repeats one layer's decode call, so a KV
cache that fits in the L2 (kv_warm_l2: B200's 126 MB; its tables step from 12.5 us at 67 MB to 28 us at 134 MB)
is read from L2 at the fitted kv_l2_bytes_per_s (`kv_read_s` with warm_l2); a server streams every layer's weights
and KV cache through L2 between two calls of a layer, so serving reads it from HBM.
"""

from costmodels.serving_kernels import EngineKernels

QUERY_TILE = 128
"""query rows of one prefill work unit (TensorRT-LLM-gen context FMHA on SM100: 128-row Q tiles)"""


def tail_tile_s(ek: EngineKernels, tile_flops: float, efficiency: float) -> float:
    """The last work unit's time at one SM's share of the BF16 peak, F_tile · SMs / (P_bf16 · eff), when the
    engine's prefill kernel has prefill_tail_tile set (else 0); `tile_flops`: FLOPs of the longest unit
    (`longest_tile_flops`), `efficiency`: the prefill kernel's efficiency at the batch's rows."""
    if not ek.k.prefill_tail_tile or tile_flops <= 0:
        return 0.0
    return tile_flops * ek.k.gemm_sms / (ek.device.bf16_flops_per_s * efficiency)


def longest_tile_flops(new_tokens: float, context: float, width: float) -> float:
    """FLOPs of the longest causal work unit of one query head: the last min(n, 128) rows of a sequence of n new
    tokens after `context` cached ones, each over its keys (n + context - rows/2 on average), 2 FLOPs per
    multiply-add over `width` = d_qk + d_v."""
    rows = min(new_tokens, QUERY_TILE)
    if rows <= 0:
        return 0.0
    return 2.0 * rows * (new_tokens + context - rows / 2) * width


def runs_decode_kernel(ek: EngineKernels, new_tokens: float) -> bool:
    """Whether a prefill batch of sequences with `new_tokens` new tokens each runs the engine's decode kernel
    (prefill_one_token_decode set and one new token per sequence)."""
    return bool(ek.k.prefill_one_token_decode) and new_tokens <= 1


def kv_read_s(ek: EngineKernels, kv_bytes: float, warm_l2: bool = False) -> float:
    """Time to read `kv_bytes` of KV cache: from HBM, K / (BW · η_kv); when `warm_l2` (a per-op benchmark repeating
    one layer's call, never a server, whose layers' weights evict it) and the cache fits in the L2 (kv_warm_l2),
    from L2 at the fitted kv_l2_bytes_per_s."""
    k = ek.k
    if warm_l2 and k.kv_warm_l2 and kv_bytes <= ek.device.l2_bytes:
        return kv_bytes / k.kv_l2_bytes_per_s
    return kv_bytes / (ek.device.hbm_bytes_per_s * k.kv_read_efficiency)
