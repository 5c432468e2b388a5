"""Expert-location files that serving engines load.

sglang  `--init-expert-location FILE.json` (SGLang's EPLB, python/sglang/srt/eplb/expert_location.py):
        a JSON object with the single key "physical_to_logical_map", an [num_layers][num_physical_experts]
        integer array. Physical expert p lives on EP rank p // num_local_physical_experts, so GPU g's slots
        are physical ids g*S .. g*S+S-1 and num_physical_experts = G*S = experts + ep_num_redundant_experts.
        SGLang indexes the map by the model's layer id (num_hidden_layers rows, e.g. 61 for DeepSeek-V3), so
        when the plan carries a model its dense layers get the trivial map p mod E.
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


def _moe_layer_ids(plan: Plan) -> tuple[int, list[int]] | None:
    """(hidden layers, ids of the MoE layers) of the plan's model, or None without a model."""
    model = plan["inputs"].get("model")
    if not model or not model.get("moe"):
        return None
    first, freq = int(model["moe"].get("first_dense_layers", 0)), int(model["moe"].get("layer_freq", 1))
    return model["layers"], [i for i in range(first, model["layers"]) if (i - first) % freq == 0]


def export(plan: Plan, fmt: str) -> str:
    """The file text of format `fmt` for an experts plan."""
    if fmt not in EXPORT_FORMATS:
        raise SpecError(f"unknown format {fmt!r}; valid: {', '.join(EXPORT_FORMATS)}", field="format")
    layers = _slots(plan)
    if fmt == "sglang":
        rows = [[e for gpu in layer for e in gpu] for layer in layers]
        ids = _moe_layer_ids(plan)
        if ids is not None:
            hidden, moe_ids = ids
            experts = plan["inputs"]["model"]["moe"]["experts"]
            trivial = [p % experts for p in range(len(rows[0]))]
            by_id = dict(zip(moe_ids, rows))
            rows = [by_id.get(i, trivial) for i in range(hidden)]
        return json.dumps({"physical_to_logical_map": rows}, separators=(",", ":")) + "\n"
    doc = {"moe_layer_count": len(layers), "layer_list": [
        {"layer_id": l, "device_count": len(layer),
         "device_list": [{"device_id": g, "device_expert": list(ids)} for g, ids in enumerate(layer)]}
        for l, layer in enumerate(layers)]}
    return json.dumps(doc, indent=2) + "\n"
