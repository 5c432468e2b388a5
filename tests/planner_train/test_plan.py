"""plan_training end to end: plan document, checker, CLI == API bytes, determinism, errors (exports: tests/exports)."""

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
from planner.train import check, explain

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
