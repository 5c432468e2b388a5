"""`parplan estimate train` end to end: table, JSON == API, errors with exit codes, validate round trip."""

import json

import pytest
from click.testing import CliRunner

import cli
from costmodels import ClusterSpec, ParallelConfig, TrainingWorkload
from planner.train.estimate import check_estimate, estimate_plan, explain_estimate
from profiles import load_device, load_model

BASE = ["estimate", "train", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "16", "--tp", "2", "--pp", "2",
        "--mbs", "1", "--gbs", "64", "--seq", "4096"]


def run(args):
    return CliRunner().invoke(cli.main, args)


def api_plan(**cfg):
    model, device = load_model("llama3-8b"), load_device("h100-sxm")
    cluster = ClusterSpec.homogeneous(device, 16)
    config = ParallelConfig(tp=2, pp=2, dp=4, mbs=1, **cfg)
    return estimate_plan(model, cluster, TrainingWorkload(global_batch=64, seq_len=4096), config)


def test_table_on_stdout():
    res = run(BASE + ["--recompute", "selective"])
    assert res.exit_code == 0, res.output
    assert "step time" in res.output and "MFU" in res.output and "feasible: yes" in res.output


def test_json_equals_api_bytes(tmp_path):
    out = tmp_path / "e.json"
    res = run(BASE + ["-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_text() == api_plan().dumps()
    doc = json.loads(out.read_text())
    assert doc["kind"] == "estimate" and doc["inputs"]["target"] == "train" and doc["feasible"] is True
    for key in ("step_time_s", "model_tflops_per_gpu", "hardware_tflops_per_gpu", "mfu", "memory_per_gpu_bytes"):
        assert doc["predicted"][key] > 0
    assert 0 < doc["predicted"]["mfu"] < 1
    assert {"time_s", "memory_bytes"} <= set(doc["predicted"]["breakdown"])


def test_memory_infeasible_is_not_an_error():
    res = run(["estimate", "train", "--model", "llama3-70b", "--gpu", "h100-sxm", "--num-gpus", "8", "--tp", "8",
               "--pp", "1", "--mbs", "1", "--gbs", "8", "--seq", "4096", "-o", "-"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["feasible"] is False
    assert "usable HBM is 78.0 GiB" in doc["infeasible_reasons"][0]


@pytest.mark.parametrize("change,field", [
    (["--dp", "3"], "dp"),                       # tp*pp*dp*cp != N
    (["--num-gpus", "12", "--gpus-per-node", "4", "--tp", "3", "--dp", "2"], "tp"),  # 3 does not divide 32 heads
    (["--gbs", "63"], "gbs"),
    (["--tp", "3"], "num_gpus"),                 # N not divisible by tp*pp*cp for the default dp
])
def test_spec_errors_exit_2_and_name_the_field(change, field):
    args = list(BASE)
    for i in range(0, len(change), 2):
        if change[i] in args:
            args[args.index(change[i]) + 1] = change[i + 1]
        else:
            args += change[i:i + 2]
    res = run(args)
    assert res.exit_code == 2, res.output
    assert f"{field}:" in res.output and "Traceback" not in res.output


def test_unknown_model_exit_2():
    res = run(["estimate", "train", "--model", "nope", "--gpu", "h100-sxm", "--num-gpus", "8", "--tp", "1", "--pp", "1",
               "--mbs", "1", "--gbs", "8", "--seq", "128"])
    assert res.exit_code == 2 and "unknown model profile" in res.output


def test_check_and_explain_round_trip():
    plan = api_plan(recompute="full")
    assert check_estimate(plan) == []
    tampered = json.loads(plan.dumps())
    tampered["predicted"]["step_time_s"] *= 0.5
    from planner.plan import Plan
    problems = check_estimate(Plan(tampered))
    assert problems and problems[0].startswith("predicted.step_time_s")
    text = explain_estimate(plan)
    assert "recompute=full" in text and "time part" in text


def test_heterogeneous_estimate_round_trips():
    from costmodels import NodePool
    from planner.plan import Plan
    from tests.costmodels.helpers import device, gpt
    pools = tuple(NodePool(name=n, device=device(n), nodes=1, devices_per_node=8, intra_node_bytes_per_s=300e9,
                           inter_node_bytes_per_s=25e9) for n in ("a", "b"))
    cluster = ClusterSpec(name="ab", pools=pools)
    config = ParallelConfig(tp=8, pp=2, dp=1, stage_layers=(13, 11), stage_pools=("a", "b"))
    plan = estimate_plan(gpt(layers=24, hidden=2048, heads=16), cluster,
                         TrainingWorkload(global_batch=16, seq_len=2048),
                         config)
    assert plan["predicted"]["stage_layers"] == [13, 11]
    reread = Plan(json.loads(plan.dumps()))
    assert check_estimate(reread) == []


def test_framework_and_run_options_end_to_end(tmp_path):
    out = tmp_path / "t.json"
    base = ["estimate", "train", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "16", "--tp", "2",
            "--pp", "1", "--mbs", "1", "--gbs", "64", "--seq", "4096"]
    res = run(base + ["--zero", "3", "--framework", "torchtitan", "--compile", "--async-tp", "--dtype", "fp8",
                      "--fp8-allgather", "-o", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert doc["decision"]["framework"] == "torchtitan"
    wl = doc["inputs"]["workload"]
    assert (wl["framework"], wl["compile"], wl["async_tp"], wl["fp8_allgather"]) == ("torchtitan", True, True, True)
    model, device = load_model("llama3-8b"), load_device("h100-sxm")
    workload = TrainingWorkload(global_batch=64, seq_len=4096, dtype="fp8", framework="torchtitan", compile=True,
                                async_tp=True, fp8_allgather=True)
    api = estimate_plan(model, ClusterSpec.homogeneous(device, 16), workload,
                        ParallelConfig(tp=2, pp=1, dp=8, mbs=1, zero=3))
    assert out.read_text() == api.dumps()
    assert check_estimate(api) == []


def test_framework_refuses_what_it_cannot_run():
    res = run(BASE + ["--zero", "2"])  # Megatron has no ZeRO-2
    assert res.exit_code == 2 and "megatron has no ZeRO stage 2" in res.output and "Traceback" not in res.output
    res = run(BASE + ["--framework", "jax"])
    assert res.exit_code == 2 and "megatron" in res.output and "Traceback" not in res.output
