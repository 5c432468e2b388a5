"""Expert-map exports: the scripts write the file the engine loads and print the flags that make it valid; SGLang
maps have one row per model layer and one column per physical slot; what an engine cannot load exits 2."""

import json
import subprocess

import pytest
from click.testing import CliRunner
from names import accepted

from cli import main
from costmodels.hardware import DeviceSpec
from costmodels.model import ModelSpec, MoESpec
from planner.experts import EXPORT_FORMATS, export, place_experts
from planner.experts.synthetic import synth_stats
from planner.exports.common import ExportRefused
from planner.plan import Plan

GPUS, SLOTS, EXPERTS = 4, 3, 8
MODEL = ModelSpec(name="tiny-moe", layers=5, hidden=256, heads=4, kv_heads=4, head_dim=64, ffn=512, vocab=1000,
                  moe=MoESpec(experts=EXPERTS, top_k=2, expert_ffn=128, first_dense_layers=2))
DEVICE = DeviceSpec(name="toy", bf16_flops_per_s=100e12, fp8_flops_per_s=0.0, hbm_bytes=2**34, hbm_bytes_per_s=1e12,
                    devices_per_node=2, intra_node_bytes_per_s=100e9, inter_node_bytes_per_s=10e9)


@pytest.fixture(scope="module")
def plans():
    stats = synth_stats(layers=3, experts=EXPERTS, top_k=2, skew=1.2, affinity=0.5, seed=1, tokens=1000)
    with_model = place_experts(stats, num_gpus=GPUS, gpus_per_node=2, slots_per_gpu=SLOTS, model=MODEL, device=DEVICE,
                               method="exact")  # "auto" raises InfeasibleError here at 7a5c45d (reported)
    without = place_experts(stats, num_gpus=GPUS, gpus_per_node=2, slots_per_gpu=SLOTS)
    return {"model": with_model, "no_model": without}


def _run(script: str, tmp_path, name: str) -> tuple[dict, list[str]]:
    path = tmp_path / "export.sh"
    path.write_text(script)
    target = tmp_path / name
    out = subprocess.run(["bash", str(path), str(target)], check=True, capture_output=True, text=True).stdout
    return json.loads(target.read_text()), out.split()


def test_sglang_map_rows_are_model_layers_and_flags_match(plans, tmp_path):
    plan = plans["model"]
    doc, flags = _run(export(plan, "sglang"), tmp_path, "loc.json")
    assert list(doc) == ["physical_to_logical_map"]
    rows = doc["physical_to_logical_map"]
    assert len(rows) == MODEL.layers and all(len(r) == GPUS * SLOTS for r in rows)
    layers = plan["decision"]["layers"]
    for moe_ordinal, layer_id in enumerate(range(2, 5)):  # layers 0-1 dense, 2-4 MoE
        for g, planned in enumerate(layers[moe_ordinal]["gpu_experts"]):  # GPU g holds slots g*S .. g*S+S-1
            slots = rows[layer_id][g * SLOTS:(g + 1) * SLOTS]
            assert slots[:len(planned)] == planned and set(slots) == set(planned)
    assert rows[0] == [p % EXPERTS for p in range(GPUS * SLOTS)]
    assert flags == ["--ep-size", str(GPUS), "--ep-num-redundant-experts", str(GPUS * SLOTS - EXPERTS),
                     "--init-expert-location", str(tmp_path / "loc.json")]
    names = {f for f in flags if f.startswith("--")} | {f"init_expert_location.json:{k}" for k in doc}
    assert names <= accepted("sglang")


def test_sglang_without_model_is_refused(plans, tmp_path):
    with pytest.raises(ExportRefused, match="inputs.model"):
        export(plans["no_model"], "sglang")
    path = tmp_path / "plan.json"
    plans["no_model"].write(path)
    result = CliRunner().invoke(main, ["export", str(path), "--format", "sglang"])
    assert result.exit_code == 2 and "layer ids" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("case", ["model", "no_model"])
def test_vllm_ascend_map_and_additional_config(plans, tmp_path, case):
    plan = plans[case]
    doc, flags = _run(export(plan, "vllm-ascend"), tmp_path, "map.json")
    assert doc["moe_layer_count"] == 3 == len(doc["layer_list"])
    for layer, planned in zip(doc["layer_list"], plan["decision"]["layers"], strict=True):
        for device, ids in zip(layer["device_list"], planned["gpu_experts"], strict=True):
            slots = device["device_expert"]
            assert len(slots) == SLOTS and slots[:len(ids)] == ids and set(slots) == set(ids)
    config = json.loads(flags[flags.index("--additional-config") + 1])
    assert config == {"eplb_config": {"expert_map_path": str(tmp_path / "map.json"),
                                      "num_redundant_experts": GPUS * SLOTS - EXPERTS}}
    keys = {"expert_map.json:moe_layer_count", "expert_map.json:layer_list",
            "expert_map.json:layer_list[i].device_list[j].device_expert"}
    keys |= {f"additional_config.eplb_config.{k}" for k in config["eplb_config"]}
    assert keys <= accepted("vllm-ascend")
    assert {f for f in flags if f.startswith("--")} <= accepted("vllm")


def test_upstream_vllm_is_refused(plans):
    assert "vllm" in EXPORT_FORMATS
    with pytest.raises(ExportRefused, match="no static expert map"):
        export(plans["model"], "vllm")


def test_token_split_note_states_the_even_split_cost():
    # expert 0 has replicas on both GPUs: the even split gives GPU 0 100/2 + 50 = 100 tokens, GPU 1 50 + 30 = 80;
    # the plan's own split reached 90 on its busiest GPU, so the engine's split costs +11.1%
    plan = Plan({"kind": "experts", "inputs": {"stats": {"inline": {"expert_load": [[100, 50, 30]]}}, "model": None},
                 "predicted": {"layer_max_gpu_tokens": [90.0]},
                 "decision": {"slots_per_gpu": 2, "layers": [{"gpu_experts": [[0, 1], [0, 2]]}]}})
    text = export(plan, "vllm-ascend")
    assert "busiest GPU with the even split: 100 tokens in MoE layer 0, +11.1% against the plan's split" in text


def _hand_plan(gpu_experts: list) -> Plan:
    return Plan({"kind": "experts", "inputs": {"stats": {"inline": {"expert_load": [[100, 50, 30]]}}, "model": None},
                 "predicted": {"layer_max_gpu_tokens": [90.0]},
                 "decision": {"slots_per_gpu": 2, "layers": [{"gpu_experts": gpu_experts}]}})


def test_empty_slots_are_padded_without_moving_tokens(tmp_path):
    # GPU 1 has one empty slot; expert 2 lives only there, so a second copy of it moves no tokens between GPUs
    doc, flags = _run(export(_hand_plan([[0, 1], [2]]), "vllm-ascend"), tmp_path, "map.json")
    assert [d["device_expert"] for d in doc["layer_list"][0]["device_list"]] == [[0, 1], [2, 2]]
    assert json.loads(flags[-1])["eplb_config"]["num_redundant_experts"] == 1  # 4 slots, 3 experts
    assert "slot padding: 1 empty slot(s)" in export(_hand_plan([[0, 1], [2]]), "vllm-ascend")
    with pytest.raises(ExportRefused, match="every physical slot needs an expert"):
        export(_hand_plan([[0, 1, ], [0]]), "vllm-ascend")  # expert 0 also lives on GPU 0: a copy would move tokens
