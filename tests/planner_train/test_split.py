"""The split DP and ILP against brute force over every contiguous split (tiny instances)."""

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.train.split import SplitProblem, best_split_dp, solve_split_ilp
from solvers.result import SolverOptions

GiB = float(2**30)


def problem(seed: int, layers: int, stages: int, m: int, pools: int = 1) -> SplitProblem:
    rng = np.random.default_rng(seed)
    speed = rng.uniform(1, 3, (pools, 1))
    ends = np.array([0.5, 2 * GiB, 0.1 * GiB, 0.3, 0.05])
    return SplitProblem(
        layer_time_s=rng.uniform(1, 3, (1, layers)) * speed,
        layer_static_bytes=rng.uniform(1, 3, (pools, layers)) * GiB,
        layer_activation_bytes=rng.uniform(0, 1, (pools, layers)) * GiB,
        layer_working_bytes=rng.choice([0.0, 0.5], (pools, layers)) * GiB,
        layer_sync_s=rng.uniform(0, 2, (pools, layers)), layer_optimizer_s=rng.uniform(0, 0.2, (pools, layers)),
        first=np.vstack([ends] * pools), last=np.vstack([ends * 2] * pools),
        stage_pool=tuple(sorted(int(k) for k in rng.integers(0, pools, stages))),
        in_flight=tuple(float(min(stages - s, m)) for s in range(stages)),
        p2p_time_s=tuple(0.1 if s < stages - 1 else 0.0 for s in range(stages)),
        memory_cap_bytes=rng.uniform(5, 15, pools) * GiB, dp_overlap=np.full(pools, 0.8), microbatches=m)


def all_splits(layers: int, stages: int):
    for cuts in itertools.combinations(range(1, layers), stages - 1):
        b = (0, *cuts, layers)
        yield tuple(b[i + 1] - b[i] for i in range(stages))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), layers=st.integers(2, 7), stages=st.integers(1, 4), m=st.integers(1, 6),
       pools=st.integers(1, 2))
def test_dp_and_ilp_match_brute_force(seed, layers, stages, m, pools):
    stages = min(stages, layers)
    prob = problem(seed, layers, stages, m, pools)
    feasible = [s for s in all_splits(layers, stages) if prob.fits(s)]
    dp = best_split_dp(prob)
    ilp = solve_split_ilp(prob, SolverOptions(relative_gap=0.0))
    if not feasible:
        assert dp is None
        assert not ilp.solve.status.has_solution
        return
    best_obj = min(prob.objective(s) for s in feasible)
    best_slowest = min(max(prob.stage_times(s)) for s in feasible)
    split, slowest = dp
    assert prob.fits(split) and abs(slowest - best_slowest) < 1e-9
    assert prob.lower_bound(slowest) <= best_obj + 1e-9  # the DP's bound is valid
    assert prob.fits(ilp.stage_layers) and abs(ilp.objective_s - best_obj) < 1e-6 * best_obj
    assert abs(ilp.solve.objective - best_obj) < 1e-6 * best_obj  # the ILP objective is the step-time formula



@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), dense=st.integers(1, 4), moe=st.integers(1, 6), stages=st.integers(2, 4),
       m=st.integers(1, 8))
def test_ilp_with_runs_of_identical_layers(seed, dense, moe, stages, m):
    """Dense-then-MoE: two runs of identical layers, aggregated by the ILP, against brute force."""
    layers = dense + moe
    stages = min(stages, layers)
    prob = problem(seed, layers, stages, m)
    for arr in (prob.layer_time_s, prob.layer_static_bytes, prob.layer_activation_bytes, prob.layer_working_bytes,
                prob.layer_sync_s, prob.layer_optimizer_s):
        arr[:, :dense] = arr[:, :1]
        arr[:, dense:] = arr[:, dense:dense + 1]
    feasible = [s for s in all_splits(layers, stages) if prob.fits(s)]
    ilp = solve_split_ilp(prob, SolverOptions(relative_gap=0.0))
    if not feasible:
        assert not ilp.solve.status.has_solution
        return
    best = min(prob.objective(s) for s in feasible)
    assert prob.fits(ilp.stage_layers) and abs(ilp.objective_s - best) < 1e-6 * best
