"""Best-first search over the outer space with valid lower bounds, and the exact split inside.

Optimality argument. The outer space (planner.train.space) is enumerated exhaustively. Each candidate c
gets two valid lower bounds on its step time over all splits (planner.train.bounds: LB0 from FLOPs at
the calibrated peak efficiencies; LB1 from the cost model's per-layer costs with perfectly balanced
stages) and a valid lower bound on its memory. Candidates are visited in increasing LB0; the search stops
when LB0 reaches the k-th best step time found (k = 1 + alternatives), and skips a candidate whose
memory bound exceeds the usable HBM or whose LB1 reaches that value. Every visited candidate with
pp > 1 gets the split that minimises its slowest stage under memory (split.best_split_dp, exact), so
its value is attained and LB2 = (m - 1/v) T* + sum t / v + balanced sync + balanced update is a valid
bound; where LB2 < value the split ILP (solved by HiGHS) closes the gap for the candidates that can
still matter. Interleaved candidates (vpp > 1) are split the same way with at least vpp layers per stage;
DeepSpeed candidates (and uneven_split=False) take the even split.
So the winner is optimal over the whole space up to the ILP's reported gap.
"""

import heapq
from dataclasses import dataclass, field, replace

import numpy as np

from costmodels.comm import p2p_time_s as inter_pool_p2p_s
from costmodels.hardware import NodePool
from costmodels.memory import ACT_BYTES
from costmodels.parallel import ParallelConfig
from costmodels.pipeline import in_flight_microbatches
from costmodels.training import even_stage_layers, layer_costs
from planner.train.bounds import Bounds
from planner.train.request import TrainRequest
from planner.train.space import configs_for_shape, hetero_shapes, shapes
from planner.train.split import SplitProblem, best_split_dp, solve_split_ilp
from solvers.deadline import Deadline
from solvers.result import SolverOptions

SLACK = 1e-9
"""relative slack on every bound comparison (floating-point sums in different orders)"""


_ARRAYS = ("layer_time_s", "layer_weight_bytes", "layer_activation_bytes", "layer_working_bytes",
           "dp_sync_time_s", "optimizer_time_s")


def _pool_arrays(request: TrainRequest, config: ParallelConfig, distinct: list, cache: dict | None) -> tuple:
    """(costs, per-layer arrays, first, last) of the distinct pools; memoised over what they depend on
    (everything but vpp and the split)."""
    key = (tuple(p.name for p in distinct), config.tp, config.pp, config.dp, config.cp, config.ep, config.etp,
           config.mbs, config.zero, config.recompute, config.sequence_parallel and config.tp > 1)
    if cache is not None and key in cache:
        return cache[key]
    costs = [layer_costs(request.model, p, request.workload, config) for p in distinct]
    arrays = {a: np.vstack([np.asarray(getattr(lc, a), dtype=float) for lc in costs]) for a in _ARRAYS}
    first = np.array([[lc.embed_time_s, lc.embed_weight_bytes, lc.embed_activation_bytes,
                       lc.embed_dp_sync_time_s, lc.embed_optimizer_time_s] for lc in costs])
    last = np.array([[lc.head_time_s, lc.head_weight_bytes, lc.head_activation_bytes,
                      lc.head_dp_sync_time_s, lc.head_optimizer_time_s] for lc in costs])
    value = (costs, arrays, first, last)
    if cache is not None:
        cache[key] = value
    return value


def split_problem(request: TrainRequest, config: ParallelConfig, pools: tuple[NodePool, ...],
                  cache: dict | None = None) -> SplitProblem:
    """The split model's data for `config` with stage s on pools[s] (costmodels.training.layer_costs)."""
    model, workload = request.model, request.workload
    distinct = []
    for p in pools:
        if all(p is not q for q in distinct):
            distinct.append(p)
    index = [next(i for i, q in enumerate(distinct) if q is p) for p in pools]
    costs, arrays, first, last = _pool_arrays(request, config, distinct, cache)
    pp, vpp, m = config.pp, config.vpp, config.microbatches(workload)
    p2p = []
    for s in range(pp):
        one = costs[index[s]].p2p_time_s
        if s < pp - 1 and pools[s + 1] is not pools[s]:
            link = request.cluster.inter_pool_bytes_per_s or min(pools[s].inter_node_bytes_per_s,
                                                                 pools[s + 1].inter_node_bytes_per_s)
            msg = config.mbs * workload.seq_len / config.cp * model.hidden * ACT_BYTES / config.tp
            one = inter_pool_p2p_s(msg, link, pools[s].device)
        boundaries = vpp if vpp > 1 else (1 if s < pp - 1 else 0)
        p2p.append(2 * boundaries * one if pp > 1 else 0.0)
    return SplitProblem(
        layer_time_s=arrays["layer_time_s"], layer_static_bytes=arrays["layer_weight_bytes"],
        layer_activation_bytes=arrays["layer_activation_bytes"], layer_working_bytes=arrays["layer_working_bytes"],
        layer_sync_s=arrays["dp_sync_time_s"], layer_optimizer_s=arrays["optimizer_time_s"], first=first, last=last,
        stage_pool=tuple(index),
        in_flight=tuple(in_flight_microbatches(s, pp, m, vpp) for s in range(pp)), p2p_time_s=tuple(p2p),
        memory_cap_bytes=np.array([lc.memory_capacity_bytes for lc in costs]),
        dp_overlap=np.array([p.device.calibration.dp_overlap for p in distinct]), microbatches=m, vpp=vpp,
        overhead_s=pools[0].device.calibration.step_overhead_s)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One evaluated strategy with its split."""

    step_time_s: float
    """objective value of the split found"""
    lower_bound_s: float
    """valid lower bound over all splits of this outer candidate"""
    config: ParallelConfig
    """the strategy, stage_layers set"""
    order: int
    """position in the enumeration (the deterministic tie-break: smaller degrees first)"""


@dataclass(slots=True)
class SearchStats:
    """What the search did (goes into the plan's solver block)."""

    enumerated: int = 0
    pruned_memory_bound: int = 0
    pruned_time_bound: int = 0
    pruned_balanced_bound: int = 0
    evaluated: int = 0
    infeasible_split: int = 0
    ilp_solves: int = 0
    timed_out: bool = False
    """the time limit stopped the search before its bounds closed"""
    bound_s: float | None = None
    """when timed out: the smallest step-time lower bound among the unexplored strategies"""
    tightest_memory: tuple = ()
    """(memory lower bound in bytes, config) of the candidate that came closest to fitting"""

    def to_json(self) -> dict:
        return {"enumerated": self.enumerated, "pruned_by_memory_bound": self.pruned_memory_bound,
                "pruned_by_time_bound": self.pruned_time_bound, "pruned_by_balanced_bound": self.pruned_balanced_bound,
                "evaluated": self.evaluated, "no_split_fits": self.infeasible_split,
                "split_ilp_solves": self.ilp_solves,
                "complete": not self.timed_out}


@dataclass(slots=True)
class SearchResult:
    ranked: list = field(default_factory=list)
    """best first: Candidate"""
    stats: SearchStats = field(default_factory=SearchStats)


def pools_of(request: TrainRequest, c: ParallelConfig) -> tuple[NodePool, ...]:
    """The pool of each stage (the first pool when the config names none)."""
    if c.stage_pools:
        return tuple(request.cluster.pool(name) for name in c.stage_pools)
    return (request.cluster.primary,) * c.pp


def candidates(request: TrainRequest):
    """Every strategy of the space, in a fixed order."""
    cluster = request.cluster
    if not cluster.is_heterogeneous:
        for shape in shapes(request, cluster.num_devices, cluster.primary):
            yield from configs_for_shape(request, shape)
        return
    for shape, layout in hetero_shapes(request):
        for c in configs_for_shape(request, shape):
            yield replace(c, stage_pools=layout)


def uneven_split_allowed(request: TrainRequest, c: ParallelConfig) -> bool:
    """Whether the split of `c` is searched (pp > 1, uneven splits requested, and the framework can place one:
    DeepSpeed's PipelineModule cannot, nor Megatron's layer-level selective recompute), else the even split is
    used. Interleaved (vpp > 1) splits are searched too: each stage keeps at least vpp layers, its virtual
    stages take them larger-first (costmodels.pipeline.virtual_stage_layers)."""
    if c.recompute == "selective-layer" and request.workload.framework == "megatron":
        return False  # --recompute-num-layers is one count for every (virtual) stage: equal stages only
    return c.pp > 1 and request.options.uneven_split and request.workload.framework != "deepspeed"


def _evaluate(request: TrainRequest, c: ParallelConfig, order: int, threshold: float, cache: dict
              ) -> tuple[Candidate | None, str]:
    """(candidate, '') or (None, why it was dropped: 'balanced' | 'memory').

    The balanced bound is first taken from the cheapest sibling (ZeRO 1, no recompute: the cost model's
    per-micro-batch layer times only grow with the ZeRO stage and with recomputation), whose layer costs
    are shared by up to 12 candidates, then from the candidate's own costs."""
    pools = pools_of(request, c)
    sibling = replace(c, zero=1, recompute="none")
    if split_problem(request, sibling, pools, cache).time_lower_bound() * (1 - SLACK) >= threshold:
        return None, "balanced"
    prob = split_problem(request, c, pools, cache)
    if prob.lower_bound(0.0) * (1 - SLACK) >= threshold:
        return None, "balanced"
    if not uneven_split_allowed(request, c):
        split = even_stage_layers(request.model.layers, c.pp)
        if not prob.fits(split):
            return None, "memory"
        value = prob.objective(split)
        return Candidate(value, value, replace(c, stage_layers=split), order), ""
    found = best_split_dp(prob)
    if found is None:
        return None, "memory"
    split, slowest = found
    value = prob.objective(split)
    return Candidate(value, min(value, prob.lower_bound(slowest)), replace(c, stage_layers=split), order), ""


class _Bounds:
    """LB-time and LB-memory over the pools a candidate uses (the fastest pool bounds its time)."""

    def __init__(self, request: TrainRequest):
        self.per_pool = {p.name: Bounds(request.model, p, request.workload) for p in request.cluster.pools}
        self.primary = request.cluster.primary.name
        self.cap = {p.name: p.device.usable_bytes for p in request.cluster.pools}

    def _names(self, c: ParallelConfig):
        return sorted(set(c.stage_pools)) if c.stage_pools else [self.primary]

    def time(self, c: ParallelConfig) -> float:
        return min(self.per_pool[n].time(c) for n in self._names(c))

    def memory(self, c: ParallelConfig) -> float:
        return self.per_pool[self.primary].memory(c)

    def capacity(self, c: ParallelConfig) -> float:
        return max(self.cap[n] for n in self._names(c))


def search(request: TrainRequest, *, keep: int, solver: SolverOptions, progress=None) -> SearchResult:
    """The `keep` best strategies (best first). Stops early when solver.time_limit_s runs out (once a
    strategy is found); then stats.bound_s is the smallest lower bound left unexplored (not proven)."""
    deadline = Deadline(solver.time_limit_s)
    bounds = _Bounds(request)
    result, stats = SearchResult(), SearchResult().stats
    result.stats = stats
    queue = []
    for c in candidates(request):
        stats.enumerated += 1
        mem = bounds.memory(c)
        if mem > bounds.capacity(c):
            stats.pruned_memory_bound += 1
            if not stats.tightest_memory or mem < stats.tightest_memory[0]:
                stats.tightest_memory = (mem, c)
            continue
        queue.append((bounds.time(c), len(queue), c))
    queue.sort(key=lambda e: (e[0], e[1]))
    if progress:
        progress(f"train: {stats.enumerated} strategies enumerated, {len(queue)} pass the memory bound")
    best: list = []  # max-heap on (value, key) via negation: the `keep` best so far
    unproven: list[Candidate] = []
    cache: dict = {}

    def threshold() -> float:
        return -best[0][0] if len(best) >= keep else float("inf")

    for i, (lb, order, c) in enumerate(queue):
        if lb * (1 - SLACK) >= threshold():
            stats.pruned_time_bound += len(queue) - i
            break
        if best and deadline.expired():  # never before one strategy is found
            stats.timed_out, stats.bound_s = True, lb
            if progress:
                progress(f"train: time limit reached with {len(queue) - i} strategies unexplored")
            break
        cand, why = _evaluate(request, c, order, threshold(), cache)
        if cand is None:
            if why == "balanced":
                stats.pruned_balanced_bound += 1
            else:
                stats.infeasible_split += 1
                mem = bounds.memory(c)
                if not stats.tightest_memory or mem < stats.tightest_memory[0]:
                    stats.tightest_memory = (mem, c)
            continue
        stats.evaluated += 1
        if cand.lower_bound_s < cand.step_time_s * (1 - SLACK):
            unproven.append(cand)
        entry = (-cand.step_time_s, -cand.order, cand)
        if len(best) < keep:
            heapq.heappush(best, entry)
        elif entry > best[0]:
            heapq.heapreplace(best, entry)
        if progress and stats.evaluated % 2000 == 0:
            progress(f"train: {stats.evaluated} evaluated, best step {-max(best)[0]:.4f} s")
    ranked = sorted((e[2] for e in best), key=_rank)
    ranked = _close_gaps(request, ranked, unproven, solver, stats)
    result.ranked = ranked
    return result


def _rank(cd: Candidate) -> tuple:
    return cd.step_time_s, cd.order


def _close_gaps(request, ranked, unproven, solver, stats) -> list:
    """Re-split with the ILP, in increasing lower bound, every candidate whose DP split is not proven
    optimal and whose bound is below the current winner (so the winner is exact); returns the kept set."""
    if not ranked:
        return ranked
    kept = {id(cd): cd for cd in ranked}
    for cd in sorted(unproven, key=lambda x: (x.lower_bound_s, x.order)):
        winner = min(kept.values(), key=_rank)
        if cd.lower_bound_s * (1 - SLACK) >= winner.step_time_s * (1 - solver.relative_gap):
            break
        res = solve_split_ilp(split_problem(request, cd.config, pools_of(request, cd.config)), solver)
        stats.ilp_solves += 1
        if res.solve.status.has_solution and res.objective_s < cd.step_time_s:
            kept.pop(id(cd), None)
            better = Candidate(res.objective_s, res.objective_s, replace(cd.config, stage_layers=res.stage_layers),
                               cd.order)
            kept[id(better)] = better
    return sorted(kept.values(), key=_rank)[:len(ranked)]
