"""A PuLP problem read out as plain arrays (columns, rows, objective), for the backends that take matrices.

Columns follow `problem.variables()` (sorted by name, so the order is deterministic). A PuLP constraint
`sum(a_j x_j) + constant  (<=, >=, ==)  0` becomes a row with bounds on `sum(a_j x_j)`.
"""

from dataclasses import dataclass
from typing import Any

import pulp


@dataclass(frozen=True, kw_only=True, slots=True)
class Row:
    name: str
    """the constraint's name in the PuLP problem"""
    columns: list[int]
    """column indices with non-zero coefficients"""
    coefficients: list[float]
    """their coefficients"""
    lower: float | None
    """row lower bound (None = -inf)"""
    upper: float | None
    """row upper bound (None = +inf)"""


@dataclass(frozen=True, kw_only=True, slots=True)
class DenseModel:
    names: list[str]
    """variable names, one per column"""
    lower: list[float | None]
    """column lower bounds (None = -inf)"""
    upper: list[float | None]
    """column upper bounds (None = +inf)"""
    integer: list[bool]
    """column is integer (binary = integer in [0, 1])"""
    costs: list[float]
    """objective coefficient per column"""
    offset: float
    """objective constant"""
    maximize: bool
    """objective sense"""
    rows: list[Row]
    """constraints, in the problem's order"""


def dense_model(problem: pulp.LpProblem) -> DenseModel:
    variables = problem.variables()
    index = {v.name: j for j, v in enumerate(variables)}
    objective = problem.objective if problem.objective is not None else pulp.LpAffineExpression()
    costs = [0.0] * len(variables)
    for v, a in objective.items():
        costs[index[v.name]] = float(a)
    rows = []
    for c in constraints(problem):
        name = c.name
        items = [(index[v.name], float(a)) for v, a in c.items() if a != 0]
        rhs = -float(c.constant)
        lower = rhs if c.sense in (pulp.LpConstraintGE, pulp.LpConstraintEQ) else None
        upper = rhs if c.sense in (pulp.LpConstraintLE, pulp.LpConstraintEQ) else None
        rows.append(Row(name=name, columns=[j for j, _ in items], coefficients=[a for _, a in items],
                        lower=lower, upper=upper))
    return DenseModel(
        names=[v.name for v in variables],
        lower=[None if v.lowBound is None else float(v.lowBound) for v in variables],
        upper=[None if v.upBound is None else float(v.upBound) for v in variables],
        integer=[v.cat == pulp.LpInteger for v in variables],
        costs=costs,
        offset=float(objective.constant),
        maximize=problem.sense == pulp.LpMaximize,
        rows=rows,
    )


def constraints(problem: pulp.LpProblem) -> list[Any]:
    """The problem's constraints in insertion order (PuLP >= 3.3 makes `constraints` callable; 2.x has a dict)."""
    view = problem.constraints
    return list(view()) if callable(view) else list(view.values())


def has_integers(model: DenseModel) -> bool:
    return any(model.integer)


def assign_values(problem: pulp.LpProblem, model: DenseModel, column_values: list[float]) -> dict[str, float]:
    """Store a solution on the PuLP variables (so pulp.value() works) and return name -> value."""
    values = {}
    for v, name, value in zip(problem.variables(), model.names, column_values, strict=True):
        v.varValue = float(value)
        values[name] = float(value)
    return values
