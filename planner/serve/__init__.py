"""The serve planner: prefill/decode split under percentile TTFT/TPOT SLOs, verified by a simulator.

    plan_serving(model, cluster, workload, *, objective, rate, options) -> Plan      (kind "serve")
    estimate_serving(model, device, *, tp, pp, ep, batch, isl, osl, ...) -> Plan    (kind "estimate")
    simulate_plan(plan, *, rate, requests, seed) -> dict
    check(plan) -> list[str], explain(plan) -> str, EXPORT_FORMATS, export(plan, fmt) -> str
"""

from planner.plan import Plan
from planner.serve.check import check, explain
from planner.serve.estimate import estimate_serving
from planner.serve.export import EXPORT_FORMATS, export
from planner.serve.request import ServeOptions, ServingWorkload
from planner.serve.search import plan_serving


def simulate_plan(plan: Plan, *, rate: float | None = None, requests: int | None = None, seed: int | None = None,
                  arrival: str | None = None) -> dict:
    """Replay a serve plan's own workload (or another rate / request count / seed / arrival process)."""
    import dataclasses

    from costmodels.errors import SpecError
    from planner.serve.capacity import CapacityModel
    from planner.serve.io import cluster_from_dict, model_from_dict, options_from_dict, workload_from_dict
    from planner.serve.simulate import Deployment, simulate

    if plan.kind != "serve":
        raise SpecError("simulate needs a serve plan", field="kind")
    if plan["inputs"].get("objective") == "throughput":
        raise SpecError("an offline (objective throughput) plan has no arrivals or SLOs to simulate", field="objective")
    inp = plan["inputs"]
    workload = workload_from_dict(inp["workload"])
    if arrival is not None:
        workload = dataclasses.replace(workload, arrival=arrival)
    cm = CapacityModel(model_from_dict(inp["model"]), cluster_from_dict(inp["cluster"]), workload,
                       options_from_dict(inp["options"]))
    rate = rate if rate is not None else plan["predicted"]["rate_rps"]
    if rate <= 0:
        raise SpecError(f"must be > 0, got {rate}", field="rate")
    n = requests if requests is not None else cm.options.simulate_requests
    if n < 1:
        raise SpecError(f"must be >= 1, got {n}", field="requests")
    return simulate(Deployment(cm, plan["decision"]), rate=rate, requests=n,
                    seed=seed if seed is not None else cm.options.seed)


__all__ = ["EXPORT_FORMATS", "ServeOptions", "ServingWorkload", "check", "estimate_serving", "explain", "export",
           "plan_serving", "simulate_plan"]
