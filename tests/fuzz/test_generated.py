"""Hypothesis-generated lengths files, hardware profiles and plan documents: never a traceback, only the
documented exit codes, and an existing output file changes only on success."""

import json
import math
import pathlib

import yaml
from fuzz_cli import invoke
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
OLD = "previous good output\n"

numbers = st.one_of(st.integers(-10, 10**12), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0, -1, 1e-9, 2**30, 85899345920, "80", "lots", None, True, [1]]))
json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-5, 10**9), st.floats(-1e9, 1e9),
                                     st.text(max_size=8)),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                       max_size=3), max_leaves=6)


def _check(result, allowed: set[int], out: pathlib.Path) -> None:
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in allowed, result.output
    if result.exit_code >= 2:  # an error (validate and diff write their findings with exit 1)
        assert out.read_text() == OLD
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(".")) == []


def _fresh(out: pathlib.Path) -> None:
    out.write_text(OLD)


@SETTINGS
@given(lines=st.lists(st.one_of(st.integers(-3, 300_000).map(str), st.floats().map(repr), st.text(max_size=6),
                                st.just("# comment"), st.just("")), max_size=12),
       as_json=st.booleans())
def test_generated_lengths_files(lines: list[str], as_json: bool, tmp_path: pathlib.Path) -> None:
    lengths = tmp_path / "lengths.txt"
    lengths.write_text(json.dumps(lines) if as_json else "\n".join(lines))
    out = tmp_path / "out" / "plan.json"
    out.parent.mkdir(exist_ok=True)
    _fresh(out)
    result = invoke(["plan", "scatter", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "8", "--lengths",
                     lengths, "--time-limit", "5", "-o", out])
    _check(result, {0, 2, 3}, out)
    if result.exit_code == 0:
        assert invoke(["validate", out]).exit_code == 0


DEVICE = {"bf16_tflops": 989, "hbm_gib": 80, "hbm_tb_per_s": 3.35, "devices_per_node": 8,
          "intra_node_gb_per_s": 450, "nic_gb_per_s": 50}


@SETTINGS
@given(changes=st.dictionaries(st.sampled_from(sorted(DEVICE) + ["fp8_tflops", "memory_reserve_gib", "extra"]),
                               numbers, max_size=3))
def test_generated_hardware_profiles(changes: dict, tmp_path: pathlib.Path) -> None:
    spec = {**DEVICE, **changes}
    hw = tmp_path / "hw.yaml"
    hw.write_text(yaml.safe_dump(spec))
    out = tmp_path / "out" / "est.json"
    out.parent.mkdir(exist_ok=True)
    _fresh(out)
    result = invoke(["estimate", "train", "--model", "llama3-8b", "--gpu", hw, "--num-gpus", "8", "--tp", "2", "--pp",
                     "1", "--mbs", "1", "--gbs", "8", "--seq", "4096", "-o", out])
    _check(result, {0, 2, 3}, out)
    bad_float = any(isinstance(v, float) and not math.isfinite(v) for v in changes.values())
    if bad_float or "extra" in changes:
        assert result.exit_code == 2


def _mutate(doc: dict, path: list, value, delete: bool) -> dict:
    node = doc
    for key in path[:-1]:
        node = node[key]
    if delete and isinstance(node, dict):
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return doc


def _leaves(value, prefix: list) -> list[list]:
    if isinstance(value, dict):
        return [p for k in sorted(value) for p in _leaves(value[k], prefix + [k])] or [prefix]
    if isinstance(value, list) and value:
        return [p for i, v in enumerate(value) for p in _leaves(v, prefix + [i])]
    return [prefix]


@SETTINGS
@given(data=st.data(), value=json_values, delete=st.booleans())
def test_generated_plan_documents(data, value, delete: bool, files: dict[str, str], tmp_path: pathlib.Path) -> None:
    doc = json.loads(pathlib.Path(files["scatter_json"]).read_text())
    leaves = [p for p in _leaves(doc, []) if p]
    path = data.draw(st.sampled_from(leaves))
    plan = tmp_path / "edited.json"
    plan.write_text(json.dumps(_mutate(doc, path, value, delete)))
    out = tmp_path / "out" / "result.txt"
    out.parent.mkdir(exist_ok=True)
    for args, allowed in ((["validate", plan], {0, 1, 2}), (["explain", plan], {0, 2}),
                          (["export", plan, "--format", "json"], {0, 2}),
                          (["diff", files["scatter_json"], plan], {0, 1, 2}),
                          (["simulate", plan], {2})):
        _fresh(out)
        result = invoke([*args, "-o", out] if args[0] != "explain" else args)
        _check(result, allowed, out)
    if invoke(["validate", plan]).exit_code != 0:  # export acts only on plans that validate accepts
        _fresh(out)
        assert invoke(["export", plan, "--format", "json", "-o", out]).exit_code == 2
