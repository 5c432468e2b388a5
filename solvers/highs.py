"""HiGHS through highspy: a PuLP problem is passed to HiGHS as arrays, solved, and normalized.

We pass the model ourselves rather than through PuLP's HiGHS adapter so that the objective constant and
sense reach HiGHS, HiGHS's own model status goes through our table (PuLP's adapter reports a time-limited
run as "Optimal"), and the MIP dual bound is read from HiGHS's info. highspy must be a version that can
live next to OR-Tools in one process (see solvers/native.py). HiGHS writes some diagnostics straight to the
process's stdout even with output_flag off (e.g. "HighsMipSolverData::transformNewIntegerFeasibleSolution"
in 1.12); stdout may carry a plan's JSON, so the solve runs with file descriptor 1 pointed at stderr.
"""

import contextlib
import ctypes
import importlib.metadata
import os
import sys
import time
from collections.abc import Iterable, Iterator
from types import ModuleType
from typing import Any

import numpy as np

from solvers.pulp_model import assign_values, dense_model, has_integers
from solvers.result import SolveResult, SolverOptions, SolveStatus, relative_gap

NAME = "highs"
_SOLUTION_FEASIBLE = 2  # HiGHS kSolutionStatusFeasible


def version() -> str:
    return importlib.metadata.version("highspy")


def load_error() -> str | None:
    """None when highspy imports in this process; otherwise why not (see solvers/native.py)."""
    try:
        import highspy  # noqa: F401
    except ImportError as exc:
        return f"highspy cannot load: pip install 'highspy<1.13' ({exc})"
    return None


def _status_table(highspy: ModuleType) -> dict[Any, SolveStatus]:
    """HiGHS model status -> ours; a limit gives FEASIBLE only when a solution is in hand (checked below)."""
    s = highspy.HighsModelStatus
    table = {
        s.kOptimal: SolveStatus.OPTIMAL,
        s.kModelEmpty: SolveStatus.OPTIMAL,
        s.kInfeasible: SolveStatus.INFEASIBLE,
        s.kUnbounded: SolveStatus.UNBOUNDED,
        s.kUnboundedOrInfeasible: SolveStatus.NO_SOLUTION,
        s.kTimeLimit: SolveStatus.FEASIBLE,
        s.kIterationLimit: SolveStatus.FEASIBLE,
        s.kSolutionLimit: SolveStatus.FEASIBLE,
        s.kObjectiveBound: SolveStatus.FEASIBLE,
        s.kObjectiveTarget: SolveStatus.FEASIBLE,
        s.kInterrupt: SolveStatus.FEASIBLE,
        s.kUnknown: SolveStatus.NO_SOLUTION,
        s.kNotset: SolveStatus.ERROR,
        s.kLoadError: SolveStatus.ERROR,
        s.kModelError: SolveStatus.ERROR,
        s.kPresolveError: SolveStatus.ERROR,
        s.kSolveError: SolveStatus.ERROR,
        s.kPostsolveError: SolveStatus.ERROR,
    }
    for name in ("kMemoryLimit", "kHighsInterrupt"):  # not in every highspy version
        if hasattr(s, name):
            table[getattr(s, name)] = SolveStatus.FEASIBLE
    return table


def _bounds(values: Iterable[float | None], missing: float) -> np.ndarray:
    """Bounds as a float array, None (no bound) replaced by +-inf."""
    return np.array([missing if b is None else b for b in values], dtype=np.float64)


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send what native code writes to file descriptor 1 to stderr instead, while the block runs."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        ctypes.CDLL(None).fflush(None)  # C stdio buffers go out through the redirected descriptor
        os.dup2(saved, 1)
        os.close(saved)


def solve(problem: Any, options: SolverOptions) -> SolveResult:
    import highspy

    model = dense_model(problem)
    inf = highspy.kHighsInf
    h = highspy.Highs()
    h.setOptionValue("output_flag", bool(options.verbose))
    h.setOptionValue("threads", options.threads)
    h.setOptionValue("random_seed", options.seed)
    h.setOptionValue("time_limit", float(options.time_limit_s))
    h.setOptionValue("mip_rel_gap", float(options.relative_gap))
    n = len(model.names)
    empty_i, empty_f = np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float64)
    if n:
        h.addCols(n, np.array(model.costs, dtype=np.float64), _bounds(model.lower, -inf), _bounds(model.upper, inf),
                  0, empty_i, empty_i, empty_f)
    integer_cols = np.flatnonzero(model.integer).astype(np.int32)
    if len(integer_cols):
        h.changeColsIntegrality(len(integer_cols), integer_cols,
                                np.array([highspy.HighsVarType.kInteger] * len(integer_cols)))
    if model.rows:
        starts = np.cumsum([0] + [len(r.columns) for r in model.rows[:-1]]).astype(np.int32)
        columns = np.array([j for r in model.rows for j in r.columns], dtype=np.int32)
        coefficients = np.array([a for r in model.rows for a in r.coefficients], dtype=np.float64)
        lower, upper = _bounds([r.lower for r in model.rows], -inf), _bounds([r.upper for r in model.rows], inf)
        h.addRows(len(model.rows), lower, upper, len(columns), starts, columns, coefficients)
    h.changeObjectiveOffset(model.offset)
    h.changeObjectiveSense(highspy.ObjSense.kMaximize if model.maximize else highspy.ObjSense.kMinimize)

    start = time.perf_counter()
    with stdout_to_stderr():
        h.run()
        raw = h.getModelStatus()
        if raw == highspy.HighsModelStatus.kUnboundedOrInfeasible:
            # presolve cannot tell these apart; HiGHS without presolve can (tests/solvers/test_contract.py)
            h.setOptionValue("presolve", "off")
            h.run()
            raw = h.getModelStatus()
    elapsed = time.perf_counter() - start

    status = _status_table(highspy).get(raw, SolveStatus.ERROR)
    info = h.getInfo()
    if status is SolveStatus.FEASIBLE and info.primal_solution_status != _SOLUTION_FEASIBLE:
        status = SolveStatus.NO_SOLUTION
    objective = bound = None
    values = {}
    if status.has_solution:
        objective = float(info.objective_function_value)
        if has_integers(model):
            bound = float(info.mip_dual_bound)
        elif status is SolveStatus.OPTIMAL:
            bound = objective  # an optimal LP is its own bound
        values = assign_values(problem, model, list(h.getSolution().col_value))
    return SolveResult(status=status, objective=objective, bound=bound, gap=relative_gap(objective, bound),
                       solve_time_s=elapsed, backend=NAME, backend_version=version(), values=values,
                       message=h.modelStatusToString(raw))
