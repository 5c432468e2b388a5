"""estimate_training / layer_costs: consistency of the pieces, feasibility, MoE, heterogeneous pools."""

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costmodels import (
    ClusterSpec,
    NodePool,
    ParallelConfig,
    TrainingWorkload,
    estimate_training,
    layer_costs,
    pipeline_step_time,
)
from costmodels.flops import step_flops
from costmodels.pipeline import in_flight_microbatches
from costmodels.training import even_stage_layers
from tests.costmodels.helpers import GiB, cluster, device, gpt, moe_model

WL = TrainingWorkload(global_batch=64, seq_len=2048)


def test_stage_times_rebuild_from_layer_costs():
    model, cl = gpt(layers=24, hidden=4096, heads=32), cluster(32)
    cfg = ParallelConfig(tp=4, pp=4, dp=2, mbs=2, recompute="selective")
    est = estimate_training(model, cl, WL, cfg)
    lc = layer_costs(model, cl.primary, WL, cfg)
    stages = even_stage_layers(24, 4)
    start, times = 0, []
    for i, n in enumerate(stages):
        t = sum(lc.layer_time_s[start:start + n]) + (lc.embed_time_s if i == 0 else 0.0)
        t += lc.head_time_s if i == 3 else 0.0
        t += 2 * lc.p2p_time_s if i < 3 else 0.0
        times.append(t)
        start += n
    assert all(math.isclose(a, b, rel_tol=1e-12) for a, b in zip(times, est.stage_time_s, strict=True))
    m = 64 // (2 * 2)
    assert est.microbatches == m
    assert est.step_time_s >= pipeline_step_time(times, m)
    # the breakdown adds up to the step time
    assert math.isclose(sum(est.breakdown["time_s"].values()), est.step_time_s, rel_tol=1e-9)
    # memory of stage 0: states + in-flight activations + reserve
    mem0 = sum(lc.layer_weight_bytes[:6]) + lc.embed_weight_bytes + lc.reserve_bytes \
        + in_flight_microbatches(0, 4, m) * (sum(lc.layer_activation_bytes[:6]) + lc.embed_activation_bytes)
    assert math.isclose(est.stage_memory_bytes[0], mem0, rel_tol=1e-12)


def test_metrics_are_consistent():
    model, cl = gpt(layers=24, hidden=2048, heads=16), cluster(16)
    est = estimate_training(model, cl, WL, ParallelConfig(tp=2, pp=2, dp=4, mbs=1, recompute="full"))
    assert est.feasible
    assert math.isclose(est.tokens_per_s_per_gpu, 64 * 2048 / est.step_time_s / 16)
    assert math.isclose(est.model_tflops_per_gpu, step_flops(model, 64, 2048) / est.step_time_s / 16 / 1e12)
    assert est.hardware_tflops_per_gpu > est.model_tflops_per_gpu  # full recompute executes more
    assert math.isclose(est.mfu, est.model_tflops_per_gpu * 1e12 / 312e12)


def test_structural_problems_are_reported():
    model, cl = gpt(layers=24, hidden=2304, heads=24), cluster(64)
    bad = estimate_training(model, cl, WL, ParallelConfig(tp=16, pp=2, dp=4, mbs=1))
    assert not bad.feasible
    assert any("does not divide the 24 attention heads" in r for r in bad.infeasible_reasons)
    assert any("the cluster has 64 GPUs" in r for r in bad.infeasible_reasons)
    bad = estimate_training(model, cl, WL, ParallelConfig(tp=2, pp=1, dp=32, mbs=4))
    assert any("not divisible by dp*mbs" in r for r in bad.infeasible_reasons)


def test_memory_overflow_names_the_stage_and_numbers():
    model = gpt(layers=48, hidden=8192, heads=64)
    est = estimate_training(model, cluster(8), WL, ParallelConfig(tp=8, pp=1, dp=1, mbs=1))
    assert not est.feasible and est.step_time_s > 0
    (reason,) = est.infeasible_reasons
    need = (est.stage_memory_bytes[0] - 2 * GiB) / GiB
    assert reason == f"stage 0 needs {need:.1f} GiB per GPU; usable HBM is 78.0 GiB"


def test_recompute_trades_memory_for_time():
    model, cl = gpt(layers=24, hidden=4096, heads=32), cluster(8)
    runs = {r: estimate_training(model, cl, WL, ParallelConfig(tp=8, dp=1, mbs=4, recompute=r))
            for r in ("none", "selective", "full")}
    mem = {r: e.memory_per_gpu_bytes for r, e in runs.items()}
    assert mem["none"] > mem["selective"] > mem["full"]
    assert runs["none"].step_time_s < runs["selective"].step_time_s < runs["full"].step_time_s


def test_zero_stages_shrink_states():
    model, cl = gpt(layers=24, hidden=4096, heads=32), cluster(64)
    wl = TrainingWorkload(global_batch=64, seq_len=2048, framework="deepspeed")  # the one with all four stages
    mem = [estimate_training(model, cl, wl,
                             ParallelConfig(tp=2, dp=32, mbs=2, zero=z, sequence_parallel=False)).memory_per_gpu_bytes
           for z in range(4)]
    assert mem[0] > mem[1] > mem[2] > mem[3]
    megatron = estimate_training(model, cl, WL, ParallelConfig(tp=2, dp=32, mbs=2, zero=2))
    assert not megatron.feasible and "megatron has no ZeRO stage 2" in megatron.infeasible_reasons[0]


def test_moe_expert_weights_shard_by_ep():
    model, cl = moe_model(layers=4, experts=8), cluster(8)
    wl = TrainingWorkload(global_batch=16, seq_len=1024)
    one = layer_costs(model, cl.primary, wl, ParallelConfig(tp=1, dp=8, ep=1, zero=0))
    eight = layer_costs(model, cl.primary, wl, ParallelConfig(tp=1, dp=8, ep=8, zero=0))
    assert all(lc for lc in one.is_moe)
    # expert parameters: 8 experts * 3 * h * f_e = 8 * 3 * 1024 * 1024; 18 B each without ZeRO
    expert_bytes = 8 * 3 * 1024 * 1024 * 18
    assert math.isclose(one.layer_weight_bytes[0] - eight.layer_weight_bytes[0], expert_bytes * (1 - 1 / 8))
    est = estimate_training(model, cl, wl, ParallelConfig(tp=1, dp=8, ep=8))
    assert est.feasible and est.breakdown["time_s"]["ep_comm"] > 0
    bad = estimate_training(moe_model(experts=6), cl, wl, ParallelConfig(tp=1, dp=8, ep=4))
    assert any("does not divide the 6 experts" in r for r in bad.infeasible_reasons)


def test_dense_then_moe_layers():
    model = moe_model(layers=6, first_dense=2)
    lc = layer_costs(model, cluster(8).primary, TrainingWorkload(global_batch=16, seq_len=1024),
                     ParallelConfig(tp=2, dp=4, ep=4))
    assert lc.is_moe == (False, False, True, True, True, True)
    assert lc.layer_time_s[0] != lc.layer_time_s[2]


def test_heterogeneous_pools_and_explicit_split():
    fast, slow = device("fast"), device("slow", gemm_efficiency_max=0.4)
    pools = tuple(NodePool(name=d.name, device=d, nodes=1, devices_per_node=8, intra_node_bytes_per_s=300e9,
                           inter_node_bytes_per_s=25e9) for d in (fast, slow))
    cl = ClusterSpec(name="mixed", pools=pools, inter_pool_bytes_per_s=10e9)
    model = gpt(layers=24, hidden=2048, heads=16)
    even = ParallelConfig(tp=8, pp=2, dp=1, mbs=1, stage_pools=("fast", "slow"))
    est = estimate_training(model, cl, WL, even)
    assert est.feasible and est.stage_time_s[1] > est.stage_time_s[0]
    skewed = dataclasses.replace(even, stage_layers=(16, 8))
    better = estimate_training(model, cl, WL, skewed)
    assert better.step_time_s < est.step_time_s
    bad = estimate_training(model, cl, WL, dataclasses.replace(even, stage_pools=("fast", "nope")))
    assert any("unknown pool 'nope'" in r for r in bad.infeasible_reasons)


def test_even_stage_layers():
    assert even_stage_layers(10, 4) == (2, 3, 3, 2)
    assert even_stage_layers(9, 2) == (5, 4)
    assert sum(even_stage_layers(105, 35)) == 105


@pytest.mark.parametrize("vpp", [2, 3])
def test_interleaving_shrinks_the_bubble(vpp):
    model, cl = gpt(layers=24, hidden=2048, heads=16), cluster(16)
    wl = TrainingWorkload(global_batch=32, seq_len=2048)
    plain = estimate_training(model, cl, wl, ParallelConfig(tp=2, pp=4, dp=2, mbs=1))
    inter = estimate_training(model, cl, wl, ParallelConfig(tp=2, pp=4, dp=2, mbs=1, vpp=vpp))
    assert inter.breakdown["time_s"]["pp_bubble"] < plain.breakdown["time_s"]["pp_bubble"]
    assert inter.memory_per_gpu_bytes > plain.memory_per_gpu_bytes


@settings(max_examples=60, deadline=None)
@given(tp=st.sampled_from([1, 2, 4]), pp=st.sampled_from([1, 2, 3]), mbs=st.sampled_from([1, 2]),
       recompute=st.sampled_from(["none", "selective", "full"]), zero=st.integers(0, 3), vpp=st.sampled_from([1, 2]),
       sp=st.booleans())
def test_invariants_over_random_configs(tp, pp, mbs, recompute, zero, vpp, sp):
    model = gpt(layers=12, hidden=1024, heads=16)
    dp = 24 // (tp * pp) if 24 % (tp * pp) == 0 else 1
    cl = ClusterSpec.homogeneous(device(), tp * pp * dp, devices_per_node=min(8, tp * pp * dp))
    wl = TrainingWorkload(global_batch=48, seq_len=1024)
    cfg = ParallelConfig(tp=tp, pp=pp, dp=dp, mbs=mbs, recompute=recompute, zero=zero, vpp=vpp, sequence_parallel=sp)
    est = estimate_training(model, cl, wl, cfg)
    if est.step_time_s == 0:  # structurally impossible: reasons given
        assert est.infeasible_reasons and not est.feasible
        return
    assert math.isclose(sum(est.breakdown["time_s"].values()), est.step_time_s, rel_tol=1e-9)
    assert est.step_time_s >= est.microbatches * max(est.stage_time_s) * (1 - 1e-12)
    assert est.memory_per_gpu_bytes == max(est.stage_memory_bytes)
    assert est.hardware_tflops_per_gpu >= est.model_tflops_per_gpu
    assert 0 < est.mfu < 1
    assert est.feasible == (est.memory_per_gpu_bytes <= 80 * GiB)


def test_tp_overlap_needs_sequence_parallelism():
    model, cl = gpt(layers=8, hidden=4096, heads=32), cluster(8, tp_overlap=0.9)
    wl = TrainingWorkload(global_batch=8, seq_len=2048)
    sp = layer_costs(model, cl.primary, wl, ParallelConfig(tp=8, dp=1, sequence_parallel=True))
    no_sp = layer_costs(model, cl.primary, wl, ParallelConfig(tp=8, dp=1, sequence_parallel=False))
    # same bytes on the wire (AG + RS = AR); 90 % hidden only with SP
    est_sp = estimate_training(model, cl, wl, ParallelConfig(tp=8, dp=1, sequence_parallel=True))
    est_no = estimate_training(model, cl, wl, ParallelConfig(tp=8, dp=1, sequence_parallel=False))
    assert est_sp.breakdown["time_s"]["tp_comm"] < 0.2 * est_no.breakdown["time_s"]["tp_comm"]
    assert sp.layer_time_s[0] < no_sp.layer_time_s[0]
