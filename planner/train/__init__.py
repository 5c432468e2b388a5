"""The train planner: the fastest hybrid-parallel training strategy that fits.

    plan_training(model, cluster, workload, *, options=None, time_limit_s=60, progress=None) -> Plan
    check(plan) -> list[str]      independent verifier (estimate documents: planner.train.estimate)
    explain(plan) -> str          readable summary
    export(plan, fmt) -> str      Megatron-LM arguments, torchtitan TOML, DeepSpeed JSON (EXPORT_FORMATS)
"""

from planner.train.check import check
from planner.train.explain import explain
from planner.train.export import EXPORT_FORMATS, export
from planner.train.plan import plan  # the contract entry point (planner.contract.PlanEntry)
from planner.train.planning import plan_training
from planner.train.request import TrainOptions, TrainRequest

__all__ = ["EXPORT_FORMATS", "TrainOptions", "TrainRequest", "check", "explain", "export", "plan", "plan_training"]
