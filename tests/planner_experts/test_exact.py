"""Exactness of the default path against oracles that share no code with the planner.

Oracles (written here from the problem statement, importing nothing from planner.experts):
  * placement brute force: every placement with <= S experts per GPU, each valued by Hall's theorem
    (the best split's busiest GPU = max over expert sets X of a(X) / |GPUs holding X|); tiny sizes only;
  * component DP: the optimum over partitions of the experts into groups of m experts on k GPUs with
    m <= (S - 1) k + 1 of max a(group) / k, by memoised recursion over (experts left, GPUs left). It
    equals the brute force wherever both run (checked below), and reaches sizes past E x G = 48.
"""

import functools
import itertools
import math
import time

import numpy as np
import pytest

from costmodels.routing import RoutingStats
from planner.experts import check, place_experts

EPLB = [[90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86], [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27]]


def _hall(load, holders, gpus_of):
    best = 0.0
    for size in range(1, len(load) + 1):
        for xs in itertools.combinations(range(len(load)), size):
            gpus = set().union(*(holders[e] for e in xs))
            best = max(best, sum(load[e] for e in xs) / len(gpus))
    return best


def brute_force(load, gpus, slots):
    best = math.inf
    choices = [c for r in range(1, slots + 1) for c in itertools.combinations(range(len(load)), r)]
    for combo in itertools.combinations_with_replacement(choices, gpus):  # GPUs are interchangeable
        holders = [{g for g in range(gpus) if e in combo[g]} for e in range(len(load))]
        if all(holders):
            best = min(best, _hall(load, holders, gpus))
    return best


def component_dp(load, gpus, slots):
    n = len(load)

    @functools.cache
    def best(mask: int, left: int) -> float:
        if mask == 0:
            return 0.0
        low = mask & -mask
        rest, out, sub = mask ^ low, math.inf, mask ^ low
        while True:
            group = sub | low
            members = [e for e in range(n) if group >> e & 1]
            m, a = len(members), sum(load[e] for e in members)
            fewest = 1 if m == 1 else (math.ceil((m - 1) / (slots - 1)) if slots > 1 else left + 1)
            for k in range(fewest, left + 1):
                out = min(out, max(a / k, best(mask ^ group, left - k)))
            if sub == 0:
                break
            sub = (sub - 1) & rest
        return out

    return best((1 << n) - 1, gpus)


def _plan(load, gpus, slots, per_node=None):
    stats = RoutingStats(expert_load=np.atleast_2d(np.array(load, dtype=float)))
    plan = place_experts(stats, num_gpus=gpus, gpus_per_node=per_node or gpus, slots_per_gpu=slots)
    assert check(plan) == []
    return plan


def test_eplb_readme_example_is_solved_exactly_and_fast():
    start = time.perf_counter()
    plan = _plan(EPLB, 8, 2, per_node=4)
    wall = time.perf_counter() - start
    assert plan["predicted"]["layer_max_gpu_tokens"] == pytest.approx([129.25, 146.0], abs=1e-9)
    assert plan["solver"]["gap"] <= 1e-9 and plan["solver"]["status"] == "optimal"
    assert [layer["method"] for layer in plan["solver"]["layers"]] == ["exact", "exact"]
    assert wall < 2.0


@pytest.mark.parametrize("load, gpus, want", [([63, 16, 22, 17, 37, 99, 680, 6, 81], 8, 127.625),
                                              ([48, 1237, 147, 69, 289, 398, 119, 97, 62, 163], 7, 386.0)])
def test_issue_17_instances_are_optimal(load, gpus, want):
    start = time.perf_counter()
    plan = _plan(load, gpus, 2)
    assert time.perf_counter() - start < 2.0
    assert plan["predicted"]["objective"] == pytest.approx(want, rel=1e-9)
    assert plan["solver"]["gap"] <= 1e-9
    assert component_dp(load, gpus, 2) == pytest.approx(want)


def test_component_dp_equals_placement_brute_force():
    rng = np.random.default_rng(7)
    for _ in range(12):
        gpus, slots = int(rng.integers(2, 4)), int(rng.integers(1, 3))
        experts = int(rng.integers(2, min(5, gpus * slots) + 1))
        load = rng.integers(0, 30, size=experts).tolist()
        assert component_dp(load, gpus, slots) == pytest.approx(brute_force(load, gpus, slots))


def _instances(count: int, seed: int):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        gpus, slots = int(rng.integers(2, 9)), int(rng.integers(1, 4))
        experts = int(rng.integers(2, min(10, gpus * slots) + 1))
        if slots > experts:
            continue
        skew = float(rng.choice([0.0, 1.0, 2.0]))
        load = np.floor(rng.integers(20, 200) * rng.random(experts) ** (1 + skew)).astype(int) + int(rng.integers(0, 3))
        out.append((load.tolist(), gpus, slots))
    return out


def test_default_path_equals_the_oracle_on_100_random_instances():
    cases = _instances(100, seed=17)
    assert sum(len(load) * gpus > 48 for load, gpus, _ in cases) >= 10
    for load, gpus, slots in cases:
        plan = _plan(load, gpus, slots, per_node=max(1, gpus // 2) if gpus % 2 == 0 else gpus)
        want = component_dp(load, gpus, slots)
        assert plan["predicted"]["objective"] == pytest.approx(want, rel=1e-7, abs=1e-9), (load, gpus, slots)
        assert plan["solver"]["bound"] <= want * (1 + 1e-8) + 1e-9


def test_method_on_cli_and_api(tmp_path):
    from click.testing import CliRunner

    from cli import main
    from planner.plan import load_plan

    stats = tmp_path / "eplb.json"
    stats.write_text('{"expert_load": ' + str(EPLB) + "}")
    base = ["plan", "experts", "--stats", str(stats), "--num-gpus", "8", "--gpus-per-node", "4", "--slots-per-gpu", "2"]
    for method in ("exact", "heuristic"):
        out = tmp_path / f"{method}.json"
        result = CliRunner().invoke(main, base + ["--method", method, "-o", str(out)])
        assert result.exit_code == 0, result.output
        api = place_experts(str(stats), num_gpus=8, gpus_per_node=4, slots_per_gpu=2, method=method)
        assert out.read_text() == api.dumps()
        assert {layer["method"] for layer in load_plan(out)["solver"]["layers"]} == {method}
    heuristic = load_plan(tmp_path / "heuristic.json")
    assert heuristic["predicted"]["objective"] >= 275.25 - 1e-9  # no placement beats the optimum
    bad = CliRunner().invoke(main, base + ["--method", "exact", "--node-limit", "1"])
    assert bad.exit_code == 2 and "node_limit" in bad.output
    bad = CliRunner().invoke(main, base + ["--method", "fastest"])
    assert bad.exit_code == 2 and "auto" in bad.output


def test_time_limit_is_obeyed_and_reported():
    from planner.experts.synthetic import synth_stats
    from solvers import SolverOptions

    stats = synth_stats(layers=4, experts=30, top_k=4, skew=1.2, affinity=0.5, seed=1, tokens=2048, clusters=4)
    start = time.perf_counter()
    plan = place_experts(stats, num_gpus=12, gpus_per_node=4, slots_per_gpu=3, method="exact",
                         options=SolverOptions(time_limit_s=2.0))
    wall = time.perf_counter() - start
    assert check(plan) == []
    assert wall <= 2.0 * 1.1
    assert plan["solver"]["status"] == "time_limit" and plan["solver"]["time_limit_hit"] is True
    assert all(layer["gap"] >= 0 for layer in plan["solver"]["layers"])
