"""FlexSP-style bucketed MILP, kept as the comparison method (`--method milp`).

Sets: group slots j = 1..U (U units; every group has at least one unit, so U slots suffice), degrees k,
length buckets b (sequences sorted by length, split into `milp_buckets` equal-count buckets, refined so
that all members of a bucket fit on the same degrees).
Data: n_b sequences in bucket b; t[b,k] = time of the bucket's *shortest* member on degree k inside a node (s),
so every real plan maps to a solution of no larger objective and the MILP's dual bound is a valid lower
bound on the real step time; d_k units per group of degree k.
Variables: z[j,k] ∈ {0,1} slot j is a group of degree k; x[j,b,k] ∈ Z≥0 sequences of bucket b on slot j;
T ≥ 0 the makespan.
Objective: min T.
Constraints:
  (C1) Σ_k z[j,k] ≤ 1                       a slot has at most one degree
  (C2) Σ_{j,k} d_k·z[j,k] ≤ U               the groups use at most the units
  (C3) x[j,b,k] ≤ n_b·z[j,k]                sequences only on an open slot of that degree
  (C4) Σ_{j,k} x[j,b,k] = n_b               every sequence assigned (x exists only where bucket b fits on k)
  (C5) Σ_{b,k} t[b,k]·x[j,b,k] ≤ T          each slot finishes by T
Slots are interchangeable (no symmetry breaking, as in FlexSP), which is what makes this model slow and
its bound weak. The solution is mapped back to real sequences (longest first within a bucket, slots in
order) and re-timed with exact lengths on its actual placement.
"""

import numpy as np

import solvers
from costmodels.errors import SolverError
from planner.scatter import layout
from planner.scatter.request import CostTable, ScatterOptions, ScatterRequest
from planner.scatter.search import Assignment, Evaluator, canonical
from solvers.deadline import Deadline
from solvers.result import relative_gap


def buckets(lengths: list[int], table: CostTable, count: int) -> list[list[int]]:
    """Sequence indices per bucket, shortest first; members share their feasible degrees."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    fits = np.isfinite(table.intra_s)
    out, cur = [], []
    size = -(-len(order) // count)
    for i in order:
        if cur and (len(cur) >= size or not np.array_equal(fits[:, i], fits[:, cur[0]])):
            out.append(cur)
            cur = []
        cur.append(i)
    out.append(cur)
    return out


def solve_milp(req: ScatterRequest, table: CostTable, options: ScatterOptions, evaluator: Evaluator, *,
               deadline: Deadline) -> tuple[Assignment | None, dict]:
    """The MILP's plan and solver block; (None, block) when the time limit passed before it found a plan."""
    import pulp

    units, degs = req.units, table.degrees
    groups_b = buckets(list(req.lengths), table, options.milp_buckets)
    t = [[float(table.intra_s[k, b[0]]) for k in range(len(degs))] for b in groups_b]
    prob = pulp.LpProblem("flexsp_bucketed", pulp.LpMinimize)
    T = pulp.LpVariable("T", lowBound=0)
    z = {(j, k): pulp.LpVariable(f"z_{j}_{k}", cat="Binary") for j in range(units) for k in range(len(degs))
         if degs[k] <= units}
    x = {(j, b, k): pulp.LpVariable(f"x_{j}_{b}_{k}", lowBound=0, upBound=len(groups_b[b]), cat="Integer")
         for (j, k) in z for b in range(len(groups_b)) if np.isfinite(t[b][k])}
    prob += T
    for j in range(units):  # (C1)
        prob += pulp.lpSum(z[j, k] for k in range(len(degs)) if (j, k) in z) <= 1, f"C1_{j}"
    prob += pulp.lpSum(degs[k] * v for (j, k), v in z.items()) <= units, "C2"
    for (j, b, k), v in x.items():  # (C3)
        prob += v <= len(groups_b[b]) * z[j, k], f"C3_{j}_{b}_{k}"
    for b in range(len(groups_b)):  # (C4)
        prob += pulp.lpSum(v for (j, bb, k), v in x.items() if bb == b) == len(groups_b[b]), f"C4_{b}"
    for j in range(units):  # (C5)
        prob += pulp.lpSum(t[b][k] * v for (jj, b, k), v in x.items() if jj == j) <= T, f"C5_{j}"
    left = deadline.remaining()
    if left <= 0.05:  # building the model took the whole limit: no time to solve it
        deadline.mark_hit()
        return None, {"backend": "highs", "status": deadline.status("no_solution"), "objective": None,
                      "bound": None, "gap": None}
    result = solvers.solve_pulp(prob, solvers.SolverOptions(time_limit_s=left, threads=1, seed=0,
                                                            relative_gap=options.relative_gap))
    if result.status.value != "optimal" and deadline.remaining() <= 0.05 * left:
        deadline.mark_hit()  # stopped short of its gap target on the backend's limit, which is ours
    if not result.status.has_solution:
        if deadline.hit:
            return None, {"backend": result.backend, "backend_version": result.backend_version,
                          "status": deadline.status(result.status.value), "objective": None, "bound": result.bound,
                          "gap": None}
        raise SolverError(f"{result.backend}: the bucketed MILP found no solution ({result.status.value}, "
                          f"{result.message})")
    best = _to_assignment(req, table, evaluator, groups_b, z, x)
    solver = {"backend": result.backend, "backend_version": result.backend_version,
              "status": deadline.status(result.status.value), "objective": best.step_time_s,
              "milp_objective": result.objective,
              "bound": result.bound, "gap": relative_gap(best.step_time_s, result.bound)}
    return best, solver


def _to_assignment(req, table, evaluator, groups_b, z, x) -> Assignment:
    degs = table.degrees
    opened = sorted(((j, k) for (j, k), v in z.items() if (v.value() or 0) > 0.5), key=lambda jk: (-degs[jk[1]], jk[0]))
    members = {j: [] for j, _ in opened}
    for b, seqs in enumerate(groups_b):
        queue = sorted(seqs, key=lambda i: (-req.lengths[i], i))
        for j, k in opened:
            v = x.get((j, b, k))
            take = int(round(v.value() or 0)) if v is not None else 0
            members[j].extend(queue[:take])
            queue = queue[take:]
        if queue:  # rounding left some unassigned: give them to the first open slot where they fit
            for i in queue:
                j = next(j for j, k in opened if np.isfinite(table.intra_s[k, i]))
                members[j].append(i)
    slots = layout.place([degs[k] for _, k in opened], table.node_units, req.units)
    row_of = {d: k for k, d in enumerate(degs)}
    by_degree: dict[int, list[int]] = {}
    for j, k in opened:
        by_degree.setdefault(degs[k], []).append(j)
    contents, rows, loads = [], [], []
    for slot in slots:
        j = by_degree[slot.degree].pop(0)
        row = evaluator.row(row_of[slot.degree], slot.spans_nodes)
        contents.append(sorted(members[j]))
        rows.append((row_of[slot.degree], slot.spans_nodes))
        loads.append(float(sum(row[i] for i in members[j])))
    classes = sorted(set(rows))
    group_class = [classes.index(r) for r in rows]
    contents, loads = canonical(contents, loads, group_class)
    return Assignment(slots=tuple(slots), group_rows=tuple(rows), groups=tuple(tuple(c) for c in contents),
                      loads_s=tuple(loads))
