"""FLOP counts of a decoder-only transformer, by part (pure arithmetic, no hardware, no parallelism).

Notation: T tokens (= b·s), b sequences of length s, h hidden, a query heads, g kv heads, d head width,
f MLP width, V vocabulary, k routed experts per token, E routed experts. One multiply-add = 2 FLOPs.

Forward FLOPs of one layer:
  QKV projection     2·T·h·(a·d + 2·g·d)                    (MLA: the down/up projections, see below)
  output projection  2·T·(a·d_v)·h
  attention core     QK^T 2·b·s²·a·d_qk and AV 2·b·s²·a·d_v; a causal mask halves both (default)
  dense MLP          2·T·h·f·(3 if gated else 2)
  MoE MLP            routed k·2·T·h·f_e·(3|2) + shared 2·T·h·f_s·(3|2) + router 2·T·h·E
  logits (once)      2·T·h·V
Backward = 2 × forward. Recompute adds (`recompute_share`, the one table of what each mode runs again):
selective = the attention core forward (Megatron, DeepSpeed) or, under op-level SAC (torchtitan), every
second matmul of a block in call order (`op_sac_gemm_fractions`: wk, wo and w3 of a Llama block) and the
element-wise ops; selective-layer = every LAYER_SAC_INTERVAL-th layer's whole forward (torchtitan selective_ac_option
"2"; on average 1/2 of every part); full = the whole layer forward. Model FLOPs (MFU) never count recompute;
hardware FLOPs (HFU) do.

Check against Megatron (Narayanan et al. 2021, eq. 3; Korthikanti et al. 2022): for a GPT layer
(MHA, f = 4h, not gated) counted without the causal halving, one step of B sequences costs
  72·B·s·L·h²·(1 + s/(6h) + V/(12·L·h))     without recompute
  96·B·s·L·h²·(1 + s/(6h) + V/(16·L·h))     with full recompute
(`megatron_formula_flops`; tests/costmodels/test_flops.py checks that the part sums equal these).
"""

from dataclasses import dataclass

from costmodels.model import ModelSpec


@dataclass(frozen=True, slots=True)
class LayerFlops:
    """Forward FLOPs of one transformer layer for one batch, by part (unsharded: the whole layer)."""

    qkv: float
    """query/key/value projections (MLA: all down and up projections)"""
    attn_out: float
    """attention output projection"""
    attention_core: float
    """QK^T and AV (causal-halved unless counted otherwise)"""
    mlp: float
    """dense MLP, or the shared experts of an MoE layer"""
    experts: float
    """routed experts (k copies of every token)"""
    router: float
    """MoE gate"""

    @property
    def total(self) -> float:
        return self.qkv + self.attn_out + self.attention_core + self.mlp + self.experts + self.router

    def scaled(self, factor: float) -> "LayerFlops":
        return LayerFlops(self.qkv * factor, self.attn_out * factor, self.attention_core * factor,
                          self.mlp * factor, self.experts * factor, self.router * factor)


def _mlp_matrices(model: ModelSpec) -> int:
    return 3 if model.gated_mlp else 2


def attention_projection_flops(model: ModelSpec, tokens: float) -> tuple[float, float]:
    """(QKV, output) projection forward FLOPs for `tokens` tokens."""
    h, a = model.hidden, model.heads
    if model.attention == "mla":
        m = model.mla_dims
        qk_dim = m.qk_nope_head_dim + m.qk_rope_head_dim
        if m.q_lora_rank > 0:
            q = 2 * tokens * (h * m.q_lora_rank + m.q_lora_rank * a * qk_dim)
        else:
            q = 2 * tokens * h * a * qk_dim
        kv_down = 2 * tokens * h * (m.kv_lora_rank + m.qk_rope_head_dim)
        kv_up = 2 * tokens * m.kv_lora_rank * a * (m.qk_nope_head_dim + m.v_head_dim)
        return q + kv_down + kv_up, 2 * tokens * a * m.v_head_dim * h
    d = model.head_dim
    return 2 * tokens * h * (a * d + 2 * model.kv_heads * d), 2 * tokens * a * d * h


def attention_head_dims(model: ModelSpec) -> tuple[int, int]:
    """(query-key width, value width) of one head."""
    if model.attention == "mla":
        return model.mla_dims.qk_nope_head_dim + model.mla_dims.qk_rope_head_dim, model.mla_dims.v_head_dim
    return model.head_dim, model.head_dim


def attention_core_flops(model: ModelSpec, batch: float, seq: int, causal: bool = True) -> float:
    """QK^T + AV forward FLOPs for `batch` sequences of length `seq` (halved under a causal mask)."""
    d_qk, d_v = attention_head_dims(model)
    full = 2.0 * batch * seq * seq * model.heads * (d_qk + d_v)
    return full / 2 if causal else full


def mlp_flops(model: ModelSpec, tokens: float, ffn: int) -> float:
    """Forward FLOPs of an MLP of width `ffn` (gated: three matrices, else two)."""
    return 2.0 * tokens * model.hidden * ffn * _mlp_matrices(model)


def moe_flops(model: ModelSpec, tokens: float) -> tuple[float, float, float]:
    """(routed experts, shared experts, router) forward FLOPs of one MoE layer."""
    moe = model.moe_dims
    routed = moe.top_k * mlp_flops(model, tokens, moe.expert_ffn)
    shared_ffn = moe.shared_expert_ffn or moe.expert_ffn
    shared = moe.shared_experts * mlp_flops(model, tokens, shared_ffn)
    router = 2.0 * tokens * model.hidden * moe.experts
    return routed, shared, router


def logits_flops(model: ModelSpec, tokens: float) -> float:
    """Forward FLOPs of the LM head."""
    return 2.0 * tokens * model.hidden * model.vocab


def layer_forward_flops(model: ModelSpec, is_moe: bool, batch: float, seq: int, causal: bool = True) -> LayerFlops:
    """Forward FLOPs of one dense or MoE layer for `batch` sequences of length `seq`."""
    tokens = batch * seq
    qkv, out = attention_projection_flops(model, tokens)
    core = attention_core_flops(model, batch, seq, causal)
    if is_moe:
        routed, shared, router = moe_flops(model, tokens)
        return LayerFlops(qkv, out, core, shared, routed, router)
    return LayerFlops(qkv, out, core, mlp_flops(model, tokens, model.ffn), 0.0, 0.0)


def mtp_extra_flops(model: ModelSpec, tokens: float) -> float:
    """Forward FLOPs of one multi-token-prediction module beyond its transformer layer: the 2h->h
    projection and its own logits (DeepSeek-V3 §2.2)."""
    return 2.0 * tokens * 2 * model.hidden * model.hidden + logits_flops(model, tokens)


LAYER_SAC_INTERVAL = 2
"""selective-layer: every 2nd transformer layer is fully checkpointed, the others keep all activations"""


@dataclass(frozen=True, slots=True)
class RecomputeShare:
    """What recomputation runs again during the backward pass, as fractions of one layer's forward work
    (averaged over the layers of a stage)."""

    gemm: float
    """projection / MLP / expert GEMMs (the share of the layer's GEMM FLOPs when `gemm_parts` is set)"""
    attention: float
    """the attention core"""
    elementwise: float
    """norms, activations, rope, residual adds, casts"""
    layers: float
    """layers fully checkpointed: their forward collectives run again and they keep only their input"""
    unsaved_comm: bool = False
    """op-level SAC: the forward collectives whose outputs are not on the save list run again"""
    gemm_parts: "LayerFlops | None" = None
    """op-level SAC: the fraction of each GEMM part repeated (attention_core unused); None = `gemm` for all"""

    def gemm_flops(self, layer: LayerFlops) -> float:
        """Repeated GEMM work of `layer` (FLOPs, or seconds when `layer` holds the parts' times)."""
        f = self.gemm_parts
        if f is None:
            return self.gemm * (layer.total - layer.attention_core)
        return (f.qkv * layer.qkv + f.attn_out * layer.attn_out + f.mlp * layer.mlp + f.experts * layer.experts
                + f.router * layer.router)


def block_matmuls(model: ModelSpec, is_moe: bool) -> list[tuple[str, float, float, str]]:
    """The aten.mm calls of one torchtitan transformer block in forward order: (LayerFlops part, input width,
    output width per token, TP sharding "col" | "row" | "none"). Attention wq, wk, wv, wo (MLA: wq, or wq_a
    and wq_b, then wkv_a, wkv_b, wo; the down-projections wq_a and wkv_a are not sharded), then the dense MLP
    w1, w3, w2 (not gated: w1, w2) or an MoE layer's shared experts; the router gate is force-recomputed and
    the routed experts run grouped GEMMs, neither counted."""
    h, a = float(model.hidden), model.heads
    calls: list[tuple[str, float, float, str]]
    if model.attention == "mla":
        m = model.mla_dims
        qk = m.qk_nope_head_dim + m.qk_rope_head_dim
        q = [("qkv", h, m.q_lora_rank, "none"), ("qkv", m.q_lora_rank, a * qk, "col")] if m.q_lora_rank \
            else [("qkv", h, a * qk, "col")]
        kv = [("qkv", h, m.kv_lora_rank + m.qk_rope_head_dim, "none"),
              ("qkv", m.kv_lora_rank, a * (m.qk_nope_head_dim + m.v_head_dim), "col")]
        calls = [(p, float(i), float(o), t) for p, i, o, t in q + kv] + [("attn_out", a * m.v_head_dim, h, "row")]
    else:
        d, g = model.head_dim, model.kv_heads
        calls = [("qkv", h, a * d, "col"), ("qkv", h, g * d, "col"), ("qkv", h, g * d, "col"),
                 ("attn_out", a * d, h, "row")]
    ffn = model.ffn
    if is_moe:
        moe = model.moe_dims
        ffn = (moe.shared_expert_ffn or moe.expert_ffn) * moe.shared_experts
    if not ffn:
        return calls
    return calls + [("mlp", h, float(ffn), "col")] * (_mlp_matrices(model) - 1) + [("mlp", float(ffn), h, "row")]


def op_sac_recomputed(model: ModelSpec, is_moe: bool) -> list[bool]:
    """torchtitan op-level SAC (0413364 no_recompute_list, 9dec370 _save_list), per `block_matmuls` call: the
    policy counts a block's aten.mm calls and recomputes every second one (wk, wo and w3 of a Llama block).
    Float8 linears keep the rule: the policy's dispatch mode sees the aten.mm of the Float8Tensor operands
    (torch._scaled_mm, absent from the save lists of 2024-04 to 2025-09, runs beneath it); costing every FP8
    GEMM as recomputed made the FP8 op-SAC rows 3-4 points slower than measured."""
    return [i % 2 == 0 for i in range(1, len(block_matmuls(model, is_moe)) + 1)]


def op_sac_gemm_fractions(model: ModelSpec, is_moe: bool) -> LayerFlops:
    """Op-level SAC: of each GEMM part, the fraction of its forward FLOPs recomputed (36.5 % of Llama-3-8B's
    linear FLOPs, 38.8 % of Llama-2-13B's); the router gate always, the routed experts never."""
    done = {"qkv": 0.0, "attn_out": 0.0, "mlp": 0.0}
    total = dict(done)
    for (part, width_in, width_out, _), redo in zip(block_matmuls(model, is_moe), op_sac_recomputed(model, is_moe),
                                                    strict=True):
        total[part] += width_in * width_out
        done[part] += width_in * width_out if redo else 0.0
    frac = {k: done[k] / total[k] if total[k] else 0.0 for k in done}
    return LayerFlops(frac["qkv"], frac["attn_out"], 0.0, frac["mlp"], 0.0, 1.0)


def recompute_share(recompute: str, ops_sac: bool = False, model: ModelSpec | None = None,
                    is_moe: bool = False) -> RecomputeShare:
    """The share of a layer's forward that `recompute` repeats (`ops_sac`: selective is torchtitan's op-level
    SAC: every other matmul of `model`'s block and the element-wise ops, not the attention core)."""
    if recompute == "full":
        return RecomputeShare(1.0, 1.0, 1.0, 1.0)
    if recompute == "selective-layer":
        part = 1.0 / LAYER_SAC_INTERVAL
        return RecomputeShare(part, part, part, part)
    if recompute == "selective" and ops_sac:
        if model is None:
            raise ValueError("op-level SAC needs the model: which matmuls it repeats depends on the block")
        parts = op_sac_gemm_fractions(model, is_moe)
        per_token = layer_forward_flops(model, is_moe, 1, 1)
        gemm = per_token.total - per_token.attention_core
        share = RecomputeShare(0.0, 0.0, 1.0, 0.0, unsaved_comm=True, gemm_parts=parts)
        return RecomputeShare(share.gemm_flops(per_token) / gemm, 0.0, 1.0, 0.0, True, parts)
    if recompute == "selective":
        return RecomputeShare(0.0, 1.0, 0.0, 0.0)
    return RecomputeShare(0.0, 0.0, 0.0, 0.0)


def recompute_forward_flops(layer: LayerFlops, share: RecomputeShare) -> float:
    """Extra forward FLOPs that recomputation repeats during the backward pass of one layer (`recompute_share`)."""
    return share.gemm_flops(layer) + share.attention * layer.attention_core


def step_flops(model: ModelSpec, global_batch: int, seq: int, recompute: str = "none",
               causal: bool = True, ops_sac: bool = False) -> float:
    """FLOPs of one training step (forward + backward, + recompute when asked) of the whole model.

    With recompute='none' these are the *model* FLOPs used for MFU; with the run's mode, hardware FLOPs.
    """
    dense = layer_forward_flops(model, False, global_batch, seq, causal) if model.dense_layers else None
    moe = layer_forward_flops(model, True, global_batch, seq, causal) if model.moe_layers else None
    total = 0.0
    for is_moe, layer, count in ((False, dense, model.dense_layers), (True, moe, model.moe_layers)):
        if layer is not None:
            share = recompute_share(recompute, ops_sac, model, is_moe)
            total += count * (3 * layer.total + recompute_forward_flops(layer, share))
    tokens = global_batch * seq
    head = logits_flops(model, tokens)
    if model.mtp_layers:
        mtp_layer = moe if moe is not None else dense
        if mtp_layer is not None:  # always: a model has dense or MoE layers
            head += model.mtp_layers * (mtp_layer.total + mtp_extra_flops(model, tokens))
    return total + 3 * head


def megatron_formula_flops(model: ModelSpec, global_batch: int, seq: int, full_recompute: bool) -> float:
    """Megatron's closed form for a GPT model (eq. 3 of arXiv 2104.04473, and its no-recompute form).

    72·B·s·L·h²·(1 + s/6h + V/12Lh) without recompute, 96·B·s·L·h²·(1 + s/6h + V/16Lh) with full
    recompute. Exact for MHA, f = 4h, GELU MLP, no causal halving. This is the convention the 2021
    paper and the Megatron-LM README use for their published TFLOP/s.
    """
    b, s, L, h, V = global_batch, seq, model.layers, model.hidden, model.vocab
    if full_recompute:
        return 96.0 * b * s * L * h * h * (1 + s / (6 * h) + V / (16 * L * h))
    return 72.0 * b * s * L * h * h * (1 + s / (6 * h) + V / (12 * L * h))
