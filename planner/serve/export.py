"""Launch lines for every instance of a serve plan: vLLM 0.33.0 (`vllm`) or SGLang 0.5.23 (`sglang`).

Instances are placed on nodes and GPUs (planner.exports.serve_layout), one line per node of each instance
(multi-node instances get node count, node rank and a rendezvous address placeholder), and a PD proxy or
router in front of disaggregated and intra-GPU plans. What the engine cannot run is refused with exit 2
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
    if plan["inputs"].get("objective") == "throughput":
        # its groups record no prefill token budget (chunk_tokens 0), so the launch lines would cap every vLLM step
        # at the in-flight batch (no room for prompts) and give SGLang --chunked-prefill-size 0
        raise SpecError("an offline (objective throughput) plan cannot be exported yet: its throughput assumes the "
                        "engine's prefill token budget per step, which the plan does not record for the launch "
                        "lines; export a plan made with SLOs (--objective goodput), or launch the shape in "
                        "decision.groups with the engine's default token budget", field="inputs.objective")
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
