"""The scatter planner's entry point (planner.contract.PlanEntry): per-batch sequence-parallel groups.

The multiset search (or the FlexSP-style MILP, `request.method == "milp"`) and the plan document are built
in planner.scatter.solve; `request.time_limit_s` bounds the search, `options` tunes it.
"""

from planner.contract import Progress
from planner.plan import Plan
from planner.scatter.request import ScatterOptions, ScatterRequest
from planner.scatter.solve import plan_request


def plan(request: ScatterRequest, options: ScatterOptions, *, progress: Progress | None = None) -> Plan:
    """The plan (kind "scatter") for one batch; `progress` receives search progress (at most once a second)
    and the closing status line."""
    result = plan_request(request, options, progress)
    if progress is not None:
        solver = result["solver"]
        gap = solver.get("gap")
        progress(f"scatter: {len(request.lengths)} sequences, step {result['predicted']['step_time_s']:.6g} s, "
                 f"status {solver['status']}, gap {'n/a' if gap is None else f'{100 * gap:.2f}%'}")
    return result
