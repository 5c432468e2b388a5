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
    from planner.serve.request import check_rate, check_requests
    from planner.serve.simulate import Deployment, simulate

    if plan.kind != "serve":
        raise SpecError("simulate needs a serve plan", field="kind")
    if plan["inputs"].get("objective") == "throughput":
        raise SpecError("an offline (objective throughput) plan has no arrivals or SLOs to simulate", field="objective")
    if requests is not None:  # the CLI's checks (simulate --rate/--requests/--seed)
        check_requests(requests)
    inp = plan["inputs"]
    workload = workload_from_dict(inp["workload"])
    if arrival is not None:
        workload = dataclasses.replace(workload, arrival=arrival)
    options = options_from_dict(inp["options"])
    if seed is not None:
        options = dataclasses.replace(options, seed=seed)  # ServeOptions refuses a negative seed
    cm = CapacityModel(model_from_dict(inp["model"]), cluster_from_dict(inp["cluster"]), workload, options)
    rate = rate if rate is not None else plan["predicted"]["rate_rps"]
    check_rate(rate)
    return simulate(Deployment(cm, plan["decision"]), rate=rate, requests=requests or options.simulate_requests,
                    seed=options.seed)


__all__ = ["EXPORT_FORMATS", "ServeOptions", "ServingWorkload", "check", "estimate_serving", "explain", "export",
           "plan_serving", "simulate_plan"]
