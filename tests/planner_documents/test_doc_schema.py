"""planner/schema/plan-v1.json and planner/schema_check.py."""

import copy

import pytest
from jsonschema import Draft202012Validator

from costmodels.errors import SpecError
from planner.plan import EXTRA_SECTIONS, KINDS
from planner.schema_check import check_document, json_path, load_schema, schema_problems


def test_the_schema_is_a_valid_draft_2020_12_schema_and_matches_plan_py():
    schema = load_schema(1)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"].endswith("2020-12/schema")
    assert schema["properties"]["kind"]["enum"] == list(KINDS)
    assert set(EXTRA_SECTIONS) <= set(schema["properties"])
    assert schema["additionalProperties"] is False


def test_an_unknown_schema_version_has_no_schema():
    with pytest.raises(SpecError, match="no JSON Schema ships for schema_version 9"):
        load_schema(9)


@pytest.mark.parametrize("kind", KINDS)
def test_plans_built_with_make_plan_are_valid(plan_factory, kind):
    assert schema_problems(plan_factory(kind).doc) == []


@pytest.mark.parametrize(("kind", "field"), [
    ("train", "tp"), ("train", "pp"), ("train", "dp"), ("train", "cp"), ("train", "ep"), ("train", "etp"),
    ("train", "vpp"), ("train", "mbs"), ("train", "zero"), ("train", "recompute"), ("train", "sequence_parallel"),
    ("train", "stage_layers"), ("experts", "layers"), ("serve", "mode"), ("scatter", "groups"),
])
def test_each_kind_requires_its_decision_fields(plan_factory, kind, field):
    doc = copy.deepcopy(plan_factory(kind).doc)
    del doc["decision"][field]
    assert schema_problems(doc) == [f"decision: '{field}' is a required property"]


@pytest.mark.parametrize("section", ["feasible", "infeasible_reasons"])
def test_estimate_documents_require_feasibility(plan_factory, section):
    doc = copy.deepcopy(plan_factory("estimate").doc)
    del doc[section]
    assert schema_problems(doc) == [f"$: '{section}' is a required property"]


@pytest.mark.parametrize("field", ["step_time_s", "model_tflops_per_gpu", "hardware_tflops_per_gpu", "mfu",
                                   "memory_per_gpu_bytes", "breakdown"])
def test_train_estimates_carry_the_issue_metrics(plan_factory, field):
    doc = copy.deepcopy(plan_factory("estimate").doc)
    del doc["predicted"][field]
    assert schema_problems(doc) == [f"predicted: '{field}' is a required property"]
    doc["predicted"][field] = None if field != "breakdown" else {}
    assert schema_problems(doc) == []
    doc["predicted"][field] = -1.0
    assert len(schema_problems(doc)) == 1


def test_estimate_documents_name_their_target(plan_factory):
    doc = copy.deepcopy(plan_factory("estimate").doc)
    del doc["inputs"]["target"]
    assert schema_problems(doc) == ["inputs: 'target' is a required property"]
    doc["inputs"]["target"] = "deploy"
    assert len(schema_problems(doc)) == 1 and schema_problems(doc)[0].startswith("inputs.target:")


def test_planner_documents_require_the_solver_verdict(plan_factory):
    doc = copy.deepcopy(plan_factory("scatter").doc)
    del doc["solver"]["bound"]
    doc["solver"]["status"] = "done"
    assert schema_problems(doc) == ["solver: 'bound' is a required property",
                                    "solver.status: 'done' is not one of ['optimal', 'feasible', 'infeasible', "
                                    "'unbounded', 'no_solution', 'error', 'time_limit']"]


@pytest.mark.parametrize(("path", "value", "expected"), [
    (("schema_version",), 2, "schema_version: 1 was expected"),
    (("decision", "tp"), 0, "decision.tp: 0 is less than the minimum of 1"),
    (("decision", "tp"), 2.5, "decision.tp: 2.5 is not of type 'integer'"),
    (("decision", "zero"), 4, "decision.zero: 4 is not one of [0, 1, 2, 3]"),
    (("decision", "recompute"), "some",
     "decision.recompute: 'some' is not one of ['none', 'selective', 'selective-layer', 'full']"),
    (("decision", "sequence_parallel"), 1, "decision.sequence_parallel: 1 is not of type 'boolean'"),
    (("decision", "stage_layers"), [16, -1], "decision.stage_layers[1]:"),
    (("inputs", "inputs_digest"), "abc", "inputs.inputs_digest: 'abc' does not match"),
    (("solver", "gap"), -0.5, "solver.gap: -0.5 is less than the minimum of 0"),
    (("solver", "objective"), "1.0", "solver.objective: '1.0' is not of type 'number', 'null'"),
    (("alternatives",), ["x"], "alternatives[0]: 'x' is not of type 'object'"),
    (("provenance",), {}, "provenance: 'parplan_version' is a required property"),
])
def test_violations_name_the_failing_json_path(plan_factory, path, value, expected):
    doc = copy.deepcopy(plan_factory("train").doc)
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    problems = schema_problems(doc)
    assert len(problems) == 1 and problems[0].startswith(expected), problems


def test_vpp_stage_layers_may_be_nested(plan_factory):
    doc = copy.deepcopy(plan_factory("train").doc)
    doc["decision"]["stage_layers"] = [[8, 8], [8, 8]]
    assert schema_problems(doc) == []


def test_unknown_top_level_sections_are_rejected_but_extras_allowed(plan_factory):
    doc = copy.deepcopy(plan_factory("serve").doc)
    doc["simulated"] = {"ttft_attainment": 0.99}
    doc["summary"] = "two prefill, one decode"
    assert schema_problems(doc) == []
    doc["notes"] = "hand edit"
    assert schema_problems(doc) == ["$: Additional properties are not allowed ('notes' was unexpected)"]


def test_check_document_lists_every_path_in_one_spec_error(plan_factory):
    doc = copy.deepcopy(plan_factory("train").doc)
    doc["decision"]["tp"] = 0
    doc["solver"]["gap"] = -1
    with pytest.raises(SpecError) as info:
        check_document(doc, source="p.json")
    message = str(info.value)
    assert message.startswith("p.json: plan does not match schema v1: ")
    assert "decision.tp:" in message and "solver.gap:" in message


def test_check_document_cuts_long_lists(plan_factory):
    doc = copy.deepcopy(plan_factory("train").doc)
    doc["alternatives"] = list(range(15))
    with pytest.raises(SpecError, match="; and 5 more$"):
        check_document(doc)


def test_long_offending_values_are_cut():
    doc = {"schema_version": 1, "kind": "scatter", "decision": list(range(1000))}
    longest = max(len(p) for p in schema_problems(doc))
    assert longest < 260


def test_json_path_formatting():
    assert json_path([]) == "$"
    assert json_path(["decision", "stage_layers", 2]) == "decision.stage_layers[2]"
    assert json_path(["alternatives", 0, "why"]) == "alternatives[0].why"
