"""The Pareto front against the TTFT SLO (`--pareto-axis ttft|both`, planner/serve/front.py): every point a full,
simulated deployment that no other point beats, each equal to the plain plan at its TTFT SLO; the TPOT front keeps its
meaning; both fronts in the plan document, explain, plot and CLI."""

import functools
import json

import pytest
from click.testing import CliRunner

import profiles
from cli import main
from costmodels.errors import SpecError
from costmodels.hardware import ClusterSpec
from planner import plan_serving
from planner.plan import Plan, load_plan
from planner.serve import ServeOptions, ServingWorkload, check, explain
from planner.serve.front import PARETO_FACTORS, non_dominated

QUICK = dict(simulate_requests=300, verify_seeds=2, verify_layouts=1, modes=("colocated",), time_limit_s=600.0)
"""small and fast, with a time limit no point reaches (a point the limit cuts would be left out of the front)"""
GPUS = 4
WL = ServingWorkload(input_len=1000, output_len=100, ttft_s=0.4, tpot_s=0.015)
GOOD = "goodput_tokens_per_s_per_gpu"


def _cluster() -> ClusterSpec:
    return ClusterSpec.homogeneous(profiles.load_device("h100-sxm"), GPUS)


@functools.cache
def fronted() -> Plan:
    """Both fronts (the TTFT-only plan is made through the CLI test and compared with this one)."""
    return plan_serving(profiles.load_model("llama3-8b"), _cluster(), WL,
                        options=ServeOptions(**QUICK, pareto=True, pareto_axis="both"))


def _assert_front(front: list[dict], slo: str) -> None:
    """Sorted by the SLO, strictly more goodput for each looser SLO, and no point beaten by another."""
    assert len(front) >= 2
    slos, goods = [pt[slo] for pt in front], [pt[GOOD] for pt in front]
    assert slos == sorted(slos) and len(set(slos)) == len(slos)
    assert all(a < b for a, b in zip(goods, goods[1:], strict=False))
    for a in front:
        assert not any(b[slo] <= a[slo] and b[GOOD] >= a[GOOD] for b in front if b is not a)


def test_ttft_front_points_are_non_dominated_full_deployments():
    plan = fronted()
    p = plan["predicted"]
    front = p["pareto_ttft"]
    assert check(plan) == []
    _assert_front(front, "ttft_slo_s")
    tried = {round(WL.ttft_s * f, 9) for f in PARETO_FACTORS}
    for pt in front:
        assert round(pt["ttft_slo_s"], 9) in tried and pt["tpot_slo_s"] == WL.tpot_s  # only the TTFT SLO moves
        assert sum(g["gpus"] * g["instances"] for g in pt["groups"]) == pt["gpus"] <= GPUS
        assert pt["simulated_attainment"] >= WL.attainment  # each point passed its own simulated check
        assert 0 < pt["simulated_ttft_s"] <= pt["ttft_slo_s"] and 0 < pt["simulated_tpot_s"] <= pt["tpot_slo_s"]
    base = [pt for pt in front if pt["ttft_slo_s"] == WL.ttft_s]
    assert not base or base[0][GOOD] == p[GOOD]  # the plan itself is the factor-1 point


def test_a_ttft_front_point_equals_the_plain_plan_at_its_slo():
    front = fronted()["predicted"]["pareto_ttft"]
    pt = next(pt for pt in front if pt["ttft_slo_s"] != WL.ttft_s)
    wl = ServingWorkload(input_len=1000, output_len=100, ttft_s=pt["ttft_slo_s"], tpot_s=WL.tpot_s)
    plain = plan_serving(profiles.load_model("llama3-8b"), _cluster(), wl, options=ServeOptions(**QUICK))
    assert plain["decision"]["groups"] == pt["groups"]
    assert plain["predicted"][GOOD] == pt[GOOD] and plain["predicted"]["rate_rps"] == pt["rate_rps"]
    assert plain["simulated"]["attainment"] == pt["simulated_attainment"]


def test_both_axes_and_the_tpot_front_keeps_its_meaning():
    both = fronted()["predicted"]
    _assert_front(both["pareto"], "tpot_slo_s")
    assert all(pt["ttft_slo_s"] == WL.ttft_s for pt in both["pareto"])
    text = explain(fronted())
    assert "pareto TPOT front" in text and "pareto TTFT front" in text
    assert text.count("colocated: ") >= len(both["pareto"]) + len(both["pareto_ttft"])


def test_non_dominated_drops_beaten_points():
    pts = [{"ttft_slo_s": s, GOOD: g} for s, g in ((0.2, 10.0), (0.3, 9.0), (0.4, 12.0), (0.4, 11.0), (0.8, 12.0),
                                                  (0.1, 1.0))]
    kept = [(q["ttft_slo_s"], q[GOOD]) for q in non_dominated(pts, "ttft_slo_s")]
    assert kept == [(0.1, 1.0), (0.2, 10.0), (0.4, 12.0)]


def test_axis_needs_pareto_and_a_known_axis():
    with pytest.raises(SpecError, match="pareto-axis"):
        ServeOptions(pareto_axis="ttft")
    with pytest.raises(SpecError, match="valid: tpot, ttft, both"):
        ServeOptions(pareto=True, pareto_axis="latency")


CLI = ["plan", "serve", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", str(GPUS), "--isl", "1000",
       "--osl", "100", "--ttft-ms", "400", "--tpot-ms", "15", "--modes", "colocated", "--requests", "300",
       "--verify-seeds", "2", "--verify-layouts", "1", "--time-limit", "600"]


def test_cli_writes_and_explains_the_ttft_front(tmp_path):
    path = tmp_path / "plan.json"
    made = CliRunner().invoke(main, CLI + ["--pareto", "--pareto-axis", "ttft", "-o", str(path)])
    assert made.exit_code == 0, made.output
    doc = load_plan(path)  # schema-checked
    assert "pareto" not in doc["predicted"]  # the TTFT front only
    assert doc["predicted"]["pareto_ttft"] == json.loads(fronted().dumps())["predicted"]["pareto_ttft"]
    shown = CliRunner().invoke(main, ["explain", str(path)])
    assert shown.exit_code == 0 and "pareto TTFT front" in shown.output, shown.output
    bad = CliRunner().invoke(main, CLI + ["--pareto-axis", "ttft"])
    assert bad.exit_code == 2 and "--pareto-axis ttft needs --pareto" in bad.output and "Traceback" not in bad.output


def test_plot_places_the_ttft_front():
    pytest.importorskip("matplotlib")
    from planner.plots.serve import _points

    names = [p["name"] for p in _points(fronted().doc)]
    front = fronted()["predicted"]["pareto_ttft"]
    assert [n for n in names if n.startswith("pareto TTFT")] == [f"pareto TTFT {i + 1}" for i in range(len(front))]
