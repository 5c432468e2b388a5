"""On tiny instances the planner's step time equals brute force over all degree multisets and assignments."""

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scatter_specs import SMALL_HBM, TINY, cluster

from costmodels.errors import InfeasibleError
from planner.scatter import ScatterOptions, check, layout, scatter_sequences
from planner.scatter.bounds import top_waste_bound
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
