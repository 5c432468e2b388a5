"""Memory per GPU: parameters, gradients, optimizer states, activations (bytes).

Model states follow Megatron-LM practice (`theoretical_memory_usage.py`): bf16 parameters (2 B), fp32
main gradients (4 B), fp32 master weights + Adam m, v (12 B) = 18 B per parameter. ZeRO stages
(Rajbhandari et al. 2020) shard over the data-parallel group d (expert parameters over edp):
  ZeRO 0 (DDP)                       2 + 4 + 12
  ZeRO 1 (distributed optimizer)     2 + 4 + 12/d
  ZeRO 2 (+ gradients)               2 + 4/d + 12/d
  ZeRO 3 (+ parameters, FSDP)        (2 + 4 + 12)/d

Activations of one layer for one micro-batch of b sequences of s tokens (16-bit tensors, 1-byte dropout
masks, FlashAttention so no a·s² score terms; Korthikanti et al. 2022, §4), per token:
  attention  2h (LN out / QKV input) + 2·a·d (Q) + 4·g·d (K, V) + 2·a·d (attention output) + 1·h (mask)
             + 4·a (fp32 softmax statistics, dropped under selective recompute)
  dense MLP  2h (input) + (6 if gated else 4)·f (fc1 outputs and activation) + 1·h (mask)
  norms      4h (two LayerNorm inputs)
  GPT (MHA, f = 4h): 11 + 19 + 4 = 34·h, the paper's 34·s·b·h.
Tensor parallelism shards the parts inside the TP region; with sequence parallelism the rest too
(the paper's s·b·h·(10 + 24/t) without SP, 34·s·b·h/t with SP). Context parallelism divides everything
by cp. Full recompute keeps only the layer input 2·s·b·h (/t with SP); selective-layer keeps that in every
2nd layer and everything in the others. MoE layers keep the router
logits (fp32), k permuted copies of every token, the experts' fc1/activation outputs and their outputs.
"""

from costmodels.flops import LAYER_SAC_INTERVAL, block_matmuls, op_sac_recomputed
from costmodels.geometry import (  # noqa: F401  (re-exported: the state-byte users read counts here)
    attention_matrix_params,
    attention_params,
    embedding_params,
    head_params,
    layer_params,
    mlp_params,
    mtp_params,
)
from costmodels.model import ModelSpec

PARAM_BYTES = 2.0
"""bf16 parameter"""
GRAD_BYTES = 4.0
"""fp32 main gradient (Megatron accumulates and reduces gradients in fp32 under bf16)"""
OPTIMIZER_BYTES = 12.0
"""fp32 master weight + Adam first and second moments"""
ACT_BYTES = 2.0
"""16-bit activations"""


def state_bytes_per_param(zero: int, shard: int) -> tuple[float, float, float]:
    """(weight, gradient, optimizer) bytes per parameter per GPU under a ZeRO stage with `shard` ranks."""
    weights = PARAM_BYTES / shard if zero >= 3 else PARAM_BYTES
    grads = GRAD_BYTES / shard if zero >= 2 else GRAD_BYTES
    optim = OPTIMIZER_BYTES / shard if zero >= 1 else OPTIMIZER_BYTES
    return weights, grads, optim


def attention_activation_bytes(model: ModelSpec, tokens: float, tp: int, sp: bool, recompute: str,
                               fp8: bool = False) -> float:
    """Bytes the attention block and its LayerNorm keep for one micro-batch (tokens already / cp).
    Selective recompute also rebuilds MLA's up-projections from the latents (Megatron-Core recompute module
    mla_up_proj); `fp8` keeps the FP8 copy of the QKV GEMM input."""
    h, a, g = model.hidden, model.heads, model.kv_heads
    if model.attention == "mla":
        m = model.mla_dims
        q_w, kv_w, o_w = a * (m.qk_nope_head_dim + m.qk_rope_head_dim), \
            a * (m.qk_nope_head_dim + m.qk_rope_head_dim + m.v_head_dim), a * m.v_head_dim
        latents = 2 * (m.q_lora_rank + m.kv_lora_rank)
        projected = 0 if recompute == "selective" else 2 * q_w + 2 * kv_w
        sharded = projected + 2 * o_w + latents
    else:
        sharded = 2 * a * model.head_dim + 4 * g * model.head_dim + 2 * a * model.head_dim
    if recompute != "selective":
        sharded += 4 * a  # fp32 softmax statistics of flash attention
    replicated = (1 if fp8 else 2) * h + 1 * h + 2 * h  # QKV input, dropout mask, LayerNorm input
    if sp:
        return tokens * (sharded + replicated) / tp
    return tokens * (sharded / tp + replicated)


def mlp_activation_bytes(model: ModelSpec, tokens: float, tp: int, sp: bool) -> float:
    """Bytes a dense MLP block and its LayerNorm keep."""
    sharded = (6 if model.gated_mlp else 4) * model.ffn
    replicated = 2 * model.hidden + 1 * model.hidden + 2 * model.hidden  # input, mask, LayerNorm input
    if sp:
        return tokens * (sharded + replicated) / tp
    return tokens * (sharded / tp + replicated)


def moe_activation_bytes(model: ModelSpec, tokens: float, tp: int, etp: int, selective: bool = False,
                         fp8: bool = False) -> float:
    """Bytes an MoE block keeps. Megatron requires sequence parallelism with MoE and tp > 1, so the
    tokens of this GPU are tokens / tp; the experts see k copies of them (balanced routing).
    `selective`: Megatron-Core's MoE recompute modules (layernorm, moe_act): the norm output (router input)
    and the activation-function output are rebuilt in backward. `fp8`: Transformer Engine keeps the FP8 copy
    of a GEMM input for its weight gradient (1 B per value: the permuted expert input)."""
    moe, h = model.moe_dims, model.hidden
    local = tokens / tp
    router_input = 0 if selective else 2 * h
    per_token = 2 * h + router_input + 1 * h + 4 * moe.experts  # LN input, router input, mask, fp32 logits
    act = (4 if model.gated_mlp else 2) if selective else (6 if model.gated_mlp else 4)
    gemm_input = 1 if fp8 else 2
    routed = moe.top_k * (gemm_input * h + act * moe.expert_ffn / etp + 2 * h)  # permuted input, fc1/act, out
    shared_ffn = moe.shared_expert_ffn or moe.expert_ffn
    shared = moe.shared_experts * act * shared_ffn
    return local * (per_token + routed + shared)


def ops_sac_activation_bytes(model: ModelSpec, tokens: float, tp: int) -> float:
    """Bytes a dense layer keeps under op-level selective checkpointing (torchtitan "selective op"): the layer
    input, the outputs of the odd-numbered matmuls of the block (flops.block_matmuls: wq, wv, w1, w2 of a Llama
    block), the attention output and its fp32 log-sum-exp; everything element-wise is recomputed. Shards by
    tp like the TP region."""
    saved = sum(call[2] for call, redo in zip(block_matmuls(model, False), op_sac_recomputed(model, False),
                                              strict=True) if not redo)
    _, out = (w / model.hidden for w in attention_matrix_params(model))
    attention_out = ACT_BYTES * out + 4 * model.heads
    return tokens * (ACT_BYTES * model.hidden + ACT_BYTES * saved + attention_out) / tp


def layer_activation_bytes(model: ModelSpec, is_moe: bool, mbs: int, seq: int, *, tp: int, cp: int, etp: int,
                           sp: bool, recompute: str, ops_sac: bool = False, fp8: bool = False) -> float:
    """Activation bytes one layer keeps for one in-flight micro-batch on one GPU (`ops_sac`: selective
    recompute is torchtitan's op-level SAC; MoE layers keep Megatron's accounting; `fp8`: FP8 GEMM inputs
    kept for backward, as Transformer Engine does). selective-layer gives the average over the layers of a
    stage (every 2nd layer checkpointed fully, the others keep everything), which is what the per-stage
    sums and the in-flight micro-batch count multiply."""
    tokens = mbs * seq / cp
    layer_input = tokens * ACT_BYTES * model.hidden / (tp if sp else 1)
    if recompute == "full":
        return layer_input
    if recompute == "selective" and ops_sac and not is_moe:
        return ops_sac_activation_bytes(model, tokens, tp)
    kept = layer_working_activation_bytes(model, is_moe, mbs, seq, tp=tp, cp=cp, etp=etp, sp=sp,
                                          recompute="none" if recompute == "selective-layer" else recompute, fp8=fp8)
    if recompute == "selective-layer":  # the average layer: 1 in LAYER_SAC_INTERVAL keeps only its input
        return layer_input / LAYER_SAC_INTERVAL + kept * (1 - 1 / LAYER_SAC_INTERVAL)
    return kept


def layer_working_activation_bytes(model: ModelSpec, is_moe: bool, mbs: int, seq: int, *, tp: int, cp: int,
                                   etp: int, sp: bool, recompute: str = "none", fp8: bool = False) -> float:
    """Activations of one layer when it is materialised (no recompute): what full recompute rebuilds
    during the backward pass of one layer."""
    tokens = mbs * seq / cp
    attn = attention_activation_bytes(model, tokens, tp, sp, recompute, fp8)
    if is_moe:
        return attn + moe_activation_bytes(model, tokens, tp, etp, recompute == "selective", fp8)
    return attn + mlp_activation_bytes(model, tokens, tp, sp)


def embedding_activation_bytes(model: ModelSpec, mbs: int, seq: int, *, tp: int, cp: int, sp: bool) -> float:
    """Embedding output and its dropout mask (first stage), per in-flight micro-batch."""
    tokens = mbs * seq / cp
    return tokens * 3 * model.hidden / (tp if sp else 1) + tokens * 8  # + int64 token ids


def head_activation_bytes(model: ModelSpec, mbs: int, seq: int, *, tp: int, cp: int, sp: bool) -> float:
    """Final norm input, LM-head input and the fp32 softmax of the vocabulary-parallel cross entropy
    (last stage; one micro-batch in flight there under 1F1B)."""
    tokens = mbs * seq / cp
    return tokens * 4 * model.hidden / (tp if sp else 1) + tokens * 4 * model.vocab / tp
