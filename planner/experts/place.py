"""place_experts: joint replication, token split and affinity-aware placement with a proven bound.

Problem (per MoE layer l; see split.py and milp.py for the algebra):
  decide x[l,e,g] in {0,1} (GPU g holds a replica of expert e; at most S per GPU, >= 1 per expert, one
  per GPU; optional: the replicas of e span <= node_limit nodes; optional: <= max_moves replicas new
  to their GPU relative to a previous plan) and shares y[l,e,g] >= 0 (sum_g y = 1, y <= x), to minimise
      sum_l max_g (c0 + k_g * sum_e a[l,e] y[l,e,g])  +  traffic_weight * cross_node_tokens(y)
Method:
  * small instances (E * G <= EXACT_LIMIT, no node_limit, no previous plan): the exact layer MILP;
  * otherwise, per layer: replica-counting bound -> replica counts -> packing under the bound's target ->
    exact LP re-split (heuristic.py, split.py);
  * then affinity sweeps across layers move experts between nodes so that heavy transitions stay inside
    a node, never letting a layer's busiest GPU exceed max(current, bound * (1 + LOAD_TOLERANCE));
  * with a previous plan: per layer keep (re-split only) or adopt the new placement (migration.py).
Bound: sum over layers of the replica-counting bound (or the MILP's bound) + traffic_weight * 0.
The baselines (baselines.py) run through the same evaluator (evaluate.py).
"""

from dataclasses import asdict
from importlib import metadata
from pathlib import Path

import numpy as np

from costmodels.errors import SpecError
from costmodels.routing import RoutingStats, load_stats
from planner.experts import baselines as base
from planner.experts.evaluate import Layout, evaluate
from planner.experts.heuristic import LOAD_TOLERANCE, PACK_SLACK, pack, replica_counts, sweep_layers
from planner.experts.migration import choose_layers, moves, relabel
from planner.experts.local_search import improve
from planner.experts.milp import solve_layer
from planner.experts.request import ExpertRequest, previous_from_plan
from planner.experts.split import optimal_split, replica_bound
from planner.plan import Plan, load_plan, make_plan
from solvers import SolverOptions, relative_gap

EXACT_LIMIT = 48
"""largest E * G solved with the exact MILP"""
SWEEPS = 1
"""affinity sweeps across layers (alternating direction)"""
INLINE_LIMIT = 200_000
"""statistics with at most this many numbers are carried inline in the plan; larger ones by path + digest"""


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


def _layer_solve(request: ExpertRequest, c0: float, kappa: np.ndarray, options: SolverOptions, progress):
    """Per layer: slots, shares, times, bounds, replica counts, and the method used."""
    load = request.stats.expert_load
    node_of = request.node_of_gpu()
    exact = (request.experts * request.num_gpus <= EXACT_LIMIT and request.node_limit is None
             and request.previous is None)
    slots, shares, times, bounds, counts = [], [], [], [], []
    statuses = []
    for l in range(request.layers):
        bound, need = replica_bound(load[l], request.num_gpus, request.slots_per_gpu, c0, kappa,
                                    request.max_replicas())
        count = replica_counts(load[l], need, request.num_gpus * request.slots_per_gpu, request.max_replicas())
        placed = pack(load[l], count, slots_per_gpu=request.slots_per_gpu, c0=c0, kappa=kappa, node_of=node_of,
                      target=bound * (1 + PACK_SLACK), node_limit=request.node_limit)
        share, t = optimal_split(load[l], placed, c0, kappa)
        placed, share, t = improve(load[l], placed, share, t, c0, kappa, node_of,
                                   cross_node=request.node_limit is None)
        if exact and t > bound * (1 + 1e-9):
            milp_slots, result = solve_layer(load[l], slots_per_gpu=request.slots_per_gpu, c0=c0, kappa=kappa,
                                             options=options)
            statuses.append(result.status.value)
            if milp_slots is not None:
                cand = fill_slots(milp_slots, load[l])
                cand_share, cand_t = optimal_split(load[l], cand, c0, kappa)
                if cand_t < t:
                    placed, share, t = cand, cand_share, cand_t
            if result.bound is not None:
                bound = max(bound, min(float(result.bound), t))
        slots.append(placed)
        shares.append(share)
        times.append(t)
        bounds.append(bound)
        counts.append(np.bincount(placed[placed >= 0], minlength=request.experts))
        if progress is not None and (l + 1) % 10 == 0:
            progress(f"experts: placed {l + 1}/{request.layers} layers")
    method = "exact-milp" if exact else "heuristic+lp"
    return slots, shares, times, bounds, counts, method, statuses


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
        token_share = [[int(e), int(g), float(share[l, e, g])] for e, g in zip(e_idx, g_idx)]
        layers.append({"gpu_experts": gpu_experts, "token_share": token_share})
    return {"layers": layers, "num_gpus": request.num_gpus, "gpus_per_node": request.gpus_per_node,
            "slots_per_gpu": request.slots_per_gpu}


def place_experts(stats, *, num_gpus: int, gpus_per_node: int = 8, slots_per_gpu: int, model=None, device=None,
                  previous=None, max_moves: int | None = None, node_limit: int | None = None,
                  traffic_weight: float = 0.0, gpu_speed=None, options: SolverOptions | None = None,
                  progress=None) -> Plan:
    """Place experts (with replicas) on GPUs per MoE layer and split their tokens; returns a kind-'experts' plan.

    `stats` is a RoutingStats or a path to a statistics file (JSON/NPZ); `previous` a plan (path, Plan,
    dict) or a [L][G][S] array; `progress` an optional callable taking one line of text.
    """
    options = options or SolverOptions()
    if isinstance(stats, (str, Path)):
        stats = load_stats(stats)
    if not isinstance(stats, RoutingStats):
        raise SpecError("must be RoutingStats or a path to a statistics file", field="stats")
    request = ExpertRequest(stats=stats, num_gpus=num_gpus, gpus_per_node=gpus_per_node, slots_per_gpu=slots_per_gpu,
                            model=model, device=device, previous=_previous_array(previous), max_moves=max_moves,
                            node_limit=node_limit, traffic_weight=traffic_weight,
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
            "traffic_weight": request.traffic_weight,
            "options": {"relative_gap": options.relative_gap, "seed": options.seed, "threads": options.threads}}


def place(request: ExpertRequest, options: SolverOptions, progress=None) -> Plan:
    """The kind-'experts' plan for one request (the body of planner.experts.plan.plan)."""
    stats, model, traffic_weight = request.stats, request.model, request.traffic_weight
    c0, kappa = request.cost_arrays()
    node_of = request.node_of_gpu()
    slots, shares, times, bounds, counts, method, statuses = _layer_solve(request, c0, kappa, options, progress)
    exact = method == "exact-milp"
    caps = list(times) if exact else [max(t, b * (1 + LOAD_TOLERANCE)) for t, b in zip(times, bounds)]
    frozen = set(range(request.layers)) if request.previous is not None and request.max_moves == 0 else set()
    sweep_layers(stats.expert_load, stats.transitions, slots, shares, times, bounds, caps, counts,
                 slots_per_gpu=request.slots_per_gpu, c0=c0, kappa=kappa, node_of=node_of,
                 traffic_weight=traffic_weight, node_limit=request.node_limit, sweeps=SWEEPS, frozen=frozen,
                 progress=progress)
    spent = None
    if request.previous is not None:
        spent = _apply_previous(request, slots, shares, times, c0, kappa, progress)
    layout = Layout(slots=np.stack(slots), share=np.stack(shares))
    timed = model is not None
    predicted = evaluate(stats, layout, c0=c0, kappa=kappa, node_of=node_of, traffic_weight=traffic_weight,
                         timed=timed)
    predicted["layer_bound"] = list(bounds)
    if spent is not None:
        predicted["moves"] = spent
    baselines = {}
    for name in sorted(base.BASELINES):
        baselines[name] = evaluate(stats, base.BASELINES[name](request), c0=c0, kappa=kappa, node_of=node_of,
                                   traffic_weight=traffic_weight, timed=timed)
    bound = float(sum(bounds))
    objective = predicted["objective"]
    gap = relative_gap(objective, bound)
    solver = {"backend": "highs", "backend_version": metadata.version("highspy"), "method": method,
              "status": "optimal" if gap is not None and gap <= max(options.relative_gap, 1e-9) else "feasible",
              "objective": objective, "bound": bound, "gap": gap, "milp_statuses": sorted(set(statuses))}
    if progress is not None:
        progress(f"experts: objective {objective:.6g}, bound {bound:.6g}, gap {100 * (gap or 0):.2f}% ({method})")
    return make_plan("experts", inputs=_inputs(request, options),
                     decision=_decision(layout.slots, layout.share, request), predicted=predicted,
                     baselines=baselines, solver=solver)
