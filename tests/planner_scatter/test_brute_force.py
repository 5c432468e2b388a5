"""Against an independent brute-force oracle (oracle.py: own layout and costing from the public cost functions,
nothing from planner.scatter), on instances small enough to enumerate in well under a second: the planner's
bound never exceeds the true optimum, its plan never beats it, and it reaches the optimum within its gap
(zero gap: exactly) under both exact and default options."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import optimum
from scatter_specs import SMALL_HBM, TINY, cluster

from costmodels.errors import InfeasibleError
from planner.scatter import ScatterOptions, assign, check, scatter_sequences
from planner.scatter.bounds import BoundOracle, top_waste_bound
from planner.scatter.request import ScatterRequest, allowed_degrees, build_costs

EXACT = ScatterOptions(relative_gap=0.0, max_evaluations=10_000, exact_assign_max_sequences=10)
DEFAULT = ScatterOptions()
RTOL = 1e-8
"""plan documents keep 9 significant digits"""


def partitions(total, degrees):
    if total == 0:
        yield []
        return
    if not degrees:
        return
    d, rest = degrees[-1], degrees[:-1]
    for c in range(total // d, -1, -1):
        for tail in partitions(total - c * d, rest):
            yield [d] * c + tail


def _instance(data, gpus: int, max_small: int, max_large: int) -> list[int]:
    n = data.draw(st.integers(1, max_small if gpus <= 4 else max_large))
    return data.draw(st.lists(st.integers(64, 24_000), min_size=n, max_size=n))


def _against_oracle(lengths, c, style: str, degrees: str, options: ScatterOptions) -> None:
    expected = optimum(lengths, model=TINY, cluster=c, style=style, degrees=degrees)
    if not np.isfinite(expected):
        with pytest.raises(InfeasibleError, match="sequence"):
            scatter_sequences(lengths, model=TINY, cluster=c, sp_style=style, degrees=degrees, options=options)
        return
    plan = scatter_sequences(lengths, model=TINY, cluster=c, sp_style=style, degrees=degrees, options=options,
                             time_limit_s=60)
    assert check(plan) == []
    step, solver = plan["predicted"]["step_time_s"], plan["solver"]  # rounded to 9 significant digits: RTOL
    assert solver["status"] != "time_limit"
    assert step >= expected * (1 - RTOL), "the plan beats the true optimum: the costing disagrees with the formula"
    assert solver["bound"] <= expected * (1 + RTOL), "the reported bound is above the true optimum"
    assert step <= expected * (1 + options.relative_gap) * (1 + RTOL), "the plan misses its gap target"
    if options.relative_gap == 0:
        assert solver["status"] == "optimal"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gpus=st.sampled_from([2, 4, 8]), style=st.sampled_from(["ulysses", "ring", "hybrid"]),
       degrees=st.sampled_from(["any", "pow2"]), data=st.data())
def test_exact_options_equal_the_oracle(gpus, style, degrees, data):
    _against_oracle(_instance(data, gpus, 8, 6), cluster(SMALL_HBM, gpus), style, degrees, EXACT)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gpus=st.sampled_from([2, 4, 8]), style=st.sampled_from(["ulysses", "ring", "hybrid"]),
       degrees=st.sampled_from(["any", "pow2"]), data=st.data())
def test_default_options_within_their_gap_of_the_oracle(gpus, style, degrees, data):
    _against_oracle(_instance(data, gpus, 12, 10), cluster(SMALL_HBM, gpus), style, degrees, DEFAULT)


@pytest.mark.parametrize("style", ["ulysses", "ring", "hybrid"])
def test_default_options_on_four_nodes_against_the_oracle(style):
    """16 GPUs on 4 nodes of 4: layouts with groups spanning nodes, and whole-node groups."""
    lengths = [23_000, 17_500, 9_000, 4_100, 2_050, 700]
    _against_oracle(lengths, cluster(SMALL_HBM, 16), style, "any", DEFAULT)


@settings(max_examples=10, deadline=None)
@given(lengths=st.lists(st.integers(64, 30_000), min_size=2, max_size=5))
def test_more_gpus_never_slower(lengths):
    small = scatter_sequences(lengths, model=TINY, cluster=cluster(SMALL_HBM, 4), options=EXACT)
    large = scatter_sequences(lengths, model=TINY, cluster=cluster(SMALL_HBM, 8), options=EXACT)
    assert large["predicted"]["step_time_s"] <= small["predicted"]["step_time_s"] * (1 + 1e-9)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gpus=st.sampled_from([2, 4, 8]), style=st.sampled_from(["ulysses", "ring"]), data=st.data())
def test_top_waste_bound_is_below_brute_force(gpus, style, data):
    n = data.draw(st.integers(1, 6 if gpus <= 4 else 4))
    lengths = data.draw(st.lists(st.integers(64, 40_000), min_size=n, max_size=n))
    req = ScatterRequest(lengths=tuple(lengths), model=TINY, cluster=cluster(SMALL_HBM, gpus), sp_style=style)
    best = optimum(lengths, model=TINY, cluster=req.cluster, style=style)
    if not np.isfinite(best):
        return
    table = build_costs(req)
    bound = top_waste_bound(table.degrees, table.intra_s, req.units, 1e-9, 10 * best, steps=40)
    assert bound <= best * (1 + 1e-9)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gpus=st.sampled_from([4, 8]), style=st.sampled_from(["ulysses", "ring"]), data=st.data())
def test_multiset_bounds_are_below_each_multisets_optimum(gpus, style, data):
    """Every per-multiset bound the search keeps as a floor (plain, long sequences placed, tuned weights)
    is at most that multiset's brute-force optimum, so their minimum bounds every plan."""
    n = data.draw(st.integers(2, 5 if gpus <= 4 else 4))
    lengths = data.draw(st.lists(st.integers(64, 40_000), min_size=n, max_size=n))
    req = ScatterRequest(lengths=tuple(lengths), model=TINY, cluster=cluster(SMALL_HBM, gpus), sp_style=style)
    table = build_costs(req)
    longest = tuple(int(i) for i in np.argsort(-np.asarray(lengths), kind="stable")[:data.draw(st.integers(0, 3))])
    oracle = BoundOracle(table.degrees, table.intra_s, longest)
    row = {d: k for k, d in enumerate(table.degrees)}
    for degs in partitions(req.units, allowed_degrees(req)):
        best = optimum(lengths, model=TINY, cluster=req.cluster, style=style, multiset=degs)
        counts: dict[int, int] = {}
        for d in degs:
            counts[row[d]] = counts.get(row[d], 0) + 1
        tuned, fam = oracle.tuned_bound(counts)
        for bound in (oracle.multiset_bound(counts), oracle.long_bound(counts, extra=(fam,)), tuned):
            assert bound <= best * (1 + 1e-9)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_packed_assignment_is_complete_and_follows_prices_when_classes_have_room(data):
    """`packed` assigns every sequence once, with loads equal to its groups' sums; when every class has room
    for the whole batch, each sequence sits on a class of least price · time."""
    n_classes = data.draw(st.integers(1, 3))
    group_class = list(range(n_classes)) + data.draw(st.lists(st.integers(0, n_classes - 1), max_size=4))
    n = data.draw(st.integers(1, 12))
    rows = [data.draw(st.lists(st.floats(0.1, 10.0), min_size=n, max_size=n)) for _ in range(n_classes)]
    price = data.draw(st.lists(st.floats(0.1, 5.0), min_size=n_classes, max_size=n_classes))
    roomy = data.draw(st.booleans())
    limit = 10.0 * n + 1.0 if roomy else data.draw(st.floats(10.0, 40.0))
    order = sorted(range(n), key=lambda i: -min(r[i] for r in rows))
    where, loads = assign.packed(order, group_class, rows, price, limit)
    assert len(where) == n and all(0 <= g < len(group_class) for g in where)
    expect = [0.0] * len(group_class)
    for i, g in enumerate(where):
        expect[g] += rows[group_class[g]][i]
    assert np.allclose(loads, expect)
    if roomy:
        for i, g in enumerate(where):
            cheapest = min(p * r[i] for p, r in zip(price, rows, strict=True))
            assert price[group_class[g]] * rows[group_class[g]][i] <= cheapest + 1e-12
