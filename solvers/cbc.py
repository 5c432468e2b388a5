"""CBC through PuLP's bundled binary (PULP_CBC_CMD), normalized.

PuLP reports CBC's outcome as a solution status; we translate that through our table. CBC's best bound is
not in its solution file, so we read it from CBC's log ("Lower bound:" when minimising, "Upper bound:" when
maximising, printed when the search stopped before proving optimality). CBC's log leaves out the
objective constant, so the constant is added back to the bound.
"""

import os
import re
import sys
import tempfile
import time
import warnings

import pulp

from costmodels.errors import SolverError
from solvers.result import SolveResult, SolverOptions, SolveStatus, relative_gap

NAME = "cbc"

# (PuLP problem status, PuLP solution status) -> ours; None = any solution status.
STATUS_TABLE = {
    (pulp.LpStatusOptimal, pulp.LpSolutionOptimal): SolveStatus.OPTIMAL,
    (pulp.LpStatusOptimal, pulp.LpSolutionIntegerFeasible): SolveStatus.FEASIBLE,  # a limit stopped the search
    (pulp.LpStatusNotSolved, pulp.LpSolutionIntegerFeasible): SolveStatus.FEASIBLE,
    (pulp.LpStatusNotSolved, pulp.LpSolutionNoSolutionFound): SolveStatus.NO_SOLUTION,
    (pulp.LpStatusInfeasible, None): SolveStatus.INFEASIBLE,
    (pulp.LpStatusUnbounded, None): SolveStatus.UNBOUNDED,
    (pulp.LpStatusUndefined, None): SolveStatus.ERROR,
}


def translate(status: int, sol_status: int) -> SolveStatus:
    return STATUS_TABLE.get((status, sol_status), STATUS_TABLE.get((status, None), SolveStatus.ERROR))
_BOUND = re.compile(r"^(?:Lower|Upper) bound:\s+(\S+)", re.MULTILINE)
_RESULT = re.compile(r"^Result - (.+)$", re.MULTILINE)
_VERSION = re.compile(r"^Version:\s+(\S+)", re.MULTILINE)


def command(options: SolverOptions, log_path: str) -> pulp.PULP_CBC_CMD:
    # CBC reads a seed of 0 as "use the time of day", so seed s is passed as s + 1.
    seeds = [f"randomCbcSeed {options.seed + 1}", f"randomSeed {options.seed + 1}"]
    with warnings.catch_warnings():  # PuLP 3.x warns that 4.0 drops the bundled CBC (this backend needs pulp < 4)
        warnings.simplefilter("ignore", DeprecationWarning)
        return pulp.PULP_CBC_CMD(msg=False, threads=options.threads, timeLimit=options.time_limit_s,
                                 gapRel=options.relative_gap, logPath=log_path, options=seeds)


def available() -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return bool(pulp.PULP_CBC_CMD(msg=False).available())


def version(log: str = "") -> str:
    match = _VERSION.search(log)
    return match.group(1) if match else f"bundled with pulp {pulp.__version__}"


def solve(problem: pulp.LpProblem, options: SolverOptions) -> SolveResult:
    handle, log_path = tempfile.mkstemp(prefix="parplan-cbc-", suffix=".log")
    os.close(handle)
    try:
        start = time.perf_counter()
        try:
            problem.solve(command(options, log_path))
        except pulp.PulpSolverError as exc:
            raise SolverError(f"backend 'cbc' failed: {exc}") from None
        elapsed = time.perf_counter() - start
        with open(log_path, encoding="utf-8", errors="replace") as f:
            log = f.read()
    finally:
        os.unlink(log_path)
    if options.verbose:
        sys.stderr.write(log)

    status = translate(problem.status, problem.sol_status)
    result_line = _RESULT.search(log)
    objective = bound = None
    values = {}
    if status.has_solution:
        objective = float(pulp.value(problem.objective) or 0.0) if problem.objective is not None else 0.0
        match = _BOUND.search(log)
        if match:
            constant = float(problem.objective.constant) if problem.objective is not None else 0.0
            bound = float(match.group(1)) + constant
        elif status is SolveStatus.OPTIMAL:
            bound = objective
        values = {v.name: float(v.varValue) for v in problem.variables() if v.varValue is not None}
    message = result_line.group(1).strip() if result_line else pulp.LpStatus[problem.status]
    return SolveResult(status=status, objective=objective, bound=bound, gap=relative_gap(objective, bound),
                       solve_time_s=elapsed, backend=NAME, backend_version=version(log), values=values, message=message)
