"""torchtitan's pipeline + FSDP, ring attention and async-TP terms (issue 9) against hand calculations.

Device (tests/costmodels/helpers.device): HBM 2.039e12 B/s at 0.85 efficiency; NVLink 300e9 x 0.75 = 225e9 B/s
with 5 us per hop; every collective call 20 us.
"""

import math

from costmodels import ClusterSpec, NodePool, ParallelConfig, TrainingWorkload, estimate_training
from costmodels import geometry as G
from costmodels.compute import attention_time_s
from costmodels.layer_parts import GRAD_ACCUMULATE_BYTES, Setting, layer_cost
from tests.costmodels.helpers import device, gpt

DEV = device(kernel_floor_s=0.0, fp8=True, sdpa_attention_factor=0.5, tp_overlap=0.6)
POOL = NodePool(name="p", device=DEV, nodes=4, devices_per_node=8, intra_node_bytes_per_s=300e9,
                inter_node_bytes_per_s=25e9)
HBM = 2.039e12 * 0.85
MODEL = gpt(layers=4, hidden=1024, heads=16, vocab=1000)
BASE = dict(mbs=1, seq=2048, dtype="bf16", tp=1, cp=1, dp=1, ep=1, etp=1, zero=0, recompute="none", sp=False,
            framework="torchtitan", fused=True)


def st(**kw) -> Setting:
    return Setting(**{**BASE, **kw})


def ring(n: int, size: float) -> float:
    """All-gather / reduce-scatter of `size` bytes over n ranks of one node (20 us call, n-1 hops of 5 us)."""
    return 20e-6 + (n - 1) * 5e-6 + (n - 1) / n * size / 225e9


def test_pipeline_fsdp_gathers_once_and_holds_unsharded_states():
    """torch pipelining + FSDP2: a stage's parameters are gathered once per step and kept (bf16), gradients
    accumulate unsharded in fp32 (10 B per parameter and micro-batch) and are reduce-scattered once, after the
    stage's last backward, where nothing hides them."""
    params = G.layer_params(MODEL, False)[0]  # one GPT layer, tp = 1
    per_mb = layer_cost(MODEL, False, POOL, st(dp=4, zero=3))
    once = layer_cost(MODEL, False, POOL, st(dp=4, zero=3, gathered_once=True))
    assert once.parts["zero_comm"] == 0.0 and per_mb.parts["zero_comm"] >= 0.0
    gather, scatter = ring(4, 2.0 * params), ring(4, 4.0 * params)  # bf16 weights, fp32 gradients (FSDP2)
    forward = once.parts["gemm"] / 3 + (once.parts["attention"] / 3.5) + (once.parts["elementwise"] / 3)
    assert gather < forward  # prefetch hides the gather behind the first micro-batch's forward
    assert math.isclose(once.step_comm_s, scatter, rel_tol=1e-9) and per_mb.step_comm_s == 0.0
    assert math.isclose(once.parts["elementwise"] - per_mb.parts["elementwise"],
                        GRAD_ACCUMULATE_BYTES * params / HBM, rel_tol=1e-9)
    assert GRAD_ACCUMULATE_BYTES == 2 + 4 + 4  # read bf16 gradient, read + write the fp32 accumulator
    assert math.isclose(once.param_bytes - per_mb.param_bytes, 2.0 * params, rel_tol=1e-9)
    assert math.isclose(once.grad_bytes - per_mb.grad_bytes, 4.0 * params, rel_tol=1e-9)
    assert once.working_bytes < per_mb.working_bytes  # no per-layer gather buffers: the copies are held


def test_estimate_applies_gathered_once_to_torchtitan_pipelines_only():
    cluster = ClusterSpec.homogeneous(DEV, 16)
    config = ParallelConfig(tp=1, pp=2, dp=8, mbs=1, zero=3)
    titan = estimate_training(MODEL, cluster, TrainingWorkload(global_batch=64, seq_len=2048, framework="torchtitan"),
                              config)
    parts = titan.breakdown["time_s"]
    assert parts["zero_comm"] == 0.0 and parts["dp_comm"] > 0.0  # the once-per-step reduce-scatter
    flat = estimate_training(MODEL, ClusterSpec.homogeneous(DEV, 8),
                             TrainingWorkload(global_batch=64, seq_len=2048, framework="torchtitan"),
                             ParallelConfig(tp=1, pp=1, dp=8, mbs=1, zero=3))
    assert flat.breakdown["time_s"]["zero_comm"] > 0.0  # without pp: per-layer traffic every micro-batch
    assert math.isclose(sum(parts.values()), titan.step_time_s, rel_tol=1e-9)


def test_torch_ring_attention_by_hand():
    """cp = 2, 2 x 2048 local tokens of 16 heads x 64: torch's ring all-gathers the K/V (repeated to all heads)
    once, passes the fp32 K/V gradients along the ring and merges in fp32 with eager element-wise ops."""
    seq, cp = 4096, 2
    titan = layer_cost(MODEL, False, POOL, st(seq=seq, cp=cp))
    q = 2048 * 16 * 64  # output (and query) elements of this rank
    kv = 2048 * 16 * 128  # K and V elements, all 16 heads
    merge = ((cp - 1) * (38 * q + 4 * kv) + 12 * q) / HBM
    grads = (cp * (10 * q + 25 * kv) + 10 * q + 10 * kv) / HBM
    fwd = 2 * attention_time_s(1, seq / cp, seq, 16, 64, 64, DEV, block_kv=seq / cp)  # SDPA at half speed
    both = 2 * attention_time_s(1, seq / cp, seq, 16, 64, 64, DEV, backward=True, block_kv=seq / cp)
    assert math.isclose(titan.parts["attention"], both + merge + grads, rel_tol=1e-9)  # forward merge once
    gather = ring(2, kv * 2.0 * cp)
    dkv = 20e-6 + 5e-6 + kv * 4.0 / 225e9  # one p2p step of the fp32 K/V gradients inside the node
    assert gather < fwd / cp and dkv < (both - fwd) / cp  # hidden behind one block, except the last dkv step
    assert math.isclose(titan.parts["cp_comm"], dkv, rel_tol=1e-9)
    megatron = layer_cost(MODEL, False, POOL, st(seq=seq, cp=cp, framework="megatron"))
    assert megatron.parts["cp_comm"] == 0.0  # TE's ring: K/V gathers hide behind the attention core
    assert math.isclose(megatron.parts["attention"],
                        attention_time_s(1, seq / cp, seq, 16, 64, 64, DEV, backward=True, block_kv=seq / cp))


def test_async_tp_leaves_summed_backward_reduce_scatters_exposed():
    """tp = 8 with sequence parallelism, 2 blocks: forward AG + RS each, backward AG + RS each, all the same
    bf16 size. Megatron's overlap hides 0.6 of all 8; torchtitan's micro-pipeline TP hides 0.6 of 6 and none of
    the 2 backward reduce-scatters of summed q/k/v and gate/up gradients."""
    size = 2048 * 1024 * 2.0
    kw = dict(tp=8, sp=True, tp_overlap=True)
    titan = layer_cost(MODEL, False, POOL, st(**kw))
    megatron = layer_cost(MODEL, False, POOL, st(framework="megatron", **kw))
    assert math.isclose(megatron.parts["tp_comm"], 8 * 0.4 * ring(8, size), rel_tol=1e-9)
    assert math.isclose(titan.parts["tp_comm"], (6 * 0.4 + 2) * ring(8, size), rel_tol=1e-9)
