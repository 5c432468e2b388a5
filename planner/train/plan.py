"""The train planner's entry point (planner.contract.PlanEntry): the fastest hybrid-parallel strategy that fits.

The outer search, the exact layer split and the plan document are built in planner.train.planning;
`options.time_limit_s` bounds the search and each split ILP.
"""

from planner.contract import Progress
from planner.plan import Plan
from planner.train import planning
from planner.train.request import TrainRequest
from solvers.result import SolverOptions


def plan(request: TrainRequest, options: SolverOptions, *, progress: Progress | None = None) -> Plan:
    """The plan (kind "train") for one request; `progress` receives status lines."""
    return planning.plan(request, options, progress)
