"""Best-first search over the outer space with valid lower bounds, and the exact split inside.

Optimality argument. The outer space (planner.train.space) is enumerated exhaustively. Each candidate c
gets two valid lower bounds on its step time over all splits (planner.train.bounds: LB0 from FLOPs at
the calibrated peak efficiencies; LB1 from the cost model's per-layer costs with perfectly balanced
stages) and a valid lower bound on its memory. Candidates are visited in increasing LB0; the search stops
when LB0 reaches the k-th best step time found (k = 1 + alternatives), and skips a candidate whose
memory bound exceeds the usable HBM or whose LB1 reaches that value. Every visited candidate with
vpp = 1 gets the split that minimises its slowest stage under memory (split.best_split_dp, exact), so
its value is attained and LB2 = (m - 1/v) T* + sum t / v + balanced sync + balanced update is a valid
bound; where LB2 < value the split ILP (solved by HiGHS) closes the gap for the candidates that can
still matter. vpp > 1 uses equal chunks (Megatron's interleaved schedule), a single split.
So the winner is optimal over the whole space up to the ILP's reported gap.
"""

import heapq
from dataclasses import dataclass, field, replace

import numpy as np

from costmodels.comm import p2p_time_s as inter_pool_p2p_s
from costmodels.hardware import NodePool
from costmodels.memory import ACT_BYTES
from costmodels.parallel import RECOMPUTE_MODES, ParallelConfig
from costmodels.pipeline import in_flight_microbatches
from costmodels.training import even_stage_layers, layer_costs
from planner.train.bounds import Bounds
from planner.train.request import TrainRequest
from planner.train.space import configs_for_shape, shapes
from planner.train.split import SplitProblem, best_split_dp, solve_split_ilp
from solvers.result import SolverOptions


SLACK = 1e-9
"""relative slack on every bound comparison (floating-point sums in different orders)"""


def config_key(c: ParallelConfig) -> tuple:
    """A total order on candidates for deterministic tie-breaking (simpler strategies first)."""
    return (c.tp, c.pp, c.dp, c.cp, c.ep, c.etp, c.vpp, c.mbs, c.zero, RECOMPUTE_MODES.index(c.recompute),
            not c.sequence_parallel)


def split_problem(request: TrainRequest, config: ParallelConfig, pools: tuple[NodePool, ...]) -> SplitProblem:
    """The split model's data for `config` with stage s on pools[s] (costmodels.training.layer_costs)."""
    model, workload = request.model, request.workload
    distinct = []
    for p in pools:
        if all(p is not q for q in distinct):
            distinct.append(p)
    index = [next(i for i, q in enumerate(distinct) if q is p) for p in pools]
    costs = [layer_costs(model, p, workload, config) for p in distinct]

    def per_layer(attr):
        return np.vstack([np.asarray(getattr(lc, attr), dtype=float) for lc in costs])

    first = np.array([[lc.embed_time_s, lc.embed_weight_bytes, lc.embed_activation_bytes,
                       lc.embed_dp_sync_time_s, lc.embed_optimizer_time_s] for lc in costs])
    last = np.array([[lc.head_time_s, lc.head_weight_bytes, lc.head_activation_bytes,
                      lc.head_dp_sync_time_s, lc.head_optimizer_time_s] for lc in costs])
    pp, vpp, m = config.pp, config.vpp, config.microbatches(workload)
    p2p = []
    for s in range(pp):
        one = costs[index[s]].p2p_time_s
        if s < pp - 1 and pools[s + 1] is not pools[s]:
            link = request.cluster.inter_pool_bytes_per_s or min(pools[s].inter_node_bytes_per_s,
                                                                 pools[s + 1].inter_node_bytes_per_s)
            msg = config.mbs * workload.seq_len / config.cp * model.hidden * ACT_BYTES / config.tp
            one = inter_pool_p2p_s(msg, link, pools[s].device.calibration)
        boundaries = vpp if vpp > 1 else (1 if s < pp - 1 else 0)
        p2p.append(2 * boundaries * one if pp > 1 else 0.0)
    return SplitProblem(
        layer_time_s=per_layer("layer_time_s"), layer_static_bytes=per_layer("layer_weight_bytes"),
        layer_activation_bytes=per_layer("layer_activation_bytes"),
        layer_working_bytes=per_layer("layer_working_bytes"), layer_sync_s=per_layer("dp_sync_time_s"),
        layer_optimizer_s=per_layer("optimizer_time_s"), first=first, last=last, stage_pool=tuple(index),
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
    tightest_memory: tuple = ()
    """(memory lower bound in bytes, config) of the candidate that came closest to fitting"""

    def to_json(self) -> dict:
        return {"enumerated": self.enumerated, "pruned_by_memory_bound": self.pruned_memory_bound,
                "pruned_by_time_bound": self.pruned_time_bound, "pruned_by_balanced_bound": self.pruned_balanced_bound,
                "evaluated": self.evaluated, "no_split_fits": self.infeasible_split, "split_ilp_solves": self.ilp_solves}


@dataclass(slots=True)
class SearchResult:
    ranked: list = field(default_factory=list)
    """best first: Candidate"""
    stats: SearchStats = field(default_factory=SearchStats)


def _evaluate(request: TrainRequest, c: ParallelConfig, pool: NodePool, threshold: float
              ) -> tuple[Candidate | None, str]:
    """(candidate, '') or (None, why it was dropped: 'balanced' | 'memory')."""
    prob = split_problem(request, c, (pool,) * c.pp)
    if prob.lower_bound(0.0) * (1 - SLACK) >= threshold:
        return None, "balanced"
    if c.vpp > 1 or c.pp == 1:
        split = even_stage_layers(request.model.layers, c.pp)
        if not prob.fits(split):
            return None, "memory"
        value = prob.objective(split)
        return Candidate(value, value, replace(c, stage_layers=split)), ""
    found = best_split_dp(prob)
    if found is None:
        return None, "memory"
    split, slowest = found
    value = prob.objective(split)
    return Candidate(value, min(value, prob.lower_bound(slowest)), replace(c, stage_layers=split)), ""


def search(request: TrainRequest, *, keep: int, solver: SolverOptions, progress=None) -> SearchResult:
    """The `keep` best strategies on a homogeneous cluster (best first)."""
    pool = request.cluster.primary
    gpus = request.cluster.num_devices
    bounds = Bounds(request.model, pool, request.workload)
    cap = pool.device.usable_bytes
    result, stats = SearchResult(), SearchResult().stats
    result.stats = stats
    queue = []
    for shape in shapes(request, gpus, pool):
        for c in configs_for_shape(request, shape):
            stats.enumerated += 1
            mem = bounds.memory(c)
            if mem > cap:
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

    def threshold() -> float:
        return -best[0][0] if len(best) >= keep else float("inf")

    for i, (lb, _, c) in enumerate(queue):
        if lb * (1 - SLACK) >= threshold():
            stats.pruned_time_bound += len(queue) - i
            break
        cand, why = _evaluate(request, c, pool, threshold())
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
        entry = (-cand.step_time_s, _neg_key(cand.config), cand)
        if len(best) < keep:
            heapq.heappush(best, entry)
        elif entry > best[0]:
            heapq.heapreplace(best, entry)
        if progress and stats.evaluated % 2000 == 0:
            progress(f"train: {stats.evaluated} evaluated, best step {-max(best)[0]:.4f} s")
    ranked = sorted((e[2] for e in best), key=lambda cd: (cd.step_time_s, config_key(cd.config)))
    ranked = _close_gaps(request, ranked, unproven, pool, keep, solver, stats)
    result.ranked = ranked
    return result


def _neg_key(c: ParallelConfig) -> tuple:
    return tuple(-v for v in config_key(c))


def _close_gaps(request, ranked, unproven, pool, keep, solver, stats) -> list:
    """Re-split with the ILP, in increasing lower bound, every candidate whose DP split is not proven
    optimal and whose bound is below the current winner (so the winner is exact); returns the kept set."""
    if not ranked:
        return ranked
    kept = {id(cd): cd for cd in ranked}
    for cd in sorted(unproven, key=lambda x: (x.lower_bound_s, config_key(x.config))):
        winner = min(kept.values(), key=lambda x: (x.step_time_s, config_key(x.config)))
        if cd.lower_bound_s * (1 - SLACK) >= winner.step_time_s * (1 - solver.relative_gap):
            break
        prob = split_problem(request, cd.config, (pool,) * cd.config.pp)
        res = solve_split_ilp(prob, solver)
        stats.ilp_solves += 1
        if res.solve.status.has_solution and res.objective_s < cd.step_time_s:
            kept.pop(id(cd), None)
            better = Candidate(res.objective_s, res.objective_s, replace(cd.config, stage_layers=res.stage_layers))
            kept[id(better)] = better
    return sorted(kept.values(), key=lambda x: (x.step_time_s, config_key(x.config)))[:keep]
