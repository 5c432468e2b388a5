"""--moe-stats: the routing skew at each expert-parallel degree read from routing statistics
(planner/serve/moe_skew.py), for the engines' contiguous expert placement, used by estimate serve and plan serve
through one lookup (costmodels.serving.skew_at)."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import profiles
from cli import main
from costmodels.errors import SpecError
from costmodels.hardware import ClusterSpec
from costmodels.routing import RoutingStats, load_stats
from costmodels.serving import skew_at
from planner.experts.synthetic import synth_stats
from planner.serve import ServeOptions, estimate_serving, explain
from planner.serve.moe_skew import placement_skew, stats_skew
from planner.serve.request import check_serve_inputs

EST = ["estimate", "serve", "--model", "mixtral-8x7b", "--gpu", "h100-sxm", "--tp", "4", "--ep", "4", "--batch", "16",
       "--isl", "512", "--osl", "128"]
PLAN = ["plan", "serve", "--model", "mixtral-8x7b", "--gpu", "h100-sxm", "--num-gpus", "8", "--isl", "512",
        "--osl", "128", "--ttft-ms", "2000", "--tpot-ms", "50", "--requests", "200", "--verify-seeds", "2",
        "--verify-layouts", "1", "--modes", "colocated", "--ep", "4"]


def _run(args: list[str]):
    return CliRunner().invoke(main, args)


def _refused(args: list[str], *words: str) -> None:
    r = _run(args)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and all(w in r.output for w in words), r.output


@pytest.fixture(scope="module")
def mixtral():
    return profiles.load_model("mixtral-8x7b")


@pytest.fixture(scope="module")
def skewed(tmp_path_factory, mixtral) -> Path:
    """Zipf-skewed top-2 routing statistics of Mixtral's 32 MoE layers x 8 experts (`parplan trace synth`)."""
    path = tmp_path_factory.mktemp("stats") / "mixtral.json"
    r = _run(["trace", "synth", "--layers", str(mixtral.moe_layers), "--experts", "8", "--top-k", "2", "--skew",
              "1.2", "--tokens", "512", "-o", str(path)])
    assert r.exit_code == 0, r.output
    return path


def _tiny_model(mixtral, layers: int):
    return dataclasses.replace(mixtral, name="tiny-moe", layers=layers)


def test_tiny_stats_against_the_formula_by_hand(mixtral):
    """2 layers x 8 experts, top-2. Layer 0 loads 5,1,1,1 | 0,0,1,1: at ep 2 the ranks get 8 and 2 of 10 slots
    (busiest / mean = 8/5 = 1.6); at ep 4 they get 6,2,0,2 (6/2.5 = 2.4). Layer 1 is balanced (1 at every ep).
    Averaged over the layers: 1.3 at ep 2, 1.7 at ep 4; 1 at ep 1; at ep 8 layer 0's busiest expert holds 5 of
    10 slots (5/1.25 = 4), so (4 + 1) / 2 = 2.5."""
    load = np.array([[5, 1, 1, 1, 0, 0, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1]], dtype=float)
    assert placement_skew(load, 2) == pytest.approx(1.3)
    assert placement_skew(load, 4) == pytest.approx(1.7)
    table = stats_skew(RoutingStats(expert_load=load), _tiny_model(mixtral, 2))
    assert table.by_ep == ((1, 1.0), (2, 1.3), (4, 1.7), (8, 2.5))


def test_balanced_stats_give_skew_one(mixtral):
    load = np.full((mixtral.moe_layers, 8), 64.0)
    assert all(skew == 1.0 for _, skew in stats_skew(RoutingStats(expert_load=load), mixtral).by_ep)


def test_skew_table_lookup_refuses_an_unknown_degree():
    assert skew_at(1.4, 8) == 1.4
    assert skew_at(((1, 1.0), (2, 1.5)), 2) == 1.5
    with pytest.raises(SpecError, match="no value at ep 4"):
        skew_at(((1, 1.0), (2, 1.5)), 4)


def test_estimate_with_stats_equals_estimate_with_the_equivalent_skew(skewed, mixtral):
    """The API path: the step model looks up the table at ep 4; the same skew given by hand gives the same times,
    and the skewed statistics cost more than balanced routing."""
    h100 = profiles.load_device("h100-sxm")
    kw = dict(tp=4, ep=4, batch=16, isl=512, osl=128)
    table = stats_skew(skewed, mixtral)
    assert table.at(1) == 1.0 and table.at(4) > 1.2
    by_stats = estimate_serving(mixtral, h100, moe_stats=skewed, **kw)
    by_hand = estimate_serving(mixtral, h100, moe_skew=table.at(4), **kw)
    balanced = estimate_serving(mixtral, h100, **kw)
    for key in ("prefill_s", "decode_step_s"):
        assert by_stats["predicted"][key] == by_hand["predicted"][key]
        assert by_stats["predicted"][key] > balanced["predicted"][key]
    assert by_stats["inputs"]["moe_skew"] == table.at(4)
    assert by_stats["inputs"]["moe_stats"] == {"digest": load_stats(skewed).digest(),
                                               "skew_by_ep": [list(p) for p in table.by_ep]}
    assert "MoE skew from routing statistics" in explain(by_stats)


def test_estimate_cli_with_stats_matches_the_equivalent_skew(skewed, mixtral, tmp_path):
    table = stats_skew(skewed, mixtral)
    outs = []
    for flags in (["--moe-stats", str(skewed)], ["--moe-skew", repr(table.at(4))]):
        out = tmp_path / f"est{len(outs)}.json"
        r = _run(EST + flags + ["-o", str(out)])
        assert r.exit_code == 0, r.output
        outs.append(json.loads(out.read_text()))
    assert outs[0]["predicted"]["decode_step_s"] == outs[1]["predicted"]["decode_step_s"]
    assert outs[0]["inputs"]["moe_stats"]["digest"] == load_stats(skewed).digest()
    assert _run(["validate", str(tmp_path / "est0.json")]).exit_code == 0


def test_plan_cli_uses_the_skew_at_each_degree(skewed, mixtral, tmp_path):
    """plan serve --ep 4 with statistics plans exactly as with the table's ep-4 value by hand; the plan records the
    statistics' digest and table, explain shows them, and the same inputs give the same bytes."""
    table = stats_skew(skewed, mixtral)
    paths = [tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json", tmp_path / "d.json"]
    for path, flags in zip(paths, (["--moe-stats", str(skewed)], ["--moe-stats", str(skewed)],
                                   ["--moe-skew", repr(table.at(4))], []), strict=True):
        r = _run(PLAN + flags + ["-o", str(path)])
        assert r.exit_code == 0, r.output
    assert paths[0].read_bytes() == paths[1].read_bytes()
    stats_plan, hand_plan, balanced = (json.loads(p.read_text()) for p in (paths[0], paths[2], paths[3]))
    assert stats_plan["decision"] == hand_plan["decision"]
    assert stats_plan["predicted"]["rate_rps"] == hand_plan["predicted"]["rate_rps"]
    assert stats_plan["predicted"]["rate_rps"] < balanced["predicted"]["rate_rps"]
    replay = _run(["simulate", str(paths[0]), "--requests", "100"])
    assert replay.exit_code == 0 and "attainment" in replay.output, replay.output
    options = stats_plan["inputs"]["options"]
    assert options["moe_stats_digest"] == load_stats(skewed).digest()
    assert options["moe_skew_by_ep"] == [list(p) for p in table.by_ep] and options["moe_skew"] == 1.0
    text = _run(["explain", str(paths[0])]).output
    assert f"routing statistics {options['moe_stats_digest'][:12]}" in text and f"ep 4: {table.at(4):.3f}*" in text
    assert _run(["validate", str(paths[0])]).exit_code == 0


def test_bad_statistics_are_refused_naming_the_file(skewed, tmp_path):
    missing = tmp_path / "none.json"
    _refused(EST + ["--moe-stats", str(missing)], str(missing), "no such file")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    _refused(EST + ["--moe-stats", str(bad)], str(bad), "malformed JSON")
    _refused(EST + ["--moe-stats", str(skewed), "--moe-skew", "1.2"], "moe-stats", "not both")
    _refused(PLAN + ["--moe-stats", str(skewed), "--moe-skew", "1"], "moe-stats", "not both")


@pytest.mark.parametrize("synth, words", [
    (["--layers", "4", "--experts", "8", "--top-k", "2"], ["has 4 layers", "32 MoE layers"]),
    (["--layers", "32", "--experts", "16", "--top-k", "2"], ["16 experts per layer", "has 8"]),
    (["--layers", "32", "--experts", "8", "--top-k", "1"], ["top-1 routing", "top-2"]),
])
def test_statistics_of_another_model_are_refused(synth, words, tmp_path):
    path = tmp_path / "other.json"
    assert _run(["trace", "synth", *synth, "--skew", "1.2", "--tokens", "64", "-o", str(path)]).exit_code == 0
    _refused(EST + ["--moe-stats", str(path)], str(path), *words)


def test_a_smaller_top_k_is_refused_without_transitions(mixtral, tmp_path):
    """Without transitions the top-k shows in the loads: at top-2 no expert receives more than half the slots."""
    stats = synth_stats(layers=mixtral.moe_layers, experts=8, top_k=1, skew=3.0, affinity=0.0, seed=0, tokens=64)
    path = tmp_path / "top1.json"
    RoutingStats(expert_load=stats.expert_load).write(path)
    _refused(EST + ["--moe-stats", str(path)], str(path), "smaller top-k")


def test_a_dense_model_is_refused(skewed):
    _refused(["estimate", "serve", "--model", "llama3.1-8b", "--gpu", "h100-sxm", "--tp", "1", "--batch", "8",
              "--isl", "512", "--osl", "128", "--moe-stats", str(skewed)], "moe-stats", "dense")
    _refused(["plan", "serve", "--model", "llama3.1-8b", "--gpu", "h100-sxm", "--num-gpus", "8", "--isl", "512",
              "--osl", "128", "--ttft-ms", "500", "--tpot-ms", "20", "--moe-stats", str(skewed)], "moe-stats", "dense")


def test_api_options_need_a_complete_table(mixtral):
    cluster = ClusterSpec.homogeneous(profiles.load_device("h100-sxm"), 8)
    with pytest.raises(SpecError, match="not both"):
        ServeOptions(moe_skew=1.5, moe_skew_by_ep=((1, 1.0), (2, 1.2)))
    with pytest.raises(SpecError, match="no value at ep 4, 8"):
        check_serve_inputs(mixtral, cluster, ServeOptions(moe_skew_by_ep=((1, 1.0), (2, 1.2))))
    with pytest.raises(SpecError, match="exceeds"):
        check_serve_inputs(mixtral, cluster, ServeOptions(moe_skew_by_ep=((1, 1.0), (2, 2.5), (4, 1.0), (8, 1.0))))
    # a plan's JSON gives lists: they come back as the same table
    options = ServeOptions(moe_skew_by_ep=[[2, 1.2], [1, 1.0], [4, 1.5], [8, 2.0]])
    assert options.skew == ((1, 1.0), (2, 1.2), (4, 1.5), (8, 2.0))
    check_serve_inputs(mixtral, cluster, options)


def test_a_trace_through_trace_stats_gives_the_hand_computed_skew(mixtral, tmp_path):
    """Every token of every layer routed to experts 0 and 1 (of 8, top-2): at ep 2 and ep 4 the rank holding both
    gets every slot (busiest / mean = ep: 2 and 4); at ep 8 each of two ranks gets half (8 / 2 = 4). `trace stats`
    aggregates the per-token trace (NPZ statistics), and estimate serve reads the skew at its ep."""
    ids = np.tile(np.array([0, 1]), (mixtral.moe_layers, 16, 1))
    trace, stats = tmp_path / "trace.json", tmp_path / "stats.npz"
    trace.write_text(json.dumps({"expert_ids": ids.tolist(), "num_experts": 8}))
    assert _run(["trace", "stats", str(trace), "-o", str(stats)]).exit_code == 0
    assert stats_skew(stats, mixtral).by_ep == ((1, 1.0), (2, 2.0), (4, 4.0), (8, 4.0))
    out = tmp_path / "est.json"
    at_ep2 = [("2" if arg == "4" else arg) for arg in EST]  # --tp 2 --ep 2
    r = _run(at_ep2 + ["--moe-stats", str(stats), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text())["inputs"]["moe_skew"] == 2.0
