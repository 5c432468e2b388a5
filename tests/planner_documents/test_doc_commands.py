"""`parplan validate / diff / explain / export` and their API in planner/documents.py (fake planner handler)."""

import copy
import json

import pytest
from click.testing import CliRunner

import cli
from costmodels.errors import SpecError
from planner import documents
from planner.plan import Plan


def run(*args):
    result = CliRunner().invoke(cli.main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def test_validate_a_valid_plan(plan_factory, write_plan, fake_handler):
    path = write_plan(plan_factory("train"))
    result = run("validate", path)
    assert result.exit_code == 0, result.output
    assert "valid (train plan, schema version 1, inputs " in result.output


def test_validate_reports_the_planner_check_problems(plan_factory, write_plan, fake_handler):
    fake_handler.problems = ["stage 1 needs 90 GiB; HBM is 80 GiB"]
    result = run("validate", write_plan(plan_factory("scatter")))
    assert result.exit_code == 1
    assert "1 problem found" in result.output and "  - stage 1 needs 90 GiB; HBM is 80 GiB" in result.output


def test_validate_reports_schema_violations_by_path(plan_factory, write_plan, fake_handler):
    doc = copy.deepcopy(plan_factory("train").doc)
    doc["decision"]["tp"] = 0
    del doc["decision"]["zero"]
    result = run("validate", write_plan(json.dumps(doc)))
    assert result.exit_code == 1
    assert "2 problems found" in result.output
    assert "schema: decision.tp: 0 is less than the minimum of 1" in result.output
    assert "schema: decision: 'zero' is a required property" in result.output


def test_validate_recomputes_the_inputs_digest(plan_factory, write_plan, fake_handler):
    doc = copy.deepcopy(plan_factory("scatter").doc)
    doc["inputs"]["num_gpus"] = 64  # edited after planning: the stored digest no longer matches
    result = run("validate", write_plan(json.dumps(doc)))
    assert result.exit_code == 1
    assert "inputs.inputs_digest:" in result.output and "does not match the inputs" in result.output


def test_validate_json_report(plan_factory, write_plan, fake_handler, tmp_path):
    fake_handler.problems = ["x"]
    path = write_plan(plan_factory("scatter"))
    result = run("validate", path, "-o", tmp_path / "report.json")
    assert result.exit_code == 1
    assert json.loads((tmp_path / "report.json").read_text()) == {"plan": path, "valid": False, "problems": ["x"]}


def test_validate_without_a_planner_check_is_an_input_error(plan_factory, write_plan, monkeypatch):
    import types

    from planner import registry
    monkeypatch.setattr(registry, "handler", lambda plan: types.SimpleNamespace(__name__="planner.bare"))
    result = run("validate", write_plan(plan_factory("scatter")))
    assert result.exit_code == 2 and "planner.bare provides no check()" in result.output


def test_validate_api_equals_cli(plan_factory, fake_handler):
    plan = plan_factory("scatter")
    assert documents.validate_plan(plan) == []
    fake_handler.problems = ["a", "b"]
    assert documents.validate_plan(plan) == ["a", "b"]


def test_diff_exit_codes(plan_factory, write_plan):
    a = write_plan(plan_factory("train"), "a.json")
    same = write_plan(plan_factory("train"), "same.json")
    slower = write_plan(plan_factory("train", step_time_s=1.3), "b.json")
    assert run("diff", a, same).exit_code == 0
    different = run("diff", a, slower)
    assert different.exit_code == 1
    assert "predicted.step_time_s" in different.output and "+4.00%" in different.output
    crossed = run("diff", a, slower, "--fail-on", "predicted.step_time_s:+2%")
    assert crossed.exit_code == 1 and "FAIL predicted.step_time_s:+2%" in crossed.output
    within = run("diff", a, slower, "--fail-on", "predicted.step_time_s:+5%", "--fail-on", "predicted.mfu:-1%")
    assert within.exit_code == 0 and "ok   predicted.step_time_s:+5%" in within.output


@pytest.mark.parametrize("args", [["--fail-on", "predicted.step_time_s"], ["--fail-on", "predicted.nope_s:+1%"]])
def test_diff_bad_thresholds_exit_2(plan_factory, write_plan, args):
    a = write_plan(plan_factory("train"), "a.json")
    result = run("diff", a, a, *args)
    assert result.exit_code == 2 and "--fail-on" in result.output


def test_diff_json_output(plan_factory, write_plan, tmp_path):
    a = write_plan(plan_factory("train"), "a.json")
    b = write_plan(plan_factory("train", step_time_s=2.5), "b.json")
    result = run("diff", a, b, "--fail-on", "predicted.step_time_s:+10%", "-o", "-")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert set(doc) == {"equal", "changes", "thresholds", "threshold_violations"}
    assert doc["equal"] is False and doc["changes"][0]["field"] == "predicted.step_time_s"
    assert doc["changes"][0]["rel_delta"] == 1.0
    assert result.stdout.endswith("}\n")
    out = tmp_path / "diff.json"
    assert run("diff", a, a, "-o", out).exit_code == 0
    assert json.loads(out.read_text())["equal"] is True


def test_diff_refuses_schema_invalid_plans(plan_factory, write_plan):
    doc = copy.deepcopy(plan_factory("train").doc)
    doc["decision"]["recompute"] = "sometimes"
    a = write_plan(plan_factory("train"), "a.json")
    result = run("diff", a, write_plan(json.dumps(doc), "bad.json"))
    assert result.exit_code == 2 and "decision.recompute" in result.output


def test_explain_prints_the_generic_header_then_the_planner_text(plan_factory, write_plan, fake_handler):
    plan = plan_factory("train")
    result = run("explain", write_plan(plan))
    assert result.exit_code == 0
    out = result.output
    assert out.startswith("plan        train (schema version 1)\n")
    assert f"inputs      sha256 {plan['inputs']['inputs_digest']}" in out
    assert "solver      highs optimal; objective 1.25, bound 1.2, gap 4%" in out
    assert "  step_time_s     1.25" in out and "  mfu             0.41" in out and "breakdown" not in out
    assert out.rstrip().endswith("fake explanation of a train plan")
    assert documents.explain_plan(plan) + "\n" == out


def test_explain_an_estimate_shows_feasibility(plan_factory, write_plan, fake_handler):
    plan = plan_factory("estimate", feasible=False, infeasible_reasons=["weights need 141 GiB per GPU"])
    out = run("explain", write_plan(plan)).output
    assert "plan        estimate of a train configuration" in out
    assert "feasible    no\n  - weights need 141 GiB per GPU" in out
    assert "solver" not in out.split("predicted")[0]


def test_export_writes_the_planner_format(plan_factory, write_plan, fake_handler, tmp_path):
    path = write_plan(plan_factory("train"))
    result = run("export", path, "--format", "megatron")
    assert result.exit_code == 0 and result.stdout == "--format megatron --tp 4\n"
    out = tmp_path / "args.txt"
    assert run("export", path, "--format", "vllm", "-o", out).exit_code == 0
    assert out.read_text() == "--format vllm --tp 4\n"


def test_export_unknown_format_lists_the_planner_formats(plan_factory, write_plan, fake_handler):
    result = run("export", write_plan(plan_factory("train")), "--format", "deepspeed2")
    assert result.exit_code == 2
    assert "unknown format 'deepspeed2' for train plans; valid: megatron, vllm" in result.output
    with pytest.raises(SpecError, match="valid: megatron, vllm"):
        documents.export_plan(plan_factory("train"), "x")


def test_an_estimate_without_a_known_target_is_an_input_error(plan_factory):
    doc = copy.deepcopy(plan_factory("estimate").doc)
    doc["inputs"]["target"] = "deploy"
    with pytest.raises(SpecError, match="no planner handles target 'deploy'"):
        documents.export_formats(Plan(doc))
