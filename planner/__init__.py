"""parplan's public planning API. Each function returns a `planner.plan.Plan` (canonical JSON via `.dumps()`).

    plan_training(model, cluster, workload, *, options=None, time_limit_s=60, progress=None)   (planner.train)
    place_experts(stats, *, num_gpus, slots_per_gpu, ...)                                     (planner.experts)
    plan_serving(model, cluster, workload, *, objective="goodput", rate=None, options=None)   (planner.serve)
    scatter_sequences(lengths, *, model, cluster, ...)                                        (planner.scatter)

These are the planners' own functions (real signatures, nothing wraps them). Each builds its planner's
typed request and runs what the planner's one entry point `planner.<name>.plan.plan(request, options, *,
progress=None)` runs (the contract: planner.contract, planner.registry). The planner packages are imported
on first use (module `__getattr__`), so `import planner` stays cheap for autotuners.
"""

import importlib
from typing import TYPE_CHECKING, Any

from planner.diff import diff_plans
from planner.documents import explain_plan, export_formats, export_plan, validate_plan
from planner.plan import Plan, load_plan, make_plan

if TYPE_CHECKING:
    from planner.experts.place import place_experts
    from planner.scatter.solve import scatter_sequences
    from planner.serve.search import plan_serving
    from planner.train.planning import plan_training

_LAZY = {"plan_training": "planner.train.planning", "place_experts": "planner.experts.place",
         "plan_serving": "planner.serve.search", "scatter_sequences": "planner.scatter.solve"}
"""public name -> the module that defines it (imported on first access)"""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'planner' has no attribute {name!r}")


__all__ = ["Plan", "diff_plans", "explain_plan", "export_formats", "export_plan", "load_plan", "make_plan",
           "place_experts", "plan_serving", "plan_training", "scatter_sequences", "validate_plan"]
