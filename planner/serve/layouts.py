"""Single-layout ILP solutions: the best instance counts for one prefill shape x one decode shape (disaggregated)
or one shape (colocated, intra_gpu), ranked by the model's goodput per GPU.

The planner verifies the top few layouts of each mode by simulation, beside the mode's full ILP solution, and
keeps the best simulated one (the analytic ranking and the simulator can disagree when layouts are close);
`--top N` reports the next N as alternatives. At most PER_ROLE candidates of each role (best capacity per GPU)
are paired, so the number of small ILPs stays bounded.
"""

from planner.serve.budget import VerifyBudget
from planner.serve.capacity import Candidate
from planner.serve.formulation import CountSolution, solve_counts

PER_ROLE = 6
"""candidates per role (by capacity per GPU) that enter the pairing"""
LAYOUT_MARGIN = 0.15
"""layouts verified beside the mode's ILP solution must reach (1 - LAYOUT_MARGIN) of its model goodput per GPU
(the analytic ranking misorders close layouts, not ones this far apart)"""


def _best(cands: list[Candidate]) -> list[Candidate]:
    return sorted(cands, key=lambda c: (-c.capacity_rps / c.gpus, c.key))[:PER_ROLE]


def ranked_layouts(cluster, groups: dict[str, list[Candidate]], *, kv_bytes_per_req: float,
                   budget: VerifyBudget) -> list[tuple[CountSolution, dict]]:
    """(solution, its one-shape-per-role groups), best model goodput per GPU first (ties: layout names). Each
    layout's ILP gets the time the budget has left; past its deadline the rest are skipped (the deadline is then
    recorded as hit, and the ranking holds the layouts solved so far)."""
    roles = sorted(groups)
    if roles == ["decode", "prefill"]:
        combos = [{"prefill": [p], "decode": [d]} for p in _best(groups["prefill"]) for d in _best(groups["decode"])]
    else:
        combos = [{roles[0]: [c]} for c in _best(groups[roles[0]])]
    out = []
    for combo in combos:
        if budget.deadline.expired():  # records the hit
            break
        sol = solve_counts(cluster, combo, objective="goodput", rate=None, kv_bytes_per_req=kv_bytes_per_req,
                           options=budget.solver_options())
        if sol is not None and sol.rate_rps > 0:
            out.append((sol, combo))
    out.sort(key=lambda sg: (-sg[0].goodput_per_gpu, [c.key for c, _ in sg[0].counts]))
    return out


def same_counts(a: CountSolution, b: CountSolution) -> bool:
    return [(c.key, k) for c, k in a.counts] == [(c.key, k) for c, k in b.counts]
