"""Static expert-placement files that serving engines load, for an experts plan.

sglang = SGLang 0.5.23 --init-expert-location map (needs the plan's model: rows are model layers),
vllm-ascend = vLLM-Ascend's static EPLB map (additional_config.eplb_config.expert_map_path), vllm = refused:
upstream vLLM 0.33.0 has no static expert map. Each export is a bash script that writes the file and prints the
engine flags that make it valid (planner.exports.expert_maps).
"""

from planner.exports.common import ExportRefused, target
from planner.exports.expert_maps import ascend_script, sglang_script
from planner.plan import Plan

EXPORT_FORMATS = ("sglang", "vllm-ascend", "vllm")


def export(plan: Plan, fmt: str) -> str:
    """The script of format `fmt` for an experts plan."""
    tgt = target(fmt, EXPORT_FORMATS)
    if fmt == "vllm":
        raise ExportRefused(tgt, "decision.layers", "static placement",
                            "upstream vLLM has no static expert map (its EPLB, --enable-eplb, places replicas "
                            "online); use --format sglang, or vllm-ascend on Ascend NPUs")
    return sglang_script(plan, tgt) if fmt == "sglang" else ascend_script(plan, tgt)
