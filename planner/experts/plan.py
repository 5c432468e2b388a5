"""The experts planner's entry point (planner.contract.PlanEntry): MoE expert placement with replicas.

The per-layer bound, packing, exact split, affinity sweeps and migration run in planner.experts.place;
`options` gives the exact layer MILP its time limit, threads, seed and relative gap.
"""

from planner.contract import Progress
from planner.experts.place import place
from planner.experts.request import ExpertRequest
from planner.plan import Plan
from solvers.result import SolverOptions


def plan(request: ExpertRequest, options: SolverOptions, *, progress: Progress | None = None) -> Plan:
    """The plan (kind "experts") for one request; `progress` receives status lines."""
    return place(request, options, progress)
