"""Training step cost of one parallel configuration: time, memory and FLOPs per GPU, with breakdowns.

    layer_costs(model, pool, workload, config) -> LayerCosts        per-layer costs, independent of the stage split
    estimate_training(model, cluster, workload, config) -> TrainingEstimate

Step time (seconds):
    t_i   = sum of layer times of stage i (fwd + bwd + recompute of ONE micro-batch, incl. exposed TP/CP/EP
            comm) + embedding (stage 0) + head/loss/MTP (last stage) + p2p: 2 messages (activation out,
            gradient in) on every stage but the last; 2·vpp on every stage when interleaved
    T     = pipeline_step_time(t, m, vpp)                         (costmodels/pipeline.py)
          + max_i max(0, dp_sync_i - dp_overlap · t_i)           (gradient reduce + parameter gather; they
                                                                  hide behind one micro-batch at most)
          + max_i (once_i + Adam update time of the stage)        (once_i: ZeRO 3 under torchtitan PP gathers
                                                                  the stage's parameters once per step and
                                                                  reduce-scatters its unsharded gradients once,
                                                                  after its last backward, before its update)
          + step_overhead_s
Memory of stage i (bytes per GPU):
    states (weights + grads + optimizer, ZeRO-sharded) + in_flight_i x activations of one micro-batch
    + head activations (1 micro-batch) + the working set of one layer under full recompute + reserve.
MFU = model FLOPs (no recompute, causal-halved attention) / (T · GPUs · peak); HFU counts recompute.
"""

import functools
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from costmodels import flops as F
from costmodels import layer_parts as LP
from costmodels.comm import Links, collective_time_s, p2p_time_s
from costmodels.framework import framework, unsupported
from costmodels.hardware import ClusterSpec, NodePool
from costmodels.memory import ACT_BYTES
from costmodels.model import ModelSpec
from costmodels.parallel import ParallelConfig, TrainingWorkload
from costmodels.pipeline import in_flight_microbatches, pipeline_step_time

GiB = float(2**30)
TIME_PARTS = LP.TIME_PARTS


@dataclass(frozen=True, kw_only=True, slots=True)
class LayerCosts:
    """Per-layer costs of one configuration on one pool, independent of how layers are split into stages."""

    layer_time_s: tuple[float, ...]
    """fwd + bwd (+ recompute) of ONE micro-batch on one GPU, incl. non-overlapped TP/CP/EP comm"""
    layer_weight_bytes: tuple[float, ...]
    """weights + gradients + optimizer states per GPU after sharding"""
    layer_activation_bytes: tuple[float, ...]
    """activations of ONE in-flight micro-batch"""
    layer_working_bytes: tuple[float, ...]
    """activations rebuilt while one layer runs its backward under full recompute (0 otherwise)"""
    dp_sync_time_s: tuple[float, ...]
    """per step: gradient reduce-scatter/all-reduce + parameter all-gather of the layer, before overlap"""
    optimizer_time_s: tuple[float, ...]
    """per step, after the last micro-batch: Adam update of the layer's locally owned parameters, preceded by its
    once-per-step ZeRO 3 traffic under torchtitan PP (layer_parts.PartCost.step_comm_s)"""
    is_moe: tuple[bool, ...]
    """which layers have routed experts"""
    embed_time_s: float
    """embedding fwd + bwd of one micro-batch (first stage)"""
    embed_weight_bytes: float
    embed_activation_bytes: float
    """per in-flight micro-batch"""
    embed_dp_sync_time_s: float
    embed_optimizer_time_s: float
    head_time_s: float
    """final norm, LM head, loss and MTP modules of one micro-batch (last stage)"""
    head_weight_bytes: float
    head_activation_bytes: float
    """one micro-batch (1F1B runs the last stage's backward right after its forward)"""
    head_dp_sync_time_s: float
    head_optimizer_time_s: float
    p2p_time_s: float
    """one activation (or gradient) message across a stage boundary, per micro-batch"""
    memory_capacity_bytes: float
    """usable HBM per GPU of the pool (datasheet minus the framework reserve)"""
    reserve_bytes: float
    """the framework reserve"""


@dataclass(frozen=True, kw_only=True, slots=True)
class TrainingEstimate:
    """Predicted cost of one training configuration."""

    feasible: bool
    infeasible_reasons: tuple[str, ...]
    step_time_s: float
    tokens_per_s_per_gpu: float
    model_tflops_per_gpu: float
    """model FLOPs (recompute not counted) per second per GPU / 1e12"""
    hardware_tflops_per_gpu: float
    """FLOPs executed incl. recompute per second per GPU / 1e12"""
    mfu: float
    memory_per_gpu_bytes: float
    """peak over stages, incl. the framework reserve"""
    microbatches: int
    stage_layers: tuple[int, ...]
    stage_time_s: tuple[float, ...]
    """one micro-batch on each stage"""
    stage_memory_bytes: tuple[float, ...]
    breakdown: dict[str, Any] = field(default_factory=dict)
    """time_s: parts of the step summing to step_time_s; memory_bytes: parts of the peak stage"""

    def to_dict(self) -> dict[str, Any]:
        return {"feasible": self.feasible, "infeasible_reasons": list(self.infeasible_reasons),
                "step_time_s": self.step_time_s, "tokens_per_s_per_gpu": self.tokens_per_s_per_gpu,
                "model_tflops_per_gpu": self.model_tflops_per_gpu,
                "hardware_tflops_per_gpu": self.hardware_tflops_per_gpu, "mfu": self.mfu,
                "memory_per_gpu_bytes": self.memory_per_gpu_bytes, "microbatches": self.microbatches,
                "stage_layers": list(self.stage_layers), "stage_time_s": list(self.stage_time_s),
                "stage_memory_bytes": list(self.stage_memory_bytes), "breakdown": self.breakdown}


# ---- caches (keyed by object identity of the frozen specs, which are kept alive in the entry) ----
_CACHE: dict[Hashable, tuple[tuple[object, ...], Any]] = {}
_CACHE_LIMIT = 8192


T = TypeVar("T")
Kinds = tuple["LP.PartCost | None", "LP.PartCost | None", LP.PartCost, LP.PartCost, float]
"""(dense layer, MoE layer, embedding, head costs, pipeline p2p seconds) of one pool"""
StageCost = tuple[dict[str, float], float, float, float, float, dict[str, float], float]
"""(time parts, dp sync, optimizer, activations per micro-batch, activations held once, states, once-per-step
exposed ZeRO traffic) of a stage"""


def _cached(key: Hashable, objs: tuple[object, ...], build: Callable[[], T]) -> T:
    hit = _CACHE.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], objs, strict=True)):
        cached: T = hit[1]
        return cached
    if len(_CACHE) >= _CACHE_LIMIT:
        _CACHE.clear()
    value = build()
    _CACHE[key] = (objs, value)
    return value


def _setting(workload: TrainingWorkload, config: ParallelConfig) -> LP.Setting:
    return LP.Setting(mbs=config.mbs, seq=workload.seq_len, dtype=workload.dtype, tp=config.tp, cp=config.cp,
                      dp=config.dp, ep=config.ep, etp=config.etp, zero=config.zero, recompute=config.recompute,
                      sp=config.sequence_parallel and config.tp > 1, framework=workload.framework,
                      fused=workload.fused_elementwise, tp_overlap=workload.tp_overlap,
                      fp8_allgather=workload.fp8_allgather, moe_skew=workload.moe_skew,
                      a2a_dedup=workload.a2a_dedup, fp8_dispatch=workload.fp8_dispatch,
                      a2a_overlap=workload.a2a_overlap, flash=workload.flash_attention,
                      gathered_once=config.zero == 3 and config.pp > 1 and
                      framework(workload.framework).pp_gathers_once)


def _kind_costs(model: ModelSpec, pool: NodePool, st: LP.Setting, pp: int) -> Kinds:
    """(dense PartCost or None, MoE PartCost or None, embed, head, p2p seconds) — cached."""
    def build() -> Kinds:
        n_moe = _moe_prefix(model)[-1]
        dense = LP.layer_cost(model, False, pool, st) if n_moe < model.layers else None
        moe = LP.layer_cost(model, True, pool, st) if n_moe else None
        embed = LP.embed_cost(model, pool, st)
        head = LP.head_cost(model, pool, st, pp)
        msg = st.mbs * st.seq / st.cp * model.hidden * ACT_BYTES / st.tp
        stride = st.tp * st.cp * st.dp
        links = Links.of(pool.device, pool.devices_per_node, pool.intra_node_bytes_per_s,
                         pool.inter_node_bytes_per_s)
        p2p = collective_time_s("p2p", msg, 2, stride, links) if pp > 1 else 0.0
        return dense, moe, embed, head, p2p
    return _cached(("kinds", id(model), id(pool), st, pp), (model, pool), build)


def _moe_flags(model: ModelSpec) -> tuple[bool, ...]:
    return _cached(("flags", id(model)), (model,), lambda: tuple(model.layer_is_moe(i) for i in range(model.layers)))


def _moe_prefix(model: ModelSpec) -> tuple[int, ...]:
    """prefix[i] = MoE layers among the first i layers."""
    def build() -> tuple[int, ...]:
        out, n = [0], 0
        for f in _moe_flags(model):
            n += f
            out.append(n)
        return tuple(out)
    return _cached(("prefix", id(model)), (model,), build)


def layer_costs(model: ModelSpec, pool: NodePool, workload: TrainingWorkload, config: ParallelConfig) -> LayerCosts:
    """Per-layer costs of `config` on one GPU of `pool` (stage split, pp position and vpp not applied)."""
    dense, moe, embed, head, p2p = _kind_costs(model, pool, _setting(workload, config), config.pp)
    flags = _moe_flags(model)
    per: list[LP.PartCost] = []
    for f in flags:
        cost = moe if f else dense
        if cost is None:  # never: _kind_costs builds the cost of every kind of layer the model has
            raise ValueError(f"no {'MoE' if f else 'dense'} layer cost for model {model.name!r}")
        per.append(cost)
    dev = pool.device
    return LayerCosts(
        layer_time_s=tuple(c.time_s for c in per), layer_weight_bytes=tuple(c.state_bytes for c in per),
        layer_activation_bytes=tuple(c.activation_bytes for c in per),
        layer_working_bytes=tuple(c.working_bytes for c in per), dp_sync_time_s=tuple(c.dp_sync_s for c in per),
        optimizer_time_s=tuple(c.optimizer_s + c.step_comm_s for c in per), is_moe=flags,
        embed_time_s=embed.time_s, embed_weight_bytes=embed.state_bytes, embed_activation_bytes=embed.activation_bytes,
        embed_dp_sync_time_s=embed.dp_sync_s, embed_optimizer_time_s=embed.optimizer_s + embed.step_comm_s,
        head_time_s=head.time_s, head_weight_bytes=head.state_bytes, head_activation_bytes=head.activation_bytes,
        head_dp_sync_time_s=head.dp_sync_s, head_optimizer_time_s=head.optimizer_s + head.step_comm_s,
        p2p_time_s=p2p,
        memory_capacity_bytes=dev.usable_bytes, reserve_bytes=dev.memory_reserve_bytes)


@functools.lru_cache(maxsize=4096)
def even_stage_layers(layers: int, pp: int) -> tuple[int, ...]:
    """Layers per stage as even as possible; the extra layers go to the inner stages first (the end
    stages also carry the embedding and the LM head)."""
    base, extra = divmod(layers, pp)
    order = list(range(1, pp - 1)) + [0, pp - 1] if pp > 2 else list(range(pp))
    counts = [base] * pp
    for i in order[:extra]:
        counts[i] += 1
    return tuple(counts)


def check_config(model: ModelSpec, cluster: ClusterSpec, workload: TrainingWorkload,
                 config: ParallelConfig) -> list[tuple[str, str]]:
    """Structural problems as (field, reason): divisibility, GPU count, pools. Empty = consistent."""
    c, out = config, []
    gpus = c.num_devices
    if cluster.is_heterogeneous and c.stage_pools is None:
        out.append(("stage_pools", f"a cluster of several pools needs stage_pools (one of "
                                   f"{', '.join(p.name for p in cluster.pools)} per stage)"))
    elif (c.stage_pools is None or not cluster.is_heterogeneous) and gpus != cluster.num_devices:
        out.append(("dp", f"tp*pp*dp*cp = {c.tp}*{c.pp}*{c.dp}*{c.cp} = {gpus} but the cluster has "
                          f"{cluster.num_devices} GPUs"))
    if c.stage_pools is not None:
        names = [p.name for p in cluster.pools]
        for name in sorted(set(c.stage_pools)):
            if name not in names:
                out.append(("stage_pools", f"unknown pool {name!r}; valid: {', '.join(names)}"))
            else:
                need = c.stage_pools.count(name) * c.tp * c.cp * c.dp
                have = cluster.pool(name).num_devices
                if need > have:
                    out.append(("stage_pools", f"pool {name!r} needs {need} GPUs but has {have}"))
    if model.heads % c.tp:
        out.append(("tp", f"tp={c.tp} does not divide the {model.heads} attention heads"))
    if model.attention != "mla" and model.kv_heads % c.tp:
        out.append(("tp", f"tp={c.tp} does not divide the {model.kv_heads} kv heads"))
    if _moe_prefix(model)[-1] < model.layers and model.ffn % c.tp:
        out.append(("tp", f"tp={c.tp} does not divide ffn={model.ffn}"))
    if workload.global_batch % (c.dp * c.mbs):
        out.append(("gbs", f"global batch {workload.global_batch} is not divisible by dp*mbs = {c.dp}*{c.mbs}"))
    if c.cp > 1 and workload.seq_len % (2 * c.cp):
        out.append(("cp", f"sequence length {workload.seq_len} is not divisible by 2*cp = {2 * c.cp}"))
    stages = c.stage_layers or even_stage_layers(model.layers, c.pp)
    if sum(stages) != model.layers:
        out.append(("stage_layers", f"stage layers sum to {sum(stages)}, the model has {model.layers}"))
    if model.layers < c.pp:
        out.append(("pp", f"pp={c.pp} exceeds the {model.layers} layers"))
    if c.vpp > 1:
        if c.pp < 2:
            out.append(("vpp", "an interleaved schedule (vpp > 1) needs pp >= 2"))
        if any(n < c.vpp for n in stages):
            out.append(("vpp", f"vpp={c.vpp}: every stage needs a layer per virtual stage, got {list(stages)}"))
    if model.moe is not None:
        if model.moe.experts % c.ep:
            out.append(("ep", f"ep={c.ep} does not divide the {model.moe.experts} experts"))
        if model.moe.expert_ffn % c.etp:
            out.append(("etp", f"etp={c.etp} does not divide expert ffn={model.moe.expert_ffn}"))
    elif c.ep > 1 or c.etp > 1:
        out.append(("ep", "ep and etp apply to MoE models only"))
    return out + framework_problems(model, workload, c)


def framework_problems(model: ModelSpec, workload: TrainingWorkload, c: ParallelConfig) -> list[tuple[str, str]]:
    """Why `workload.framework` cannot run configuration `c` (costmodels.framework.unsupported); empty = runnable."""
    return unsupported(workload.framework, zero=c.zero, pp=c.pp, cp=c.cp, vpp=c.vpp, tp=c.tp, etp=c.etp, ep=c.ep,
                       dp=c.dp, experts=model.moe.experts if model.moe else 0, recompute=c.recompute,
                       sequence_parallel=c.sequence_parallel, fp8=workload.dtype == "fp8",
                       mtp_layers=model.mtp_layers, stage_layers=tuple(c.stage_layers or ()), layers=model.layers,
                       microbatches=c.microbatches(workload))


def _flops(model: ModelSpec, workload: TrainingWorkload, recompute: str) -> float:
    ops_sac = framework(workload.framework).selective_recomputes_ops
    key = ("flops", id(model), workload.global_batch, workload.seq_len, recompute, ops_sac)
    return _cached(key, (model,), lambda: F.step_flops(model, workload.global_batch, workload.seq_len, recompute,
                                                       ops_sac=ops_sac))


def _empty(reasons: Iterable[str]) -> TrainingEstimate:
    return TrainingEstimate(feasible=False, infeasible_reasons=tuple(reasons), step_time_s=0.0,
                            tokens_per_s_per_gpu=0.0, model_tflops_per_gpu=0.0, hardware_tflops_per_gpu=0.0, mfu=0.0,
                            memory_per_gpu_bytes=0.0, microbatches=0, stage_layers=(), stage_time_s=(),
                            stage_memory_bytes=(), breakdown={})


def _inter_pool_bytes_per_s(cluster: ClusterSpec, a: NodePool, b: NodePool) -> float:
    return cluster.inter_pool_bytes_per_s or min(a.inter_node_bytes_per_s, b.inter_node_bytes_per_s)


def _stage(model: ModelSpec, cluster: ClusterSpec, st: LP.Setting, kinds: Kinds, pool: NodePool,
           next_pool: NodePool, n_dense: int, n_moe: int, first: bool, last: bool, pp: int, vpp: int) -> StageCost:
    """(time parts of one micro-batch, dp sync, optimizer time, activations per in-flight micro-batch,
    activations held once (head, recompute working set), model states) of one stage."""
    dense, moe, embed, head, p2p = kinds
    items = [(c, k) for c, k in ((dense, n_dense), (moe, n_moe), (embed, int(first)), (head, int(last)))
             if c is not None and k]
    parts = dict.fromkeys(TIME_PARTS, 0.0)
    for cost, k in items:
        for name, v in cost.parts.items():
            parts[name] += k * v
    parts["p2p"] = 0.0
    if pp > 1:
        if not last and next_pool is not pool:
            p2p = p2p_time_s(st.mbs * st.seq / st.cp * model.hidden * ACT_BYTES / st.tp,
                             _inter_pool_bytes_per_s(cluster, pool, next_pool), pool.device)
        boundaries = vpp if vpp > 1 else (0 if last else 1)
        parts["p2p"] = 2 * boundaries * p2p
    layer_items = [(c, k) for c, k in items if c is not embed and c is not head]
    act_layers = sum(c.activation_bytes * k for c, k in layer_items)
    working = max((c.working_bytes for c, _ in layer_items), default=0.0)
    states = {"weights": sum(c.param_bytes * k for c, k in items), "grads": sum(c.grad_bytes * k for c, k in items),
              "optimizer": sum(c.optimizer_bytes * k for c, k in items)}
    act_per_microbatch = act_layers + (embed.activation_bytes if first else 0.0)
    act_fixed = (head.activation_bytes if last else 0.0) + working
    once = sum(c.step_comm_s * k for c, k in items)
    return (parts, sum(c.dp_sync_s * k for c, k in items), sum(c.optimizer_s * k for c, k in items) + once,
            act_per_microbatch, act_fixed, states, once)


def estimate_training(model: ModelSpec, cluster: ClusterSpec, workload: TrainingWorkload,
                      config: ParallelConfig) -> TrainingEstimate:
    """Step time, throughput, MFU and peak memory of `config`; structural problems give feasible=False
    with zero metrics, memory overflow gives feasible=False with all metrics computed."""
    problems = check_config(model, cluster, workload, config)
    if problems:
        return _empty(f"{fld}: {why}" for fld, why in problems)
    c, st = config, _setting(workload, config)
    pp, m, vpp = c.pp, config.microbatches(workload), c.vpp
    stages = c.stage_layers or even_stage_layers(model.layers, pp)
    pools = [cluster.pool(n) for n in c.stage_pools] if c.stage_pools else [cluster.primary] * pp
    prefix = _moe_prefix(model)
    kinds: dict[int, Kinds] = {}
    stage_memo: dict[tuple[int, int, int, bool, bool, int], Any] = {}
    sigs = []
    stage_t, stage_mem, stage_sync, stage_opt = [], [], [], []
    start = 0
    for i, n_layers in enumerate(stages):
        pool = pools[i]
        n_moe = prefix[start + n_layers] - prefix[start]
        start += n_layers
        next_pool = pools[i + 1] if i < pp - 1 else pool
        sig = (id(pool), n_layers, n_moe, i == 0, i == pp - 1, id(next_pool))
        memo = stage_memo.get(sig)
        if memo is None:
            if id(pool) not in kinds:
                kinds[id(pool)] = _kind_costs(model, pool, st, pp)
            parts, sync, opt, act, act_fixed, states, once = _stage(model, cluster, st, kinds[id(pool)], pool,
                                                                    next_pool, n_layers - n_moe, n_moe, i == 0,
                                                                    i == pp - 1, pp, vpp)
            t = sum(parts.values())
            # gradient reduction hides behind the last micro-batch's backward and the parameter gather behind
            # the first forward: at most dp_overlap x one micro-batch of this stage is available to hide it
            exposed = max(0.0, sync - pool.device.calibration.dp_overlap * t)
            fixed = sum(states.values()) + act_fixed + pool.device.memory_reserve_bytes
            memo = stage_memo[sig] = (t, exposed, opt, act, fixed, parts, states, once)
        sigs.append(sig)
        stage_t.append(memo[0])
        stage_sync.append(memo[1])
        stage_opt.append(memo[2])
        stage_mem.append(memo[4] + in_flight_microbatches(i, pp, m, vpp) * memo[3])

    pipe = pipeline_step_time(stage_t, m, vpp)
    worst = max(range(pp), key=stage_t.__getitem__)
    dp_exposed, optimizer = max(stage_sync), max(stage_opt)
    overhead = pools[0].device.calibration.step_overhead_s
    step = pipe + dp_exposed + optimizer + overhead
    time_parts = {k: m * v for k, v in stage_memo[sigs[worst]][5].items()}
    once = stage_memo[sigs[max(range(pp), key=stage_opt.__getitem__)]][7]  # ZeRO traffic before the update
    time_parts.update(pp_bubble=pipe - m * stage_t[worst], dp_comm=dp_exposed + once, optimizer=optimizer - once,
                      overhead=overhead)
    peak_stage = max(range(pp), key=stage_mem.__getitem__)
    reserve = pools[peak_stage].device.memory_reserve_bytes
    states = stage_memo[sigs[peak_stage]][6]
    mem_parts = dict(states, activations=stage_mem[peak_stage] - sum(states.values()) - reserve, reserve=reserve)

    reasons = []
    for i, mem in enumerate(stage_mem):
        dev = pools[i].device
        if mem > dev.hbm_bytes:
            reasons.append(f"stage {i} needs {(mem - dev.memory_reserve_bytes) / GiB:.1f} GiB per GPU; "
                           f"usable HBM is {dev.usable_bytes / GiB:.1f} GiB")
    gpus_per_stage = c.tp * c.cp * c.dp
    gpus = gpus_per_stage * pp
    if c.stage_pools:
        peak = sum(p.device.peak_flops_per_s(workload.dtype) for p in pools) * gpus_per_stage
    else:
        peak = pools[0].device.peak_flops_per_s(workload.dtype) * gpus
    model_flops, hw_flops = _flops(model, workload, "none"), _flops(model, workload, c.recompute)
    return TrainingEstimate(
        feasible=not reasons, infeasible_reasons=tuple(reasons), step_time_s=step,
        tokens_per_s_per_gpu=workload.tokens / step / gpus, model_tflops_per_gpu=model_flops / step / gpus / 1e12,
        hardware_tflops_per_gpu=hw_flops / step / gpus / 1e12, mfu=model_flops / step / peak,
        memory_per_gpu_bytes=stage_mem[peak_stage], microbatches=m, stage_layers=tuple(stages),
        stage_time_s=tuple(stage_t), stage_memory_bytes=tuple(stage_mem),
        breakdown={"time_s": time_parts, "memory_bytes": mem_parts,
                   "bottleneck_stage": worst, "peak_memory_stage": peak_stage})
