"""One layer's load problem: the heuristic, then an exact method where it applies and time allows.

Methods (`method` of place_experts and `--method`):
  heuristic  replica-counting bound -> replica counts -> packing -> LP split -> tie-aware swaps
             (heuristic.py, split.py, local_search.py); its bound is the replica-counting bound.
  exact      the heuristic as a warm start, then
               identical GPUs (one kappa) and no node_limit: the group bound of groups.py is the layer
               optimum (Lemmas 1 and 2 there). E <= (S-1) G + 1: one group, P* = a(E) / G in closed form
               (built directly, without the heuristic); E <= SUBSET_LIMIT: exhaustive subset search;
               larger: the group MILP (HiGHS);
               otherwise (GPU speeds differ): the placement MILP of milp.py with the bound as a cut.
             Every exact solve gets the layer's share of the time left; a solve stopped by the time limit
             keeps its best placement and its proven bound, and the plan reports the gap.
  auto       exact where it is cheap (closed form, subset search, and the placement MILP up to
             MILP_LIMIT = E * G), the heuristic elsewhere (the group MILP took ~3 s per layer at
             E = 16..20, G = 10..12: too slow for a default run over many layers).
node_limit is not modelled by the exact methods: with it the heuristic runs (method "exact" refuses).
"""

from dataclasses import dataclass

import numpy as np

from planner.experts.groups import components, group_milp, place_groups, spread_spare, subset_search
from planner.experts.heuristic import PACK_SLACK, pack, replica_counts
from planner.experts.local_search import improve
from planner.experts.milp import solve_layer
from planner.experts.split import optimal_split, replica_bound
from solvers import SolverOptions
from solvers.deadline import Deadline

SUBSET_LIMIT = 12
"""largest expert count searched exhaustively over subsets (2^E subsets)"""
MILP_LIMIT = 48
"""auto runs the placement MILP (GPU speeds differ) only up to this E * G"""


@dataclass(kw_only=True, slots=True)
class LayerResult:
    """A layer's placement, its busiest-GPU time, a proven lower bound and the method that found it."""

    slots: np.ndarray
    """[G, S] expert ids (-1 empty)"""
    share: np.ndarray
    """[E, G] token shares"""
    time: float
    """busiest GPU's time (pairs in token mode)"""
    bound: float
    """proven lower bound on the layer's optimum"""
    method: str
    """heuristic | exact"""


def fill_slots(slots: np.ndarray, load: np.ndarray) -> np.ndarray:
    """Give every empty slot a replica (heaviest per-replica load first, never twice on one GPU)."""
    out = slots.copy()
    counts = np.bincount(out[out >= 0], minlength=load.shape[0]).astype(np.float64)
    for g in range(out.shape[0]):
        for s in range(out.shape[1]):
            if out[g, s] >= 0:
                continue
            held = set(out[g][out[g] >= 0].tolist())
            order = sorted((e for e in range(load.shape[0]) if e not in held),
                           key=lambda e: (-load[e] / max(counts[e], 1.0), e))
            if order:
                out[g, s] = order[0]
                counts[order[0]] += 1
    return out


def heuristic_layer(load: np.ndarray, *, slots_per_gpu: int, c0: float, kappa: np.ndarray, node_of: np.ndarray,
                    node_limit: int | None, max_replicas: int) -> LayerResult:
    """Replica bound, counts, packing, LP split and swaps."""
    gpus = kappa.shape[0]
    bound, need = replica_bound(load, gpus, slots_per_gpu, c0, kappa, max_replicas)
    count = replica_counts(load, need, gpus * slots_per_gpu, max_replicas)
    placed = pack(load, count, slots_per_gpu=slots_per_gpu, c0=c0, kappa=kappa, node_of=node_of,
                  target=bound * (1 + PACK_SLACK), node_limit=node_limit)
    share, t = optimal_split(load, placed, c0, kappa)
    placed, share, t = improve(load, placed, share, t, c0, kappa, node_of, cross_node=node_limit is None)
    return LayerResult(slots=placed, share=share, time=t, bound=bound, method="heuristic")


def closed_form(load: np.ndarray, *, slots_per_gpu: int, c0: float, kappa: np.ndarray) -> LayerResult | None:
    """Identical GPUs and E <= (S-1) G + 1: one group, every GPU at a(E) / G pairs (optimal), or None."""
    experts, gpus = load.shape[0], kappa.shape[0]
    if np.any(kappa != kappa[0]) or experts > (slots_per_gpu - 1) * gpus + 1:
        return None
    placed, share = place_groups(load, [(list(range(experts)), gpus)], gpus, slots_per_gpu)
    t = c0 + float(kappa[0]) * float(load.sum()) / gpus
    return LayerResult(slots=placed, share=share, time=t, bound=t, method="exact")


def _groups_exact(load: np.ndarray, res: LayerResult, slots_per_gpu: int, c0: float, kappa: float,
                  method: str, deadline: Deadline) -> LayerResult | None:
    """Identical GPUs, E > (S-1) G + 1: the group optimum (groups.py), or None where auto finds it too costly."""
    experts, gpus = load.shape[0], res.slots.shape[0]
    warm = spread_spare(load, components(res.slots, experts), gpus)
    lower = (res.bound - c0) / kappa
    if experts <= SUBSET_LIMIT:
        sol = subset_search(load, gpus, slots_per_gpu, warm, lower, deadline)
    elif method == "exact":
        sol = group_milp(load, gpus, slots_per_gpu, warm, lower, deadline)
    else:
        return None
    placed, share = place_groups(load, spread_spare(load, sol.groups, gpus), gpus, slots_per_gpu)
    t = c0 + kappa * float((load @ share).max())
    best = (placed, share, t) if t < res.time else (res.slots, res.share, res.time)
    return LayerResult(slots=best[0], share=best[1], time=best[2], bound=max(res.bound, c0 + kappa * sol.bound),
                       method="exact")


def _milp_exact(load: np.ndarray, res: LayerResult, slots_per_gpu: int, c0: float, kappa: np.ndarray,
                deadline: Deadline, options: SolverOptions) -> LayerResult:
    """GPU speeds differ: the placement MILP with the known bound as a cut."""
    limited = SolverOptions(backend=options.backend, time_limit_s=max(1e-3, deadline.remaining()),
                            threads=options.threads, seed=options.seed, relative_gap=1e-9)
    milp_slots, result = solve_layer(load, slots_per_gpu=slots_per_gpu, c0=c0, kappa=kappa, options=limited,
                                     lower=res.bound, upper=res.time)
    out = LayerResult(slots=res.slots, share=res.share, time=res.time, bound=res.bound, method="exact")
    if result.status.value != "optimal":
        deadline.mark_hit()
    if milp_slots is not None:
        share, t = optimal_split(load, milp_slots, c0, kappa)
        if t < out.time:
            out.slots, out.share, out.time = milp_slots, share, t
    if result.bound is not None:
        out.bound = max(out.bound, min(float(result.bound), out.time))
    if result.status.value == "infeasible":  # nothing beats the warm start: it is optimal
        out.bound = out.time
    return out


def solve_layer_load(load: np.ndarray, *, slots_per_gpu: int, c0: float, kappa: np.ndarray, node_of: np.ndarray,
                     node_limit: int | None, max_replicas: int, method: str, deadline: Deadline,
                     options: SolverOptions) -> LayerResult:
    """The layer's placement by `method` (module docstring) within `deadline`."""
    if method != "heuristic" and node_limit is None:
        direct = closed_form(load, slots_per_gpu=slots_per_gpu, c0=c0, kappa=kappa)
        if direct is not None:
            return direct
    res = heuristic_layer(load, slots_per_gpu=slots_per_gpu, c0=c0, kappa=kappa, node_of=node_of,
                          node_limit=node_limit, max_replicas=max_replicas)
    if method == "heuristic" or node_limit is not None or res.time <= res.bound * (1 + 1e-9) or deadline.expired():
        return res
    if np.all(kappa == kappa[0]):
        exact = _groups_exact(load, res, slots_per_gpu, c0, float(kappa[0]), method, deadline)
        return res if exact is None else exact
    if method == "exact" or load.shape[0] * kappa.shape[0] <= MILP_LIMIT:
        return _milp_exact(load, res, slots_per_gpu, c0, kappa, deadline, options)
    return res
