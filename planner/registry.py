"""The four planners: which package handles a plan document, and each planner's entry point and types.

Each planner package `planner.<name>` (train, experts, serve, scatter) has the same shape:
  request.py   its typed request (and options)          PLANNERS[name].request / .options
  plan.py      `plan(request, options, *, progress=None) -> Plan` (planner.contract.PlanEntry)
  check.py     `check(plan) -> list[str]`: problems found by an independent verifier (empty = valid),
               and `explain(plan) -> str`, a readable summary
  export.py    `EXPORT_FORMATS` (tuple of names) and `export(plan, fmt) -> str`
Estimate documents name their planner in `inputs.target`. Types are named as "module:attribute" strings and
imported on use, so that importing the registry stays cheap.
"""

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from costmodels.errors import SpecError
from planner.contract import PlanEntry
from planner.plan import Plan

if TYPE_CHECKING:  # mypy (strict on this module) checks that each entry point has the PlanEntry shape
    from planner.experts.plan import plan as experts_plan
    from planner.experts.request import ExpertRequest
    from planner.scatter.plan import plan as scatter_plan
    from planner.scatter.request import ScatterOptions, ScatterRequest
    from planner.serve.plan import plan as serve_plan
    from planner.serve.request import ServeOptions, ServeRequest
    from planner.train.plan import plan as train_plan
    from planner.train.request import TrainRequest
    from solvers.result import SolverOptions

    _TRAIN: PlanEntry[TrainRequest, SolverOptions] = train_plan
    _EXPERTS: PlanEntry[ExpertRequest, SolverOptions] = experts_plan
    _SERVE: PlanEntry[ServeRequest, ServeOptions] = serve_plan
    _SCATTER: PlanEntry[ScatterRequest, ScatterOptions] = scatter_plan


@dataclass(frozen=True, kw_only=True, slots=True)
class PlannerInfo:
    """One planner: its package name and the types its entry point takes."""

    name: str
    """package name under planner/ and the plan `kind` it produces"""
    request: str
    """'module:attribute' of its request type"""
    options: str
    """'module:attribute' of its options type"""

    def request_type(self) -> type:
        return _resolve(self.request)

    def options_type(self) -> type:
        return _resolve(self.options)

    def entry(self) -> PlanEntry[Any, Any]:
        """The `plan` function of planner/<name>/plan.py."""
        entry: PlanEntry[Any, Any] = importlib.import_module(f"planner.{self.name}.plan").plan
        return entry


def _resolve(ref: str) -> type:
    module, _, attr = ref.partition(":")
    found: type = getattr(importlib.import_module(module), attr)
    return found


INFO = {
    "train": PlannerInfo(name="train", request="planner.train.request:TrainRequest",
                         options="solvers.result:SolverOptions"),
    "experts": PlannerInfo(name="experts", request="planner.experts.request:ExpertRequest",
                           options="solvers.result:SolverOptions"),
    "serve": PlannerInfo(name="serve", request="planner.serve.request:ServeRequest",
                         options="planner.serve.request:ServeOptions"),
    "scatter": PlannerInfo(name="scatter", request="planner.scatter.request:ScatterRequest",
                           options="planner.scatter.request:ScatterOptions"),
}
"""planner name -> its entry point's types"""

PLANNERS = tuple(INFO)


def handler(plan: Plan) -> ModuleType:
    """The planner package responsible for this document."""
    target = plan["inputs"].get("target") if plan.kind == "estimate" else plan.kind
    if target not in PLANNERS:
        raise SpecError(f"no planner handles target {target!r}; valid: {', '.join(PLANNERS)}", field="inputs.target")
    return importlib.import_module(f"planner.{target}")

