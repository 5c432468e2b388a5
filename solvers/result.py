"""Solver options and the normalized result every backend returns (STYLE.md: cvxpy / OR-Tools)."""

import enum
import math
from dataclasses import dataclass, field
from typing import Any

from costmodels.errors import require


class SolveStatus(enum.StrEnum):
    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    NO_SOLUTION = "no_solution"
    ERROR = "error"

    @property
    def has_solution(self) -> bool:
        return self in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)


@dataclass(frozen=True, kw_only=True, slots=True)
class SolverOptions:
    """How to solve; identical options give identical answers (threads and seed are explicit)."""

    backend: str = "highs"
    """highs, cbc or cpsat (see solvers.backends.BACKENDS)"""
    time_limit_s: float = 60.0
    """wall-clock limit per solve"""
    threads: int = 1
    """solver threads (1 keeps results deterministic)"""
    seed: int = 0
    """random seed passed to the backend"""
    relative_gap: float = 1e-4
    """stop when (objective - bound) / |objective| falls below this"""
    verbose: bool = False
    """print the backend's log"""

    def __post_init__(self) -> None:
        require(self.time_limit_s > 0, f"must be > 0, got {self.time_limit_s}", field="time_limit")
        require(self.threads >= 1, f"must be >= 1, got {self.threads}", field="threads")
        require(0 <= self.relative_gap < 1, f"must be in [0, 1), got {self.relative_gap}", field="relative_gap")


def relative_gap(objective: float | None, bound: float | None) -> float | None:
    """|objective - bound| / max(|objective|, 1e-12); None when either is unknown."""
    if objective is None or bound is None or not (math.isfinite(objective) and math.isfinite(bound)):
        return None
    return abs(objective - bound) / max(abs(objective), 1e-12)


@dataclass(frozen=True, kw_only=True, slots=True)
class SolveResult:
    """A backend's answer in our own terms."""

    status: SolveStatus
    """normalized status"""
    objective: float | None = None
    """objective value of the returned solution"""
    bound: float | None = None
    """best proven bound (lower for minimisation)"""
    gap: float | None = None
    """relative gap between objective and bound"""
    solve_time_s: float = 0.0
    """wall time inside the backend"""
    backend: str = ""
    """backend name"""
    backend_version: str = ""
    """backend version"""
    values: dict[str, float] = field(default_factory=dict)
    """variable name -> value of the returned solution"""
    message: str = ""
    """the backend's own status text"""

    def to_json(self) -> dict[str, Any]:
        """The `solver` block of a plan (no timing: that goes to provenance)."""
        return {"backend": self.backend, "backend_version": self.backend_version, "status": self.status.value,
                "objective": self.objective, "bound": self.bound, "gap": self.gap}
