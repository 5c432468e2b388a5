"""Model geometry: parameter counts of every part of a decoder-only transformer (elements, not bytes).

The one source of parameter counts for the training (memory.py), sequence (sequence.py) and serving
paths; FLOP counts live next door in flops.py. Per layer, with h = hidden, a = heads, g = kv_heads,
d = head_dim, f = ffn, m = 3 (gated MLP) or 2:
  attention (MHA/GQA)  q: h·a·d, k and v: 2·h·g·d, out: a·d·h
  attention (MLA)      q: h·r_q + r_q·a·(d_n + d_r) (r_q = 0: h·a·(d_n + d_r)); kv down: h·(d_c + d_r);
                       kv up: d_c·a·(d_n + d_v); out: a·d_v·h; plus the r_q and d_c latent norms
  norms                2·h per layer (before attention and MLP)
  dense MLP            m·h·f
  MoE MLP              E·m·h·f_e routed + S·m·h·f_s shared + h·E router
  embedding V·h; LM head V·h unless tied (and with pp > 1 the last stage keeps a tied copy) + final norm h
  MTP module           one layer + a 2h -> h projection + two norms (DeepSeek-V3 §2.2)
"""

from costmodels.model import ModelSpec


def attention_matrix_params(model: ModelSpec) -> tuple[float, float]:
    """(QKV incl. all MLA down/up projections, output projection) weight-matrix parameters of one layer."""
    h, a = model.hidden, model.heads
    if model.attention == "mla":
        m = model.mla_dims
        qk = m.qk_nope_head_dim + m.qk_rope_head_dim
        q = (h * m.q_lora_rank + m.q_lora_rank * a * qk) if m.q_lora_rank else h * a * qk
        kv = h * (m.kv_lora_rank + m.qk_rope_head_dim) + m.kv_lora_rank * a * (m.qk_nope_head_dim + m.v_head_dim)
        return float(q + kv), float(a * m.v_head_dim * h)
    d = model.head_dim
    return float(h * (a * d + 2 * model.kv_heads * d)), float(a * d * h)


def attention_params(model: ModelSpec) -> float:
    """Parameters of one attention block: its matrices and the MLA latent norms (biases ignored)."""
    qkv, out = attention_matrix_params(model)
    norms = (model.mla_dims.q_lora_rank + model.mla_dims.kv_lora_rank) if model.attention == "mla" else 0
    return qkv + out + norms

def mlp_params(model: ModelSpec, ffn: int) -> float:
    return float((3 if model.gated_mlp else 2) * model.hidden * ffn)


def layer_params(model: ModelSpec, is_moe: bool) -> tuple[float, float]:
    """(dense parameters, routed-expert parameters) of one layer. Dense = attention, norms, dense MLP,
    router and shared experts (sharded by tp); routed experts are sharded by ep·etp."""
    dense = attention_params(model) + 2 * model.hidden
    if not is_moe:
        return dense + mlp_params(model, model.ffn), 0.0
    moe = model.moe_dims
    shared = moe.shared_experts * mlp_params(model, moe.shared_expert_ffn or moe.expert_ffn)
    return dense + model.hidden * moe.experts + shared, moe.experts * mlp_params(model, moe.expert_ffn)


def embedding_params(model: ModelSpec) -> float:
    """Input embedding (first stage)."""
    return float(model.vocab * model.hidden)


def head_params(model: ModelSpec, pp: int) -> float:
    """Final norm + LM head (last stage). With tied embeddings and pp > 1 the last stage still holds a
    copy of the embedding for the output layer (Megatron keeps the two in sync)."""
    head = 0.0 if (model.tied_embeddings and pp == 1) else float(model.vocab * model.hidden)
    return head + model.hidden


def mtp_params(model: ModelSpec) -> tuple[float, float]:
    """(dense, expert) parameters of one MTP module: a layer + 2h->h projection + two norms."""
    dense, experts = layer_params(model, model.moe is not None)
    return dense + 2.0 * model.hidden * model.hidden + 2 * model.hidden, experts


def total_params(model: ModelSpec) -> float:
    """All parameters: every layer (all experts), embedding, LM head unless tied, final norm (no MTP)."""
    total = sum(sum(layer_params(model, model.layer_is_moe(i))) for i in range(model.layers))
    return total + embedding_params(model) + head_params(model, 1)
