"""Solver layer: normalized options and results over HiGHS, CBC and CP-SAT (see solvers.backends).

    solve_pulp(problem, options) -> SolveResult     a pulp.LpProblem on options.backend
    solve_cpsat(model, options, variables) -> SolveResult   an OR-Tools CpModel

highspy and ortools share a process only with highspy < 1.13: see solvers/native.py.
"""

from solvers.backends import BACKENDS, available_backends, solve_cpsat, solve_pulp
from solvers.result import SolveResult, SolverOptions, SolveStatus, relative_gap

__all__ = ["BACKENDS", "SolveResult", "SolveStatus", "SolverOptions", "available_backends", "relative_gap",
           "solve_cpsat", "solve_pulp"]
