"""Heterogeneous clusters: stages on several pools, layer counts balancing their speeds, against brute force."""

import itertools

import pytest
from train_fixtures import tiny_device, tiny_model

from costmodels.hardware import ClusterSpec, NodePool
from costmodels.parallel import ParallelConfig, TrainingWorkload
from costmodels.training import estimate_training
from planner.train import TrainOptions, check, plan_training

OPTIONS = TrainOptions(max_vpp=1, max_mbs=2, max_cp=1, zero_stages=(0, 1, 3), alternatives=2)


def two_pools(fast_gib=2.0, slow_gib=2.0) -> ClusterSpec:
    fast = tiny_device(fast_gib, 2)
    slow = tiny_device(slow_gib, 2)
    slow = type(slow)(**{**{f: getattr(slow, f) for f in slow.__slots__}, "name": "slow",
                         "bf16_flops_per_s": 25e12})
    pools = tuple(NodePool(name=n, device=d, nodes=1, devices_per_node=2, intra_node_bytes_per_s=100e9,
                           inter_node_bytes_per_s=10e9) for n, d in (("fast", fast), ("slow", slow)))
    return ClusterSpec(name="toy-hetero", pools=pools, inter_pool_bytes_per_s=5e9)


def brute_force(model, cluster, workload):
    """Every stage layout (each used pool filled with stages or left out, in every order) x strategy x split."""
    best = None
    for tp, dp in itertools.product((1, 2), (1, 2)):
        group = tp * dp
        per_pool = {p.name: p.num_devices // group for p in cluster.pools if p.num_devices >= group}
        for r in (1, 2):
            for used in itertools.permutations(sorted(per_pool), r):
                layout = tuple(n for n in used for _ in range(per_pool[n]))
                pp = len(layout)
                if pp > model.layers:
                    continue
                for mbs, zero, rec, sp in itertools.product((1, 2), OPTIONS.zero_stages, OPTIONS.recompute_modes,
                                                            (False, True)):
                    if workload.global_batch % (dp * mbs) or (sp and tp == 1):
                        continue
                    for cuts in itertools.combinations(range(1, model.layers), pp - 1):
                        split = tuple(b - a for a, b in zip((0, *cuts), (*cuts, model.layers), strict=True))
                        cfg = ParallelConfig(tp=tp, pp=pp, dp=dp, mbs=mbs, zero=zero, recompute=rec,
                                             sequence_parallel=sp, stage_layers=split, stage_pools=layout)
                        est = estimate_training(model, cluster, workload, cfg)
                        if est.feasible and (best is None or est.step_time_s < best):
                            best = est.step_time_s
    return best


@pytest.mark.parametrize("layers,slow_gib", [(6, 2.0), (5, 0.7)])
def test_hetero_plan_equals_brute_force(layers, slow_gib):
    model = tiny_model(layers=layers)
    cluster = two_pools(2.0, slow_gib)
    workload = TrainingWorkload(global_batch=8, seq_len=1024)
    best = brute_force(model, cluster, workload)
    plan = plan_training(model, cluster, workload, options=OPTIONS)
    assert abs(plan["predicted"]["step_time_s"] - best) <= 1e-8 * best
    assert check(plan) == []
    d = plan["decision"]
    if d["stage_pools"] and len(set(d["stage_pools"])) == 2:  # the fast pool runs more layers per stage
        fast = [n for n, pool in zip(d["stage_layers"], d["stage_pools"], strict=True) if pool == "fast"]
        slow = [n for n, pool in zip(d["stage_layers"], d["stage_pools"], strict=True) if pool == "slow"]
        assert max(fast) >= max(slow)


def test_time_limit_reports_a_feasible_plan_with_its_bound():
    model = tiny_model(layers=6)
    workload = TrainingWorkload(global_batch=8, seq_len=1024)
    plan = plan_training(model, two_pools(), workload, options=OPTIONS, time_limit_s=1e-6)
    solver = plan["solver"]
    assert solver["search"]["complete"] is False and solver["status"] == "feasible"
    assert solver["bound"] <= solver["objective"] and check(plan) == []
