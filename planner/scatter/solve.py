"""`scatter_sequences`: the public entry point, and the plan document it returns.

decision.groups[g] = {degree, gpus, ranks, spans_nodes, sequences, time_s, micro_batch (only when the
group's sequences do not fit in memory together: the micro-batch index of each listed sequence)}.
"""

import dataclasses
from collections.abc import Callable

import numpy as np

from costmodels.errors import SpecError
from costmodels.hardware import ClusterSpec
from costmodels.model import ModelSpec
from planner.plan import Plan, make_plan
from planner.scatter import assign
from planner.scatter.request import (
    CostTable,
    ScatterOptions,
    ScatterRequest,
    build_costs,
)
from planner.scatter.search import Assignment, Evaluator, search, static_candidates
from solvers.deadline import Deadline, ProgressReporter
from solvers.result import relative_gap

BACKEND = "parplan-multiset-bnb"
WRITE_UP_S_PER_SEQUENCE = 2.5e-5
"""time kept back from the search, per sequence, to build and serialise the plan (about 1e-5 s each measured
on an idle core of the 2-core dev machine, 2.5x for a loaded one) so that the whole run keeps to its limit"""


def scatter_sequences(lengths, *, model: ModelSpec, cluster: ClusterSpec, sp_style: str = "ulysses",
                      degrees: str = "any", tp: int = 1, zero: int | None = None, method: str = "exact",
                      time_limit_s: float = 10.0, options: ScatterOptions | None = None,
                      progress: Callable[[str], None] | None = None) -> Plan:
    """Plan one batch: SP group degrees, their ranks, and which sequences each group processes.

    `time_limit_s` bounds the wall time of the whole call; a plan whose search it cut short has solver.status
    "time_limit" (and may differ from run to run). `progress` (a callback or None) gets a line at most once
    a second during long searches."""
    req = ScatterRequest(lengths=tuple(int(s) for s in lengths), model=model, cluster=cluster, sp_style=sp_style,
                         degrees=degrees, tp=tp, zero=zero, method=method, time_limit_s=time_limit_s)
    return plan_request(req, options or ScatterOptions(), progress)


def plan_request(req: ScatterRequest, options: ScatterOptions,
                 progress: Callable[[str], None] | None = None) -> Plan:
    """The plan for one batch within `req.time_limit_s` of wall time (the search stops early enough to leave
    time for writing the plan up); `progress` (a callback or None) gets a line at most once a second."""
    deadline = Deadline(req.time_limit_s)
    search_deadline = deadline.reserve(WRITE_UP_S_PER_SEQUENCE * len(req.lengths))
    report = ProgressReporter(progress)
    table = build_costs(req)
    evaluator = Evaluator(table, req.units, options)
    static = _static_best(table, evaluator)
    baselines = {}
    if static is not None:
        baselines["static_best"] = {"degree": static[0], "step_time_s": static[1].step_time_s}
    if req.method == "milp":
        from planner.scatter.milp import solve_milp
        best, solver = solve_milp(req, table, options, evaluator, deadline=search_deadline)
        if best is None:  # the limit passed first: report the best single degree (or one big group) instead
            best = static[1] if static is not None else _one_big_group(table, evaluator)
            solver["objective"] = best.step_time_s
        baselines["milp"] = {"step_time_s": best.step_time_s, "bound_s": solver["bound"], "gap": solver["gap"],
                             "status": solver["status"]}
    else:
        incumbent = static[1] if static is not None else None
        result = search(table, req.units, options, deadline=search_deadline, incumbent=incumbent, progress=report)
        best = result.best
        gap = relative_gap(best.step_time_s, result.bound_s)
        status = "optimal" if gap is not None and gap <= 1e-9 else deadline.status("feasible")
        solver = {"backend": BACKEND, "backend_version": "1", "status": status, "objective": best.step_time_s,
                  "bound": result.bound_s, "gap": gap, "nodes": result.nodes,
                  "evaluated_multisets": result.evaluated, "exhausted": result.exhausted}
    if static is not None:
        baselines["static_best"]["speedup"] = static[1].step_time_s / best.step_time_s
    return make_plan("scatter", inputs={"request": req.to_inputs(), "options": dataclasses.asdict(options)},
                     decision=_decision(req, table, best), predicted=_predicted(req, best),
                     baselines=baselines, solver=solver)


def _static_best(table: CostTable, evaluator: Evaluator) -> tuple[int, Assignment] | None:
    """The best single SP degree for every sequence that fits memory and divides the GPUs (ties: the smaller)."""
    best = None
    for counts in static_candidates(table, evaluator.units):
        found, _ = evaluator.evaluate(counts, promising=0.0)  # identical groups: LPT alone
        if found is not None and (best is None or found.step_time_s < best[1].step_time_s):
            best = (table.degrees[next(iter(counts))], found)
    return best


def _one_big_group(table: CostTable, evaluator: Evaluator) -> Assignment:
    """One group of the largest degree and degree-1 groups on the other units: always fits every sequence."""
    top = len(table.degrees) - 1
    counts = {k: c for k, c in ((0, evaluator.units - table.degrees[top]), (top, 1)) if c}
    found, _ = evaluator.evaluate(counts, promising=0.0)
    if found is None:
        raise SpecError("no group of any allowed degree fits every sequence", field="lengths")
    return found


def _decision(req: ScatterRequest, table: CostTable, best: Assignment) -> dict:
    tp = req.tp
    row_of = {d: k for k, d in enumerate(table.degrees)}
    groups = []
    for slot, seqs, load in zip(best.slots, best.groups, best.loads_s, strict=True):
        ranks = [u * tp + j for u in slot.units for j in range(tp)]
        group = {"degree": slot.degree, "gpus": slot.degree * tp, "ranks": ranks, "spans_nodes": slot.spans_nodes,
                 "sequences": list(seqs), "time_s": load}
        mbs = assign.micro_batches(list(seqs), table.act_bytes[row_of[slot.degree]], table.left_bytes)
        if mbs and max(mbs) > 0:
            group["micro_batch"] = mbs
        groups.append(group)
    multiset = sorted((s.degree for s in best.slots), reverse=True)
    return {"sp_style": req.sp_style, "tp": tp, "zero": req.resolved_zero(), "degree_multiset": multiset,
            "groups": groups}


def _predicted(req: ScatterRequest, best: Assignment) -> dict:
    step = best.step_time_s
    tokens = int(np.sum(req.lengths))
    gpu_s = float(np.sum([load * s.degree for load, s in zip(best.loads_s, best.slots, strict=True)]))
    busy = gpu_s / (step * req.units) if step > 0 else 0.0
    return {"step_time_s": step, "tokens": tokens, "tokens_per_s": tokens / step if step > 0 else 0.0,
            "gpu_busy_fraction": busy, "groups": len(best.slots)}


def scatter_batches(batches, **kwargs) -> list[Plan]:
    """One plan per batch (same keyword arguments as scatter_sequences)."""
    return [scatter_sequences(batch, **kwargs) for batch in batches]


def batches_summary(plans: list[Plan]) -> dict:
    """Total step time over the batches against the static baseline (same run)."""
    total = float(sum(p["predicted"]["step_time_s"] for p in plans))
    static = [p["baselines"].get("static_best", {}).get("step_time_s") for p in plans]
    static_total = float(sum(static)) if all(s is not None for s in static) else None
    gaps = [p["solver"].get("gap") for p in plans]
    return {"batches": len(plans), "total_step_time_s": total, "static_total_step_time_s": static_total,
            "speedup_vs_static": static_total / total if static_total and total > 0 else None,
            "max_gap": max((g for g in gaps if g is not None), default=None)}
