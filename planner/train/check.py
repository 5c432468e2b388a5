"""Independent verifier of a `kind: train` plan: recompute everything from the inputs with the cost model.

Checks: the decision is structurally valid (costmodels.training.check_config) and inside the request's
space (TP/EP inside a node unless allowed, MoE folding, vpp chunks); the estimate recomputed from the
inputs fits in memory and equals `predicted`; every alternative is valid, recomputes to its figures and is
not faster than the plan; the baseline recomputes to its figures.
"""

import math

from costmodels.training import check_config, estimate_training
from planner.confidence.documents import check_confidence
from planner.plan import Plan
from planner.train.planning import PREDICTED_KEYS, config_of
from planner.train.request import request_from_inputs

RELATIVE_TOLERANCE = 1e-6


def _close(a, b) -> bool:
    return isinstance(a, (int, float)) and isinstance(b, (int, float)) and \
        math.isclose(a, b, rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-12)


def _check_decision(request, decision: dict, figures: dict, label: str,
                    figures_label: str | None = None) -> tuple[list[str], object]:
    """Problems of one decision (fields named `label`.*) and of its predicted figures (`figures_label`.*)."""
    figures_label = figures_label or label
    problems = []
    try:
        config = config_of(decision)
    except Exception as exc:  # a malformed decision is a finding, not a crash
        return [f"{label}: decision cannot be read: {exc}"], None
    model, cluster, workload = request.model, request.cluster, request.workload
    for fld, why in check_config(model, cluster, workload, config):
        problems.append(f"{label}.{fld}: {why}")
    opts = request.options
    known = {p.name: p for p in cluster.pools}
    names = sorted(set(config.stage_pools)) if config.stage_pools else [cluster.primary.name]
    node = min((known[n].devices_per_node for n in names if n in known), default=cluster.primary.devices_per_node)
    if config.tp > node and not opts.allow_cross_node_tp:
        problems.append(f"{label}.tp: tp={config.tp} spans nodes of {node} GPUs")
    if config.ep * config.etp > node and not opts.allow_cross_node_ep:
        problems.append(f"{label}.ep: ep*etp={config.ep * config.etp} spans nodes of {node} GPUs")
    if decision.get("edp") != config.edp:
        problems.append(f"{label}.edp: {decision.get('edp')} but tp*cp*dp/(ep*etp) = {config.edp}")
    if problems:
        return problems, None
    est = estimate_training(model, cluster, workload, config)
    if not est.feasible:
        problems += [f"{label}: does not fit: {r}" for r in est.infeasible_reasons]
    for key in PREDICTED_KEYS:
        if not _close(figures.get(key), getattr(est, key)):
            problems.append(f"{figures_label}.{key}: plan says {figures.get(key)!r}, the cost model gives "
                            f"{getattr(est, key)!r}")
    return problems, est


def robust_problems(request, decision: dict, est, alt_decision: dict, alt_est, i: int) -> list[str]:
    """A robust plan: no alternative may have a smaller 90th-percentile step time."""
    from planner.confidence.robust import no_better, pessimistic

    r = request
    plan_p90 = pessimistic(r.model, r.cluster, r.workload, config_of(decision), est.step_time_s)
    alt_p90 = pessimistic(r.model, r.cluster, r.workload, config_of(alt_decision), alt_est.step_time_s)
    if no_better(plan_p90, alt_p90):
        return []
    return [f"alternatives[{i}]: 90th-percentile step {alt_p90:.6g} s beats the plan's {plan_p90:.6g} s"]


def check(plan: Plan) -> list[str]:
    """Problems found (empty = the plan is consistent with its inputs and the cost model)."""
    if plan.kind == "estimate":
        from planner.train.estimate import check_estimate
        return check_estimate(plan) + check_confidence(plan)
    request = request_from_inputs(plan["inputs"])
    problems, est = _check_decision(request, plan["decision"], plan["predicted"], "decision", "predicted")
    for i, alt in enumerate(plan.get("alternatives") or []):
        found, alt_est = _check_decision(request, alt.get("decision", {}), alt, f"alternatives[{i}].decision",
                                         f"alternatives[{i}]")
        problems += found
        if est is None or alt_est is None:
            continue
        if request.options.objective == "robust":  # ranked by 90th-percentile step time
            problems += robust_problems(request, plan["decision"], est, alt.get("decision", {}), alt_est, i)
        elif alt_est.step_time_s < est.step_time_s * (1 - 1e-9):
            problems.append(f"alternatives[{i}]: step {alt_est.step_time_s:.6g} s beats the plan's "
                            f"{est.step_time_s:.6g} s")
    base = (plan.get("baselines") or {}).get("megatron_rule") or {}
    if base.get("feasible"):
        found, _ = _check_decision(request, base["decision"], base, "baselines.megatron_rule")
        problems += found
    return problems + check_confidence(plan)
