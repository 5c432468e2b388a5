"""place_experts: joint replication, token split and affinity-aware placement with a proven bound.

Problem (per MoE layer l; see split.py and milp.py for the algebra):
  decide x[l,e,g] in {0,1} (GPU g holds a replica of expert e; at most S per GPU, >= 1 per expert, one
  per GPU; optional: the replicas of e span <= node_limit nodes; optional: <= max_moves replicas new
  to their GPU relative to a previous plan) and shares y[l,e,g] >= 0 (sum_g y = 1, y <= x), to minimise
      sum_l max_g (c0 + k_g * sum_e a[l,e] y[l,e,g])  +  traffic_weight * cross_node_tokens(y)
Method (`method`: auto | exact | heuristic, see layer.py), per layer: replica-counting bound -> replica
  counts -> packing under the bound's target -> exact LP re-split -> tie-aware swaps (heuristic.py,
  split.py, local_search.py); then, where the method asks for it, the exact solve of layer.py (group bound
  and group placement on identical GPUs, groups.py; the placement MILP otherwise, milp.py);
  * then affinity.py partitions the (layer, expert) transition graph across nodes (spectral and contiguous
    seeds, propagation, refinement) so that heavy transitions stay inside a node, never letting a layer's
    busiest GPU exceed max(current, bound * (1 + LOAD_TOLERANCE)) (method exact: max(current, bound));
    when no node structure is found the load-optimal layers are kept and the plan says so;
  * with a previous plan: per layer keep (re-split only) or adopt the new placement (migration.py).
Bound: sum over layers of each layer's proven bound + traffic_weight * 0. The solver block lists, per
layer, the method, the bound and the gap. Time: the baselines run first; the layer solves and the affinity
search then share what is left of options.time_limit_s less a reserve for the output (OUTPUT_SHARE of the
limit or OUTPUT_PER_BASELINE x the baselines' time); a plan whose search the limit cut short says so
(status time_limit).
The baselines (baselines.py) run through the same evaluator (evaluate.py).
"""

from dataclasses import asdict
from importlib import metadata
from pathlib import Path

import numpy as np

from costmodels.errors import SpecError
from costmodels.routing import RoutingStats, load_stats
from planner.experts import baselines as base
from planner.experts.affinity import SweepState, cross_share, found, improve_affinity
from planner.experts.evaluate import Layout, evaluate
from planner.experts.heuristic import LOAD_TOLERANCE
from planner.experts.layer import LayerResult, fill_slots, solve_layer_load
from planner.experts.migration import choose_layers, moves, relabel
from planner.experts.request import ExpertRequest, previous_from_plan
from planner.experts.split import optimal_split
from planner.plan import Plan, load_plan, make_plan
from solvers import SolverOptions, relative_gap
from solvers.deadline import Deadline

SOLVE_SHARE = 0.8
"""fraction of the solve time left that the per-layer exact solves may use (the rest: affinity sweeps)"""
OUTPUT_SHARE = 0.1
"""fraction of the time limit kept for evaluating the plan and writing it (baselines are computed first)"""
OUTPUT_PER_BASELINE = 0.8
"""... or this multiple of the time the baselines took (both scale with the statistics), if more"""
INLINE_LIMIT = 200_000
"""statistics with at most this many numbers are carried inline in the plan; larger ones by path + digest"""


def _stats_input(stats: RoutingStats) -> dict:
    size = stats.expert_load.size + (0 if stats.transitions is None else stats.transitions.size)
    size += 0 if stats.window_load is None else stats.window_load.size
    if size <= INLINE_LIMIT:
        return {"inline": stats.to_json(), "digest": stats.digest()}
    path = str(Path(stats.source).resolve()) if stats.source else None
    return {"path": path, "digest": stats.digest(), "layers": stats.layers, "experts": stats.experts}


def _previous_array(previous) -> np.ndarray | None:
    if previous is None:
        return None
    if isinstance(previous, (str, Path)):
        return previous_from_plan(load_plan(previous).doc, str(previous))
    if isinstance(previous, Plan):
        return previous_from_plan(previous.doc)
    if isinstance(previous, dict):
        return previous_from_plan(previous)
    return np.asarray(previous, dtype=np.int64)


def _layer_solve(request: ExpertRequest, c0: float, kappa: np.ndarray, deadline: Deadline,
                 options: SolverOptions, progress) -> list[LayerResult]:
    """Every layer by request.method; an exact solve gets the layer's share of SOLVE_SHARE of the time left."""
    load = request.stats.expert_load
    node_of = request.node_of_gpu()
    out = []
    for l in range(request.layers):
        share_s = deadline.remaining() * SOLVE_SHARE / (request.layers - l)
        layer_deadline = Deadline(max(share_s, 1e-3))
        out.append(solve_layer_load(load[l], slots_per_gpu=request.slots_per_gpu, c0=c0, kappa=kappa,
                                    node_of=node_of, node_limit=request.node_limit,
                                    max_replicas=request.max_replicas(), method=request.method,
                                    deadline=layer_deadline, options=options))
        if layer_deadline.hit:
            deadline.mark_hit()
        if progress is not None and (l + 1) % 10 == 0:
            progress(f"experts: placed {l + 1}/{request.layers} layers")
    return out


def _apply_previous(request: ExpertRequest, slots, shares, times, c0, kappa, progress) -> int:
    """Keep or adopt each layer under the migration budget (in place); returns the moves spent."""
    prev = np.asarray(request.previous, dtype=np.int64)
    load = request.stats.expert_load
    node_of, speed = request.node_of_gpu(), request.speeds()
    keep_share, keep_time, gain, cost, relabelled = [], [], [], [], []
    for l in range(request.layers):
        placed = relabel(slots[l], prev[l], node_of, speed)
        share, t = optimal_split(load[l], prev[l], c0, kappa)
        keep_share.append(share)
        keep_time.append(t)
        relabelled.append(placed)
        gain.append(t - times[l])
        cost.append(moves(placed, prev[l]))
    budget = sum(cost) if request.max_moves is None else request.max_moves
    adopt = choose_layers(gain, cost, budget)
    spent = 0
    for l in range(request.layers):
        if l in adopt:
            slots[l] = relabelled[l]
            shares[l], times[l] = optimal_split(load[l], slots[l], c0, kappa)
            spent += cost[l]
        else:
            slots[l], shares[l], times[l] = prev[l].copy(), keep_share[l], keep_time[l]
    if progress is not None:
        progress(f"experts: migration adopts {len(adopt)}/{request.layers} layers, {spent} moves")
    return spent


def _decision(slots: np.ndarray, share: np.ndarray, request: ExpertRequest) -> dict:
    layers = []
    for l in range(request.layers):
        gpu_experts = [sorted(int(e) for e in row if e >= 0) for row in slots[l]]
        e_idx, g_idx = np.nonzero(share[l] > 0)
        token_share = [[int(e), int(g), float(share[l, e, g])] for e, g in zip(e_idx, g_idx, strict=True)]
        layers.append({"gpu_experts": gpu_experts, "token_share": token_share})
    return {"layers": layers, "num_gpus": request.num_gpus, "gpus_per_node": request.gpus_per_node,
            "slots_per_gpu": request.slots_per_gpu}


def place_experts(stats, *, num_gpus: int, gpus_per_node: int = 8, slots_per_gpu: int, model=None, device=None,
                  previous=None, max_moves: int | None = None, node_limit: int | None = None,
                  traffic_weight: float = 0.0, gpu_speed=None, method: str = "auto",
                  options: SolverOptions | None = None, progress=None) -> Plan:
    """Place experts (with replicas) on GPUs per MoE layer and split their tokens; returns a kind-'experts' plan.

    `stats` is a RoutingStats or a path to a statistics file (JSON/NPZ); `previous` a plan (path, Plan,
    dict) or a [L][G][S] array; `method` auto | exact | heuristic (planner.experts.layer); `progress` an
    optional callable taking one line of text.
    """
    options = options or SolverOptions()
    if isinstance(stats, (str, Path)):
        stats = load_stats(stats)
    if not isinstance(stats, RoutingStats):
        raise SpecError("must be RoutingStats or a path to a statistics file", field="stats")
    request = ExpertRequest(stats=stats, num_gpus=num_gpus, gpus_per_node=gpus_per_node, slots_per_gpu=slots_per_gpu,
                            model=model, device=device, previous=_previous_array(previous), max_moves=max_moves,
                            node_limit=node_limit, traffic_weight=traffic_weight, method=method,
                            gpu_speed=None if gpu_speed is None else tuple(float(s) for s in gpu_speed))
    return place(request, options, progress)


def _inputs(request: ExpertRequest, options: SolverOptions) -> dict:
    """The plan's `inputs` section (enough to recompute the plan)."""
    model, device = request.model, request.device
    return {"stats": _stats_input(request.stats), "num_gpus": request.num_gpus,
            "gpus_per_node": request.gpus_per_node, "slots_per_gpu": request.slots_per_gpu,
            "gpu_speed": None if request.gpu_speed is None else list(request.speeds()),
            "model": None if model is None else asdict(model), "device": None if device is None else asdict(device),
            "previous_gpu_experts": None if request.previous is None else request.previous.tolist(),
            "max_moves": request.max_moves, "node_limit": request.node_limit,
            "traffic_weight": request.traffic_weight, "method": request.method,
            "options": {"relative_gap": options.relative_gap, "seed": options.seed, "threads": options.threads}}


def place(request: ExpertRequest, options: SolverOptions, progress=None) -> Plan:
    """The kind-'experts' plan for one request (the body of planner.experts.plan.plan)."""
    stats, model, traffic_weight = request.stats, request.model, request.traffic_weight
    deadline = Deadline(options.time_limit_s)
    c0, kappa = request.cost_arrays()
    node_of = request.node_of_gpu()
    timed = model is not None
    baselines = {}
    for name in sorted(base.BASELINES):
        baselines[name] = evaluate(stats, base.BASELINES[name](request), c0=c0, kappa=kappa, node_of=node_of,
                                   traffic_weight=traffic_weight, timed=timed)
    reserve = max(OUTPUT_SHARE * options.time_limit_s, OUTPUT_PER_BASELINE * deadline.elapsed())
    solve_deadline = Deadline(max(1e-3, deadline.remaining() - reserve))
    layers = _layer_solve(request, c0, kappa, solve_deadline, options, progress)
    slots = [fill_slots(r.slots, stats.expert_load[l]) if r.method == "exact" else r.slots
             for l, r in enumerate(layers)]  # a filled slot serves no tokens until a sweep re-splits
    shares, times, bounds = [r.share for r in layers], [r.time for r in layers], [r.bound for r in layers]
    counts = [np.bincount(s[s >= 0], minlength=request.experts) for s in slots]
    tolerance = 0.0 if request.method == "exact" else LOAD_TOLERANCE
    caps = [max(t, b * (1 + tolerance)) for t, b in zip(times, bounds, strict=True)]
    frozen = set(range(request.layers)) if request.previous is not None and request.max_moves == 0 else set()
    affinity = None
    if stats.transitions is not None and int(node_of.max()) > 0 and not solve_deadline.expired():
        state = SweepState(load=stats.expert_load, trans=stats.transitions, slots=list(slots), shares=list(shares),
                           times=list(times), targets=bounds, caps=caps, counts=counts,
                           slots_per_gpu=request.slots_per_gpu, c0=c0, kappa=kappa, node_of=node_of,
                           traffic_weight=traffic_weight, node_limit=request.node_limit, frozen=frozen)
        before = cross_share(stats.transitions, state.ns)
        improve_affinity(state, solve_deadline, progress)
        affinity = found(stats.transitions, state.ns)
        if solve_deadline.hit and not affinity:  # cut short: the search says nothing about the statistics
            affinity = None
        if affinity or traffic_weight > 0 or (affinity is None and cross_share(stats.transitions, state.ns) < before):
            slots, shares, times = state.slots, state.shares, state.times
        elif progress is not None and affinity is False:
            progress("experts: no affinity found in the transitions; keeping the load-optimal layers")
    if solve_deadline.hit:
        deadline.mark_hit()
    if request.node_limit is None:  # empty slots get a replica that serves no tokens (loaded, ready to use)
        slots = [fill_slots(s, stats.expert_load[l]) for l, s in enumerate(slots)]
    spent = None
    if request.previous is not None:
        spent = _apply_previous(request, slots, shares, times, c0, kappa, progress)
    layout = Layout(slots=np.stack(slots), share=np.stack(shares))
    predicted = evaluate(stats, layout, c0=c0, kappa=kappa, node_of=node_of, traffic_weight=traffic_weight,
                         timed=timed)
    predicted["layer_bound"] = list(bounds)
    if spent is not None:
        predicted["moves"] = spent
    predicted["affinity_found"] = affinity
    bound = float(sum(bounds))
    objective = predicted["objective"]
    gap = relative_gap(objective, bound)
    final = (c0 + kappa[None, :] * np.einsum("le,leg->lg", stats.expert_load, layout.share)).max(axis=1)
    per_layer = [{"method": r.method, "bound": b, "gap": relative_gap(float(t), b)}
                 for r, b, t in zip(layers, bounds, final, strict=True)]
    methods = sorted({r.method for r in layers})
    method = methods[0] if len(methods) == 1 else "mixed"
    solver = {"backend": "highs", "backend_version": metadata.version("highspy"), "method": method,
              "status": "optimal" if gap is not None and gap <= max(options.relative_gap, 1e-9) else "feasible",
              "objective": objective, "bound": bound, "gap": gap, "layers": per_layer,
              "time_limit_hit": deadline.hit}
    if progress is not None:
        progress(f"experts: objective {objective:.6g}, bound {bound:.6g}, gap {100 * (gap or 0):.2f}% ({method})")
    return make_plan("experts", inputs=_inputs(request, options),
                     decision=_decision(layout.slots, layout.share, request), predicted=predicted,
                     baselines=baselines, solver=solver)
