"""Re-derive the confidence fields of a plan document from its inputs (what `parplan validate` checks).

covered(plan) says whether a document carries them (train and serve plans and estimates);
check_confidence(plan) lists the fields that differ from a fresh derivation (interval, regime,
extrapolated in `predicted`; probability_faster and within_noise of train alternatives).
"""

from costmodels.errors import SpecError
from planner.confidence.attach import (
    confidence_problems,
    differences,
    goodput_versus,
    serve_estimate_confidence,
    serve_plan_fields,
    train_confidence,
    train_versus,
)
from planner.plan import Plan


def covered(plan: Plan) -> bool:
    target = plan["inputs"].get("target") if plan.kind == "estimate" else plan.kind
    return target in ("train", "serve") and bool((plan.get("predicted") or {}).get("step_time_s", 1))


def _train_estimate(plan: Plan) -> tuple[dict, list[str]]:
    from planner.train.estimate import inputs_to_specs

    model, cluster, workload, config = inputs_to_specs(plan["inputs"])
    p = plan["predicted"]
    return train_confidence(model, cluster, workload, config, step_time_s=p["step_time_s"],
                            tokens_per_s_per_gpu=p["tokens_per_s_per_gpu"]), []


def _train_plan(plan: Plan) -> tuple[dict, list[str]]:
    from planner.train.planning import config_of
    from planner.train.request import request_from_inputs

    r = request_from_inputs(plan["inputs"])
    p, config = plan["predicted"], config_of(plan["decision"])
    fresh = train_confidence(r.model, r.cluster, r.workload, config, step_time_s=p["step_time_s"],
                             tokens_per_s_per_gpu=p["tokens_per_s_per_gpu"])
    problems = []
    for i, alt in enumerate(plan.get("alternatives") or []):
        if "probability_faster" not in alt:
            problems.append(f"alternatives[{i}].probability_faster: missing")
            continue
        want = train_versus(r.model, r.cluster, r.workload, config, p["step_time_s"], config_of(alt["decision"]),
                            alt["step_time_s"])
        for key in sorted(want):
            problems += differences(alt.get(key), want[key], f"alternatives[{i}].{key}")
    return fresh, problems


def _serve_estimate(plan: Plan) -> tuple[dict, list[str]]:
    from planner.serve.io import model_from_dict

    inp = plan["inputs"]
    return serve_estimate_confidence(model_from_dict(inp["model"]), inp["device"]["name"], tp=inp["shape"]["tp"],
                                     isl=inp["isl"], engine=inp["engine"], dtype=inp["dtype"],
                                     predicted=plan["predicted"]), []


def _serve_plan(plan: Plan) -> tuple[dict, list[str]]:
    from planner.serve.io import cluster_from_dict, model_from_dict, options_from_dict, workload_from_dict

    inp = plan["inputs"]
    model, cluster = model_from_dict(inp["model"]), cluster_from_dict(inp["cluster"])
    workload, options = workload_from_dict(inp["workload"]), options_from_dict(inp["options"])
    fresh = serve_plan_fields(model, cluster, workload, options, plan["decision"], plan["predicted"])
    problems = []
    for i, alt in enumerate(plan.get("alternatives") or []):
        if "goodput_tokens_per_s_per_gpu" in alt:
            want = goodput_versus({**plan["predicted"], **fresh}, alt["goodput_tokens_per_s_per_gpu"])
            for key in sorted(want):
                problems += differences(alt.get(key), want[key], f"alternatives[{i}].{key}")
    if getattr(options, "robust", False) or "robust" in plan["predicted"]:
        from planner.confidence.robust_serve import robust_problems

        problems += robust_problems(model, cluster, workload, options, plan["predicted"].get("robust", {}))
    return fresh, problems


DERIVE = {("estimate", "train"): _train_estimate, ("train", None): _train_plan,
          ("estimate", "serve"): _serve_estimate, ("serve", None): _serve_plan}


def check_confidence(plan: Plan) -> list[str]:
    """Differences between the stored confidence fields and a fresh derivation (empty: consistent)."""
    if not covered(plan):
        return []
    target = plan["inputs"].get("target") if plan.kind == "estimate" else None
    try:
        fresh, problems = DERIVE[(plan.kind, target)](plan)
    except (SpecError, KeyError, TypeError, ValueError) as exc:
        return [f"predicted: the confidence fields cannot be re-derived from the inputs: {exc}"]
    return confidence_problems(plan["predicted"], fresh) + problems
