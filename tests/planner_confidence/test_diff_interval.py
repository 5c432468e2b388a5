"""`parplan diff --fail-on PATH:[+|-]interval`: fail only on changes larger than plan A's prediction interval."""

import copy
import json

import pytest
from click.testing import CliRunner

import cli
from costmodels.errors import SpecError
from planner.diff import diff_plans, parse_threshold

A = {"schema_version": 1, "kind": "estimate", "inputs": {"inputs_digest": "0" * 64}, "decision": {},
     "predicted": {"step_time_s": 10.0, "mfu": 0.4,
                   "interval": {"level": 0.8, "step_time_s": {"low": 9.0, "high": 11.5}}},
     "alternatives": [], "baselines": {}, "solver": {}, "provenance": {"parplan_version": "x"}}


def _with_step(step: float) -> dict:
    b = copy.deepcopy(A)
    b["predicted"]["step_time_s"] = step
    return b


def test_parse():
    t = parse_threshold("predicted.step_time_s:+interval")
    assert t.interval and t.direction == "+" and t.path == "predicted.step_time_s"
    assert "grows above" in t.describe()
    with pytest.raises(SpecError):
        parse_threshold("predicted.step_time_s:+intervals")


@pytest.mark.parametrize("step, expr, fails", [
    (11.0, "predicted.step_time_s:+interval", False),   # +10 %: inside A's interval (noise)
    (11.6, "predicted.step_time_s:+interval", True),    # beyond the high end
    (8.9, "predicted.step_time_s:+interval", False),    # faster never fails a '+' gate
    (8.9, "predicted.step_time_s:-interval", True),
    (8.9, "predicted.step_time_s:interval", True),
    (9.5, "predicted.step_time_s:interval", False),
])
def test_interval_gate(step, expr, fails):
    result = diff_plans(A, _with_step(step), [expr])
    assert bool(result["threshold_violations"]) == fails
    # a fixed percentage gate would have failed the in-noise +10 % change
    if step == 11.0:
        assert diff_plans(A, _with_step(step), ["predicted.step_time_s:+2%"])["threshold_violations"]


def test_a_metric_without_an_interval_is_an_error():
    with pytest.raises(SpecError, match="intervals exist for: step_time_s"):
        diff_plans(A, A, ["predicted.mfu:+interval"])


def test_cli_exit_codes(tmp_path):
    import profiles
    from costmodels.hardware import ClusterSpec
    from costmodels.parallel import ParallelConfig, TrainingWorkload
    from planner.train.estimate import estimate_plan

    plan = estimate_plan(profiles.load_model("llama3-8b"), ClusterSpec.homogeneous(profiles.load_device("h100-sxm"), 8),
                         TrainingWorkload(global_batch=16, seq_len=4096), ParallelConfig(tp=2, dp=4, mbs=1))
    doc = json.loads(plan.dumps())
    high = doc["predicted"]["interval"]["step_time_s"]["high"]
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(plan.dumps())
    runner = CliRunner()
    gate = ["--fail-on", "predicted.step_time_s:+interval"]
    doc["predicted"]["step_time_s"] = (doc["predicted"]["step_time_s"] + high) / 2
    b.write_text(json.dumps(doc))
    assert runner.invoke(cli.main, ["diff", str(a), str(b), *gate]).exit_code == 0
    doc["predicted"]["step_time_s"] = high * 1.01
    b.write_text(json.dumps(doc))
    out = runner.invoke(cli.main, ["diff", str(a), str(b), *gate])
    assert out.exit_code == 1 and "FAIL predicted.step_time_s:+interval" in out.output
    assert runner.invoke(cli.main, ["diff", str(a), str(b), "--fail-on", "predicted.mfu:+interval"]).exit_code == 2
