"""The outer search space: every (tp, cp, pp, dp, ep, etp, vpp, mbs, zero, recompute, sp) a request allows.

Divisibility and placement rules (Megatron-LM's own checks):
  tp | heads and tp | kv_heads (MLA: tp | heads), tp | ffn; tp inside a node unless allowed
  cp > 1 needs seq % (2 cp) == 0 (load-balanced causal chunks) and at least `min_cp_tokens` per rank
  tp * cp * pp * dp = GPUs of the pool (homogeneous) ; pp <= layers
  gbs % dp == 0, mbs | gbs / dp; m = gbs / (dp * mbs) micro-batches
  vpp > 1: pp > 1, layers >= pp * vpp (a decoder layer per virtual stage; any layer count, rendered as a
           Megatron --pipeline-model-parallel-layout with embedding and loss entries), m % pp == 0
  MoE: ep | experts, etp | expert_ffn, ep * etp | tp * cp * dp (parallel folding), ep * etp inside a node
       unless allowed; tp > 1 with MoE needs sequence parallelism (DeepSpeed: has none)
  sequence parallelism only when tp > 1
Heterogeneous clusters (several pools): every stage has the same tp, cp, dp (so tp*cp*dp GPUs); a pool
hosts either as many stages as fit in it or none; the used pools take consecutive stages in every order.
"""

import itertools
from dataclasses import dataclass

from costmodels.framework import LEGACY_RECOMPUTE, framework, unsupported
from costmodels.hardware import NodePool
from costmodels.parallel import ParallelConfig
from costmodels.training import framework_problems
from planner.train.request import TrainRequest

MIN_CP_TOKENS = 1024
"""context parallelism is not split finer than this many tokens per rank (unless options.max_cp says so)"""


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@dataclass(frozen=True, slots=True, order=True)
class Shape:
    """The degrees of one candidate; with mbs, zero, recompute and sp it makes a ParallelConfig."""

    tp: int
    cp: int
    pp: int
    dp: int
    ep: int
    etp: int


def tp_choices(request: TrainRequest, pool: NodePool) -> list[int]:
    model, opts = request.model, request.options
    out = []
    for tp in divisors(model.heads):
        if model.attention != "mla" and model.kv_heads % tp:
            continue
        if model.ffn and model.ffn % tp:
            continue
        if tp > pool.devices_per_node and not opts.allow_cross_node_tp:
            continue
        out.append(tp)
    return out


def cp_choices(request: TrainRequest) -> list[int]:
    seq, opts = request.workload.seq_len, request.options
    limit = opts.max_cp or max(1, seq // MIN_CP_TOKENS)
    return [cp for cp in divisors(seq) if cp <= limit and (cp == 1 or seq % (2 * cp) == 0)]


def expert_choices(request: TrainRequest, pool: NodePool, dense_group: int) -> list[tuple[int, int]]:
    """(ep, etp) pairs for a stage of `dense_group` = tp * cp * dp GPUs."""
    model, opts = request.model, request.options
    if model.moe is None:
        return [(1, 1)]
    out = []
    for ep in divisors(model.moe.experts):
        for etp in divisors(model.moe.expert_ffn):
            group = ep * etp
            if dense_group % group:
                continue
            if group > pool.devices_per_node and not opts.allow_cross_node_ep:
                continue
            if etp > pool.devices_per_node and not opts.allow_cross_node_tp:
                continue
            out.append((ep, etp))
    return out


def shapes(request: TrainRequest, gpus: int, pool: NodePool) -> list[Shape]:
    """All degree combinations that use exactly `gpus` GPUs of `pool`, sorted."""
    model, gbs = request.model, request.workload.global_batch
    out = []
    for tp in tp_choices(request, pool):
        if gpus % tp:
            continue
        for cp in cp_choices(request):
            if (gpus // tp) % cp:
                continue
            for pp in divisors(gpus // (tp * cp)):
                if pp > model.layers:
                    continue
                dp = gpus // (tp * cp * pp)
                if gbs % dp:
                    continue
                for ep, etp in expert_choices(request, pool, tp * cp * dp):
                    out.append(Shape(tp, cp, pp, dp, ep, etp))
    return sorted(out)


def hetero_shapes(request: TrainRequest) -> list[tuple[Shape, tuple[str, ...]]]:
    """(shape, pool of each stage) for a heterogeneous cluster, sorted."""
    pools = request.cluster.pools
    model, gbs = request.model, request.workload.global_batch
    narrowest = min(pools, key=lambda p: (p.devices_per_node, p.name))
    out = []
    for tp, cp in itertools.product(tp_choices(request, narrowest), cp_choices(request)):
        for dp in divisors(gbs):
            group = tp * cp * dp
            stages = {p.name: p.num_devices // group for p in pools if p.num_devices >= group}
            for r in range(1, len(stages) + 1):
                for used in itertools.permutations(sorted(stages), r):
                    layout = tuple(n for n in used for _ in range(stages[n]))
                    pp = len(layout)
                    if pp > model.layers:
                        continue
                    for ep, etp in expert_choices(request, narrowest, group):
                        out.append((Shape(tp, cp, pp, dp, ep, etp), layout))
    return sorted(out)


def _recompute_modes(request: TrainRequest, shape: Shape, vpp: int) -> list[str]:
    """The recompute modes to search for one shape and vpp: the options' modes less those only an older version
    of the framework ran (costmodels.framework.LEGACY_RECOMPUTE, unless nothing else was asked for) and those
    the framework refuses for this pipeline whatever the other decisions (skipped before building configs)."""
    name, model = request.workload.framework, request.model
    legacy = LEGACY_RECOMPUTE.get(name, ())
    modes = list(request.options.recompute_modes)
    modes = [r for r in modes if r not in legacy] or modes
    rest = dict(zero=framework(name).zero_stages[0], pp=shape.pp, cp=shape.cp, vpp=vpp, tp=shape.tp, etp=shape.etp,
                layers=model.layers, mtp_layers=model.mtp_layers)
    return [r for r in modes if all(f != "recompute" for f, _ in unsupported(name, recompute=r, **rest))]


def configs_for_shape(request: TrainRequest, shape: Shape) -> list[ParallelConfig]:
    """Every ParallelConfig of one shape (mbs, vpp, zero, recompute, sp), in a fixed order."""
    model, opts, gbs = request.model, request.options, request.workload.global_batch
    per_replica = gbs // shape.dp
    sps = sorted({sp and shape.tp > 1 for sp in opts.sequence_parallel}, reverse=True)
    if model.moe is not None and shape.tp > 1 and request.workload.framework != "deepspeed":
        sps = [True] if True in opts.sequence_parallel else []  # Megatron/torchtitan MoE with TP need it
    out = []
    for mbs in divisors(per_replica):
        if mbs > opts.max_mbs:
            break
        m = per_replica // mbs
        vpps = [1]
        if shape.pp > 1:
            vpps += [v for v in range(2, opts.max_vpp + 1) if model.layers >= shape.pp * v and m % shape.pp == 0]
        for vpp in vpps:
            modes = _recompute_modes(request, shape, vpp)
            for zero in sorted(opts.zero_stages):
                for recompute in modes:
                    for sp in sps:
                        c = ParallelConfig(tp=shape.tp, pp=shape.pp, dp=shape.dp, cp=shape.cp, ep=shape.ep,
                                           etp=shape.etp, vpp=vpp, mbs=mbs, zero=zero, recompute=recompute,
                                           sequence_parallel=sp)
                        if not framework_problems(model, request.workload, c):  # else the framework cannot run it
                            out.append(c)
    return out
