"""Time and memory of one layer (or the embedding / LM head) of ONE micro-batch on ONE GPU.

The parts of a layer's time (forward + backward + recompute, additive as in Calculon's "no_overlap"),
built from the compute and comm layers (costmodels/compute.py, costmodels/comm.py):
  gemm         every projection/MLP GEMM by its own m x n x k: forward once, backward twice (dgrad +
               wgrad) at the same efficiency; routed experts are one GEMM per local expert whose m is
               the tokens that expert receives on the busiest rank (mean x moe_skew), so many small
               experts run far below the efficiency of few large ones; FP8 GEMMs on the FP8 curve; torchtitan
               runs wq, wk, wv and w1, w3 as separate GEMMs (flops.block_matmuls), Megatron fused ones
  attention    fused attention core, forward + backward (compute.attention_time_s, always 16-bit);
               with cp the kernel works on blocks of s/cp keys (ring attention); without flash attention
               the scores go through HBM (compute.unfused_attention_time_s); frameworks on PyTorch SDPA
               (FlashAttention-2) run it at sdpa_attention_factor of the fused cuDNN/TE kernel's speed
  elementwise  norms, residual adds, dropout, activations: fwd bytes (15h + 2f|3f per token) + 2 × in bwd,
               × eager_elementwise_factor when kernels are not fused (torchtitan without torch.compile);
               FP8: the casts and amax reductions of every GEMM's operands
  recompute    (torchtitan: a fully recomputed dense block skips its last matmul, w2, and the collective after
               it: torch's non-reentrant checkpoint stops once backward has every saved tensor back, and
               torch.compile's partitioner recomputes only what backward reads; Megatron reruns the layer)
               flops.recompute_share of each part: selective: attention core forward again (Megatron,
               DeepSpeed) or, for torchtitan's op-level SAC, the matmuls flops.op_sac_recomputed names (wk, wo,
               w3 of a Llama block, each at its own speed), the router, the element-wise ops and the
               TP all-gathers (only reduce-scatter outputs are on its save list); selective-layer: every 2nd
               layer's whole forward (incl. comm), i.e. half of each part per layer on average; full: the
               whole forward again (incl. comm)
  tp_comm      2 collectives forward and 2 backward over tp of the b·(s/cp)·h hidden tensor (AG/RS with
               sequence parallelism, all-reduce without; with FP8 the forward all-gather moves the FP8
               copy of the GEMM input, 1 byte per element), times (1 - tp_overlap) when TP overlap is on
               (Megatron --tp-comm-overlap / torchtitan async TP; needs sequence parallelism); torchtitan's
               async TP (inductor micro-pipeline TP) fuses a reduce-scatter only with the one matmul that
               produces it, so the backward reduce-scatters of summed q/k/v and gate/up input gradients stay
               exposed (framework.tp_overlap_summed_rs)
  cp_comm      ring attention's K/V all-gather (fwd) and all-gather + reduce-scatter (bwd) over cp,
               hidden behind the attention core; only the excess counts
  ep_comm      MoE dispatch + combine forward and backward (comm.moe_dispatch_time_s: per-node de-dup and
               FP8 dispatch as options); with a2a_overlap only what exceeds the layer's other compute
  zero_comm    per-micro-batch ZeRO traffic: ZeRO-2 gradient reduce-scatter; ZeRO-3 per-layer parameter
               all-gather (fwd, and again in bwd) + gradient reduce-scatter. Overlap is prefetch of the
               next layer only: forward exposes max(0, AG - forward compute of the layer), backward
               max(0, AG + RS - backward compute) (torchtitan re-gathers per micro-batch with pp too: its
               published 405B pipeline rows carry that traffic)
Per step (not per micro-batch): dp_sync (ZeRO 0/1/2 gradient all-reduce or reduce-scatter + parameter
all-gather, before overlap) and the Adam update (30 B per locally owned parameter through HBM). What each
ZeRO stage means and the bytes of a reduced gradient come from the framework (costmodels/framework.py).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from costmodels import flops as F
from costmodels import geometry as G
from costmodels import memory as M
from costmodels.comm import Links, collective_time_s, moe_dispatch_time_s
from costmodels.compute import (
    FP8_CAST_BYTES,
    attention_time_s,
    gemm_time_s,
    memory_bound_time_s,
    unfused_attention_time_s,
)
from costmodels.framework import framework
from costmodels.hardware import NodePool
from costmodels.model import ModelSpec

ADAM_BYTES_PER_PARAM = 30.0
"""Adam step traffic per parameter: read fp32 master, m, v, grad (16 B), write master, m, v (12 B), bf16 copy (2 B)"""
LOSS_BYTES_PER_LOGIT = 30.0
"""vocabulary-parallel cross entropy in fp32: upcast, max, exp, sum, normalise, gradient"""
RING_MERGE_BYTES = 38.0
"""torch ring attention, per output element and ring step after the first: the block output cast to fp32 (read 2,
write 4) and `out - sigmoid(lse_b - lse) * (out - out_b)` in three eager fp32 ops (read 20, write 12)"""
RING_KV_COPY_BYTES = 4.0
"""per K/V element and ring step: the 16-bit K and V concatenated into the send buffer (read 2, write 2)"""
RING_CAST_BYTES = 12.0
"""per output element once: the first block's output to fp32 (read 2, write 4) and the result back (read 4, write 2)"""
RING_GRAD_BYTES = 4.0
"""bytes per K/V gradient element passed along the ring (fp32 accumulators)"""
RING_GRAD_Q_BYTES = 10.0
"""per element and ring step: a 16-bit block gradient added into its fp32 accumulator (read 6, write 4); also
once per q and K/V element for zero-filling the accumulators and casting the results back to 16 bits"""
RING_GRAD_KV_BYTES = 25.0
"""per K/V element and ring step: the block's K/V gradients added into the received fp32 accumulators (10; the
half-block update copies the whole tensor, +3 on average), the fp32 send buffer (read 4, write 4) and the K/V
send buffer (read 2, write 2)"""
GRAD_ACCUMULATE_BYTES = 10.0
"""unsharded gradient accumulation per parameter and micro-batch: read the 16-bit gradient (2 B), read and write
the fp32 accumulator (8 B)"""
FP8_GATHER_BYTES = 1.0
"""bytes per element of an FP8 GEMM input all-gathered by sequence-parallel TP"""
TIME_PARTS = ("gemm", "attention", "elementwise", "recompute", "tp_comm", "cp_comm", "ep_comm", "zero_comm")


Shape = tuple[float, float, float, float]
"""a GEMM (m, n, k, count)"""

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
    framework: str = "megatron"
    fused: bool = True
    """element-wise kernels fused (framework kernels or torch.compile)"""
    tp_overlap: bool = True
    """TP communication overlap is on"""
    fp8_allgather: bool = False
    moe_skew: float = 1.0
    a2a_dedup: bool = False
    fp8_dispatch: bool = False
    a2a_overlap: bool = False
    flash: bool = True
    """fused (flash) attention; False = materialised scores"""
    gathered_once: bool = False
    """ZeRO 3 parameters gathered once per step and kept, gradients accumulated unsharded (torchtitan with PP)"""

    @property
    def edp(self) -> int:
        return self.tp * self.cp * self.dp // (self.ep * self.etp)


@dataclass(frozen=True, slots=True)
class PartCost:
    """One layer kind (or the embedding / head) on one GPU."""

    time_s: float
    parts: dict[str, float]
    param_bytes: float
    grad_bytes: float
    optimizer_bytes: float
    activation_bytes: float
    working_bytes: float
    dp_sync_s: float
    optimizer_s: float
    step_comm_s: float = 0.0
    """per step, not hidden by the stage-level overlap: the once-per-step ZeRO 3 traffic of `gathered_once`"""

    @property
    def state_bytes(self) -> float:
        return self.param_bytes + self.grad_bytes + self.optimizer_bytes


@dataclass(frozen=True, slots=True)
class ZeroComm:
    """ZeRO traffic of one layer part: per step (before the stage-level overlap) and per micro-batch."""

    sync_s: float
    """per step: gradient all-reduce / reduce-scatter and parameter all-gather (ZeRO 0-2)"""
    gather_s: float
    """per micro-batch: one parameter all-gather (ZeRO 3; issued in forward and again in backward)"""
    scatter_s: float
    """per micro-batch: gradient reduce-scatter (ZeRO 2 and 3)"""
    held_params: float = 0.0
    """parameters kept gathered through the step (`Setting.gathered_once`; then gather_s and scatter_s happen
    once per step)"""

    @property
    def once(self) -> bool:
        return self.held_params > 0

    def exposed_s(self, forward_s: float, backward_s: float) -> float:
        """Per-micro-batch traffic left after prefetching behind the part's own forward / backward."""
        if self.once:
            return 0.0
        return max(0.0, self.gather_s - forward_s) + max(0.0, self.gather_s + self.scatter_s - backward_s)

    def step_s(self, forward_s: float) -> float:
        """Once-per-step traffic of `once`: the gather hides behind the first micro-batch's forward (prefetch of
        the next layer); the reduce-scatter is issued after the stage's last backward, with nothing to hide it."""
        return max(0.0, self.gather_s - forward_s) + self.scatter_s if self.once else 0.0


class _Env:
    """Device numbers and collective helpers for one pool and setting."""

    def __init__(self, pool: NodePool, st: Setting):
        self.dev = pool.device
        self.cal = self.dev.calibration
        self.links = Links.of(self.dev, pool.devices_per_node, pool.intra_node_bytes_per_s,
                              pool.inter_node_bytes_per_s)
        self.dpn = pool.devices_per_node
        self.st = st
        self.fw = framework(st.framework)
        self.tp_exposed = (1.0 - self.cal.tp_overlap) if (st.sp and st.tp_overlap) else 1.0
        self.ew_factor = 1.0 if st.fused else self.cal.eager_elementwise_factor

    def coll(self, op: str, size: float, n: int, stride: int) -> float:
        return collective_time_s(op, size, n, stride, self.links)

    def gemms(self, shapes: Iterable[tuple[float, float, float, float]]) -> tuple[float, float]:
        """(forward GEMM time, forward element-wise bytes of FP8 casts) of (m, n, k, count) shapes."""
        t = cast = 0.0
        for m, n, k, count in shapes:
            t += count * gemm_time_s(m, n, k, self.st.dtype, self.dev)
            if self.st.dtype == "fp8":  # casts of forward + backward, charged a third per pass
                cast += count * FP8_CAST_BYTES * (m * k + k * n + m * n) / 3
        return t, cast

    def ew(self, nbytes: float) -> float:
        return memory_bound_time_s(nbytes * self.ew_factor, self.dev)

    def zero(self, dense_params: float, expert_params: float) -> tuple[float, float, float, ZeroComm]:
        """(param, grad, optimizer bytes on this GPU, ZeRO traffic) of locally held parameters."""
        st = self.st
        dense_group, expert_group = st.dp * st.cp, st.edp
        w_d, g_d, o_d = M.state_bytes_per_param(st.zero, dense_group)
        w_e, g_e, o_e = M.state_bytes_per_param(st.zero, expert_group)
        gather_bytes = 1.0 if (st.fp8_allgather and st.dtype == "fp8") else M.PARAM_BYTES
        sync = gather = scatter = held = 0.0
        for params, n, stride in ((dense_params, dense_group, st.tp), (expert_params, expert_group, st.ep * st.etp)):
            if params <= 0 or n <= 1:
                continue
            grads, weights = self.fw.grad_reduce_bytes * params, gather_bytes * params
            if st.zero == 0:
                sync += self.coll("all_reduce", grads, n, stride)
            elif st.zero == 1:
                sync += self.coll("reduce_scatter", grads, n, stride) + self.coll("all_gather", weights, n, stride)
            elif st.zero == 2:
                sync += self.coll("all_gather", weights, n, stride)
                scatter += self.coll("reduce_scatter", grads, n, stride)
            else:
                gather += self.coll("all_gather", weights, n, stride)
                scatter += self.coll("reduce_scatter", grads, n, stride)
                held += params if st.gathered_once else 0.0
        # gathered once: the gathered copy and the unsharded gradients (reduce dtype) stay through the step
        return (dense_params * w_d + expert_params * w_e + gather_bytes * held,
                dense_params * g_d + expert_params * g_e + self.fw.grad_reduce_bytes * held,
                dense_params * o_d + expert_params * o_e, ZeroComm(sync, gather, scatter, held))

    def grad_accumulate_s(self, zc: ZeroComm) -> float:
        """Per micro-batch under `gathered_once`: the backward's 16-bit gradients added into the unsharded
        accumulators (FSDP2 unsharded_accumulated_grad += grad)."""
        return memory_bound_time_s(GRAD_ACCUMULATE_BYTES * zc.held_params, self.dev)

    def gather_buffer_bytes(self, params: float) -> float:
        """ZeRO 3: the unsharded parameters of this layer and of the prefetched next one, and this layer's
        unsharded gradients before their reduce-scatter (0 for other stages and when they are held anyway)."""
        if self.st.zero != 3 or self.st.gathered_once:
            return 0.0
        return params * (2 * M.PARAM_BYTES + self.fw.grad_reduce_bytes)

    def optimizer_s(self, dense_params: float, expert_params: float) -> float:
        st = self.st
        shard_d = st.dp * st.cp if st.zero >= 1 else 1
        shard_e = st.edp if st.zero >= 1 else 1
        return memory_bound_time_s(ADAM_BYTES_PER_PARAM * (dense_params / shard_d + expert_params / shard_e),
                                   self.dev)


def _gemm_shapes(model: ModelSpec, is_moe: bool, st: Setting,
                 separate: bool) -> tuple[list[tuple[str, Shape]], list[Shape], float]:
    """(attention/dense/shared GEMM shapes tagged with their LayerFlops part, routed-expert GEMM shapes,
    element-wise elements per token that tp shards) of one forward pass; a shape is (m, n, k, count).
    `separate`: the block's matmuls one by one, in flops.block_matmuls' order (the router last)."""
    h, tp = model.hidden, st.tp
    tokens = st.mbs * st.seq / st.cp
    lf = F.layer_forward_flops(model, is_moe, 1, 1)  # per token
    nmat = 3 if model.gated_mlp else 2
    dense: list[tuple[str, Shape]]
    if separate:
        shard = {"col": (tp, 1), "row": (1, tp), "none": (1, 1)}
        dense = [(part, (tokens, w_out / shard[how][0], w_in / shard[how][1], 1.0))
                 for part, w_in, w_out, how in F.block_matmuls(model, is_moe)]
    else:
        q_width, o_width = lf.qkv / (2 * h), lf.attn_out / (2 * h)
        dense = [("qkv", (tokens, q_width / tp, h, 1.0)), ("attn_out", (tokens, h, o_width / tp, 1.0))]
        if lf.mlp > 0:
            f_m = lf.mlp / (2 * h * nmat) / tp
            dense += [("mlp", (tokens, f_m * (nmat - 1), h, 1.0)), ("mlp", (tokens, h, f_m, 1.0))]
    if not is_moe:
        return dense, [], nmat * model.ffn / tp
    moe = model.moe_dims
    sharded = nmat * lf.mlp / (2 * h * nmat) / tp
    dense.append(("router", (tokens / tp, moe.experts, h, 1.0)))
    # the busiest EP rank receives moe_skew x the mean of k copies of the tokens its group holds
    routed = tokens * moe.top_k * st.etp / tp * st.moe_skew
    local = max(1, moe.experts // st.ep)
    per_expert, f_e = routed / local, moe.expert_ffn / st.etp
    experts: list[Shape] = [(per_expert, f_e * (nmat - 1), h, local), (per_expert, h, f_e, local)]
    sharded += routed / tokens * (4 * h + nmat * f_e)  # permute/unpermute + activation, per layer token
    return dense, experts, sharded


def layer_cost(model: ModelSpec, is_moe: bool, pool: NodePool, st: Setting) -> PartCost:
    """Costs of one transformer layer (dense or MoE) for one micro-batch on one GPU."""
    env = _Env(pool, st)
    h, tp, cp = model.hidden, st.tp, st.cp
    tokens = st.mbs * st.seq / cp  # tokens of this GPU's micro-batch slice (sequence split by cp)
    dense_shapes, expert_shapes, ew_sharded = _gemm_shapes(model, is_moe, st, env.fw.separate_projections)
    dense_fwd, cast_d = env.gemms(shape for _, shape in dense_shapes)
    expert_fwd, cast_e = env.gemms(expert_shapes)
    gemm_fwd = dense_fwd + expert_fwd
    attn_fwd, attn_all = _attention(model, env)
    ew_replicated = tokens * 15 * h
    ew_elems = tokens * ew_sharded + (ew_replicated / tp if (st.sp or tp == 1) else ew_replicated)
    ew_fwd = env.ew(M.ACT_BYTES * ew_elems) + memory_bound_time_s(cast_d + cast_e, env.dev)

    tp_fwd, tp_unsaved, tp_bwd, tp_last = _tp_forward(model, is_moe, env, tokens)
    ep_fwd, ep_all = _ep_time(model, is_moe, env, tokens)
    if st.a2a_overlap:  # dispatch/combine of one micro-batch hide behind another's attention and dense GEMMs
        ep_all = max(0.0, ep_all - 3 * (dense_fwd + attn_fwd))
    ring_fwd, ring_all, cp_fwd, cp_bwd = _context_parallel(model, env, tokens, attn_fwd, attn_all)
    attn_fwd, attn_all = attn_fwd + ring_fwd, attn_all + ring_all

    compute_fwd = gemm_fwd + attn_fwd + ew_fwd
    share = F.recompute_share(st.recompute, env.fw.selective_recomputes_ops, model, is_moe)
    recompute = _recomputed_gemms_s(model, is_moe, env, share, dense_shapes, dense_fwd, expert_fwd) \
        + share.attention * attn_fwd + share.elementwise * ew_fwd \
        + share.layers * (tp_fwd + cp_fwd + ep_fwd) + (tp_unsaved if share.unsaved_comm else 0.0)
    if env.fw.recompute_stops_early and share.layers and not is_moe:  # the last matmul and its collective
        recompute -= share.layers * (env.gemms([dense_shapes[-1][1]])[0] + tp_last)
    dense_params, expert_params = G.layer_params(model, is_moe)
    dense_local, expert_local = dense_params / tp, expert_params / (st.ep * st.etp)
    p_b, g_b, o_b, zc = env.zero(dense_local, expert_local)
    accumulate = env.grad_accumulate_s(zc)
    backward = 2 * gemm_fwd + (attn_all - attn_fwd) + 2 * ew_fwd + recompute + accumulate
    parts = {"gemm": 3 * gemm_fwd, "attention": attn_all, "elementwise": 3 * ew_fwd + accumulate,
             "recompute": recompute, "tp_comm": tp_fwd + tp_bwd, "cp_comm": cp_fwd + cp_bwd, "ep_comm": ep_all,
             "zero_comm": zc.exposed_s(compute_fwd, backward)}
    kw: dict[str, Any] = dict(tp=tp, cp=cp, etp=st.etp, sp=st.sp and tp > 1)
    fp8_inputs = st.dtype == "fp8" and env.fw.fp8_saves_fp8_inputs
    act = M.layer_activation_bytes(model, is_moe, st.mbs, st.seq, recompute=st.recompute,
                                   ops_sac=env.fw.selective_recomputes_ops, fp8=fp8_inputs, **kw)
    working = M.layer_working_activation_bytes(model, is_moe, st.mbs, st.seq, fp8=fp8_inputs, **kw) \
        if share.layers > 0 else 0.0
    working += env.gather_buffer_bytes(dense_local + expert_local)
    return PartCost(sum(parts.values()), parts, p_b, g_b, o_b, act, working, zc.sync_s,
                    env.optimizer_s(dense_local, expert_local), zc.step_s(compute_fwd))


def _recomputed_gemms_s(model: ModelSpec, is_moe: bool, env: _Env, share: F.RecomputeShare,
                        dense: list[tuple[str, Shape]], dense_s: float, expert_s: float) -> float:
    """Forward GEMM seconds that recomputation repeats. Op-level SAC (torchtitan, whose dense shapes are
    flops.block_matmuls' calls, the router last): the calls flops.op_sac_recomputed names, each at its own
    speed, plus the router; otherwise `share.gemm` of every GEMM."""
    if share.gemm_parts is None:
        return share.gemm * (dense_s + expert_s)
    times = [env.gemms([shape])[0] for _, shape in dense]
    redo = F.op_sac_recomputed(model, is_moe)
    router = times[-1] if is_moe else 0.0
    calls = sum(t for t, again in zip(times, redo, strict=False) if again)
    return calls + share.gemm_parts.router * router + share.gemm_parts.experts * expert_s


def _attention(model: ModelSpec, env: _Env) -> tuple[float, float]:
    """(forward, forward + backward) of the attention core of one micro-batch on this GPU."""
    st = env.st
    d_qk, d_v = F.attention_head_dims(model)
    heads = model.heads / st.tp
    if not st.flash:
        return (unfused_attention_time_s(st.mbs, st.seq, heads, d_qk, d_v, env.dev),
                unfused_attention_time_s(st.mbs, st.seq, heads, d_qk, d_v, env.dev, backward=True))
    kw: dict[str, Any] = dict(causal=True, block_kv=st.seq / st.cp)
    if env.fw.sdpa_attention:
        slow = 1.0 / env.cal.sdpa_attention_factor
        return (slow * attention_time_s(st.mbs, st.seq / st.cp, st.seq, heads, d_qk, d_v, env.dev, **kw),
                slow * attention_time_s(st.mbs, st.seq / st.cp, st.seq, heads, d_qk, d_v, env.dev, backward=True,
                                        **kw))
    return (attention_time_s(st.mbs, st.seq / st.cp, st.seq, heads, d_qk, d_v, env.dev, **kw),
            attention_time_s(st.mbs, st.seq / st.cp, st.seq, heads, d_qk, d_v, env.dev, backward=True, **kw))


def _context_parallel(model: ModelSpec, env: _Env, tokens: float, attn_fwd: float,
                      attn_all: float) -> tuple[float, float, float, float]:
    """Ring attention over cp of one micro-batch: (element-wise forward, element-wise forward + backward, exposed
    forward comm, exposed backward comm).

    Transformer Engine (Megatron): K/V blocks pass the ring step by step behind the attention kernels; the
    all-gather (forward) and all-gather + reduce-scatter (backward) of the K/V count where they exceed the
    attention core. torch's ring attention (`Framework.cp_torch_ring`, torchtitan): the K/V, repeated to every
    query head, are all-gathered once after the first of the cp blocks (and again in backward), so only that
    block hides the gather; the K/V gradients pass the ring in fp32, each step behind one block's backward,
    the last one behind nothing; every step merges its output into an fp32 running output and adds its
    gradients into fp32 accumulators with eager element-wise ops (RING_*_BYTES).
    """
    st = env.st
    cp, tp = st.cp, st.tp
    if cp <= 1:
        return 0.0, 0.0, 0.0, 0.0
    d_qk, d_v = F.attention_head_dims(model)
    torch_ring = env.fw.cp_torch_ring
    kv_heads = model.heads if (model.attention == "mla" or torch_ring) else model.kv_heads
    kv_elems = tokens * kv_heads * (d_qk + d_v) / tp
    ag = env.coll("all_gather", kv_elems * M.ACT_BYTES * cp, cp, tp)
    attn_bwd = attn_all - attn_fwd
    if not torch_ring:
        return 0.0, 0.0, max(0.0, ag - attn_fwd), \
            max(0.0, ag + env.coll("reduce_scatter", kv_elems * M.ACT_BYTES * cp, cp, tp) - attn_bwd)
    q_elems = tokens * model.heads * d_v / tp
    dkv = env.coll("p2p", kv_elems * RING_GRAD_BYTES, 2, tp)
    fwd_comm = max(0.0, ag - attn_fwd / cp)
    bwd_comm = max(0.0, ag - attn_bwd / cp) + (cp - 1) * max(0.0, dkv - attn_bwd / cp) + dkv
    merge = memory_bound_time_s((cp - 1) * (RING_MERGE_BYTES * q_elems + RING_KV_COPY_BYTES * kv_elems)
                                + RING_CAST_BYTES * q_elems, env.dev)
    grads = memory_bound_time_s(cp * (RING_GRAD_Q_BYTES * q_elems + RING_GRAD_KV_BYTES * kv_elems)
                                + RING_GRAD_Q_BYTES * q_elems + RING_GRAD_Q_BYTES * kv_elems, env.dev)
    return merge, merge + grads, fwd_comm, bwd_comm


def _tp_forward(model: ModelSpec, is_moe: bool, env: _Env, tokens: float) -> tuple[float, float, float, float]:
    """Exposed TP (and expert-TP) communication of one micro-batch: (forward, the part of the forward whose
    outputs op-level SAC does not save: the all-gathers with sequence parallelism, the all-reduces without
    (reduce-scatters are on torchtitan's save list), backward, the forward's last collective). With FP8 the
    sequence-parallel all-gather moves the FP8 copy of the next GEMM's input (1 byte per element: torchao
    Float8ColwiseParallel, Transformer Engine); the reduce-scatters and every backward collective stay 16-bit."""
    st = env.st
    hidden_bytes = tokens * model.hidden * M.ACT_BYTES
    gather_bytes = hidden_bytes * (FP8_GATHER_BYTES / M.ACT_BYTES if st.dtype == "fp8" else 1.0)
    fwd = unsaved = bwd = bwd_rs = last = 0.0
    # (tensor bytes, group, collectives per kind, AG/RS rather than all-reduce): attention (+ dense MLP) block
    groups = [(hidden_bytes, st.tp, 1 if is_moe else 2, st.sp)] if st.tp > 1 else []
    if is_moe and st.etp > 1:
        groups.append((hidden_bytes * st.etp / st.tp, st.etp, 1, True))
    for size, n, blocks, gathers in groups:
        if gathers:
            ag = env.coll("all_gather", size * gather_bytes / hidden_bytes, n, 1)
            rs = env.coll("reduce_scatter", size, n, 1)
            fwd, unsaved, last = fwd + blocks * (ag + rs), unsaved + blocks * ag, rs
            bwd, bwd_rs = bwd + blocks * env.coll("all_gather", size, n, 1), bwd_rs + blocks * rs
        else:
            last = env.coll("all_reduce", size, n, 1)
            fwd, unsaved, bwd = fwd + blocks * last, unsaved + blocks * last, bwd + blocks * last
    # the backward reduce-scatters carry the summed input gradients of several GEMMs (q/k/v, gate/up)
    rs_exposed = env.tp_exposed if env.fw.tp_overlap_summed_rs else 1.0
    exposed = env.tp_exposed
    return fwd * exposed, unsaved * exposed, bwd * exposed + bwd_rs * rs_exposed, last * exposed


def _ep_time(model: ModelSpec, is_moe: bool, env: _Env, tokens: float) -> tuple[float, float]:
    """MoE dispatch + combine: (forward, forward + backward) before any overlap; backward is all bf16."""
    st = env.st
    if not is_moe or st.ep <= 1:
        return 0.0, 0.0
    sent = tokens / st.tp * st.moe_skew  # the busiest rank's share of the traffic
    kw: dict[str, Any] = dict(hidden=model.hidden, top_k=model.moe_dims.top_k, ep=st.ep, stride=st.etp, links=env.links,
              dedup=st.a2a_dedup)
    bf16 = moe_dispatch_time_s(sent, **kw)
    dispatch = moe_dispatch_time_s(sent, fp8=st.fp8_dispatch, **kw)
    return dispatch + bf16, dispatch + 3 * bf16


def embed_cost(model: ModelSpec, pool: NodePool, st: Setting) -> PartCost:
    """Input embedding on the first stage: lookup + dropout traffic, weights sharded by tp (vocab-parallel)."""
    env = _Env(pool, st)
    tokens = st.mbs * st.seq / st.cp
    sp = st.sp and st.tp > 1
    ew = env.ew(3 * M.ACT_BYTES * tokens * model.hidden / (st.tp if sp else 1))
    tp_s = env.coll("reduce_scatter" if sp else "all_reduce", tokens * model.hidden * M.ACT_BYTES, st.tp, 1)
    tp_s *= env.tp_exposed
    params = G.embedding_params(model) / st.tp
    p_b, g_b, o_b, zc = env.zero(params, 0.0)
    ew += env.grad_accumulate_s(zc)
    parts = {"gemm": 0.0, "attention": 0.0, "elementwise": ew, "recompute": 0.0, "tp_comm": 2 * tp_s,
             "cp_comm": 0.0, "ep_comm": 0.0, "zero_comm": zc.exposed_s(ew / 3, 2 * ew / 3)}
    act = M.embedding_activation_bytes(model, st.mbs, st.seq, tp=st.tp, cp=st.cp, sp=sp)
    return PartCost(sum(parts.values()), parts, p_b, g_b, o_b, act, 0.0, zc.sync_s, env.optimizer_s(params, 0.0),
                    zc.step_s(ew / 3))


def head_cost(model: ModelSpec, pool: NodePool, st: Setting, pp: int) -> PartCost:
    """Final norm, LM head, loss and MTP modules on the last stage."""
    env = _Env(pool, st)
    h, tp = model.hidden, st.tp
    tokens = st.mbs * st.seq / st.cp
    sp = st.sp and tp > 1
    gemm_fwd, cast = env.gemms([(tokens, model.vocab / tp, h, 1)])
    ew_fwd = env.ew(M.ACT_BYTES * 4 * tokens * h / (tp if sp else 1)) + memory_bound_time_s(cast, env.dev)
    loss = env.ew(LOSS_BYTES_PER_LOGIT * tokens * model.vocab / tp)
    tp_s = env.coll("all_gather" if sp else "all_reduce", tokens * h * M.ACT_BYTES, tp, 1) \
        + 3 * env.coll("all_reduce", tokens * 4, tp, 1)
    tp_s *= env.tp_exposed
    params = G.head_params(model, pp) / tp
    dense_mtp = expert_mtp = act_mtp = 0.0
    mtp_parts = {}
    if model.mtp_layers:
        layer = layer_cost(model, model.moe is not None, pool, st)
        proj, _ = env.gemms([(tokens, h / tp, 2 * h, 1)])
        d, e = G.mtp_params(model)
        dense_mtp, expert_mtp = model.mtp_layers * d / tp, model.mtp_layers * e / (st.ep * st.etp)
        act_mtp = model.mtp_layers * layer.activation_bytes
        mtp_parts = {k: model.mtp_layers * v for k, v in layer.parts.items()}
        mtp_parts["gemm"] += model.mtp_layers * 3 * (proj + gemm_fwd)
        mtp_parts["elementwise"] += model.mtp_layers * loss
    p_b, g_b, o_b, zc = env.zero(params + dense_mtp, expert_mtp)
    sync = zc.sync_s
    if model.tied_embeddings and pp > 1:  # keep the two embedding copies in sync (first and last stage)
        sync += env.coll("all_reduce", env.fw.grad_reduce_bytes * G.embedding_params(model) / tp, 2, env.dpn)
    fwd = gemm_fwd + ew_fwd + loss / 3
    parts = {"gemm": 3 * gemm_fwd, "attention": 0.0, "elementwise": 3 * ew_fwd + loss + env.grad_accumulate_s(zc),
             "recompute": 0.0,
             "tp_comm": 2 * tp_s, "cp_comm": 0.0, "ep_comm": 0.0, "zero_comm": zc.exposed_s(fwd, 2 * fwd)}
    for k, v in mtp_parts.items():
        parts[k] += v
    act = M.head_activation_bytes(model, st.mbs, st.seq, tp=tp, cp=st.cp, sp=sp) + act_mtp
    return PartCost(sum(parts.values()), parts, p_b, g_b, o_b, act, 0.0, sync,
                    env.optimizer_s(params + dense_mtp, expert_mtp), zc.step_s(fwd))
