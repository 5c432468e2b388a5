"""Expert-location files that serving engines load.

sglang  `--init-expert-location FILE.json` (SGLang's EPLB, python/sglang/srt/eplb/expert_location.py):
        a JSON object with the single key "physical_to_logical_map", an [num_layers][num_physical_experts]
        integer array. Physical expert p lives on EP rank p // num_local_physical_experts, so GPU g's slots
        are physical ids g*S .. g*S+S-1 and num_physical_experts = G*S = experts + ep_num_redundant_experts.
        SGLang indexes the map by the model's layer id (all hidden layers for DeepSeek), so when the plan
        carries a model with leading dense layers those rows get the trivial map p mod E.
vllm    vLLM-Ascend's static EPLB map (`--additional-config '{"expert_map_path": "FILE.json"}'`):
        {"moe_layer_count": L, "layer_list": [{"layer_id": l, "device_count": G,
         "device_list": [{"device_id": g, "device_expert": [logical ids in slot order]}]}]}.
Neither format carries the token shares: SGLang and vLLM split an expert's tokens across its replicas
themselves; the plan's shares are what the planner predicts the balance to be with its own split.
Every slot must be filled (place_experts always fills them).
"""

import json

from costmodels.errors import SpecError
from planner.plan import Plan

EXPORT_FORMATS = ("sglang", "vllm")


def _slots(plan: Plan) -> list:
    decision = plan["decision"]
    width = decision["slots_per_gpu"]
    layers = [layer["gpu_experts"] for layer in decision["layers"]]
    for l, layer in enumerate(layers):
        for g, ids in enumerate(layer):
            if len(ids) != width:
                raise SpecError(f"layer {l} GPU {g} holds {len(ids)} of {width} slots; the engines need every "
                                "slot filled", field=f"decision.layers[{l}].gpu_experts[{g}]")
    return layers


def _dense_prefix(plan: Plan) -> int:
    model = plan["inputs"].get("model")
    if not model or not model.get("moe"):
        return 0
    return int(model["moe"].get("first_dense_layers", 0))


def export(plan: Plan, fmt: str) -> str:
    """The file text of format `fmt` for an experts plan."""
    if fmt not in EXPORT_FORMATS:
        raise SpecError(f"unknown format {fmt!r}; valid: {', '.join(EXPORT_FORMATS)}", field="format")
    layers = _slots(plan)
    if fmt == "sglang":
        physical = len(layers[0]) * len(layers[0][0])
        experts = plan["inputs"]["model"]["moe"]["experts"] if plan["inputs"].get("model") else None
        rows = [[g_ids for gpu in layer for g_ids in gpu] for layer in layers]
        if experts is not None:
            rows = [[p % experts for p in range(physical)] for _ in range(_dense_prefix(plan))] + rows
        return json.dumps({"physical_to_logical_map": rows}, separators=(",", ":")) + "\n"
    doc = {"moe_layer_count": len(layers), "layer_list": [
        {"layer_id": l, "device_count": len(layer),
         "device_list": [{"device_id": g, "device_expert": list(ids)} for g, ids in enumerate(layer)]}
        for l, layer in enumerate(layers)]}
    return json.dumps(doc, indent=2) + "\n"
