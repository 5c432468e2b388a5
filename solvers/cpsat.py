"""OR-Tools CP-SAT, normalized; and an exact translation of all-integer PuLP problems into CP-SAT.

CP-SAT solves integer models only. `pulp_to_cpsat` refuses, with a SpecError that says why, any problem with
a continuous variable, a variable without finite bounds, or a non-integral constraint coefficient or
bound: such a model would have to be rounded, and we never change a model to fit a backend. (PuLP's own
CP-SAT adapter rounds continuous variables; we do not use it.) Objective coefficients may be fractional:
CP-SAT minimises a floating-point objective exactly over integer points.
"""

import math
import time
from importlib import metadata
from types import ModuleType
from typing import TYPE_CHECKING, Any

from costmodels.errors import SpecError
from solvers.pulp_model import DenseModel, assign_values, dense_model
from solvers.result import SolveResult, SolverOptions, SolveStatus, relative_gap

if TYPE_CHECKING:
    from ortools.sat.python.cp_model import CpModel, IntVar

NAME = "cpsat"


def version() -> str:
    return metadata.version("ortools")


def _status_table(cp_model: ModuleType) -> dict[Any, SolveStatus]:
    return {
        cp_model.OPTIMAL: SolveStatus.OPTIMAL,
        cp_model.FEASIBLE: SolveStatus.FEASIBLE,
        cp_model.INFEASIBLE: SolveStatus.INFEASIBLE,
        cp_model.MODEL_INVALID: SolveStatus.ERROR,
        cp_model.UNKNOWN: SolveStatus.NO_SOLUTION,
    }


def solve_cpsat(model: "CpModel", options: SolverOptions, variables: "dict[str, IntVar] | None" = None) -> SolveResult:
    """Solve a `cp_model.CpModel`; `variables` (name -> IntVar) selects the values to report."""
    from ortools.sat.python import cp_model

    solver = cp_model.CpSolver()
    params = solver.parameters
    params.num_workers = options.threads
    params.random_seed = options.seed
    params.max_time_in_seconds = float(options.time_limit_s)
    params.relative_gap_limit = float(options.relative_gap)
    params.log_search_progress = bool(options.verbose)
    if options.threads > 1:
        params.interleave_search = True  # deterministic multi-worker search
    start = time.perf_counter()
    raw = solver.solve(model)
    elapsed = time.perf_counter() - start
    status = _status_table(cp_model).get(raw, SolveStatus.ERROR)
    has_objective = model.has_objective()
    objective = bound = None
    values = {}
    if status.has_solution:
        objective = float(solver.objective_value) if has_objective else 0.0
        bound = float(solver.best_objective_bound) if has_objective else 0.0
        values = {name: float(solver.value(var)) for name, var in sorted((variables or {}).items())}
    return SolveResult(status=status, objective=objective, bound=bound, gap=relative_gap(objective, bound),
                       solve_time_s=elapsed, backend=NAME, backend_version=version(), values=values,
                       message=solver.status_name(raw))


def _integral(x: float) -> bool:
    return math.isfinite(x) and float(x).is_integer()


def pulp_to_cpsat(problem: Any) -> "tuple[CpModel, dict[str, IntVar], DenseModel]":
    """(CpModel, name -> IntVar, the problem's DenseModel) for an all-integer PuLP problem; SpecError otherwise."""
    from ortools.sat.python import cp_model

    dense = dense_model(problem)
    why = "backend 'cpsat' solves integer models only and never rounds a model; use backend highs or cbc"
    bounded: list[tuple[str, float, float]] = []
    for name, integer, lo, hi in zip(dense.names, dense.integer, dense.lower, dense.upper, strict=True):
        if not integer:
            raise SpecError(f"variable {name!r} is continuous; {why}", field="backend")
        if lo is None or hi is None:
            raise SpecError(f"integer variable {name!r} needs finite bounds for CP-SAT; {why}", field="backend")
        bounded.append((name, lo, hi))
    for row in dense.rows:
        numbers = row.coefficients + [b for b in (row.lower, row.upper) if b is not None]
        if not all(_integral(a) for a in numbers):
            raise SpecError(f"constraint {row.name!r} has non-integral coefficients or bounds; {why}", field="backend")
    model = cp_model.CpModel()
    xs = [model.new_int_var(math.ceil(lo), math.floor(hi), name) for name, lo, hi in bounded]
    for row in dense.rows:
        expr = sum(int(a) * xs[j] for j, a in zip(row.columns, row.coefficients, strict=True))
        lo = -cp_model.INT_MAX if row.lower is None else int(row.lower)
        hi = cp_model.INT_MAX if row.upper is None else int(row.upper)
        model.add_linear_constraint(expr, lo, hi).with_name(row.name)
    costs = dense.costs + [dense.offset]
    if all(_integral(c) for c in costs):  # keep an integer objective when it is one
        costs = [int(c) for c in costs]
    objective = sum(c * x for c, x in zip(costs[:-1], xs, strict=True) if c != 0) + costs[-1]
    if dense.maximize:
        model.maximize(objective)
    else:
        model.minimize(objective)
    return model, dict(zip(dense.names, xs, strict=True)), dense


def solve_pulp_with_cpsat(problem: Any, options: SolverOptions) -> SolveResult:
    """Translate an all-integer PuLP problem exactly and solve it with CP-SAT; values go back onto the problem."""
    model, variables, dense = pulp_to_cpsat(problem)
    result = solve_cpsat(model, options, variables)
    if result.status.has_solution:
        assign_values(problem, dense, [result.values[name] for name in dense.names])
    return result
