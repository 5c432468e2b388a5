"""Time and memory of one layer (or the embedding / LM head) of ONE micro-batch on ONE GPU.

The parts of a layer's time (forward + backward + recompute, additive as in Calculon's "no_overlap"):
  gemm         every projection/MLP GEMM: forward F, backward 2F (dgrad + wgrad) at the same efficiency;
               the local experts of an MoE layer count as one grouped GEMM
  attention    fused attention core: forward + 2 × forward
  elementwise  norms, residual adds, dropout, activations: fwd bytes (15h + 2f|3f per token) + 2 × in bwd
  recompute    selective: attention core forward again; full: the whole forward again (incl. its comm)
  tp_comm      2 collectives forward and 2 backward over tp of the b·(s/cp)·h hidden tensor (AG/RS with
               sequence parallelism, all-reduce without), times (1 - tp_overlap) with sequence parallelism
               (TP communication overlap, e.g. Megatron --tp-comm-overlap, needs it); fully exposed without
  cp_comm      ring attention's K/V all-gather (fwd) and all-gather + reduce-scatter (bwd) over cp,
               hidden behind the attention core; only the excess counts
  ep_comm      MoE token dispatch + combine all-to-all over ep, forward and backward
  zero_comm    ZeRO-2 gradient reduce-scatter / ZeRO-3 parameter gathers that recur every micro-batch,
               minus what dp_overlap x the layer's own compute can hide (prefetching)
Per step (not per micro-batch): dp_sync (gradient reduce-scatter/all-reduce + parameter all-gather,
before overlap) and the Adam update (30 B per locally owned parameter through HBM).
"""

from dataclasses import dataclass

from costmodels import flops as F
from costmodels import memory as M
from costmodels.comm import collective_time_s
from costmodels.compute import attention_time_s, gemm_time_s, memory_bound_time_s
from costmodels.hardware import NodePool
from costmodels.model import ModelSpec

ADAM_BYTES_PER_PARAM = 30.0
"""Adam step traffic per parameter: read fp32 master, m, v, grad (16 B), write master, m, v (12 B), bf16 copy (2 B)"""
LOSS_BYTES_PER_LOGIT = 30.0
"""vocabulary-parallel cross entropy in fp32: upcast, max, exp, sum, normalise, gradient"""
GRAD_REDUCE_BYTES = 2.0
"""bytes per gradient on the wire: bf16, the default of Megatron-Core's DistributedDataParallelConfig
(grad_reduce_in_fp32 = False; NeMo and some Megatron-LM bf16 setups turn it on, doubling this traffic).
The fp32 main-gradient buffer stays in memory either way (memory.GRAD_BYTES). With fp32 on the wire the
48-way DP traffic of the H100 README runs could not hide behind one micro-batch, which their published
throughput says it did."""
TIME_PARTS = ("gemm", "attention", "elementwise", "recompute", "tp_comm", "cp_comm", "ep_comm", "zero_comm")


@dataclass(frozen=True, slots=True)
class Setting:
    """What a layer's costs depend on (no pp, vpp, stage split or global batch)."""

    mbs: int
    seq: int
    dtype: str
    tp: int
    cp: int
    dp: int
    ep: int
    etp: int
    zero: int
    recompute: str
    sp: bool

    @property
    def edp(self) -> int:
        return self.tp * self.cp * self.dp // (self.ep * self.etp)


@dataclass(frozen=True, slots=True)
class PartCost:
    """One layer kind (or the embedding / head) on one GPU."""

    time_s: float
    parts: dict
    param_bytes: float
    grad_bytes: float
    optimizer_bytes: float
    activation_bytes: float
    working_bytes: float
    dp_sync_s: float
    optimizer_s: float

    @property
    def state_bytes(self) -> float:
        return self.param_bytes + self.grad_bytes + self.optimizer_bytes


class _Env:
    """Device numbers and collective helpers for one pool and setting."""

    def __init__(self, pool: NodePool, st: Setting):
        dev = pool.device
        self.cal = dev.calibration
        self.peak = dev.peak_flops_per_s(st.dtype)
        self.hbm = dev.hbm_bytes_per_s
        self.dpn = pool.devices_per_node
        self.intra = pool.intra_node_bytes_per_s
        self.inter = pool.inter_node_bytes_per_s
        self.st = st
        self.tp_exposed = (1.0 - self.cal.tp_overlap) if st.sp else 1.0

    def coll(self, op: str, size: float, n: int, stride: int) -> float:
        return collective_time_s(op, size, n, stride, devices_per_node=self.dpn, intra_bytes_per_s=self.intra,
                                 inter_bytes_per_s=self.inter, calibration=self.cal)

    def gemm(self, flops: float, tokens: float, k: float, n: float) -> float:
        return gemm_time_s(flops, tokens, k, n, self.peak, self.hbm, self.cal)

    def ew(self, nbytes: float) -> float:
        return memory_bound_time_s(nbytes, self.hbm, self.cal)

    def dp_costs(self, dense_params: float, expert_params: float) -> tuple[float, float, float, float, float]:
        """(param, grad, optimizer bytes, per-step dp sync s, per-micro-batch ZeRO comm s) on this GPU."""
        st = self.st
        dense_group, expert_group = st.dp * st.cp, st.edp
        w_d, g_d, o_d = M.state_bytes_per_param(st.zero, dense_group)
        w_e, g_e, o_e = M.state_bytes_per_param(st.zero, expert_group)
        sync = per_mb = 0.0
        for params, n, stride in ((dense_params, dense_group, st.tp), (expert_params, expert_group, st.ep * st.etp)):
            if params <= 0 or n <= 1:
                continue
            grads, weights = GRAD_REDUCE_BYTES * params, M.PARAM_BYTES * params
            if st.zero == 0:
                sync += self.coll("all_reduce", grads, n, stride)
            elif st.zero == 1:
                sync += self.coll("reduce_scatter", grads, n, stride) + self.coll("all_gather", weights, n, stride)
            elif st.zero == 2:
                sync += self.coll("all_gather", weights, n, stride)
                per_mb += self.coll("reduce_scatter", grads, n, stride)
            else:
                gathers = 3 if st.recompute == "full" else 2
                per_mb += gathers * self.coll("all_gather", weights, n, stride) \
                    + self.coll("reduce_scatter", grads, n, stride)
        return (dense_params * w_d + expert_params * w_e, dense_params * g_d + expert_params * g_e,
                dense_params * o_d + expert_params * o_e, sync, per_mb)

    def optimizer_s(self, dense_params: float, expert_params: float) -> float:
        st = self.st
        shard_d = st.dp * st.cp if st.zero >= 1 else 1
        shard_e = st.edp if st.zero >= 1 else 1
        return self.ew(ADAM_BYTES_PER_PARAM * (dense_params / shard_d + expert_params / shard_e))


def layer_cost(model: ModelSpec, is_moe: bool, pool: NodePool, st: Setting) -> PartCost:
    """Costs of one transformer layer (dense or MoE) for one micro-batch on one GPU."""
    env = _Env(pool, st)
    h, tp, cp = model.hidden, st.tp, st.cp
    tokens = st.mbs * st.seq / cp  # tokens of this GPU's micro-batch slice (sequence split by cp)
    lf = F.layer_forward_flops(model, is_moe, st.mbs, st.seq)
    shard = tp * cp
    # forward GEMMs on this GPU: (FLOPs of one GEMM, M, K, N, how many)
    full_tokens = st.mbs * st.seq
    q_width = lf.qkv / (2 * full_tokens * h)
    o_width = lf.attn_out / (2 * full_tokens * h)
    gemms = [(lf.qkv / shard, tokens, h, q_width / tp, 1), (lf.attn_out / shard, tokens, o_width / tp, h, 1)]
    nmat = 3 if model.gated_mlp else 2
    ew_sharded = 0.0
    if is_moe:
        moe = model.moe
        routed_tokens = tokens * moe.top_k * st.etp / tp  # k copies of the tokens this GPU's experts receive
        local_experts = max(1, moe.experts // st.ep)
        per_expert_tokens = routed_tokens / local_experts
        f_e = moe.expert_ffn / st.etp
        per_expert = 2.0 * per_expert_tokens * h * f_e
        # grouped GEMM (Megatron --moe-grouped-gemm): the local experts run as one kernel, so its size
        # (and efficiency) is that of all local experts together
        gemms += [(per_expert * (nmat - 1) * local_experts, routed_tokens, h, f_e * (nmat - 1), 1),
                  (per_expert * local_experts, routed_tokens, f_e, h, 1)]
        if lf.mlp > 0:
            f_s = (moe.shared_expert_ffn or moe.expert_ffn) * moe.shared_experts / tp
            gemms += [(lf.mlp / shard * (nmat - 1) / nmat, tokens, h, f_s * (nmat - 1), 1),
                      (lf.mlp / shard / nmat, tokens, f_s, h, 1)]
            ew_sharded += tokens * (nmat * f_s)
        gemms.append((lf.router / shard, tokens / tp, h, moe.experts, 1))
        ew_sharded += routed_tokens * (4 * h + nmat * f_e)  # permute/unpermute + activation
    else:
        f = model.ffn / tp
        gemms += [(lf.mlp / shard * (nmat - 1) / nmat, tokens, h, f * (nmat - 1), 1),
                  (lf.mlp / shard / nmat, tokens, f, h, 1)]
        ew_sharded += tokens * nmat * f
    gemm_fwd = sum(n * env.gemm(fl, m, k, w) for fl, m, k, w, n in gemms)
    attn_fwd = attention_time_s(lf.attention_core / shard, env.peak, env.cal)
    ew_replicated = tokens * 15 * h
    ew_elems = ew_sharded + (ew_replicated / tp if (st.sp or tp == 1) else ew_replicated)
    ew_fwd = env.ew(M.ACT_BYTES * ew_elems)

    # communication of one forward pass
    hidden_bytes = tokens * h * M.ACT_BYTES
    if tp > 1:
        if st.sp:
            tp_ops = env.coll("all_gather", hidden_bytes, tp, 1) + env.coll("reduce_scatter", hidden_bytes, tp, 1)
        else:
            tp_ops = env.coll("all_reduce", hidden_bytes, tp, 1)
        tp_fwd = tp_ops * (1 if is_moe else 2)  # attention block (+ dense MLP block)
    else:
        tp_fwd = 0.0
    ep_fwd = 0.0
    if is_moe:
        if st.etp > 1:
            moe_hidden = hidden_bytes * st.etp / tp
            tp_fwd += env.coll("all_gather", moe_hidden, st.etp, 1) + env.coll("reduce_scatter", moe_hidden, st.etp, 1)
        if st.ep > 1:
            a2a = tokens / tp * model.moe.top_k * h * M.ACT_BYTES
            ep_fwd = 2 * env.coll("all_to_all", a2a, st.ep, st.etp)
    tp_fwd *= env.tp_exposed
    cp_fwd = cp_bwd = 0.0
    if cp > 1:
        d_qk, d_v = F.attention_head_dims(model)
        kv_heads = model.heads if model.attention == "mla" else model.kv_heads
        kv_bytes = tokens * kv_heads * (d_qk + d_v) * M.ACT_BYTES / tp * cp
        ag = env.coll("all_gather", kv_bytes, cp, tp)
        cp_fwd = max(0.0, ag - attn_fwd)
        cp_bwd = max(0.0, ag + env.coll("reduce_scatter", kv_bytes, cp, tp) - 2 * attn_fwd)

    if st.recompute == "full":
        recompute = gemm_fwd + attn_fwd + ew_fwd + tp_fwd + cp_fwd + ep_fwd
    elif st.recompute == "selective":
        recompute = attn_fwd
    else:
        recompute = 0.0
    dense_params, expert_params = M.layer_params(model, is_moe)
    dense_local, expert_local = dense_params / tp, expert_params / (st.ep * st.etp)
    p_b, g_b, o_b, sync, zero_mb = env.dp_costs(dense_local, expert_local)
    parts = {"gemm": 3 * gemm_fwd, "attention": 3 * attn_fwd, "elementwise": 3 * ew_fwd, "recompute": recompute,
             "tp_comm": 2 * tp_fwd, "cp_comm": cp_fwd + cp_bwd, "ep_comm": 2 * ep_fwd,
             "zero_comm": max(0.0, zero_mb - env.cal.dp_overlap * 3 * (gemm_fwd + attn_fwd + ew_fwd))}
    kw = dict(tp=tp, cp=cp, etp=st.etp, sp=st.sp and tp > 1)
    act = M.layer_activation_bytes(model, is_moe, st.mbs, st.seq, recompute=st.recompute, **kw)
    working = M.layer_working_activation_bytes(model, is_moe, st.mbs, st.seq, **kw) if st.recompute == "full" else 0.0
    return PartCost(sum(parts.values()), parts, p_b, g_b, o_b, act, working, sync,
                    env.optimizer_s(dense_local, expert_local))


def embed_cost(model: ModelSpec, pool: NodePool, st: Setting) -> PartCost:
    """Input embedding on the first stage: lookup + dropout traffic, weights sharded by tp (vocab-parallel)."""
    env = _Env(pool, st)
    tokens = st.mbs * st.seq / st.cp
    sp = st.sp and st.tp > 1
    ew = env.ew(3 * M.ACT_BYTES * tokens * model.hidden / (st.tp if sp else 1))
    tp_s = env.coll("reduce_scatter" if sp else "all_reduce", tokens * model.hidden * M.ACT_BYTES, st.tp, 1)
    tp_s *= env.tp_exposed
    params = M.embedding_params(model) / st.tp
    p_b, g_b, o_b, sync, zero_mb = env.dp_costs(params, 0.0)
    parts = {"gemm": 0.0, "attention": 0.0, "elementwise": ew, "recompute": 0.0, "tp_comm": 2 * tp_s,
             "cp_comm": 0.0, "ep_comm": 0.0, "zero_comm": zero_mb * (1.0 - env.cal.dp_overlap)}
    act = M.embedding_activation_bytes(model, st.mbs, st.seq, tp=st.tp, cp=st.cp, sp=sp)
    return PartCost(sum(parts.values()), parts, p_b, g_b, o_b, act, 0.0, sync, env.optimizer_s(params, 0.0))


def head_cost(model: ModelSpec, pool: NodePool, st: Setting, pp: int) -> PartCost:
    """Final norm, LM head, loss and MTP modules on the last stage."""
    env = _Env(pool, st)
    h, tp = model.hidden, st.tp
    tokens = st.mbs * st.seq / st.cp
    sp = st.sp and tp > 1
    logits = F.logits_flops(model, tokens) / tp
    gemm_fwd = env.gemm(logits, tokens, h, model.vocab / tp)
    ew_fwd = env.ew(M.ACT_BYTES * 4 * tokens * h / (tp if sp else 1))
    loss = env.ew(LOSS_BYTES_PER_LOGIT * tokens * model.vocab / tp)
    tp_s = env.coll("all_gather" if sp else "all_reduce", tokens * h * M.ACT_BYTES, tp, 1) \
        + 3 * env.coll("all_reduce", tokens * 4, tp, 1)
    tp_s *= env.tp_exposed
    params = M.head_params(model, pp) / tp
    dense_mtp = expert_mtp = act_mtp = 0.0
    mtp_parts = {}
    if model.mtp_layers:
        layer = layer_cost(model, model.moe is not None, pool, st)
        proj = env.gemm(2.0 * tokens * 2 * h * h / tp, tokens, 2 * h, h / tp)
        d, e = M.mtp_params(model)
        dense_mtp, expert_mtp = model.mtp_layers * d / tp, model.mtp_layers * e / (st.ep * st.etp)
        act_mtp = model.mtp_layers * layer.activation_bytes
        mtp_parts = {k: model.mtp_layers * v for k, v in layer.parts.items()}
        mtp_parts["gemm"] += model.mtp_layers * 3 * (proj + gemm_fwd)
        mtp_parts["elementwise"] += model.mtp_layers * loss
    p_b, g_b, o_b, sync, zero_mb = env.dp_costs(params + dense_mtp, expert_mtp)
    if model.tied_embeddings and pp > 1:  # keep the two embedding copies in sync (first and last stage)
        sync += env.coll("all_reduce", GRAD_REDUCE_BYTES * M.embedding_params(model) / tp, 2, env.dpn)
    parts = {"gemm": 3 * gemm_fwd, "attention": 0.0, "elementwise": 3 * ew_fwd + loss, "recompute": 0.0,
             "tp_comm": 2 * tp_s, "cp_comm": 0.0, "ep_comm": 0.0, "zero_comm": zero_mb * (1.0 - env.cal.dp_overlap)}
    for k, v in mtp_parts.items():
        parts[k] += v
    act = M.head_activation_bytes(model, st.mbs, st.seq, tp=tp, cp=st.cp, sp=sp) + act_mtp
    return PartCost(sum(parts.values()), parts, p_b, g_b, o_b, act, 0.0, sync,
                    env.optimizer_s(params + dense_mtp, expert_mtp))
