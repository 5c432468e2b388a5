"""plan_training end to end: the plan document, its checker, CLI == API bytes, determinism, errors, exports."""

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner
from train_fixtures import tiny_cluster, tiny_model

import profiles
from cli import main
from costmodels.errors import InfeasibleError
from costmodels.hardware import ClusterSpec
from costmodels.parallel import TrainingWorkload
from planner import plan_training
from planner.plan import Plan
from planner.train import check, explain, export

ARGS = ["--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "16", "--gbs", "64", "--seq", "4096"]


def api_plan() -> Plan:
    cluster = ClusterSpec.homogeneous(profiles.load_device("h100-sxm"), 16)
    return plan_training(profiles.load_model("llama3-8b"), cluster, TrainingWorkload(global_batch=64, seq_len=4096))


@pytest.fixture(scope="module")
def plan() -> Plan:
    return api_plan()


def test_plan_document(plan):
    d, p = plan["decision"], plan["predicted"]
    assert plan.kind == "train"
    assert d["tp"] * d["pp"] * d["dp"] * d["cp"] == 16 and sum(d["stage_layers"]) == 32
    assert p["memory_per_gpu_bytes"] <= profiles.load_device("h100-sxm").hbm_bytes
    assert len(plan["alternatives"]) == 5
    assert all(a["step_time_s"] >= p["step_time_s"] for a in plan["alternatives"])
    assert all(a["why_lost"] for a in plan["alternatives"])
    base = plan["baselines"]["megatron_rule"]
    assert base["feasible"] and base["step_time_s"] >= p["step_time_s"]
    assert plan["solver"]["status"] == "optimal" and plan["solver"]["gap"] <= 1e-4
    assert check(plan) == []
    assert "training plan for llama3-8b" in explain(plan)


def test_check_finds_tampering(plan):
    doc = json.loads(plan.dumps())
    doc["predicted"]["step_time_s"] *= 0.9
    doc["decision"]["tp"] = 3
    problems = check(Plan(doc))
    assert any("decision.tp" in p for p in problems)
    doc = json.loads(plan.dumps())
    doc["predicted"]["step_time_s"] *= 0.9
    assert any("step_time_s" in p for p in check(Plan(doc)))


def test_cli_equals_api_bytes(plan):
    result = CliRunner().invoke(main, ["plan", "train", *ARGS, "-o", "-"])
    assert result.exit_code == 0, result.output
    assert result.stdout == plan.dumps()


def test_same_bytes_under_two_hash_seeds(plan):
    code = ("import sys; sys.path.insert(0, '.'); from tests.planner_train.test_plan import api_plan; "
            "sys.stdout.write(api_plan().dumps())")
    outs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": os.pathsep.join(
            [os.getcwd(), os.path.join(os.getcwd(), "tests", "planner_train")])}
        outs.append(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                                   check=True).stdout)
    assert outs[0] == outs[1] == plan.dumps()


def test_infeasible_says_what_binds_and_minimum_gpus():
    model = tiny_model(layers=4, hidden=2048, heads=16, kv_heads=8, ffn=8192, vocab=32000)
    with pytest.raises(InfeasibleError) as err:
        plan_training(model, tiny_cluster(4, 1.0), TrainingWorkload(global_batch=16, seq_len=512))
    msg = str(err.value)
    assert "GiB per GPU" in msg and "usable HBM" in msg and "smallest GPU count that fits is" in msg
    need = int(msg.rsplit(" ", 1)[1])
    plan = plan_training(model, tiny_cluster(need, 1.0), TrainingWorkload(global_batch=16, seq_len=512))
    assert check(plan) == []


def test_cli_infeasible_exit_3():
    result = CliRunner().invoke(main, ["plan", "train", "--model", "llama3-405b", "--gpu", "h100-sxm", "--num-gpus",
                                       "8", "--gbs", "64", "--seq", "4096"])
    assert result.exit_code == 3
    assert "smallest GPU count that fits" in result.output


def _fixed_plan(decision: dict) -> Plan:
    """A plan document carrying a hand-written decision (for the export tests)."""
    base = {"tp": 4, "pp": 4, "dp": 8, "cp": 2, "ep": 8, "etp": 1, "edp": 8, "vpp": 1, "mbs": 1, "microbatches": 16,
            "zero": 1, "recompute": "full", "sequence_parallel": True, "stage_layers": [7, 8, 8, 7],
            "stage_pools": None}
    base.update(decision)
    return Plan({"kind": "train", "inputs": {"model": {"name": "m", "moe": {"experts": 64}, "mtp_layers": 0},
                                             "workload": {"global_batch": 1024, "seq_len": 4096, "dtype": "bf16"}},
                 "decision": base})


def test_megatron_flags_exact():
    text = export(_fixed_plan({}), "megatron")
    assert text.split() == [
        "--tensor-model-parallel-size", "4", "\\", "--pipeline-model-parallel-size", "4", "\\",
        "--context-parallel-size", "2", "\\", "--expert-model-parallel-size", "8", "\\",
        "--expert-tensor-parallel-size", "1", "\\", "--decoder-first-pipeline-num-layers", "7", "\\",
        "--decoder-last-pipeline-num-layers", "7", "\\", "--micro-batch-size", "1", "\\",
        "--global-batch-size", "1024", "\\", "--seq-length", "4096", "\\", "--sequence-parallel", "\\",
        "--use-distributed-optimizer", "\\", "--recompute-granularity", "full", "\\", "--recompute-method", "uniform",
        "\\", "--recompute-num-layers", "1", "\\", "--bf16"]
    layout = export(_fixed_plan({"stage_layers": [6, 8, 9, 7]}), "megatron")
    assert "--pipeline-model-parallel-layout 'Et*6|t*8|t*9|t*7L'" in layout
    vpp = export(_fixed_plan({"vpp": 2, "stage_layers": [8, 8, 8, 8]}), "megatron")
    assert "--num-layers-per-virtual-pipeline-stage 4" in vpp


def test_torchtitan_and_deepspeed():
    toml = export(_fixed_plan({"cp": 1, "zero": 3, "recompute": "selective"}), "torchtitan")
    for line in ("data_parallel_shard_degree = 8", "tensor_parallel_degree = 4", "pipeline_parallel_degree = 4",
                 "expert_parallel_degree = 8", 'mode = "selective"', 'pipeline_parallel_schedule = "1F1B"',
                 "local_batch_size = 128"):
        assert line in toml
    ds = json.loads(export(_fixed_plan({"cp": 1, "zero": 2}), "deepspeed"))
    assert ds["train_micro_batch_size_per_gpu"] == 1 and ds["gradient_accumulation_steps"] == 128
    assert ds["zero_optimization"]["stage"] == 2 and ds["bf16"]["enabled"] and ds["tensor_parallel"]["autotp_size"] == 4
