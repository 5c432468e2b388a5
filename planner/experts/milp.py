"""Exact per-layer placement MILP, for GPUs of different speeds (identical GPUs: groups.py).

  Sets      E experts, G GPUs
  Data      a_e tokens of expert e; c0 fixed time (s or 0); k_g time per pair on GPU g; S slots per GPU
  Variables x_eg in {0,1}: GPU g holds a replica of e;  y_eg in [0,1]: share of e's tokens on g;
            t >= 0: busiest GPU's time
  Objective min t
  (C1) sum_g y_eg = 1                      every expert's tokens are served
  (C2) y_eg <= x_eg                        only by GPUs that hold it
  (C3) sum_e x_eg <= S                     slots per GPU
  (C4) sum_g x_eg >= 1                     every expert placed (also for experts without tokens)
  (C5) c0 + k_g sum_e a_e y_eg <= t        busiest GPU
  (C6) lower <= t <= upper                  a proven bound as a cut; upper = the heuristic's value
  (C7) sum_e a_e y_eg >= sum_e a_e y_e,g+1   for consecutive GPUs of equal speed (symmetry breaking:
                                           such GPUs are interchangeable, so order them by load)
One replica of an expert per GPU is implied by x_eg being binary. threads and a fixed seed keep the
answer reproducible (a run cut short by the time limit may differ from machine to machine).
"""

import numpy as np
import pulp

from solvers import SolverOptions, solve_pulp
from solvers.result import SolveResult


def solve_layer(load: np.ndarray, *, slots_per_gpu: int, c0: float, kappa: np.ndarray, options: SolverOptions,
                lower: float = 0.0, upper: float | None = None) -> tuple[np.ndarray | None, SolveResult]:
    """([G, S] slots or None, result) of the exact layer MILP."""
    experts, gpus = load.shape[0], kappa.shape[0]
    prob = pulp.LpProblem("expert_layer", pulp.LpMinimize)
    x = {(e, g): pulp.LpVariable(f"x_{e}_{g}", cat=pulp.LpBinary) for e in range(experts) for g in range(gpus)}
    y = {(e, g): pulp.LpVariable(f"y_{e}_{g}", lowBound=0, upBound=1) for e in range(experts) for g in range(gpus)}
    t = pulp.LpVariable("t", lowBound=lower, upBound=upper)  # (C6)
    prob += t
    for e in range(experts):
        prob += pulp.lpSum(y[e, g] for g in range(gpus)) == 1, f"C1_{e}"
        prob += pulp.lpSum(x[e, g] for g in range(gpus)) >= 1, f"C4_{e}"
        for g in range(gpus):
            prob += y[e, g] <= x[e, g], f"C2_{e}_{g}"
    for g in range(gpus):
        prob += pulp.lpSum(x[e, g] for e in range(experts)) <= slots_per_gpu, f"C3_{g}"
        prob += c0 + float(kappa[g]) * pulp.lpSum(float(load[e]) * y[e, g] for e in range(experts)) <= t, f"C5_{g}"
        if g + 1 < gpus and kappa[g] == kappa[g + 1]:
            prob += pulp.lpSum(float(load[e]) * (y[e, g] - y[e, g + 1]) for e in range(experts)) >= 0, f"C7_{g}"
    result = solve_pulp(prob, options)
    if not result.status.has_solution:
        return None, result
    slots = np.full((gpus, slots_per_gpu), -1, dtype=np.int64)
    for g in range(gpus):
        held = [e for e in range(experts) if result.values.get(f"x_{e}_{g}", 0.0) > 0.5]
        slots[g, :len(held)] = held
    return slots, result
