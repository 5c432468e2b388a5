"""Model inventory for inference: parameters per layer part, KV-cache bytes per token (GQA, MLA).

Per layer, with h = hidden, a = heads, g = kv_heads, d = head_dim, f = ffn, m = 3 (gated MLP) or 2:
  attention (MHA/GQA)  q: h·a·d, k and v: 2·h·g·d, out: a·d·h
  attention (MLA)      q: h·r_q + r_q·a·(d_n + d_r) (r_q = 0: h·a·(d_n + d_r)); kv down: h·(d_c + d_r);
                       kv up: d_c·a·(d_n + d_v); out: a·d_v·h      (DeepSeek-V2, arXiv 2405.04434)
  dense MLP            m·h·f
  MoE MLP              E·m·h·f_e routed + S·m·h·f_s shared + h·E router; a token activates k routed experts
KV cache per token and layer: GQA 2·g·d·β; MLA (d_c + d_r)·β (one latent shared by all heads).
Per GPU: GQA divides by min(tp, g) (ranks beyond g replicate a KV head); the MLA latent is not sharded by TP
(every rank of the group holds the whole latent), as in vLLM/SGLang MLA backends without DP attention.
"""

from dataclasses import dataclass

from costmodels.geometry import attention_matrix_params, mlp_params
from costmodels.model import ModelSpec

BYTES_PER_ELEMENT = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0}


@dataclass(frozen=True, kw_only=True, slots=True)
class LayerParams:
    """Parameter counts of one transformer block (elements, not bytes)."""

    qkv: float
    """query/key/value projections (MLA: down and up projections)"""
    out: float
    """attention output projection"""
    mlp: float
    """dense MLP (0 on MoE layers)"""
    routed_expert: float
    """one routed expert (0 on dense layers)"""
    shared: float
    """all shared experts together (0 on dense layers)"""
    router: float
    """router weights"""


def layer_params(model: ModelSpec, index: int) -> LayerParams:
    """Parameters of block `index`."""
    qkv, out = attention_matrix_params(model)
    if model.layer_is_moe(index):
        moe = model.moe_dims
        shared_ffn = moe.shared_expert_ffn or moe.expert_ffn
        return LayerParams(qkv=qkv, out=out, mlp=0.0, routed_expert=mlp_params(model, moe.expert_ffn),
                           shared=moe.shared_experts * mlp_params(model, shared_ffn),
                           router=float(model.hidden * moe.experts))
    return LayerParams(qkv=qkv, out=out, mlp=mlp_params(model, model.ffn), routed_expert=0.0, shared=0.0, router=0.0)


def total_params(model: ModelSpec) -> float:
    """All weights (embedding, blocks, LM head; MTP modules excluded: serving engines do not load them by default)."""
    emb = model.vocab * model.hidden * (1 if model.tied_embeddings else 2)
    experts = model.moe_dims.experts if model.moe else 0
    blocks = 0.0
    for i in range(model.layers):
        p = layer_params(model, i)
        blocks += p.qkv + p.out + p.mlp + experts * p.routed_expert + p.shared + p.router
    return float(emb + blocks)


def active_params(model: ModelSpec) -> float:
    """Weights one token multiplies (routed experts: top_k of them)."""
    top_k = model.moe_dims.top_k if model.moe else 0
    blocks = 0.0
    for i in range(model.layers):
        p = layer_params(model, i)
        blocks += p.qkv + p.out + p.mlp + top_k * p.routed_expert + p.shared + p.router
    return float(2 * model.vocab * model.hidden + blocks)


def kv_bytes_per_token_layer(model: ModelSpec, dtype: str = "bf16") -> float:
    """KV-cache bytes one token occupies in one layer, whole model (not divided by TP)."""
    beta = BYTES_PER_ELEMENT[dtype]
    if model.attention == "mla":
        return (model.mla_dims.kv_lora_rank + model.mla_dims.qk_rope_head_dim) * beta
    return 2.0 * model.kv_heads * model.head_dim * beta


def kv_shard(model: ModelSpec, tp: int) -> float:
    """Divisor of per-layer KV bytes on one GPU of a TP group (MLA: 1, GQA: min(tp, kv_heads))."""
    if model.attention == "mla":
        return 1.0
    return float(min(tp, model.kv_heads))


def kv_bytes_per_token(model: ModelSpec, dtype: str = "bf16") -> float:
    """KV-cache bytes of one token over all layers (the bytes moved by a prefill-to-decode transfer)."""
    return kv_bytes_per_token_layer(model, dtype) * model.layers
