"""On tiny instances the planner's step time equals brute force over all degree multisets and assignments."""

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scatter_specs import SMALL_HBM, TINY, cluster

from costmodels.errors import InfeasibleError
from planner.scatter import ScatterOptions, assign, check, layout, scatter_sequences
from planner.scatter.bounds import BoundOracle, top_waste_bound
from planner.scatter.request import ScatterRequest, allowed_degrees, build_costs

EXACT = ScatterOptions(relative_gap=0.0, max_evaluations=10_000, exact_assign_max_sequences=10)


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


def brute_force(req: ScatterRequest) -> float:
    table = build_costs(req)
    row = {d: k for k, d in enumerate(table.degrees)}
    n = len(req.lengths)
    best = np.inf
    for degs in partitions(req.units, allowed_degrees(req)):
        slots = layout.place(degs, table.node_units, req.units)
        times = np.array([(table.inter_s if s.spans_nodes else table.intra_s)[row[s.degree]] for s in slots])
        assign = np.array(list(itertools.product(range(len(slots)), repeat=n)))
        loads = np.zeros((len(assign), len(slots)))
        for i in range(n):
            loads[np.arange(len(assign)), assign[:, i]] += times[assign[:, i], i]
        best = min(best, float(loads.max(axis=1).min()))
    return best


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gpus=st.sampled_from([2, 4, 8]), style=st.sampled_from(["ulysses", "ring", "hybrid"]),
       degrees=st.sampled_from(["any", "pow2"]), data=st.data())
def test_plan_equals_brute_force(gpus, style, degrees, data):
    n = data.draw(st.integers(1, 6 if gpus <= 4 else 4))
    lengths = data.draw(st.lists(st.integers(64, 24_000), min_size=n, max_size=n))
    c = cluster(SMALL_HBM, gpus)
    req = ScatterRequest(lengths=tuple(lengths), model=TINY, cluster=c, sp_style=style, degrees=degrees)
    try:
        expected = brute_force(req)
    except InfeasibleError:
        expected = np.inf
    if not np.isfinite(expected):
        with pytest.raises(InfeasibleError, match="sequence"):
            scatter_sequences(lengths, model=TINY, cluster=c, sp_style=style, degrees=degrees, options=EXACT)
        return
    plan = scatter_sequences(lengths, model=TINY, cluster=c, sp_style=style, degrees=degrees, options=EXACT)
    assert check(plan) == []
    assert abs(plan["predicted"]["step_time_s"] - expected) <= 1e-8 * expected
    assert plan["solver"]["status"] == "optimal"
    assert plan["solver"]["bound"] <= plan["predicted"]["step_time_s"] * (1 + 1e-9)


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
    try:
        optimum = brute_force(req)
    except InfeasibleError:
        return
    table = build_costs(req)
    bound = top_waste_bound(table.degrees, table.intra_s, req.units, 1e-9, 10 * optimum, steps=40)
    assert bound <= optimum * (1 + 1e-9)


def multiset_optimum(table, degs: list[int], units: int, n: int) -> float:
    """Brute-force step time of one degree multiset (groups placed by layout.place)."""
    row = {d: k for k, d in enumerate(table.degrees)}
    slots = layout.place(degs, table.node_units, units)
    times = np.array([(table.inter_s if s.spans_nodes else table.intra_s)[row[s.degree]] for s in slots])
    assign = np.array(list(itertools.product(range(len(slots)), repeat=n)))
    loads = np.zeros((len(assign), len(slots)))
    for i in range(n):
        loads[np.arange(len(assign)), assign[:, i]] += times[assign[:, i], i]
    return float(loads.max(axis=1).min())


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
        optimum = multiset_optimum(table, degs, req.units, n)
        counts: dict[int, int] = {}
        for d in degs:
            counts[row[d]] = counts.get(row[d], 0) + 1
        tuned, fam = oracle.tuned_bound(counts)
        for bound in (oracle.multiset_bound(counts), oracle.long_bound(counts, extra=(fam,)), tuned):
            assert bound <= optimum * (1 + 1e-9)


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
            assert price[group_class[g]] * rows[group_class[g]][i] <= min(p * r[i] for p, r in zip(price, rows)) + 1e-12
