"""Static expert-placement files for serving engines, as a bash script that writes the file and prints the
engine flags that make it valid (neither file format has room for a header: SGLang passes every key of its JSON
to ExpertLocationMetadata.init_by_mapping).

sglang (0.5.23)  --init-expert-location FILE: {"physical_to_logical_map": [num_layers][num_physical]}, indexed by
                 the model's layer id (num_hidden_layers rows; dense layers get the trivial map p mod E);
                 physical slot p lives on EP rank p // slots_per_gpu, so num_physical = G x S = experts +
                 --ep-num-redundant-experts, with --ep-size G. A plan made without the model has rows for its
                 MoE layers only, which SGLang would misplace: refused.
vllm-ascend      additional_config {"eplb_config": {"expert_map_path": FILE, "num_redundant_experts": R}} (the key
(182b75e)        moved under eplb_config in da958ee); FILE {"moe_layer_count": L, "layer_list": [{"device_list":
                 [{"device_expert": [logical ids in slot order]}]}]} indexed by MoE-layer ordinal. Ascend NPUs only.
vllm (0.33.0)    has no static expert map (its EPLB places replicas online): refused.
Neither file carries the token shares (decision.layers[].token_share): both engines split an expert's tokens
evenly over its replicas (SGLang's static dispatch: the replica on the sender's GPU, else a fair random one).
`split_note` states what that costs: the busiest GPU's tokens under the even split against the plan's own split.
"""

import json
from dataclasses import replace

from costmodels.errors import SpecError
from planner.exports.common import ExportRefused, Target, header_lines
from planner.exports.train_layout import moe_layer_ids
from planner.plan import Plan


def _slots(plan: Plan, target: Target) -> tuple[list[list[list[int]]], int]:
    """Every GPU's slots, full: the engines need a logical expert in every physical slot. A GPU left with empty
    slots gets duplicates of an expert whose every replica is on that GPU, which changes no GPU's token share
    (SGLang dispatches to a same-GPU replica, or fairly among replicas that are all on that GPU). Returns the
    slots and the number of padded slots."""
    width = plan["decision"]["slots_per_gpu"]
    out, padded = [], 0
    for li, layer in enumerate(plan["decision"]["layers"]):
        gpus = [list(ids) for ids in layer["gpu_experts"]]
        home = {e: {g for g, ids in enumerate(gpus) if e in ids} for ids in gpus for e in ids}
        for g, ids in enumerate(gpus):
            field = f"decision.layers[{li}].gpu_experts[{g}]"
            if len(ids) > width:
                raise SpecError(f"holds {len(ids)} experts in {width} slots", field=field)
            only_here = [e for e in ids if home[e] == {g}]
            if len(ids) < width and not only_here:
                raise ExportRefused(target, field, ids, "every physical slot needs an expert, and none of this "
                                    "GPU's experts lives only here to fill the empty slots without moving tokens")
            padded += width - len(ids)
            ids += [only_here[0]] * (width - len(ids)) if only_here else []
        out.append(gpus)
    return out, padded


def _expert_count(plan: Plan, layers: list) -> int:
    """Routed experts: from the plan's model or routing statistics, else the distinct ids placed."""
    model, stats = plan["inputs"].get("model") or {}, plan["inputs"].get("stats") or {}
    if (model.get("moe") or {}).get("experts"):
        return int(model["moe"]["experts"])
    if stats.get("experts"):
        return int(stats["experts"])
    if (stats.get("inline") or {}).get("expert_load"):
        return len(stats["inline"]["expert_load"][0])
    return len({e for layer in layers for gpu in layer for e in gpu})


def _pad_note(padded: int) -> list[str]:
    return [f"slot padding: {padded} empty slot(s) hold a duplicate of an expert that lives only on that GPU "
            "(no GPU's token share changes)"] if padded else []


def _moe_rows(plan: Plan, target: Target, layers: list) -> tuple[int, list[int]] | None:
    """(model layers, ids of the model's MoE layers) when the plan carries its model; checks the row count."""
    model = plan["inputs"].get("model")
    if not model:
        return None
    ids = moe_layer_ids(model)
    if len(ids) != len(layers):
        raise ExportRefused(target, "decision.layers", f"{len(layers)} layers",
                            f"the model {model.get('name')} has {len(ids)} MoE layers")
    return model["layers"], ids


def split_note(plan: Plan, layers: list) -> str:
    """The busiest GPU's tokens when the engine splits each expert evenly over its replica slots, vs the plan's."""
    inline = (plan["inputs"].get("stats") or {}).get("inline") or {}
    loads, planned = inline.get("expert_load"), plan["predicted"].get("layer_max_gpu_tokens")
    head = "token split: the engine splits each expert evenly over its replicas, not by decision token_share"
    if not loads or not planned:
        return head + " (routing statistics not inline in the plan: effect not evaluated)"
    worst, at = 0.0, 0
    for li, layer in enumerate(layers):
        slots: dict[int, int] = {}
        for gpu in layer:
            for e in gpu:
                slots[e] = slots.get(e, 0) + 1
        busiest = max(sum(loads[li][e] / slots[e] for e in gpu) for gpu in layer)
        if busiest / max(planned[li], 1e-12) > worst:
            worst, at = busiest / max(planned[li], 1e-12), li
    return (f"{head}; busiest GPU with the even split: {worst * planned[at]:.6g} tokens in MoE layer {at}, "
            f"{(worst - 1) * 100:+.1f}% against the plan's split")


def _script(plan: Plan, target: Target, name: str, doc: dict, notes: list[str], flags: str) -> str:
    body = json.dumps(doc, separators=(",", ":"))
    usage = replace(target, launch=f"bash <this script> [FILE, default {name}]: writes FILE and prints the flags "
                                   "to add to the engine's launch line")
    lines = ["#!/bin/bash", *header_lines(plan, usage), *(f"# {n}" for n in notes),
             f'MAP="${{1:-{name}}}"  # where to write the file (first argument)',
             "cat > \"$MAP\" <<'PARPLAN_JSON'", body, "PARPLAN_JSON",
             "# the engine flags that make the file valid (words without spaces), for the launch line of every node:",
             "#   FLAGS=$(bash <this script> FILE); <engine command> ... $FLAGS",
             'echo "' + flags.replace('"', '\\"') + '"']
    return "\n".join(lines) + "\n"


def sglang_script(plan: Plan, target: Target) -> str:
    layers, padded = _slots(plan, target)
    rows = _moe_rows(plan, target, layers)
    if rows is None:
        raise ExportRefused(target, "inputs.model", None,
                            "SGLang indexes the map by the model's layer ids; this plan was made without the model, "
                            "so its rows are MoE-layer ordinals (plan again with --model/--gpu)")
    hidden, moe_ids = rows
    experts, gpus, width = _expert_count(plan, layers), len(layers[0]), plan["decision"]["slots_per_gpu"]
    by_id = {i: [e for gpu in layer for e in gpu] for i, layer in zip(moe_ids, layers, strict=True)}
    trivial = [p % experts for p in range(gpus * width)]
    doc = {"physical_to_logical_map": [by_id.get(i, trivial) for i in range(hidden)]}
    flags = (f"--ep-size {gpus} --ep-num-redundant-experts {gpus * width - experts} "
             "--init-expert-location $MAP")
    notes = [f"physical_to_logical_map: {hidden} model layers x {gpus * width} physical slots "
             f"({gpus} EP ranks x {width}; rank r holds slots r*{width}..r*{width}+{width - 1})",
             split_note(plan, layers), *_pad_note(padded)]
    return _script(plan, target, "expert_location.json", doc, notes, flags)


def ascend_script(plan: Plan, target: Target) -> str:
    layers, padded = _slots(plan, target)
    _moe_rows(plan, target, layers)
    experts, gpus, width = _expert_count(plan, layers), len(layers[0]), plan["decision"]["slots_per_gpu"]
    doc = {"moe_layer_count": len(layers),
           "layer_list": [{"device_list": [{"device_expert": list(ids)} for ids in layer]} for layer in layers]}
    config = {"eplb_config": {"expert_map_path": "$MAP", "num_redundant_experts": gpus * width - experts}}
    flags = "--enable-expert-parallel --additional-config " + json.dumps(config, separators=(",", ":"))
    notes = [f"{len(layers)} MoE layers x {gpus} NPUs x {width} slots (Ascend NPUs only)", split_note(plan, layers),
             *_pad_note(padded)]
    return _script(plan, target, "expert_map.json", doc, notes, flags)
