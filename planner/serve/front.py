"""`--top N` and `--pareto` for serve plans (goodput objective).

top N     the next N deployments by the model's goodput per GPU, over every mode: the single-layout ILP
          solutions (planner.serve.layouts) other than the chosen one, each a full deployment (groups). Model
          figures, not simulated (the plan itself is verified; these are what it was compared with).
pareto    goodput per GPU against an SLO (`--pareto-axis`: tpot, the default, ttft, or both): the plan is
          re-solved with that SLO scaled by each of PARETO_FACTORS (the other SLO unchanged); each point is a full
          verified deployment (its groups, predicted TTFT/TPOT, and the simulated attainment and percentiles of
          its own check), and points another point dominates (an SLO at most theirs and goodput at least theirs,
          one strictly) are dropped. Sorted by that SLO. The TPOT front is predicted.pareto, the TTFT front
          predicted.pareto_ttft. The points share the plan's time limit: each gets the time left, and a point
          starts only while the time left covers what the base plan took (else it is left out, a hit on the
          plan's deadline).
"""

import dataclasses

from planner.serve.formulation import CountSolution
from planner.serve.layouts import same_counts
from solvers.deadline import TIME_LIMIT_STATUS, Deadline

PARETO_FACTORS = (0.5, 0.75, 1.0, 1.5, 2.0)
"""SLO multipliers of the points tried for a front"""
PARETO_AXES = ("tpot", "ttft", "both")
"""--pareto-axis choices: the SLO a front scales (both: one front per SLO)"""
FRONT_KEYS = {"tpot": "pareto", "ttft": "pareto_ttft"}
"""predicted.<key> holding each axis's front"""


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


def pareto_fronts(request, options, plan_fn, base, deadline: Deadline) -> dict[str, list[dict]]:
    """{FRONT_KEYS[axis]: front} for the axes options.pareto_axis names (pareto_front); both fronts use the base
    plan's solve time as the estimate of one point's."""
    axes = ("tpot", "ttft") if options.pareto_axis == "both" else (options.pareto_axis,)
    per_point_s = deadline.elapsed()
    return {FRONT_KEYS[axis]: pareto_front(request, options, plan_fn, base, deadline, axis=axis,
                                           per_point_s=per_point_s) for axis in axes}


def _point(plan) -> dict:
    """A front point: the deployment of `plan` with its SLOs, predictions and simulated check."""
    p, wl, sim = plan["predicted"], plan["inputs"]["workload"], plan["simulated"]
    pct = f"p{wl['percentile']:g}"
    return {"tpot_slo_s": wl["tpot_s"], "ttft_slo_s": wl["ttft_s"], "mode": plan["decision"]["mode"],
            "groups": plan["decision"]["groups"], "gpus": p["gpus"], "rate_rps": p["rate_rps"],
            "goodput_tokens_per_s_per_gpu": p["goodput_tokens_per_s_per_gpu"], "ttft_s": p["ttft_s"],
            "tpot_s": p["tpot_s"], "simulated_attainment": sim["attainment"],
            "simulated_ttft_s": sim["ttft_s"][pct], "simulated_tpot_s": sim["tpot_s"][pct]}


def non_dominated(points: list[dict], slo_key: str) -> list[dict]:
    """The points no other point dominates (an SLO at most theirs and goodput at least theirs, one of them strictly:
    a looser SLO that buys no more goodput is dropped), by increasing SLO."""
    good = "goodput_tokens_per_s_per_gpu"

    def beats(b: dict, a: dict) -> bool:
        return b[slo_key] <= a[slo_key] and b[good] >= a[good] and (b[slo_key] < a[slo_key] or b[good] > a[good])

    front = [a for a in points if not any(beats(b, a) for b in points if b is not a)]
    return sorted(front, key=lambda q: q[slo_key])


def pareto_front(request, options, plan_fn, base, deadline: Deadline, axis: str = "tpot",
                 per_point_s: float | None = None) -> list[dict]:
    """Front of goodput per GPU vs the `axis` SLO ("tpot" or "ttft"); `plan_fn(request, options)` plans one point,
    `base` is the plan at factor 1 (reused); `deadline` is the plan's (a point cut by it marks it hit);
    `per_point_s`: the estimated solve time of one point (default: the time spent so far, the base plan's)."""
    from costmodels.errors import InfeasibleError

    field = f"{axis}_s"
    quiet = dataclasses.replace(options, pareto=False, pareto_axis="tpot", top=0)
    per_point_s = deadline.elapsed() if per_point_s is None else per_point_s
    points = []
    for factor in PARETO_FACTORS:
        if factor == 1.0:
            plan = base
        else:
            if deadline.expired() or deadline.remaining() < per_point_s:
                deadline.mark_hit()
                continue
            wl = dataclasses.replace(request.workload, **{field: getattr(request.workload, field) * factor})
            try:
                plan = plan_fn(dataclasses.replace(request, workload=wl),
                               dataclasses.replace(quiet, time_limit_s=deadline.remaining()))
            except InfeasibleError:
                continue
            if plan["solver"]["status"] == TIME_LIMIT_STATUS:
                deadline.mark_hit()
        points.append(_point(plan))
    return non_dominated(points, f"{axis}_slo_s")


def _ms(value) -> str:
    return f"{value * 1e3:.4g}" if isinstance(value, (int, float)) else "-"


def front_lines(predicted: dict, percentile: float) -> list[str]:
    """explain's tables of the plan's fronts (predicted.pareto: TPOT, predicted.pareto_ttft: TTFT)."""
    out = []
    pct = f"p{percentile:g}"
    for axis, key in FRONT_KEYS.items():
        points = predicted.get(key) or []
        if not points:
            continue
        out += [f"  pareto {axis.upper()} front: goodput per GPU against the {axis.upper()} SLO (each point a full "
                "deployment, simulated)",
                f"    {'TTFT SLO':>9} {'TPOT SLO':>9} {'tok/s/GPU':>10} {'req/s':>8} {'GPUs':>5} {'attain':>7} "
                f"{'sim TTFT ' + pct:>13} {'sim TPOT ' + pct:>13}  deployment"]
        for pt in points:
            shapes = " + ".join(f"{g['instances']}x {g['role']} tp{g['tp']}pp{g['pp']}" for g in pt["groups"])
            out.append(f"    {_ms(pt['ttft_slo_s']):>9} {_ms(pt['tpot_slo_s']):>9} "
                       f"{pt['goodput_tokens_per_s_per_gpu']:10.1f} {pt['rate_rps']:8.3f} {pt['gpus']:5d} "
                       f"{pt['simulated_attainment']:7.3f} {_ms(pt.get('simulated_ttft_s')):>13} "
                       f"{_ms(pt.get('simulated_tpot_s')):>13}  {pt['mode']}: {shapes}")
    return out
