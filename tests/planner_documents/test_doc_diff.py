"""planner/diff.py: structural diff, metric deltas and --fail-on thresholds."""

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costmodels.errors import SpecError
from planner.diff import Threshold, diff_plans, flatten, format_diff, parse_threshold
from planner.plan import Plan


def _edit(plan, **sections):
    doc = copy.deepcopy(plan.doc)
    for dotted, value in sections.items():
        keys = dotted.split("__")
        target = doc
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return Plan(doc)


def _fields(result):
    return [change["field"] for change in result["changes"]]


def test_a_plan_equals_itself_and_provenance_is_ignored(plan_factory):
    plan = plan_factory("train")
    other = _edit(plan, provenance={"parplan_version": "9.9", "wall_time_s": 3.0})
    result = diff_plans(plan, other)
    assert result == {"equal": True, "changes": [], "thresholds": [], "threshold_violations": []}


def test_changes_list_decisions_first_with_absolute_and_relative_deltas(plan_factory):
    a = plan_factory("train")
    b = _edit(a, predicted__step_time_s=1.5, decision__tp=8, decision__stage_layers=[15, 17], solver__status="feasible")
    result = diff_plans(a, b)
    assert not result["equal"]
    assert _fields(result) == ["decision.stage_layers", "decision.tp", "predicted.step_time_s", "solver.status"]
    by_field = {c["field"]: c for c in result["changes"]}
    assert by_field["decision.tp"]["delta"] == 4 and by_field["decision.tp"]["rel_delta"] == 1.0
    assert by_field["decision.stage_layers"]["a"] == [16, 16] and by_field["decision.stage_layers"]["delta"] is None
    step = by_field["predicted.step_time_s"]
    assert step["a"] == 1.25 and step["b"] == 1.5
    assert step["delta"] == pytest.approx(0.25) and step["rel_delta"] == pytest.approx(0.2)
    assert by_field["solver.status"]["b"] == "feasible" and by_field["solver.status"]["section"] == "solver"


def test_every_numeric_leaf_under_metric_sections_gets_a_delta(plan_factory):
    a = plan_factory("scatter", predicted={"step_time_s": 1.0, "per_group_s": [1.0, 0.5],
                                           "breakdown": {"comm_s": 0.2}})
    b = plan_factory("scatter", predicted={"step_time_s": 1.0, "per_group_s": [1.0, 0.8],
                                           "breakdown": {"comm_s": 0.1}},
                     baselines={"static_sp": {"step_time_s": 1.2}})
    result = diff_plans(a, b)
    by_field = {c["field"]: c for c in result["changes"]}
    assert list(by_field) == ["predicted.breakdown.comm_s", "predicted.per_group_s[1]",
                              "baselines.static_sp.step_time_s"]
    assert by_field["predicted.per_group_s[1]"]["rel_delta"] == pytest.approx(0.6)
    assert by_field["predicted.breakdown.comm_s"]["rel_delta"] == pytest.approx(-0.5)
    assert by_field["baselines.static_sp.step_time_s"]["delta"] == pytest.approx(-0.3)


def test_fields_on_one_side_only_leave_out_the_other_side(plan_factory):
    a = plan_factory("scatter")
    b = _edit(a, predicted={**a["predicted"], "lower_bound_s": 1.2})
    del b.doc["predicted"]["mfu"]
    result = diff_plans(a, b)
    by_field = {c["field"]: c for c in result["changes"]}
    assert "b" not in by_field["predicted.mfu"] and by_field["predicted.mfu"]["a"] == 0.41
    assert "a" not in by_field["predicted.lower_bound_s"] and by_field["predicted.lower_bound_s"]["delta"] is None
    assert "absent" in format_diff(result)


def test_changed_inputs_show_their_digest_and_leaves(plan_factory):
    a = plan_factory("scatter")
    b = plan_factory("scatter", inputs={**{k: v for k, v in a["inputs"].items() if k != "inputs_digest"},
                                        "num_gpus": 32})
    assert _fields(diff_plans(a, b)) == ["inputs.inputs_digest", "inputs.num_gpus"]


def test_booleans_are_not_numbers(plan_factory):
    a = plan_factory("estimate")
    b = _edit(a, feasible=False)
    change = diff_plans(a, b)["changes"][0]
    assert change["field"] == "feasible" and change["delta"] is None
    assert flatten({"decision": {"x": True}}) == {"decision.x": True}
    assert not diff_plans({"decision": {"x": 1}}, {"decision": {"x": 1.0}})["changes"]
    assert diff_plans({"decision": {"x": 1}}, {"decision": {"x": True}})["changes"]


def test_a_zero_baseline_has_no_relative_delta():
    result = diff_plans({"predicted": {"x_s": 0.0}}, {"predicted": {"x_s": 0.5}})
    assert result["changes"][0]["delta"] == 0.5 and result["changes"][0]["rel_delta"] is None


@pytest.mark.parametrize(("expr", "path", "direction", "limit", "relative"), [
    ("predicted.step_time_s:+2%", "predicted.step_time_s", "+", 0.02, True),
    ("predicted.mfu:-1%", "predicted.mfu", "-", 0.01, True),
    ("predicted.max_load_ratio:+0.05", "predicted.max_load_ratio", "+", 0.05, False),
    ("solver.gap:+0.01", "solver.gap", "+", 0.01, False),
    ("baselines.static_sp.step_time_s:5%", "baselines.static_sp.step_time_s", "", 0.05, True),
    ("alternatives[0].step_time_s:+.5", "alternatives[0].step_time_s", "+", 0.5, False),
    ("predicted.step_time_s:+1e-3", "predicted.step_time_s", "+", 1e-3, False),
    (" predicted.mfu:-0.5% ", "predicted.mfu", "-", 0.005, True),
])
def test_parse_threshold(expr, path, direction, limit, relative):
    t = parse_threshold(expr)
    assert (t.path, t.direction, t.relative) == (path, direction, relative)
    assert t.limit == pytest.approx(limit)


@pytest.mark.parametrize("expr", ["predicted.step_time_s", "predicted.step_time_s:", ":+2%", "x:+2%%",
                                  "x:++2", "x:+two", "x y:+1", "x:+1%s", "x:1.2.3"])
def test_bad_threshold_expressions_are_spec_errors(expr):
    with pytest.raises(SpecError, match="--fail-on: cannot parse"):
        parse_threshold(expr)


@pytest.mark.parametrize(("expr", "a", "b", "crossed"), [
    ("predicted.step_time_s:+2%", 1.0, 1.05, True),
    ("predicted.step_time_s:+2%", 1.0, 1.01, False),
    ("predicted.step_time_s:+2%", 1.0, 1.02, False),      # exactly the limit is not more than it
    ("predicted.step_time_s:+2%", 1.0, 0.5, False),       # getting faster never fails a '+' threshold
    ("predicted.mfu:-1%", 0.5, 0.49, True),               # 2 % relative drop
    ("predicted.mfu:-1%", 0.5, 0.496, False),             # 0.8 % relative drop
    ("predicted.mfu:-1%", 0.5, 0.9, False),
    ("predicted.max_load_ratio:+0.05", 1.10, 1.16, True),
    ("predicted.max_load_ratio:+0.05", 1.10, 1.15, False),
    ("solver.gap:+0.01", 0.0, 0.02, True),
    ("solver.gap:+0.01", 0.0, 0.005, False),
    ("predicted.step_time_s:3%", 1.0, 0.95, True),        # no sign: either direction
    ("predicted.step_time_s:3%", 1.0, 1.05, True),
    ("predicted.step_time_s:3%", 1.0, 0.98, False),
    ("solver.gap:+1%", 0.0, 0.001, True),                 # relative growth from zero is unbounded
    ("solver.gap:+1%", 0.0, 0.0, False),
])
def test_thresholds(plan_factory, expr, a, b, crossed):
    section, field = expr.split(":")[0].split(".")
    plan_a = _edit(plan_factory("scatter"), **{f"{section}__{field}": a})
    plan_b = _edit(plan_a, **{f"{section}__{field}": b})
    result = diff_plans(plan_a, plan_b, [expr])
    assert result["thresholds"] == [expr]
    assert bool(result["threshold_violations"]) is crossed, result["threshold_violations"]
    if crossed:
        violation = result["threshold_violations"][0]
        assert violation["expr"] == expr and violation["a"] == a and violation["b"] == b
        assert expr.split(":")[0] in violation["message"]


def test_a_number_that_disappears_or_turns_null_crosses_its_threshold(plan_factory):
    a = plan_factory("scatter")
    gone = copy.deepcopy(a.doc)
    del gone["predicted"]["step_time_s"]
    nulled = _edit(a, predicted__step_time_s=None)
    for b in (Plan(gone), nulled):
        violations = diff_plans(a, b, ["predicted.step_time_s:+50%"])["threshold_violations"]
        assert len(violations) == 1 and "in A and" in violations[0]["message"]
    assert not diff_plans(nulled, nulled, ["predicted.step_time_s:+2%"])["threshold_violations"]


def test_a_threshold_on_a_field_in_neither_plan_is_an_error(plan_factory):
    plan = plan_factory("scatter")
    with pytest.raises(SpecError, match="'predicted.step_tme_s' is in neither plan; numeric fields include"):
        diff_plans(plan, plan, ["predicted.step_tme_s:+2%"])


def test_threshold_objects_are_accepted_and_described():
    t = Threshold(expr="p.x:+2%", path="predicted.x", direction="+", limit=0.02, relative=True)
    assert t.describe() == "predicted.x grows by more than 2%"
    result = diff_plans({"predicted": {"x": 1.0}}, {"predicted": {"x": 2.0}}, [t])
    assert result["threshold_violations"][0]["expr"] == "p.x:+2%"


def test_format_diff_is_a_table_with_verdicts(plan_factory):
    a = plan_factory("train")
    b = _edit(a, decision__tp=8, predicted__step_time_s=1.3)
    text = format_diff(diff_plans(a, b, ["predicted.step_time_s:+2%", "predicted.mfu:-1%"]),
                       label_a="old.json", label_b="new.json")
    lines = text.splitlines()
    assert lines[0] == "A: old.json" and lines[1] == "B: new.json"
    assert lines[2].split() == ["field", "A", "B", "delta", "rel", "delta"]
    assert lines[3].split() == ["decision.tp", "4", "8", "+4", "+100.00%"]
    assert lines[4].split() == ["predicted.step_time_s", "1.25", "1.3", "+0.05", "+4.00%"]
    assert "2 changes (1 decision, 1 predicted)" in text
    assert any(line.startswith("FAIL predicted.step_time_s:+2%: ") for line in lines)
    assert "ok   predicted.mfu:-1%" in lines
    assert "plans are equal" in format_diff(diff_plans(a, a))


def test_format_diff_caps_long_tables(plan_factory):
    a = plan_factory("scatter", predicted={"per_gpu_s": [1.0] * 100})
    b = plan_factory("scatter", predicted={"per_gpu_s": [2.0] * 100})
    text = format_diff(diff_plans(a, b), max_rows=10)
    assert "... and 90 more changes (write them all with -o FILE)" in text
    assert len(text.splitlines()) == 2 + 1 + 10 + 2


numbers = st.one_of(st.integers(-1000, 1000), st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))
metric_dicts = st.dictionaries(st.sampled_from(["a_s", "b_s", "c_bytes", "d"]), numbers, max_size=4)


@settings(max_examples=150, deadline=None)
@given(metric_dicts, metric_dicts)
def test_changes_are_exactly_the_differing_fields(left, right):
    """Brute force: a field is a change iff it is on one side only or its values differ."""
    result = diff_plans({"predicted": left}, {"predicted": right})
    expected = sorted(k for k in set(left) | set(right) if k not in left or k not in right or left[k] != right[k])
    assert sorted(c["field"].split(".", 1)[1] for c in result["changes"]) == expected
    assert result["equal"] == (not expected)
    assert diff_plans({"predicted": left}, {"predicted": left})["equal"]


@settings(max_examples=150, deadline=None)
@given(st.floats(0.01, 100), st.floats(0.01, 100), st.sampled_from(["+", "-", ""]), st.floats(0, 50))
def test_relative_thresholds_match_the_definition(a, b, sign, percent):
    """A '+p%' threshold is crossed iff (b - a) / a > p / 100 (with a small slack), and so on for '-' and none."""
    expr = f"predicted.t_s:{sign}{percent!r}%"
    crossed = bool(diff_plans({"predicted": {"t_s": a}}, {"predicted": {"t_s": b}}, [expr])["threshold_violations"])
    change = (b - a) / a
    signed = {"+": change, "-": -change, "": abs(change)}[sign]
    if abs(signed - percent / 100) > 1e-6:  # away from the boundary the verdict is the plain definition
        assert crossed == (signed > percent / 100)
