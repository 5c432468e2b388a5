"""What every executor export shares: the named targets, the header, refusals.

A *target* is one executor at one version (a commit or a release): every flag or key an export writes exists
in that version (tests check them against ../shared/executors/<names_file>). An export either carries every
decision of the plan with the executor's own semantics or refuses with `ExportRefused` (exit 2) naming the
decision and the executor's limit; it never exits 0 while dropping a decision.
"""

from dataclasses import dataclass

from costmodels.errors import SpecError
from planner.plan import Plan, digest


@dataclass(frozen=True, kw_only=True, slots=True)
class Target:
    """One executor version an export format is written for."""

    fmt: str
    """the `parplan export --format` name"""
    executor: str
    """the executor's name"""
    version: str
    """the commit or release whose sources the names were checked against"""
    names_file: str
    """the flag/key list in ../shared/executors/ that tests check emitted names against"""
    launch: str
    """how the exported file is used"""


TARGETS: dict[str, Target] = {t.fmt: t for t in (
    Target(fmt="megatron", executor="Megatron-LM", version="NVIDIA/Megatron-LM@d98e8a6",
           names_file="megatron.tsv", launch="torchrun ... pretrain_gpt.py <these arguments> <data arguments>"),
    Target(fmt="torchtitan", executor="torchtitan", version="pytorch/torchtitan@b5bcd76 (Python config, no TOML)",
           names_file="torchtitan-HEAD.tsv",
           launch="return parplan_config(...) from a recipe function (torchtitan.train --module/--config)"),
    Target(fmt="torchtitan-toml", executor="torchtitan", version="pytorch/torchtitan v0.2.2 (73a0e69, TOML job file)",
           names_file="torchtitan-v0.2.2-toml.tsv",
           launch="torchrun ... -m torchtitan.train --job.config_file <this file>"),
    Target(fmt="deepspeed", executor="DeepSpeed", version="deepspeedai/DeepSpeed@edaa722",
           names_file="deepspeed.tsv", launch="deepspeed <train script> --deepspeed_config <this file>"),
    Target(fmt="vllm", executor="vLLM", version="vllm 0.33.0", names_file="vllm.tsv",
           launch="run each line on the node its comment names"),
    Target(fmt="sglang", executor="SGLang", version="sglang 0.5.23 (sglang-router 0.3.2)", names_file="sglang.tsv",
           launch="run each line on the node its comment names"),
    Target(fmt="vllm-ascend", executor="vLLM-Ascend", version="vllm-project/vllm-ascend@182b75e",
           names_file="vllm-ascend.tsv",
           launch="vllm serve ... --additional-config '{\"eplb_config\": {\"expert_map_path\": \"<this file>\"}}'"),
    Target(fmt="json", executor="parplan scatter rank map", version="format 1 (planner/scatter/export.py)",
           names_file="", launch="a data loader reads ranks[rank] on each rank: its SP group, SP/TP rank, sequences"),
)}


class ExportRefused(SpecError):
    """The target executor cannot run a decision of the plan (exit 2)."""

    def __init__(self, target: Target, decision: str, value: object, limit: str) -> None:
        super().__init__(f"{target.executor} ({target.version}) cannot run {decision}={value!r}: {limit}",
                         field=decision)


def plan_digest(plan: Plan) -> str:
    """sha256 of the canonical plan document without `provenance` (the part `diff` compares)."""
    return digest({k: v for k, v in plan.doc.items() if k != "provenance"})


def header_facts(plan: Plan, target: Target) -> dict[str, str]:
    """What an export says about where it came from (as comment lines, or as a JSON key where comments cannot go)."""
    inputs_digest = (plan.get("inputs") or {}).get("inputs_digest", "-")
    return {"executor": f"{target.executor} {target.version}", "format": target.fmt,
            "plan": f"{plan.kind} plan sha256 {plan_digest(plan)} (inputs {inputs_digest})",
            "launch": target.launch}


def header_lines(plan: Plan, target: Target, comment: str = "#") -> list[str]:
    """The header as comment lines."""
    return [f"{comment} parplan export for {facts}" if key == "executor" else f"{comment} {key}: {facts}"
            for key, facts in header_facts(plan, target).items()]


def target(fmt: str, valid: tuple[str, ...]) -> Target:
    """The target of format `fmt`, which must be one of `valid` (the formats of the plan's planner)."""
    if fmt not in valid:
        raise SpecError(f"unknown format {fmt!r}; valid: {', '.join(valid)}", field="--format")
    return TARGETS[fmt]
