"""The planner contract: one entry point per planner, and the one builder of a plan's `solver` block.

Every planner package `planner.<name>` (train, experts, serve, scatter) has a module `planner/<name>/plan.py`
whose function

    plan(request: <Name>Request, options: <Name>Options, *, progress: Progress | None = None) -> Plan

answers one typed request (`planner/<name>/request.py`) under the given options and returns the plan
document. `PlanEntry` states that shape as a `typing.Protocol`; `planner.registry.PLANNERS` lists each
planner's request and options types, and tests/test_planner_contract.py checks all four against both.
`progress`, when given, receives one-line status messages (never stdout: see solvers.deadline).

`solver_block` is the only place that shapes the `solver` section: the status is one of SOLVER_STATUSES,
the gap is always `solvers.relative_gap(objective, bound)`, and a solve stopped by its wall-clock limit
reports status "time_limit" with `time_limit_hit: true` (its plan may differ from run to run).
`planner.plan.make_plan` passes every planner's solver section through it.
"""

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from planner.plan import Plan
from solvers.deadline import TIME_LIMIT_STATUS, Deadline
from solvers.result import SolveStatus, relative_gap

Progress = Callable[[str], None]
"""a progress callback: receives one line of text"""

SOLVER_STATUSES: tuple[str, ...] = (*(s.value for s in SolveStatus), TIME_LIMIT_STATUS)
"""every value `solver.status` may take"""

SOLVER_KEYS = ("backend", "backend_version", "status", "objective", "bound", "gap", "time_limit_hit")
"""keys every planner's solver block has (planner-specific details may follow)"""

RequestT = TypeVar("RequestT", contravariant=True)
OptionsT = TypeVar("OptionsT", contravariant=True)


class PlanEntry(Protocol[RequestT, OptionsT]):
    """The entry point of a planner: `plan(request, options, *, progress=None) -> Plan`."""

    def __call__(self, request: RequestT, options: OptionsT, *, progress: Progress | None = None) -> Plan: ...


def solver_block(*, backend: str, status: str, objective: float | None, bound: float | None,
                 backend_version: str = "", time_limit_hit: bool = False, deadline: Deadline | None = None,
                 **details: Any) -> dict[str, Any]:
    """The `solver` section of a plan.

    `status` is the backend's (or the search's) own verdict; `deadline` (or `time_limit_hit`) says whether the
    wall-clock limit stopped the work, which turns the status into "time_limit". A given `gap` in `details`
    is ignored: the gap is recomputed from objective and bound so that every plan states it the same way.
    """
    if status not in SOLVER_STATUSES:
        raise ValueError(f"unknown solver status {status!r}; valid: {', '.join(SOLVER_STATUSES)}")
    hit = bool(time_limit_hit or status == TIME_LIMIT_STATUS or (deadline is not None and deadline.hit))
    details.pop("gap", None)
    block = {"backend": backend, "backend_version": backend_version,
             "status": TIME_LIMIT_STATUS if hit else status, "objective": objective, "bound": bound,
             "gap": relative_gap(objective, bound), "time_limit_hit": hit}
    return {**block, **details}


def normalized_solver(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A planner's solver dict passed through `solver_block` (an empty dict stays empty: estimates)."""
    if not raw:
        return {}
    missing = [k for k in ("backend", "status") if k not in raw]
    if missing:
        raise ValueError(f"solver block lacks {missing}")
    rest = dict(raw)
    return solver_block(backend=str(rest.pop("backend")), status=str(rest.pop("status")),
                        objective=rest.pop("objective", None), bound=rest.pop("bound", None),
                        backend_version=str(rest.pop("backend_version", "")),
                        time_limit_hit=bool(rest.pop("time_limit_hit", False)), **rest)
