"""Typed round trip: every planner's decision reads back into its type and writes out unchanged, through the
plan file; the JSON Schema's decision sections are exactly what the types imply; requests read back from a
plan's inputs; every schema version has its CHANGELOG entry."""

import dataclasses
import json
from pathlib import Path

import pytest
from test_planner_contract import _requests

from costmodels.errors import SpecError
from planner import registry
from planner.decisions import DECISIONS, ScatterDecision, TrainDecision, decision_type, schema_of
from planner.plan import SCHEMA_HISTORY, load_plan
from planner.scatter.request import ScatterRequest
from planner.schema_check import load_schema, schema_problems
from planner.serve.request import ServeRequest
from planner.train.request import TrainRequest, request_from_inputs
from planner.typed import from_dict, to_plain

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def plans():
    return {name: registry.INFO[name].entry()(request, options) for name, (request, options) in _requests().items()}


@pytest.mark.parametrize("kind", sorted(DECISIONS))
def test_schema_decision_is_what_the_type_implies(kind):
    assert load_schema(1)["$defs"][f"decision_{kind}"] == schema_of(DECISIONS[kind])


@pytest.mark.parametrize("kind", registry.PLANNERS)
def test_plan_file_round_trips_through_the_typed_decision(kind, plans, tmp_path):
    plan = plans[kind]
    path = tmp_path / f"{kind}.json"
    plan.write(path)
    back = load_plan(path)
    typed = decision_type(kind).from_dict(back["decision"])
    assert typed.to_dict() == plan["decision"]
    assert json.loads(plan.dumps())["decision"] == typed.to_dict()
    assert back.dumps() == plan.dumps()


def test_train_request_reads_back_from_the_plan_inputs(plans):
    inputs = plans["train"]["inputs"]
    again = request_from_inputs(inputs).inputs_json()
    assert json.loads(json.dumps(again)) == {k: v for k, v in inputs.items() if k != "inputs_digest"}


@pytest.mark.parametrize(("kind", "cls", "section"), [("train", TrainRequest, None), ("serve", ServeRequest, None),
                                                      ("scatter", ScatterRequest, "request")])
def test_request_round_trips_through_the_one_generic_reader(kind, cls, section, plans):
    inputs = plans[kind]["inputs"] if section is None else plans[kind]["inputs"][section]
    names = [f.name for f in dataclasses.fields(cls)]
    subset = {k: inputs[k] for k in names if k in inputs}
    request = from_dict(cls, subset, "inputs")
    assert isinstance(request, cls)  # equal to the planned request up to the plan's 9-digit rounding
    assert json.loads(json.dumps(to_plain(request))) == subset


def test_generic_reader_names_the_bad_nested_field(plans):
    inputs = json.loads(json.dumps({k: plans["train"]["inputs"][k] for k in ("model", "cluster", "workload")}))
    inputs["cluster"]["pools"][0]["device"]["hbm_bytes"] = "80GiB"
    with pytest.raises(SpecError, match=r"inputs\.cluster\.pools\[0\]\.device\.hbm_bytes: must be float"):
        from_dict(TrainRequest, inputs, "inputs")


def test_from_dict_names_the_bad_field():
    good = {"sp_style": "ulysses", "tp": 1, "zero": 0, "degree_multiset": [2],
            "groups": [{"degree": 2, "gpus": 2, "ranks": [0, 1], "spans_nodes": False, "sequences": [0],
                        "time_s": 0.5}]}
    assert ScatterDecision.from_dict(good).to_dict() == good
    bad = json.loads(json.dumps(good))
    bad["groups"][0]["ranks"] = [0, "1"]
    with pytest.raises(SpecError, match=r"decision\.groups\[0\]\.ranks\[1\]"):
        ScatterDecision.from_dict(bad, "decision")
    with pytest.raises(SpecError, match="unknown keys \\['count'\\]"):
        ScatterDecision.from_dict({**good, "count": 3})
    with pytest.raises(SpecError, match=r"decision\.framework: is required"):
        TrainDecision.from_dict({"tp": 1}, "decision")


def test_schema_rejects_a_decision_the_type_rejects(plans):
    doc = json.loads(plans["scatter"].dumps())
    doc["decision"]["groups"][0]["ranks"] = "0-3"
    assert any(p.startswith("decision.groups[0].ranks") for p in schema_problems(doc))
    with pytest.raises(SpecError):
        ScatterDecision.from_dict(doc["decision"])


def test_every_schema_version_has_a_changelog_section():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    for version in SCHEMA_HISTORY:
        assert f"### Schema version {version}" in changelog

