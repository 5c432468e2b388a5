"""DeepSeek-V3 scale quality bars (slow: run by `make bench`)."""

import time

import numpy as np
import pytest

from planner.experts import check, place_experts
from planner.experts.heuristic import LOAD_TOLERANCE
from planner.experts.synthetic import synth_stats


@pytest.mark.slow
def test_deepseek_v3_scale(tmp_path):
    path = tmp_path / "ds.npz"
    synth_stats(layers=58, experts=256, top_k=8, skew=1.2, affinity=0.9, seed=0, tokens=4096).write(path)
    start = time.perf_counter()
    plan = place_experts(str(path), num_gpus=64, gpus_per_node=8, slots_per_gpu=5)
    wall = time.perf_counter() - start
    pred, base = plan["predicted"], plan["baselines"]
    assert check(plan) == []
    average = float(np.load(path)["expert_load"].sum()) / 64  # every GPU at the mean: a bound computed here
    assert pred["busiest_gpu_tokens_total"] <= average * 1.01
    assert pred["busiest_gpu_tokens_total"] < base["greedy_replicate"]["busiest_gpu_tokens_total"]
    assert pred["cross_node_tokens"] <= 0.6 * base["contiguous"]["cross_node_tokens"]
    assert wall <= 60 * 2  # 60 s on an idle 2-core machine; slack for a shared one


@pytest.mark.parametrize("family", ["permuted", "none"])
def test_deepseek_width_at_reduced_layers(tmp_path, family):
    """Default suite: DeepSeek-V3 width (256 experts, 64 GPUs in 8 nodes, 5 slots), 6 layers."""
    path = tmp_path / f"{family}.npz"
    stats = synth_stats(layers=6, experts=256, top_k=8, skew=1.2, affinity=0.9, seed=1, tokens=2048, family=family)
    stats.write(path)
    plan = place_experts(str(path), num_gpus=64, gpus_per_node=8, slots_per_gpu=5)
    pred, base = plan["predicted"], plan["baselines"]
    assert check(plan) == []
    average = stats.expert_load.sum(axis=1) / 64  # the optimum here: E <= (S-1) G + 1 (groups.py, Lemma 2)
    # method auto may give up LOAD_TOLERANCE of a layer's load for cross-node traffic, never more
    assert np.all(np.array(pred["layer_max_gpu_tokens"]) <= average * (1 + LOAD_TOLERANCE) + 1e-9)
    assert np.all(np.array(pred["layer_max_gpu_tokens"]) >= average * (1 - 1e-9))
    assert pred["busiest_gpu_tokens_total"] <= base["greedy_replicate"]["busiest_gpu_tokens_total"]
    if family == "none":
        assert pred["affinity_found"] is False
    else:
        assert pred["affinity_found"] is True
        assert pred["cross_node_tokens"] <= 0.75 * base["contiguous"]["cross_node_tokens"]


def test_time_limit_at_deepseek_width():
    """The planner call obeys --time-limit within 10 % at DeepSeek-V3 width (reading and writing files aside)."""
    import time

    from solvers import SolverOptions

    stats = synth_stats(layers=20, experts=256, top_k=8, skew=1.2, affinity=0.9, seed=2, tokens=2048,
                        family="clustered")
    start = time.perf_counter()
    plan = place_experts(stats, num_gpus=64, gpus_per_node=8, slots_per_gpu=5, options=SolverOptions(time_limit_s=3))
    wall = time.perf_counter() - start
    # within 10 % on a quiet machine (benchmarks/results/experts.md); the default suite runs two tests at once on
    # two cores, so the slices between deadline checks stretch: 20 % here keeps the test about the limit, not load
    assert wall <= 3 * 1.2
    assert plan["solver"]["time_limit_hit"] == (plan["solver"]["status"] == "time_limit")
    assert plan["predicted"]["busiest_gpu_tokens_total"] <= plan["baselines"]["greedy_replicate"][
        "busiest_gpu_tokens_total"]
