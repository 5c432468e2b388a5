"""Launch lines for every instance of a serve plan: vLLM 0.33.0 (`vllm`) or SGLang 0.5.23 (`sglang`).

Instances are placed on nodes and GPUs (planner.exports.serve_layout), one line per node of each instance
(multi-node instances get node count, node rank and a rendezvous address placeholder), and a PD proxy or
router in front of disaggregated and intra-GPU plans; offline (objective throughput) plans launch with the token
budget and in-flight batch they were planned with. What the engine cannot run is refused with exit 2
(planner.exports.common.ExportRefused). The engine-specific parts are planner.exports.vllm / .sglang.
"""

from costmodels.errors import SpecError
from planner.exports.common import header_lines, target
from planner.exports.serve_layout import node_lines, place
from planner.exports.sglang import sglang_lines
from planner.exports.vllm import vllm_lines
from planner.plan import Plan

EXPORT_FORMATS = ("vllm", "sglang")


def export(plan: Plan, fmt: str) -> str:
    """Shell lines launching every instance of the plan, each under a comment naming its node and GPUs."""
    if plan.kind != "serve":
        raise SpecError("only serve plans can be exported (an estimate has no deployment)", field="kind")
    if plan["inputs"].get("objective") == "throughput" and not all(
            g.get("prefill_token_budget") for g in plan["decision"]["groups"]):
        raise SpecError("this offline (objective throughput) plan records no token budget per step "
                        "(decision.groups[].prefill_token_budget; plans made before it was recorded): re-plan it with "
                        "`plan serve --objective throughput` to export it",
                        field="decision.groups.prefill_token_budget")
    tgt = target(fmt, EXPORT_FORMATS)
    nodes, workers = place(plan, tgt)
    model = plan["inputs"]["model"]["name"]
    engine = plan["inputs"].get("options", {}).get("engine")
    lines = header_lines(plan, tgt) + [
        f"# mode {plan['decision']['mode']}; model {model}: replace it with the model's Hugging Face path"
        + (f"; planned with the {engine} engine model" if engine else ""),
        *node_lines(nodes, workers)]
    body = vllm_lines(plan, workers, tgt) if fmt == "vllm" else sglang_lines(plan, workers, tgt)
    return "\n".join(lines + body) + "\n"
