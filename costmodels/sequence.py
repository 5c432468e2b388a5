"""Cost of one training sequence on a sequence-parallel (SP) group, and the memory it needs.

A *group* of degree d holds d SP ranks; with tensor parallelism tp each SP rank is a TP group, so the
group uses d·tp GPUs. One sequence of s tokens is split into d shards of s/d tokens.

Time of one sequence (forward + backward, seconds), per layer, summed over `layers`:
  linear   = 3 · 2 · P_lin · s / (d·tp · peak · eff_gemm(F)),  P_lin = attention + active MLP matrices,
             eff_gemm = compute.gemm_efficiency(tokens, h/tp, h, dtype) (m x k x n of one projection)
  attention (causal, flash) = 3.5 · a · s² · (d_qk + d_v) / (d·tp · peak · attention_efficiency)
             (forward a·s²·(d_qk+d_v) FLOPs after causal halving; backward ≈ 2.5× forward because flash
             attention recomputes the scores; zig-zag sharding balances the causal mask across ranks)
  ulysses  = 4 all-to-alls per layer (QKV and O, forward and backward), each α + (u-1)/u · bytes / bw,
             bytes per GPU = (s/u) · 2 B · d_h · (2·a_loc + 2·max(kv_loc, u)); kv heads are replicated
             when u > kv_loc (each rank then needs one kv head for the whole sequence). Not overlapped.
             A group of whole nodes sends (u - n)/u of those bytes over the NIC and (n - 1)/u over NVLink
             at the same time (n = SP ranks per node): max of the two; a group split across nodes
             otherwise (not whole nodes) is charged (u-1)/u over the NIC (conservative).
  ring     = (r-1) P2P passes of a KV block of (s/r) · 2 · kv_blk · d_h · 2 B forward and twice that backward;
             each pass overlaps the attention of the previous block, so the exposed time is
             max(ring transfer, attention) - attention (documented overlap: full, up to the compute).
  hybrid   = ulysses of degree u inside a node (largest valid u | d with u·tp ≤ GPUs per node) times a
             ring of degree r = d/u; the ring runs over the slowest link the group spans.
  tp       = 8 sequence-parallel collectives per layer (4 all-gather + 4 reduce-scatter) of (s/d)·h·2 B.
  logits   = 3 · 2 · h · V · s / (d·tp · peak · eff_gemm); fixed = calibration.seq_overhead_s per sequence.
  Short sequences are packed: eff_gemm uses F = 2·max(s/d, PACKED_TOKENS_PER_GPU)·h·h/tp.
Bandwidth bw is the intra-node link (× intra_node_efficiency) when the group's GPUs share a node, else the
NIC (× inter_node_efficiency); α = calibration.collective_latency_s per call.

Memory per GPU (bytes):
  static = P/tp · (2 weights + 4 fp32 gradients + 12 Adam states), ZeRO stage z over dp = N/tp replicas
           divides the optimizer states (z ≥ 1), gradients (z ≥ 2) and weights (z = 3) by dp.
  activations of a sequence on degree d = (s/d) · A_tok / tp, with no recomputation and flash attention
           (no s² term); per token and layer A = 10h + 2(a·d_qk + 2·kv·d_qk) + 2·a·d_v + (10 or 6)·f_active
           bytes (bf16), plus 6·V bytes per token for the logits and loss (Korthikanti et al. 2022,
           arXiv 2205.05198, adapted to GQA and gated MLPs).
A micro-batch fits when its sequences' activations sum to at most usable HBM − static.
"""

import math

import numpy as np
from numpy.typing import ArrayLike

from costmodels.compute import gemm_efficiency
from costmodels.errors import InfeasibleError, require
from costmodels.geometry import attention_matrix_params, total_params
from costmodels.hardware import DeviceSpec
from costmodels.model import ModelSpec

SP_STYLES = ("ulysses", "ring", "hybrid")
BYTES_BF16 = 2.0
ATTENTION_BACKWARD_FACTOR = 2.5
"""flash-attention backward FLOPs relative to forward (scores are recomputed)"""
PACKED_TOKENS_PER_GPU = 4096
"""short sequences are packed (varlen) into micro-batches of at least this many tokens per GPU, so GEMM
efficiency is that of max(s/d, this) tokens; the per-sequence cost left is calibration.seq_overhead_s"""
ZERO_DEFAULT_STATIC_FRACTION = 0.5
"""default ZeRO stage: the smallest in 1..3 whose static memory is at most this share of usable HBM"""


def _attention_dims(model: ModelSpec) -> tuple[int, int, int]:
    """(kv heads as communicated, query/key head width, value head width)."""
    if model.mla is not None:
        m = model.mla
        return model.heads, m.qk_nope_head_dim + m.qk_rope_head_dim, m.v_head_dim
    return model.kv_heads, model.head_dim, model.head_dim


def _mlp_widths(model: ModelSpec) -> tuple[float, float]:
    """(average active MLP intermediate width per layer, total MLP intermediate width summed over layers)."""
    if model.moe is None:
        return float(model.ffn), float(model.ffn * model.layers)
    moe = model.moe
    shared = moe.shared_experts * (moe.shared_expert_ffn or moe.expert_ffn)
    active_moe = moe.top_k * moe.expert_ffn + shared
    total_moe = moe.experts * moe.expert_ffn + shared
    n_moe, n_dense = model.moe_layers, model.dense_layers
    active = (n_dense * model.ffn + n_moe * active_moe) / model.layers
    return float(active), float(n_dense * model.ffn + n_moe * total_moe)


def parameter_count(model: ModelSpec) -> float:
    """All parameters (weights of every expert, embeddings, LM head unless tied): geometry.total_params."""
    return total_params(model)


def static_bytes_per_gpu(model: ModelSpec, *, tp: int, zero: int, dp: int) -> float:
    """Weights, fp32 gradients and Adam states per GPU under ZeRO stage `zero` over `dp` replicas."""
    p = parameter_count(model) / tp
    weights, grads, optim = 2.0 * p, 4.0 * p, 12.0 * p
    optim /= dp if zero >= 1 else 1
    grads /= dp if zero >= 2 else 1
    weights /= dp if zero >= 3 else 1
    return weights + grads + optim


def default_zero(model: ModelSpec, device: DeviceSpec, *, tp: int, dp: int) -> int:
    """Smallest ZeRO stage in 1..3 whose static memory is ≤ ZERO_DEFAULT_STATIC_FRACTION of usable HBM (else 3)."""
    for zero in (1, 2, 3):
        if static_bytes_per_gpu(model, tp=tp, zero=zero, dp=dp) <= ZERO_DEFAULT_STATIC_FRACTION * device.usable_bytes:
            return zero
    return 3


def activation_bytes_per_token(model: ModelSpec, *, tp: int) -> float:
    """Activation bytes one token keeps for the backward pass, per GPU of a TP group (no recompute)."""
    h, a = model.hidden, model.heads
    kv, d_qk, d_v = _attention_dims(model)
    f_active, _ = _mlp_widths(model)
    mlp = (10.0 if model.gated_mlp else 6.0) * f_active
    per_layer = 10.0 * h + 2.0 * (a * d_qk + 2 * kv * d_qk) + 2.0 * a * d_v + mlp
    return (model.layers * per_layer + 6.0 * model.vocab) / tp


def memory_left_bytes(model: ModelSpec, device: DeviceSpec, *, tp: int, zero: int, dp: int) -> float:
    """Usable HBM per GPU left for activations; raises InfeasibleError when the static part does not fit."""
    static = static_bytes_per_gpu(model, tp=tp, zero=zero, dp=dp)
    left = device.usable_bytes - static
    if left <= 0:
        raise InfeasibleError(
            f"weights, gradients and optimizer states need {static / 2**30:.1f} GiB per GPU at tp={tp}, "
            f"zero={zero}, dp={dp}; {device.name} has {device.usable_bytes / 2**30:.1f} GiB usable",
            details={"static_bytes": static, "usable_bytes": device.usable_bytes})
    return left


def ulysses_valid(model: ModelSpec, degree: int, tp: int) -> bool:
    """Ulysses needs degree | local heads, and degree | local kv heads or local kv heads | degree (replication)."""
    kv, _, _ = _attention_dims(model)
    if model.heads % tp or kv % tp and tp % kv:
        return False
    a_loc, kv_loc = model.heads // tp, max(kv // tp, 1)
    return a_loc % degree == 0 and (kv_loc % degree == 0 or degree % kv_loc == 0)


def degree_valid(model: ModelSpec, style: str, degree: int, tp: int) -> bool:
    """Whether an SP group of this degree is possible for the style (ring and hybrid take any degree)."""
    require(style in SP_STYLES, f"unknown SP style {style!r}; valid: {', '.join(SP_STYLES)}", field="sp_style")
    return degree >= 1 and (style != "ulysses" or ulysses_valid(model, degree, tp))


def hybrid_split(model: ModelSpec, degree: int, tp: int, gpus_per_node: int) -> tuple[int, int]:
    """(ulysses degree u, ring degree r) of a hybrid group: the largest valid u | degree inside one node."""
    best = 1
    for u in range(1, degree + 1):
        if degree % u == 0 and u * tp <= gpus_per_node and ulysses_valid(model, u, tp):
            best = u
    return best, degree // best


def sequence_times_s(model: ModelSpec, device: DeviceSpec, lengths: ArrayLike, *, degree: int, style: str, tp: int,
                     inter_node: bool, gpus_per_node: int, intra_bytes_per_s: float, inter_bytes_per_s: float,
                     dtype: str = "bf16") -> np.ndarray:
    """Forward+backward seconds of each sequence (vectorised over `lengths`) on one group of `degree`."""
    parts = sequence_time_parts(model, device, np.asarray(lengths, dtype=float), degree=degree, style=style, tp=tp,
                                inter_node=inter_node, gpus_per_node=gpus_per_node,
                                intra_bytes_per_s=intra_bytes_per_s, inter_bytes_per_s=inter_bytes_per_s,
                                dtype=dtype)
    return np.asarray(sum(parts.values()), dtype=float)


def sequence_time_parts(model: ModelSpec, device: DeviceSpec, s: np.ndarray, *, degree: int, style: str, tp: int,
                        inter_node: bool, gpus_per_node: int, intra_bytes_per_s: float, inter_bytes_per_s: float,
                        dtype: str = "bf16") -> dict[str, np.ndarray]:
    """The breakdown of sequence_times_s: compute_linear, compute_attention, sp_comm, tp_comm, fixed (seconds)."""
    require(degree_valid(model, style, degree, tp), f"degree {degree} is not valid for {style} at tp={tp}",
            field="degree")
    cal = device.calibration
    h, a, L = model.hidden, model.heads, model.layers
    kv, d_qk, d_v = _attention_dims(model)
    peak = device.peak_flops_per_s(dtype)
    gpus = degree * tp
    f_active, _ = _mlp_widths(model)
    p_lin = sum(attention_matrix_params(model)) + (3 if model.gated_mlp else 2) * h * f_active
    eff = gemm_efficiency(np.maximum(s / degree, PACKED_TOKENS_PER_GPU), h / tp, h, dtype, cal)
    eff = np.maximum(eff, 1e-6)
    linear = 3.0 * 2.0 * (p_lin * L + h * model.vocab) * s / (gpus * peak * eff)
    attn_layer = (1.0 + ATTENTION_BACKWARD_FACTOR) * a * s * s * (d_qk + d_v) / (
        gpus * peak * cal.attention_efficiency)
    alpha = cal.collective_latency_s
    bw_intra = intra_bytes_per_s * cal.intra_node_efficiency
    bw_span = inter_bytes_per_s * cal.inter_node_efficiency if inter_node else bw_intra
    a_loc, kv_loc = a / tp, max(kv / tp, 1.0)
    if style == "ulysses":
        u, r = degree, 1
    elif style == "ring":
        u, r = 1, degree
    else:
        u, r = hybrid_split(model, degree, tp, gpus_per_node)
    sp_layer = np.zeros_like(s)
    if u > 1:
        bw_u = bw_span if style == "ulysses" else bw_intra
        a2a_bytes = (s / degree) * BYTES_BF16 * d_qk * (2 * a_loc + 2 * max(kv_loc, u))
        node_ranks = gpus_per_node // tp
        if style == "ulysses" and inter_node and u > node_ranks and u % node_ranks == 0:
            # whole nodes: (u - node_ranks)/u of the bytes cross the NIC while (node_ranks - 1)/u use NVLink
            a2a_s = np.maximum((u - node_ranks) / u * a2a_bytes / bw_span, (node_ranks - 1) / u * a2a_bytes / bw_intra)
        else:
            a2a_s = (u - 1) / u * a2a_bytes / bw_u
        sp_layer = sp_layer + 4 * alpha + 2.0 * a2a_s
    if r > 1:
        kv_blk = max(kv_loc / u, 1.0)
        block_bytes = (s / r) * 2 * kv_blk * d_qk * BYTES_BF16
        ring = 3.0 * (r - 1) * (alpha + block_bytes / bw_span)
        sp_layer = sp_layer + np.maximum(ring - attn_layer, 0.0)
    tp_layer = np.zeros_like(s)
    if tp > 1:
        tp_layer = tp_layer + 8 * (alpha + (tp - 1) / tp * (s / degree) * h * BYTES_BF16 / bw_intra)
    return {"compute_linear": linear, "compute_attention": L * attn_layer, "sp_comm": L * sp_layer,
            "tp_comm": L * tp_layer, "fixed": np.full_like(s, cal.seq_overhead_s)}


def activation_bytes_per_gpu(model: ModelSpec, lengths: ArrayLike, *, degree: int, tp: int) -> np.ndarray:
    """Activation bytes per GPU of each sequence on a group of `degree` (s/degree tokens per SP rank)."""
    return np.asarray(lengths, dtype=float) / degree * activation_bytes_per_token(model, tp=tp)


def min_degree_for_memory(model: ModelSpec, length: int, *, tp: int, left_bytes: float) -> int:
    """Smallest SP degree whose per-GPU activations of one sequence fit in `left_bytes` (ignoring validity)."""
    return max(1, math.ceil(length * activation_bytes_per_token(model, tp=tp) / left_bytes))
