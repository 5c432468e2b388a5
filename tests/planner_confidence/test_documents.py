"""Every train/serve estimate and plan carries interval, regime and extrapolated; validate re-derives them;
explain prints them; alternatives carry the probability that they are faster."""

import copy
import json

import pytest
from click.testing import CliRunner

import cli
import planner
import profiles
from costmodels.hardware import ClusterSpec
from costmodels.parallel import ParallelConfig, TrainingWorkload
from planner.confidence.regimes import family_of
from planner.confidence.residuals import shipped_table
from planner.plan import Plan
from planner.schema_check import schema_problems
from planner.train.estimate import estimate_plan

CONFIG = ParallelConfig(tp=2, pp=2, dp=4, mbs=1, zero=1, recompute="selective")


def _estimate(gpu: str) -> Plan:
    cluster = ClusterSpec.homogeneous(profiles.load_device(gpu), 16)
    return estimate_plan(profiles.load_model("llama3-8b"), cluster, TrainingWorkload(global_batch=32, seq_len=4096),
                         CONFIG)


def test_estimate_on_a_calibrated_gpu_is_supported():
    p = _estimate("h100-sxm")["predicted"]
    low, high = p["interval"]["step_time_s"]["low"], p["interval"]["step_time_s"]["high"]
    assert 0.8 * p["step_time_s"] < low < high < 1.25 * p["step_time_s"]
    assert p["interval"]["level"] == 0.8
    family = family_of("h100-sxm", shipped_table().families)
    assert p["regime"]["family"] == family and p["regime"]["rows"] >= 5 and not p["regime"]["prior"]
    assert p["extrapolated"] == []


@pytest.mark.parametrize("gpu", ["b200", "mi300x"])
def test_estimate_on_a_gpu_without_rows_is_extrapolated(gpu):
    plan = _estimate(gpu)
    p = plan["predicted"]
    assert any(gpu in reason and "no train calibration rows" in reason for reason in p["extrapolated"])
    assert p["regime"]["prior"] and p["regime"]["rows"] == 0
    h100 = _estimate("h100-sxm")["predicted"]["interval"]["step_time_s"]
    width = p["interval"]["step_time_s"]["high"] / p["interval"]["step_time_s"]["low"]
    assert width > h100["high"] / h100["low"]
    assert schema_problems(plan.doc) == [] and planner.validate_plan(plan) == []


def test_validate_re_derives_the_fields():
    plan = _estimate("h100-sxm")
    doc = copy.deepcopy(plan.doc)
    doc["predicted"]["interval"]["step_time_s"]["low"] *= 0.5
    doc["predicted"]["extrapolated"] = ["made up"]
    problems = planner.validate_plan(Plan(doc))
    assert any("predicted.interval.step_time_s.low" in p for p in problems)
    assert any("predicted.extrapolated" in p for p in problems)
    del doc["predicted"]["regime"]
    assert any("regime" in p for p in planner.validate_plan(Plan(doc)))


def test_explain_prints_one_line_each(tmp_path):
    path = tmp_path / "b200.json"
    _estimate("b200").write(path)
    out = CliRunner().invoke(cli.main, ["explain", str(path)]).output
    lines = {line.split()[0]: line for line in out.splitlines() if line.split()}
    assert "80%: step_time_s" in lines["interval"]
    assert "train/dense/bf16/megatron-zero1/dp<=8/ctx<=4k/b200" in lines["regime"]
    assert "device b200: no train calibration rows" in lines["extrapolated"]


def test_serve_estimate_carries_the_fields():
    from planner.serve import estimate_serving

    plan = estimate_serving(profiles.load_model("llama2-70b"), profiles.load_device("h100-sxm"), tp=8, batch=16,
                            isl=512, osl=128)
    p = plan["predicted"]
    assert set(p["interval"]) == {"level", "prefill_s", "decode_step_s", "decode_tokens_per_s"}
    assert p["interval"]["decode_step_s"]["low"] < p["decode_step_s"] * 1.2
    assert p["regime"]["target"] == "serve" and p["regime"]["rows"] >= 5
    assert planner.validate_plan(plan) == [] and schema_problems(plan.doc) == []


def test_plan_train_alternatives_carry_probability_faster(tmp_path):
    model, gpu = profiles.load_model("llama3-8b"), profiles.load_device("h100-sxm")
    plan = planner.plan_training(model, ClusterSpec.homogeneous(gpu, 16), TrainingWorkload(global_batch=32,
                                                                                        seq_len=4096))
    assert plan["predicted"]["interval"]["step_time_s"]["high"] > plan["predicted"]["step_time_s"] * 0.9
    alts = plan["alternatives"]
    assert alts and all(0.0 <= a["probability_faster"] <= 1.0 for a in alts)
    # an alternative in the plan's own regime (same ZeRO stage and data-parallel size) shares its error
    # distribution, so being predicted slower makes it at most a coin flip; one in another regime may carry a
    # different bias (e.g. ZeRO-3 rows measured faster than predicted) and can exceed 1/2
    from planner.confidence.attach import train_support, versus_plan

    cluster, workload = ClusterSpec.homogeneous(gpu, 16), TrainingWorkload(global_batch=32, seq_len=4096)
    support = train_support(model, cluster, workload, ParallelConfig(tp=1, pp=1, dp=16, mbs=2, zero=1))[0]
    assert versus_plan(1.0, support, 1.01, support)["probability_faster"] < 0.5
    assert versus_plan(1.0, support, 0.99, support)["probability_faster"] > 0.5
    for a in alts:
        assert a["within_noise"] == (a["probability_faster"] >= 0.1)
        if a["step_time_s"] == plan["predicted"]["step_time_s"]:
            assert a["probability_faster"] == pytest.approx(0.5)
    assert planner.validate_plan(plan) == []
    doc = json.loads(plan.dumps())
    doc["alternatives"][0]["probability_faster"] = 0.99
    assert any("alternatives[0].probability_faster" in p for p in planner.validate_plan(Plan(doc)))
