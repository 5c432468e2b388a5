"""`plan train --objective robust`: the fastest 90th-percentile step time, checked by validate."""

import json
from dataclasses import dataclass

import pytest

import planner
import profiles
from costmodels.errors import SpecError
from costmodels.hardware import ClusterSpec
from costmodels.parallel import ParallelConfig, TrainingWorkload
from planner.confidence.robust import pessimistic, robust_rank, robust_why_lost
from planner.plan import Plan
from planner.train import TrainOptions


@dataclass
class Cand:
    step_time_s: float
    order: int
    config: ParallelConfig


def _specs():
    return (profiles.load_model("llama3-8b"), ClusterSpec.homogeneous(profiles.load_device("h100-sxm"), 16),
            TrainingWorkload(global_batch=32, seq_len=4096))


def test_robust_rank_prefers_the_supported_regime_when_times_are_close():
    model, cluster, workload = _specs()
    supported = ParallelConfig(dp=16, zero=1)     # megatron-zero1: calibration rows on h100-sxm
    unsupported = ParallelConfig(dp=16, zero=0)   # megatron-zero0: no rows -> the wider prior
    fast_but_unsure = Cand(1.00, 0, unsupported)
    sure = Cand(1.02, 1, supported)
    ranked, note = robust_rank(model, cluster, workload, [fast_but_unsure, sure], (0, 1))
    assert ranked[0] is sure and note["proven"]
    assert pessimistic(model, cluster, workload, supported, 1.02) < pessimistic(model, cluster, workload,
                                                                                  unsupported, 1.00)
    # far enough apart, the expected winner stays the robust winner
    ranked, _ = robust_rank(model, cluster, workload, [Cand(0.5, 0, unsupported), sure], (0, 1))
    assert ranked[0].config == unsupported
    assert robust_why_lost(1.0, 1.03, 1.0, 0.99) == "+3.0% 90th-percentile step time (-1.0% expected)"


def test_plan_train_robust_vs_expected():
    model, cluster, workload = _specs()
    expected = planner.plan_training(model, cluster, workload)
    robust = planner.plan_training(model, cluster, workload, options=TrainOptions(objective="robust"))
    e_p, r_p = expected["predicted"], robust["predicted"]
    # each objective wins on its own measure
    assert e_p["step_time_s"] <= r_p["step_time_s"] * (1 + 1e-9)
    assert r_p["interval"]["step_time_s"]["high"] <= e_p["interval"]["step_time_s"]["high"] * (1 + 1e-9)
    note = robust["solver"]["robust"]
    assert note["objective"] == "robust" and note["pessimistic_step_time_s"] == pytest.approx(
        r_p["interval"]["step_time_s"]["high"])
    assert all("90th-percentile" in a["why_lost"] and "pessimistic_step_time_s" in a for a in robust["alternatives"])
    assert robust["inputs"]["options"]["objective"] == "robust"
    assert planner.validate_plan(robust) == [] and planner.validate_plan(expected) == []


def test_unknown_objective_is_a_spec_error():
    with pytest.raises(SpecError, match="objective"):
        TrainOptions(objective="optimistic")


def test_plan_serve_robust_keeps_the_pessimistic_latency_inside_the_slo():
    from planner.serve import ServeOptions, ServingWorkload

    model = profiles.load_model("llama3.1-70b")
    cluster = ClusterSpec.homogeneous(profiles.load_device("h100-sxm"), 16)
    workload = ServingWorkload(input_len=2000, output_len=300, ttft_s=1.5, tpot_s=0.05)
    plans = {robust: planner.plan_serving(model, cluster, workload,
                                          options=ServeOptions(engine="legacy", robust=robust, simulate_requests=400))
             for robust in (False, True)}
    robust = plans[True]
    note = robust["predicted"]["robust"]
    g = note["latency_factor"]
    assert g > 1 and note["ttft_slo_s"] == 1.5 and note["tpot_slo_s"] == 0.05
    assert robust["inputs"]["workload"]["tpot_s"] == pytest.approx(0.05 / g)
    # the upper end of the 80 % interval (the 90th-percentile latency) stays inside the user's SLOs
    assert robust["predicted"]["interval"]["tpot_s"]["high"] <= 0.05 * (1 + 1e-6)
    assert robust["predicted"]["interval"]["ttft_s"]["high"] <= 1.5 * (1 + 1e-6)
    assert (robust["predicted"]["goodput_tokens_per_s_per_gpu"]
            <= plans[False]["predicted"]["goodput_tokens_per_s_per_gpu"] * (1 + 1e-9))
    assert planner.validate_plan(robust) == []
    plan = plans[False]
    for alt in plan["alternatives"]:
        if "goodput_tokens_per_s_per_gpu" in alt:
            better = alt["goodput_tokens_per_s_per_gpu"] > plan["predicted"]["goodput_tokens_per_s_per_gpu"]
            assert (alt["probability_better"] > 0.5) == better
            assert alt["within_noise"] == (alt["probability_better"] >= 0.1)
    doc = json.loads(robust.dumps())
    doc["predicted"]["robust"]["tpot_slo_s"] = 0.1
    assert any("tpot" in p for p in planner.validate_plan(Plan(doc)))


def test_cli_objective_robust_equals_the_api(tmp_path):
    from click.testing import CliRunner

    from cli import main

    out = tmp_path / "robust.json"
    result = CliRunner().invoke(main, ["plan", "train", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus",
                                       "16", "--gbs", "32", "--seq", "4096", "--objective", "robust", "-o", str(out)])
    assert result.exit_code == 0, result.output
    model, cluster, workload = _specs()
    api = planner.plan_training(model, cluster, workload, options=TrainOptions(objective="robust"))
    assert out.read_text() == api.dumps()
    assert json.loads(out.read_text())["inputs"]["options"]["objective"] == "robust"
    bad = CliRunner().invoke(main, ["plan", "train", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "16",
                                    "--gbs", "32", "--seq", "4096", "--objective", "fastest"])
    assert bad.exit_code == 2 and "robust" in bad.output
