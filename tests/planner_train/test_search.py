"""The search against brute force over costmodels.training.estimate_training, and its bounds' validity."""

import itertools

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from train_fixtures import tiny_cluster, tiny_model

from costmodels.framework import unsupported
from costmodels.parallel import ParallelConfig, TrainingWorkload
from costmodels.training import estimate_training, even_stage_layers
from planner.train import TrainOptions, check, plan_training
from planner.train.bounds import Bounds
from planner.train.request import TrainRequest
from planner.train.search import split_problem


def _runnable_workload(seq: int, zero: int, pp: int, vpp: int = 1, **decisions) -> TrainingWorkload:
    """A framework that runs this ZeRO stage (DeepSpeed for stage 2, torchtitan for FSDP with pp)."""
    framework = "deepspeed" if zero == 2 else ("torchtitan" if zero == 3 and pp > 1 else "megatron")
    assume(not unsupported(framework, **{"tp": 1, "etp": 1, **decisions, "zero": zero, "pp": pp, "cp": 1, "vpp": vpp}))
    return TrainingWorkload(global_batch=16, seq_len=seq, framework=framework)

OPTIONS = TrainOptions(max_vpp=2, max_mbs=2, max_cp=2, alternatives=2)


def divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def brute_force(model, cluster, workload, opts):
    """Every strategy the options allow (independent loops) x every split; the best feasible step time."""
    n, per_node = cluster.num_devices, cluster.primary.devices_per_node
    gbs, seq = workload.global_batch, workload.seq_len
    best = None
    for tp, cp, pp in itertools.product(divisors(n), repeat=3):
        if n % (tp * cp * pp) or tp > per_node or pp > model.layers or cp > opts.max_cp:
            continue
        if model.heads % tp or model.kv_heads % tp or model.ffn % tp or (cp > 1 and seq % (2 * cp)):
            continue
        dp = n // (tp * cp * pp)
        experts = [(1, 1)]
        if model.moe:
            experts = [(e, t) for e in divisors(model.moe.experts) for t in divisors(model.moe.expert_ffn)
                       if (tp * cp * dp) % (e * t) == 0 and e * t <= per_node]
        for (ep, etp), mbs, vpp, zero, rec, sp in itertools.product(
                experts, range(1, opts.max_mbs + 1), range(1, opts.max_vpp + 1), opts.zero_stages,
                opts.recompute_modes, (False, True)):
            if gbs % (dp * mbs) or (sp and tp == 1) or (model.moe and tp > 1 and not sp):
                continue
            m = gbs // (dp * mbs)
            if vpp > 1 and (pp == 1 or model.layers < pp * vpp or m % pp):
                continue
            splits = [tuple(b - a for a, b in zip((0, *c), (*c, model.layers), strict=True))
                      for c in itertools.combinations(range(1, model.layers), pp - 1)]
            for split in splits:
                cfg = ParallelConfig(tp=tp, pp=pp, dp=dp, cp=cp, ep=ep, etp=etp, vpp=vpp, mbs=mbs, zero=zero,
                                     recompute=rec, sequence_parallel=sp, stage_layers=split)
                est = estimate_training(model, cluster, workload, cfg)
                if est.feasible and (best is None or est.step_time_s < best):
                    best = est.step_time_s
    return best


CASES = dict(layers=st.sampled_from([3, 4, 5]), hbm=st.sampled_from([0.6, 1.0, 4.0]), gbs=st.sampled_from([8, 16]),
             seq=st.sampled_from([512, 2048]), moe=st.booleans())


@settings(max_examples=3, deadline=None)
@given(**CASES)
def test_plan_equals_brute_force(layers, hbm, gbs, seq, moe):
    check_against_brute_force(layers, hbm, gbs, seq, moe)


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(**CASES)
def test_plan_equals_brute_force_many(layers, hbm, gbs, seq, moe):
    check_against_brute_force(layers, hbm, gbs, seq, moe)


def check_against_brute_force(layers, hbm, gbs, seq, moe):
    model = tiny_model(layers=layers, moe=moe, first_dense=1 if moe else 0)
    cluster = tiny_cluster(8, hbm)
    workload = TrainingWorkload(global_batch=gbs, seq_len=seq)
    best = brute_force(model, cluster, workload, OPTIONS)
    try:
        plan = plan_training(model, cluster, workload, options=OPTIONS)
    except Exception as exc:  # InfeasibleError exactly when brute force finds nothing
        assert best is None, exc
        assert type(exc).__name__ == "InfeasibleError"
        return
    assert best is not None
    assert abs(plan["predicted"]["step_time_s"] - best) <= 1e-8 * best  # plans keep 9 digits
    assert check(plan) == []


@settings(max_examples=30, deadline=None)
@given(tp=st.sampled_from([1, 2, 4]), pp=st.sampled_from([1, 2]), mbs=st.sampled_from([1, 2]),
       zero=st.integers(0, 3), rec=st.sampled_from(["none", "selective", "selective-layer", "full"]),
       moe=st.booleans(), seq=st.sampled_from([512, 4096]))
def test_bounds_are_valid_and_objective_matches(tp, pp, mbs, zero, rec, moe, seq):
    model = tiny_model(layers=4, moe=moe)
    cluster = tiny_cluster(8, 80.0)
    dp = 8 // (tp * pp)
    ep = 2 if moe else 1
    workload = _runnable_workload(seq, zero, pp, tp=tp, ep=ep, dp=dp, etp=1 if moe or tp == 1 else tp,
                                  experts=4 if moe else 0, recompute=rec, sequence_parallel=tp > 1,
                                  stage_layers=even_stage_layers(4, pp), layers=4)
    cfg = ParallelConfig(tp=tp, pp=pp, dp=dp, ep=ep, mbs=mbs, zero=zero, recompute=rec, sequence_parallel=tp > 1,
                         stage_layers=even_stage_layers(4, pp))
    est = estimate_training(model, cluster, workload, cfg)
    request = TrainRequest(model=model, cluster=cluster, workload=workload)
    bounds = Bounds(model, cluster.primary, workload)
    slack = 1 + 1e-9  # floating-point sums in a different order
    assert bounds.time(cfg) <= est.step_time_s * slack
    assert bounds.memory(cfg) <= (max(est.stage_memory_bytes) - cluster.primary.device.memory_reserve_bytes) * slack
    prob = split_problem(request, cfg, (cluster.primary,) * pp)
    assert abs(prob.objective(cfg.stage_layers) - est.step_time_s) <= 1e-9 * est.step_time_s
    assert prob.lower_bound(0.0) <= est.step_time_s * slack
    mem = [b + cluster.primary.device.memory_reserve_bytes for b in prob.stage_memory(cfg.stage_layers)]
    assert all(abs(a - b) <= 1e-6 * b for a, b in zip(mem, est.stage_memory_bytes, strict=True))


@settings(max_examples=30, deadline=None)
@given(tp=st.sampled_from([1, 2]), pp=st.sampled_from([1, 2, 4]), mbs=st.sampled_from([1, 2]), zero=st.integers(0, 3),
       rec=st.sampled_from(["none", "selective", "selective-layer", "full"]), moe=st.booleans(),
       vpp=st.sampled_from([1, 2]))
def test_sibling_bound_is_valid(tp, pp, mbs, zero, rec, moe, vpp):
    """The search bounds every ZeRO stage / recompute mode by the ZeRO-1, no-recompute sibling's layer times."""
    if pp == 1:
        vpp = 1
    model = tiny_model(layers=8, moe=moe)
    cluster = tiny_cluster(8, 80.0)
    dp = 8 // (tp * pp)
    workload = _runnable_workload(1024, zero, pp, vpp, tp=tp, ep=2 if moe else 1, dp=dp, experts=4 if moe else 0,
                                  recompute=rec, sequence_parallel=tp > 1, stage_layers=even_stage_layers(8, pp),
                                  layers=8, microbatches=16 // (dp * mbs))
    cfg = ParallelConfig(tp=tp, pp=pp, dp=dp, ep=2 if moe else 1, mbs=mbs, zero=zero, recompute=rec, vpp=vpp,
                         sequence_parallel=tp > 1, stage_layers=even_stage_layers(8, pp))
    est = estimate_training(model, cluster, workload, cfg)
    request = TrainRequest(model=model, cluster=cluster, workload=workload)
    sibling = ParallelConfig(**{**{f: getattr(cfg, f) for f in cfg.__slots__}, "zero": 1, "recompute": "none"})
    prob = split_problem(request, sibling, (cluster.primary,) * pp)
    assert prob.time_lower_bound() <= est.step_time_s * (1 + 1e-9)


def test_uneven_split_decides_the_winner():
    """7 layers, 8 GPUs of 0.3 GiB, ZeRO 1 without recompute: tp 2 x pp 2 x dp 2 fits only when the first
    stage (two micro-batches in flight and the embedding) takes 3 layers and the last 4; the even split puts
    4 on the first stage, so restricted to even splits the best plan is a different, slower strategy
    (tp 4, dp 1). The plan equals the brute force over every split."""
    model, cluster = tiny_model(layers=7), tiny_cluster(8, 0.3)
    workload = TrainingWorkload(global_batch=16, seq_len=2048)
    opts = TrainOptions(max_vpp=2, max_mbs=4, max_cp=1, zero_stages=(1,), recompute_modes=("none",), alternatives=1)
    plan = plan_training(model, cluster, workload, options=opts)
    d = plan["decision"]
    assert (d["tp"], d["pp"], d["dp"], d["stage_layers"]) == (2, 2, 2, [3, 4])
    assert list(even_stage_layers(7, 2)) == [4, 3]
    best = brute_force(model, cluster, workload, opts)
    assert abs(plan["predicted"]["step_time_s"] - best) <= 1e-8 * best
    even = plan_training(model, cluster, workload, options=TrainOptions(**{**opts.to_json(), "uneven_split": False}))
    assert even["decision"]["tp"] == 4 and even["predicted"]["step_time_s"] > 1.1 * best
    assert check(plan) == [] and check(even) == []
