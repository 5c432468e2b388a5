"""Executor configurations for a `kind: train` plan (or an estimate of a train configuration).

Each format names the executor version it was checked against (planner.exports.common.TARGETS):
megatron = Megatron-LM launch script, torchtitan = a Python recipe for current torchtitan, torchtitan-toml =
a v0.2.2 TOML job file, deepspeed = a DeepSpeed config JSON. A plan the target cannot run is refused with
exit 2 naming the decision and the executor's limit (planner.exports.common.ExportRefused).
"""

from planner.exports.common import header_lines, target
from planner.exports.deepspeed import deepspeed_config
from planner.exports.megatron import megatron_script
from planner.exports.torchtitan import python_recipe, toml_job
from planner.exports.train_layout import train_view
from planner.plan import Plan

EXPORT_FORMATS = ("megatron", "torchtitan", "torchtitan-toml", "deepspeed")


def export(plan: Plan, fmt: str) -> str:
    """The plan in executor format `fmt` (one of EXPORT_FORMATS)."""
    tgt = target(fmt, EXPORT_FORMATS)
    view = train_view(plan)
    if fmt == "deepspeed":
        return deepspeed_config(view, tgt, plan)
    writer = {"megatron": megatron_script, "torchtitan": python_recipe, "torchtitan-toml": toml_job}[fmt]
    return writer(view, tgt, header_lines(plan, tgt))
