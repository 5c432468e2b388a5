"""planner/plan.py: canonical bytes, digest, and a loader that rejects what it cannot read (exit 2, no traceback)."""

import hashlib
import json

import pytest
from click.testing import CliRunner

import cli
from costmodels.errors import SpecError
from planner.plan import SCHEMA_VERSION, canonicalize, digest, dumps_canonical, inputs_digest, load_plan, make_plan


def test_canonical_text_sorts_keys_rounds_floats_and_ends_with_newline():
    text = dumps_canonical({"b": 1, "a": {"z": 0.1 + 0.2, "y": 1 / 3}})
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert text.index('"a"') < text.index('"b"') and text.index('"y"') < text.index('"z"')
    # 0.1 + 0.2 = 0.30000000000000004 and 1/3 keep 9 significant digits
    assert '"z": 0.3' in text and '"y": 0.333333333' in text
    assert "0.30000000000000004" not in text


def test_canonicalize_maps_tuples_negative_zero_and_non_finite():
    assert canonicalize({"t": (1, 2.0), "neg": -0.0, "inf": float("inf"), "nan": float("nan")}) == \
        {"t": [1, 2.0], "neg": 0.0, "inf": None, "nan": None}
    assert json.dumps(canonicalize(-1e-30)) == "-1e-30"
    with pytest.raises(TypeError):
        canonicalize({"s": {1, 2}})


def test_canonicalize_is_idempotent_on_rounded_floats():
    values = [1 / 3, 2 / 3 * 1e-12, 123456789.123, 9.999999999e20]
    once = canonicalize(values)
    assert canonicalize(once) == once
    assert json.loads(json.dumps(once)) == once


def test_same_inputs_give_same_bytes_whatever_the_key_order(plan_factory):
    a = make_plan("scatter", inputs={"x": 1, "y": [1.0, 2.5]}, decision={"groups": []}, predicted={"t_s": 1.0},
                  solver={"backend": "b", "status": "optimal", "objective": 1.0, "bound": 1.0, "gap": 0.0})
    b = make_plan("scatter", inputs={"y": (1.0, 2.5), "x": 1}, decision={"groups": []}, predicted={"t_s": 1.0},
                  solver={"gap": 0.0, "bound": 1.0, "objective": 1.0, "status": "optimal", "backend": "b"})
    assert a.dumps() == b.dumps()
    assert plan_factory().dumps() == plan_factory().dumps()


def test_inputs_digest_is_the_sha256_of_the_other_inputs():
    plan = make_plan("scatter", inputs={"x": 1, "inputs_digest": "stale"}, decision={"groups": []}, predicted={})
    stored = plan["inputs"]["inputs_digest"]
    assert stored == digest({"x": 1}) == inputs_digest(plan["inputs"])
    assert len(stored) == 64 and int(stored, 16) >= 0
    changed = make_plan("scatter", inputs={"x": 2}, decision={"groups": []}, predicted={})
    assert changed["inputs"]["inputs_digest"] != stored
    # the digest is part of the document format: sha256 of the canonical text (two-space indent, newline)
    assert digest({"x": 1}) == hashlib.sha256(b'{\n  "x": 1\n}\n').hexdigest()
    assert digest({"x": 1}) == "c5e1c113d5c75240d109ea470244fa988c5d9970f26bdbbb885876ae1da9d2d7"


def test_make_plan_rejects_unknown_kind_and_sections():
    with pytest.raises(ValueError, match="unknown plan kind"):
        make_plan("deploy", inputs={}, decision={}, predicted={})
    with pytest.raises(ValueError, match="unknown plan sections"):
        make_plan("scatter", inputs={}, decision={}, predicted={}, notes="x")


def test_written_plan_loads_back_identically(plan_factory, write_plan):
    plan = plan_factory("train")
    loaded = load_plan(write_plan(plan))
    assert loaded.doc == plan.doc and loaded.dumps() == plan.dumps()
    assert loaded["schema_version"] == SCHEMA_VERSION


@pytest.mark.parametrize(("text", "expected"), [
    ('{\n  "kind": "train",\n  "schema_version": 1,,\n}\n', "line 3"),
    ("", "line 1"),
    ("[1, 2]", "a plan is a JSON object"),
    ('{"schema_version": 2, "kind": "train"}', "unsupported schema_version 2"),
    ('{"schema_version": "1", "kind": "train"}', "unsupported schema_version '1'"),
    ('{"schema_version": true, "kind": "train"}', "unsupported schema_version True"),
    ('{"kind": "train"}', "unsupported schema_version None"),
    ('{"schema_version": 1, "kind": "deploy"}', "unknown kind 'deploy'; valid: train, experts"),
    ('{"schema_version": 1, "kind": ["train"]}', "unknown kind"),
    ('{"schema_version": 1, "kind": "train", "x": NaN}', "NaN is not a valid plan number"),
])
def test_load_plan_rejects_unreadable_documents(write_plan, text, expected):
    path = write_plan(text)
    with pytest.raises(SpecError, match=expected) as info:
        load_plan(path)
    assert path in str(info.value)


def test_load_plan_rejects_missing_and_binary_files(tmp_path):
    with pytest.raises(SpecError, match="cannot read plan"):
        load_plan(tmp_path / "nope.json")
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe\x00{")
    with pytest.raises(SpecError, match="not UTF-8"):
        load_plan(binary)


def test_load_plan_checks_the_schema_unless_asked_not_to(plan_factory, write_plan):
    doc = plan_factory("train").doc
    del doc["decision"]["tp"]
    path = write_plan(json.dumps(doc))
    with pytest.raises(SpecError, match=r"decision: 'tp' is a required property"):
        load_plan(path)
    assert load_plan(path, check_schema=False)["decision"]["pp"] == 2


@pytest.mark.parametrize("command", ["validate", "explain", "diff", "export"])
@pytest.mark.parametrize(("text", "expected"), [
    ('{\n  "kind": "train",\n oops\n}\n', "line 3"),
    ('{"schema_version": 7, "kind": "train"}', "unsupported schema_version 7"),
    ('{"schema_version": 1, "kind": "deploy"}', "unknown kind 'deploy'"),
])
def test_cli_exits_2_without_traceback_on_unreadable_plans(write_plan, command, text, expected):
    path = write_plan(text)
    args = {"validate": [path], "explain": [path], "diff": [path, path], "export": [path, "--format", "x"]}[command]
    result = CliRunner().invoke(cli.main, [command, *args])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def test_cli_exits_2_on_a_missing_plan_file(tmp_path):
    result = CliRunner().invoke(cli.main, ["explain", str(tmp_path / "missing.json")])
    assert result.exit_code == 2 and "cannot read plan" in result.output and "Traceback" not in result.output
