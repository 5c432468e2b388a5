"""The serve planner's entry point (planner.contract.PlanEntry): prefill/decode split under percentile SLOs.

Candidates, the per-mode count ILPs, simulator verification and the plan document are built in
planner.serve.search; `options.time_limit_s` bounds the whole solve (count ILPs, simulator replays, pareto
points: planner.serve.budget) and `options.seed` seeds the simulator.
"""

from planner.contract import Progress
from planner.plan import Plan
from planner.serve.request import ServeOptions, ServeRequest
from planner.serve.search import plan_request


def plan(request: ServeRequest, options: ServeOptions, *, progress: Progress | None = None) -> Plan:
    """The plan (kind "serve") for one request; `progress` receives status lines."""
    return plan_request(request, options, progress)
