"""The cross-node traffic lower bound (affinity.traffic_lower_bound): by hand, and never above a real placement."""

import itertools

import numpy as np
import pytest

from planner.experts.affinity import traffic_lower_bound
from planner.experts.evaluate import boundary_cross


def test_bound_by_hand_is_tight():
    # layer 0: A, B (1 token each) both go to C (layer 1, 2 tokens); 2 nodes of capacity 1: C is split half
    # and half, so at best A keeps 0.5 and B keeps 0.5 on-node: 1 of the 2 transition tokens must cross
    trans = np.array([[[0.0, 1.0], [0.0, 1.0]]])  # [L-1, E, E]; layer 1 expert 1 = C, expert 0 unused
    load = np.array([[1.0, 1.0], [0.0, 2.0]])
    assert traffic_lower_bound(trans, load, np.array([1.0, 1.0])) == pytest.approx(1.0)
    layout_0, layout_1 = np.eye(2), np.array([[1.0, 0.0], [0.5, 0.5]])
    assert boundary_cross(trans[0], layout_0, layout_1) == pytest.approx(1.0)  # the bound is reached
    # with room for everything on one node nothing has to cross
    assert traffic_lower_bound(trans, load, np.array([2.0, 2.0])) == pytest.approx(0.0)


def _placements(load: np.ndarray, nodes: int, cap: float):
    """Every whole-expert node assignment [E, N] of one layer with node loads <= cap."""
    for assign in itertools.product(range(nodes), repeat=load.shape[0]):
        share = np.zeros((load.shape[0], nodes))
        share[np.arange(load.shape[0]), assign] = 1.0
        if np.all(load @ share <= cap + 1e-9):
            yield share


@pytest.mark.parametrize("seed", range(6))
def test_bound_never_exceeds_a_feasible_placement(seed):
    rng = np.random.default_rng(seed)
    experts, nodes, layers = 5, 2, 3
    load = rng.integers(1, 6, size=(layers, experts)).astype(float)
    trans = rng.random((layers - 1, experts, experts)) * (rng.random((layers - 1, experts, experts)) < 0.5)
    cap = load.max(axis=1) + load.sum(axis=1) / nodes  # loose enough for whole experts
    lower = traffic_lower_bound(trans, load, cap)
    options = [list(_placements(load[l], nodes, cap[l])) for l in range(layers)]
    best = min(sum(boundary_cross(trans[l], ns[l], ns[l + 1]) for l in range(layers - 1))
               for ns in itertools.product(*options))
    assert 0.0 <= lower <= best + 1e-9
    # fractional placements too: random shares scaled into the capacity
    for _ in range(20):
        ns = []
        for l in range(layers):
            share = rng.dirichlet(np.ones(nodes), size=experts)
            if np.any(load[l] @ share > cap[l]):
                share = np.full((experts, nodes), 1.0 / nodes)
            ns.append(share)
        assert lower <= sum(boundary_cross(trans[l], ns[l], ns[l + 1]) for l in range(layers - 1)) + 1e-9
