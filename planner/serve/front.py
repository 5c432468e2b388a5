"""`--top N` and `--pareto` for serve plans (goodput objective).

top N     the next N deployments by the model's goodput per GPU, over every mode: the single-layout ILP
          solutions (planner.serve.layouts) other than the chosen one, each a full deployment (groups). Model
          figures, not simulated (the plan itself is verified; these are what it was compared with).
pareto    goodput per GPU against the TPOT SLO: the plan is re-solved with the TPOT SLO scaled by each of
          PARETO_FACTORS (TTFT unchanged); each point is a full verified deployment, and points another point
          beats on both (lower TPOT SLO and higher goodput) are dropped. Sorted by TPOT SLO. The points share
          the plan's time limit: each gets the time left, and a point starts only while the time left covers
          what the base plan took (else it is left out, a hit on the plan's deadline).
"""

import dataclasses

from planner.serve.formulation import CountSolution
from planner.serve.layouts import same_counts
from solvers.deadline import TIME_LIMIT_STATUS, Deadline

PARETO_FACTORS = (0.5, 0.75, 1.0, 1.5, 2.0)
"""TPOT SLO multipliers of the points tried for the front"""


def top_alternatives(ranked: dict, chosen: CountSolution, mean_out: float, top: int, groups_of) -> list[dict]:
    """The `top` best other layouts by model goodput per GPU (ranked: mode -> [(solution, groups)])."""
    pool = [(sol, mode) for mode, layouts in sorted(ranked.items()) for sol, _ in layouts
            if not same_counts(sol, chosen)]
    pool.sort(key=lambda sm: (-sm[0].goodput_per_gpu, sm[1], [c.key for c, _ in sm[0].counts]))
    out = []
    for rank, (sol, mode) in enumerate(pool[:top], start=1):
        out.append({"rank": rank, "mode": mode, "groups": groups_of(sol, sol.rate_rps), "gpus": sol.gpus,
                    "rate_rps": sol.rate_rps, "goodput_tokens_per_s_per_gpu": sol.goodput_per_gpu * mean_out,
                    "why": f"top-{top} alternative by the model's goodput per GPU (not simulated)"})
    return out


def pareto_front(request, options, plan_fn, base, deadline: Deadline) -> list[dict]:
    """Front of goodput per GPU vs TPOT SLO; `plan_fn(request, options)` plans one point, `base` is the plan at
    factor 1 (reused); `deadline` is the plan's (a point cut by it marks it hit)."""
    from costmodels.errors import InfeasibleError

    quiet = dataclasses.replace(options, pareto=False, top=0)
    per_point_s = deadline.elapsed()  # the base plan's solve: the estimate of one point's
    points = []
    for factor in PARETO_FACTORS:
        if factor == 1.0:
            plan = base
        else:
            if deadline.expired() or deadline.remaining() < per_point_s:
                deadline.mark_hit()
                continue
            wl = dataclasses.replace(request.workload, tpot_s=request.workload.tpot_s * factor)
            try:
                plan = plan_fn(dataclasses.replace(request, workload=wl),
                               dataclasses.replace(quiet, time_limit_s=deadline.remaining()))
            except InfeasibleError:
                continue
            if plan["solver"]["status"] == TIME_LIMIT_STATUS:
                deadline.mark_hit()
        p, wl = plan["predicted"], plan["inputs"]["workload"]
        points.append({"tpot_slo_s": wl["tpot_s"], "ttft_slo_s": wl["ttft_s"], "mode": plan["decision"]["mode"],
                       "groups": plan["decision"]["groups"], "gpus": p["gpus"], "rate_rps": p["rate_rps"],
                       "goodput_tokens_per_s_per_gpu": p["goodput_tokens_per_s_per_gpu"],
                       "simulated_attainment": plan["simulated"]["attainment"]})
    front = [a for a in points if not any(b["tpot_slo_s"] <= a["tpot_slo_s"] and b["goodput_tokens_per_s_per_gpu"]
                                          > a["goodput_tokens_per_s_per_gpu"] for b in points if b is not a)]
    return sorted(front, key=lambda q: q["tpot_slo_s"])
