"""The solver backends, in preference order, and the one entry point for PuLP problems.

| backend | library                      | models                      | bound reported                         |
|---------|------------------------------|-----------------------------|----------------------------------------|
| highs   | highspy (HiGHS)              | LP and MILP                 | HiGHS mip_dual_bound; LP optimum       |
| cbc     | PuLP's bundled CBC binary    | LP and MILP                 | CBC log's best bound; LP optimum       |
| cpsat   | OR-Tools CP-SAT              | integer variables only      | best_objective_bound                   |

Every backend gets threads, seed, time limit and relative gap from SolverOptions, explicitly.
"""

import importlib.util
from typing import TYPE_CHECKING, Any

from costmodels.errors import SolverUnavailableError, SpecError
from solvers.native import ortools_error
from solvers.result import SolveResult, SolverOptions

if TYPE_CHECKING:
    from ortools.sat.python.cp_model import CpModel, IntVar

BACKENDS = ("highs", "cbc", "cpsat")

_INSTALL = {
    "highs": "pip install 'highspy<1.13'",
    "cbc": "pip install pulp (it bundles CBC on common platforms) or apt-get install coinor-cbc",
    "cpsat": "pip install ortools",
}
_MODULE = {"highs": "highspy", "cbc": "pulp", "cpsat": "ortools"}


def unavailable_reason(backend: str) -> str | None:
    """None when the backend can run, else what to install or change."""
    if importlib.util.find_spec(_MODULE[backend]) is None:
        return f"it is not installed: {_INSTALL[backend]}"
    if backend == "cbc":
        from solvers import cbc

        return None if cbc.available() else f"PuLP's CBC binary is missing for this platform: {_INSTALL['cbc']}"
    if backend == "highs":
        from solvers import highs

        return highs.load_error()
    return ortools_error()


def available_backends() -> tuple[str, ...]:
    """The backends that can run in this process, in preference order."""
    return tuple(b for b in BACKENDS if unavailable_reason(b) is None)


def require_backend(backend: str) -> None:
    """SpecError for an unknown name; SolverUnavailableError (saying what to install) for one that cannot run."""
    if backend not in BACKENDS:
        raise SpecError(f"unknown solver backend {backend!r}; valid: {', '.join(BACKENDS)}", field="backend")
    reason = unavailable_reason(backend)
    if reason:
        raise SolverUnavailableError(f"solver backend {backend!r} is unavailable: {reason}")


def solve_pulp(problem: Any, options: SolverOptions | None = None) -> SolveResult:
    """Solve a `pulp.LpProblem` with `options.backend`; the solution is also stored on the PuLP variables.

    cpsat accepts only problems whose variables are all integer with finite bounds and whose constraints
    have integral coefficients (SpecError otherwise: nothing is rounded).
    """
    options = options or SolverOptions()
    require_backend(options.backend)
    if options.backend == "highs":
        from solvers import highs

        return highs.solve(problem, options)
    if options.backend == "cbc":
        from solvers import cbc

        return cbc.solve(problem, options)
    from solvers import cpsat

    return cpsat.solve_pulp_with_cpsat(problem, options)


def solve_cpsat(model: "CpModel", options: SolverOptions | None = None,
                variables: "dict[str, IntVar] | None" = None) -> SolveResult:
    """Solve an OR-Tools `cp_model.CpModel`; `variables` maps names to the IntVars whose values to report."""
    require_backend("cpsat")
    from solvers import cpsat

    return cpsat.solve_cpsat(model, options or SolverOptions(backend="cpsat"), variables)
