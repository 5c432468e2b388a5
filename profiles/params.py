"""Parameter counts of a ModelSpec, to check profiles against the published sizes and to show them.

Counted: embeddings (and the LM head unless tied), attention projections (MHA/GQA or MLA with its
down/up projections and latent norms), MLP or routed + shared experts and the router, RMS/LayerNorm
weights. Not counted: biases and learned position embeddings (GPT-3: 25e6 of 175e9). Multi-token
prediction modules are reported separately (DeepSeek-V3's 671e9 excludes its 14e9 MTP module).
"""

from dataclasses import dataclass

from costmodels.model import ModelSpec


@dataclass(frozen=True, kw_only=True, slots=True)
class ParameterCount:
    total: int
    """all parameters of the main model (MTP excluded)"""
    active: int
    """parameters a token passes through (top_k routed experts instead of all)"""
    mtp: int
    """parameters of the multi-token-prediction modules (embedding and head shared, not counted again)"""


def _attention(m: ModelSpec) -> int:
    h = m.hidden
    if m.mla is not None:
        a = m.mla
        qk = a.qk_nope_head_dim + a.qk_rope_head_dim
        q = (h * a.q_lora_rank + a.q_lora_rank + a.q_lora_rank * m.heads * qk) if a.q_lora_rank else h * m.heads * qk
        kv = h * (a.kv_lora_rank + a.qk_rope_head_dim) + a.kv_lora_rank
        kv += a.kv_lora_rank * m.heads * (a.qk_nope_head_dim + a.v_head_dim)
        return q + kv + m.heads * a.v_head_dim * h
    return h * m.heads * m.head_dim * 2 + 2 * h * m.kv_heads * m.head_dim


def _mlp(m: ModelSpec, width: int) -> int:
    return (3 if m.gated_mlp else 2) * m.hidden * width


def _moe_block(m: ModelSpec, routed: int) -> int:
    moe = m.moe
    shared = moe.shared_experts * _mlp(m, moe.shared_expert_ffn or moe.expert_ffn)
    return routed * _mlp(m, moe.expert_ffn) + shared + m.hidden * moe.experts


def count_parameters(m: ModelSpec) -> ParameterCount:
    """Total, active-per-token and MTP parameter counts."""
    embed = m.vocab * m.hidden * (1 if m.tied_embeddings else 2) + m.hidden  # + final norm
    layer_common = _attention(m) + 2 * m.hidden
    total = active = embed + m.layers * layer_common + m.dense_layers * _mlp(m, m.ffn)
    if m.moe is not None:
        total += m.moe_layers * _moe_block(m, m.moe.experts)
        active += m.moe_layers * _moe_block(m, m.moe.top_k)
    last_mlp = _moe_block(m, m.moe.experts) if m.layer_is_moe(m.layers - 1) else _mlp(m, m.ffn)
    # one MTP module: two input norms, a 2h -> h projection, one transformer block (DeepSeek-V3 sec. 2.2)
    mtp = m.mtp_layers * (2 * m.hidden + 2 * m.hidden * m.hidden + layer_common + last_mlp)
    return ParameterCount(total=total, active=active, mtp=mtp)
