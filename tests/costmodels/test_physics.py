"""Each physical term of issue 9 against a hand calculation (framework rules, ZeRO-3 prefetch, MoE, FP8,
unfused attention, torch.compile, async TP, op-level SAC memory, DeepSeek-V3 memory)."""

import math

import pytest

from costmodels import ClusterSpec, DeviceSpec, NodePool, ParallelConfig, TrainingWorkload, estimate_training
from costmodels import memory as M
from costmodels.compute import SCORE_BYTES_BACKWARD, SCORE_BYTES_FORWARD, gemm_time_s, unfused_attention_time_s
from costmodels.errors import SpecError
from costmodels.flops import layer_forward_flops
from costmodels.framework import framework, unsupported
from costmodels.layer_parts import Setting, ZeroComm, layer_cost
from profiles import load_device, load_model
from tests.costmodels.helpers import device, gpt, moe_model

POOL = NodePool(name="p", device=device(kernel_floor_s=0.0, fp8=True, eager_elementwise_factor=3.0,
                                        sdpa_attention_factor=0.5, tp_overlap=0.6),
                nodes=4, devices_per_node=8, intra_node_bytes_per_s=300e9, inter_node_bytes_per_s=25e9)
BASE = dict(mbs=1, seq=2048, dtype="bf16", tp=1, cp=1, dp=1, ep=1, etp=1, zero=0, recompute="none", sp=False)


def st(**kw) -> Setting:
    return Setting(**{**BASE, **kw})


def test_framework_rules():
    assert unsupported("megatron", zero=2, pp=1, cp=1, vpp=1, tp=1, etp=1)[0][0] == "zero"
    assert unsupported("megatron", zero=3, pp=2, cp=1, vpp=1, tp=1, etp=1)  # Megatron-FSDP without pp
    assert unsupported("deepspeed", zero=2, pp=2, cp=1, vpp=1, tp=1, etp=1)  # DS pipeline needs stage <= 1
    assert not unsupported("deepspeed", zero=1, pp=2, cp=1, vpp=1, tp=1, etp=1)
    assert unsupported("deepspeed", zero=1, pp=1, cp=2, vpp=1, tp=1, etp=1)[0][0] == "cp"
    assert unsupported("torchtitan", zero=1, pp=1, cp=1, vpp=1, tp=1, etp=1)  # no ZeRO-1 in FSDP2
    assert unsupported("torchtitan", zero=3, pp=1, cp=1, vpp=1, tp=4, etp=2, experts=8)[0][0] == "etp"
    assert not unsupported("torchtitan", zero=3, pp=8, cp=2, vpp=2, tp=4, etp=4, experts=8)
    # current torchtitan: no expert TP beside EP; expert groups inside dp_shard x cp x tp (dp_shard = 1 under DDP)
    assert unsupported("torchtitan", zero=3, pp=1, cp=1, vpp=1, tp=4, etp=4, ep=2, dp=2, experts=8)[0][0] == "etp"
    assert not unsupported("torchtitan", zero=3, pp=1, cp=1, vpp=1, tp=1, etp=1, ep=4, dp=4, experts=8)
    assert unsupported("torchtitan", zero=0, pp=1, cp=1, vpp=1, tp=1, etp=1, ep=4, dp=4, experts=8)[0][0] == "ep"
    # torch's interleaved 1F1B runs rounds of pp micro-batches: m a multiple of max(1, m // pp) (8 = pp is fine)
    assert unsupported("torchtitan", zero=3, pp=4, cp=1, vpp=2, tp=1, etp=1, microbatches=9)[0][0] == "vpp"
    assert not unsupported("torchtitan", zero=3, pp=8, cp=1, vpp=2, tp=1, etp=1, microbatches=8)
    assert not unsupported("torchtitan", zero=3, pp=4, cp=1, vpp=2, tp=1, etp=1, microbatches=10)
    assert unsupported("torchtitan", zero=3, pp=2, cp=1, vpp=1, tp=1, etp=1, mtp_layers=1)[0][0] == "mtp_layers"


def test_deepspeed_rules():
    """DeepSpeed@edaa722: AutoEP limits, no FP8/SP/selective/MTP, equal pipeline stages only."""
    base = dict(zero=1, pp=1, cp=1, vpp=1, tp=1, etp=1)

    def fields(**kw) -> list[str]:
        return [f for f, _ in unsupported("deepspeed", **{**base, **kw})]

    assert fields(experts=8, ep=4) == []
    assert fields(experts=8, ep=4, etp=2) == ["etp"]
    assert fields(experts=8, ep=3) == ["ep"]
    assert fields(experts=8, tp=2) == ["ep"]  # AutoTP with MoE needs autoep_size > 1
    assert fields(experts=8, tp=2, ep=2, pp=2, layers=8) == ["pp"]
    assert fields(experts=8, tp=2, ep=2, zero=3) == ["zero"]
    assert fields(experts=8, tp=1, ep=2, zero=3) == []  # ZeRO 3 is refused with AutoTP only
    assert fields(fp8=True) == ["dtype"] and fields(mtp_layers=1) == ["mtp_layers"]
    assert fields(recompute="selective") == ["recompute"] and fields(recompute="full") == []
    assert fields(tp=2, sequence_parallel=True) == ["sequence_parallel"] and fields(tp=2) == []
    assert fields(pp=2, stage_layers=(3, 5)) == ["stage_layers"] and fields(pp=2, stage_layers=(4, 4)) == []
    assert fields(pp=3, layers=8) == ["stage_layers"]
    assert framework("torchtitan").grad_reduce_bytes == 4.0 and framework("megatron").grad_reduce_bytes == 2.0
    with pytest.raises(SpecError, match="valid: megatron, torchtitan, deepspeed"):
        TrainingWorkload(global_batch=1, seq_len=1, framework="jax")


def test_zero3_overlap_is_prefetch_only():
    # forward hides the gather behind the layer's forward, backward the gather + reduce-scatter behind backward
    z = ZeroComm(sync_s=0.0, gather_s=3.0, scatter_s=2.0)
    assert z.exposed_s(forward_s=1.0, backward_s=2.0) == (3 - 1) + (3 + 2 - 2)
    assert z.exposed_s(forward_s=5.0, backward_s=10.0) == 0.0


def test_zero3_layer_traffic_by_hand():
    model = gpt(layers=2, hidden=1024, heads=16, vocab=1000)
    cost = layer_cost(model, False, POOL, st(dp=32, zero=3, framework="torchtitan", fused=True))
    params = 12 * 1024 * 1024 + 2 * 1024
    # 32 ranks, 8 per node over 4 nodes: across 3 hops of 10 us + 3/4 of S/8 at 25e9*0.9, inside 7 hops of 5 us
    # + 7/8 of S at 300e9*0.75, plus the 20 us call
    def gather(size):
        return 20e-6 + 3 * 10e-6 + 3 / 4 * size / 8 / 22.5e9 + 7 * 5e-6 + 7 / 8 * size / 225e9
    ag, rs = gather(2.0 * params), gather(4.0 * params)  # bf16 weights; torchtitan reduces fp32 gradients
    fwd = cost.parts["gemm"] / 3 + cost.parts["attention"] / 3.5 + cost.parts["elementwise"] / 3
    bwd = 2 * cost.parts["gemm"] / 3 + 2.5 * cost.parts["attention"] / 3.5 + 2 * cost.parts["elementwise"] / 3
    assert math.isclose(cost.parts["zero_comm"], max(0, ag - fwd) + max(0, ag + rs - bwd), rel_tol=1e-9)
    # the gathered layer, the prefetched one and the unsharded fp32 gradients are working memory
    assert math.isclose(cost.working_bytes, params * (2 + 2 + 4))


def test_op_sac_recomputes_the_tp_all_gathers_by_hand():
    """torchtitan's op-level SAC saves every other matmul and the reduce-scatter outputs, not the all-gathers:
    the recompute repeats the two sequence-parallel all-gathers (attention and MLP block) of the forward."""
    model = gpt(layers=2, hidden=1024, heads=16, vocab=1000)
    kw = dict(tp=8, sp=True, recompute="selective", framework="torchtitan", fused=True)
    size = 2048 * 1024 * 2.0  # the gathered b*s*h bf16 tensor
    ag = 20e-6 + 7 * 5e-6 + 7 / 8 * size / 225e9  # one node: 7 hops of 5 us + 7/8 of S at 300e9*0.75, 20 us call
    for overlap, exposed in ((False, 1.0), (True, 0.4)):  # async TP hides tp_overlap=0.6 of every collective
        cost = layer_cost(model, False, POOL, st(tp_overlap=overlap, **kw))
        compute = cost.parts["gemm"] / 6 + cost.parts["elementwise"] / 3
        assert math.isclose(cost.parts["recompute"], compute + 2 * ag * exposed, rel_tol=1e-9)
    single = layer_cost(model, False, POOL, st(**{**kw, "tp": 1, "sp": False}))
    assert math.isclose(single.parts["recompute"], single.parts["gemm"] / 6 + single.parts["elementwise"] / 3)


def test_fp8_sequence_parallel_gathers_fp8_inputs_by_hand():
    """FP8 TP all-gathers the FP8 copy of the next GEMM's input (1 byte per element) in the forward; the
    reduce-scatters and the backward collectives move bf16."""
    model = gpt(layers=2, hidden=1024, heads=16, vocab=1000)

    def coll(size):  # one node: 20 us call + 7 hops of 5 us + 7/8 of S at 300e9*0.75 (ring AG and RS alike)
        return 20e-6 + 7 * 5e-6 + 7 / 8 * size / 225e9
    size = 2048 * 1024 * 2.0
    kw = dict(tp=8, sp=True, framework="torchtitan", fused=True, tp_overlap=False)
    fp8 = layer_cost(model, False, POOL, st(dtype="fp8", **kw))
    bf16 = layer_cost(model, False, POOL, st(**kw))
    assert math.isclose(bf16.parts["tp_comm"], 2 * 2 * 2 * coll(size), rel_tol=1e-9)
    forward = 2 * (coll(size / 2) + coll(size))  # attention and MLP block: FP8 all-gather + bf16 reduce-scatter
    assert math.isclose(fp8.parts["tp_comm"], forward + 2 * 2 * coll(size), rel_tol=1e-9)


def test_moe_experts_run_one_gemm_each_with_skew():
    model = moe_model(layers=2, experts=8, top_k=2)
    one, skewed = (layer_cost(model, True, POOL, st(ep=4, dp=4, moe_skew=s)) for s in (1.0, 1.5))
    # each rank sends 2048 tokens x top-2; the EP group's 4 x 4096 copies land on 8 experts: 2048 per expert
    # (x1.5 on the busiest rank when skewed), 2 local experts, each its own GEMMs: fc1 (h -> 2 f_e, gated) and
    # fc2 (f_e -> h), forward + 2 x backward
    def experts(tokens):
        return 3 * 2 * (gemm_time_s(tokens, 2 * 1024, 1024, "bf16", POOL.device)
                        + gemm_time_s(tokens, 1024, 1024, "bf16", POOL.device))
    assert math.isclose(skewed.parts["gemm"] - one.parts["gemm"], experts(3072) - experts(2048), rel_tol=1e-9)
    assert skewed.parts["ep_comm"] > one.parts["ep_comm"]
    hidden = layer_cost(model, True, POOL, st(ep=4, dp=4, a2a_overlap=True))
    assert hidden.parts["ep_comm"] < one.parts["ep_comm"]


def test_fp8_gemms_casts_and_bf16_attention():
    model = gpt(layers=2, hidden=1024, heads=16, vocab=1000)
    bf16, fp8 = (layer_cost(model, False, POOL, st(dtype=d)) for d in ("bf16", "fp8"))
    assert fp8.parts["attention"] == bf16.parts["attention"]  # attention stays in BF16
    T, h = 2048, 1024
    shapes = [(T, 3 * h, h), (T, h, h), (T, 4 * h, h), (T, h, 4 * h)]
    assert math.isclose(fp8.parts["gemm"], 3 * sum(gemm_time_s(*s, "fp8", POOL.device) for s in shapes))
    # casts + amax: 5 B per element of the three operands of every GEMM, once over forward + backward
    cast = sum(5 * (m * k + k * n + m * n) for m, n, k in shapes) / (2.039e12 * 0.85)
    assert math.isclose(fp8.parts["elementwise"] - bf16.parts["elementwise"], cast, rel_tol=1e-9)


def test_unfused_attention_by_hand():
    dev = POOL.device
    # full (not causal-halved) QK^T and AV as batched GEMMs (b*a*s query rows) + 9 B per score of softmax and
    # dropout through HBM; backward: twice the GEMMs + 11 B per score
    t = unfused_attention_time_s(1, 2048, 16, 64, 64, dev)
    rows, scores, bw = 16 * 2048, 16 * 2048**2, 2.039e12 * 0.85
    gemms = gemm_time_s(rows, 2048, 64, "bf16", dev) + gemm_time_s(rows, 64, 2048, "bf16", dev)
    # QK^T writes the 2-byte scores faster than it computes them? no: 128 FLOPs per 2 B -> memory-bound on A100
    assert math.isclose(gemm_time_s(rows, 2048, 64, "bf16", dev), 2 * (rows * 64 + 64 * 2048 + rows * 2048) / bw)
    assert math.isclose(t, gemms + SCORE_BYTES_FORWARD * scores / bw)
    backward = unfused_attention_time_s(1, 2048, 16, 64, 64, dev, backward=True)
    assert math.isclose(backward, t + 2 * gemms + SCORE_BYTES_BACKWARD * scores / bw)


def test_compile_sdpa_and_async_tp_terms():
    model = gpt(layers=2, hidden=1024, heads=16, vocab=1000)
    eager = layer_cost(model, False, POOL, st(framework="torchtitan", fused=False))
    compiled = layer_cost(model, False, POOL, st(framework="torchtitan", fused=True))
    megatron = layer_cost(model, False, POOL, st())
    assert math.isclose(eager.parts["elementwise"], 3.0 * compiled.parts["elementwise"])  # eager factor 3
    assert math.isclose(compiled.parts["attention"], 2 * megatron.parts["attention"])  # SDPA at half the speed
    plain = layer_cost(model, False, POOL, st(tp=4, dp=1, sp=True, tp_overlap=False))
    overlapped = layer_cost(model, False, POOL, st(tp=4, dp=1, sp=True, tp_overlap=True))
    assert math.isclose(overlapped.parts["tp_comm"], (1 - 0.6) * plain.parts["tp_comm"])


def test_op_level_sac_memory_by_hand():
    model = load_model("llama3.1-8b")
    h, f = 4096, 14336
    # input 2h + the outputs of the odd matmuls wq (h), wv (1024), w1 (f), w2 (h), 2 B each + attention output
    # (a*d = h, 2 B) + fp32 log-sum-exp (4 a)
    per_token = 2 * h + 2 * (h + 1024 + f + h) + 2 * h + 4 * 32
    assert M.ops_sac_activation_bytes(model, 8192, 1) == 8192 * per_token
    megatron = M.layer_activation_bytes(model, False, 1, 8192, tp=1, cp=1, etp=1, sp=False, recompute="selective")
    titan = M.layer_activation_bytes(model, False, 1, 8192, tp=1, cp=1, etp=1, sp=False, recompute="selective",
                                     ops_sac=True)
    assert titan < 0.6 * megatron


def test_deepseek_v3_published_configuration_fits_on_h800():
    # 2048 H800, PP16, EP64, no TP, ZeRO-1 (distributed optimizer), FP8 with TE's FP8 input copies, selective
    # recompute (norms, SwiGLU, MLA up-projections), a layout giving the early stages (most micro-batches in
    # flight) three layers
    model, dev = load_model("deepseek-v3"), load_device("h800")
    workload = TrainingWorkload(global_batch=15360, seq_len=4096, dtype="fp8", a2a_dedup=True, fp8_dispatch=True,
                                a2a_overlap=True)
    layout = (3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 4, 4, 4, 4, 4, 3)
    config = ParallelConfig(tp=1, pp=16, dp=128, ep=64, mbs=1, zero=1, recompute="selective", stage_layers=layout)
    est = estimate_training(model, ClusterSpec.homogeneous(dev, 2048), workload, config)
    assert est.feasible, est.infeasible_reasons
    assert max(est.stage_memory_bytes) <= dev.hbm_bytes


def test_hardware_flops_follow_the_framework_recompute():
    # torchtitan's selective recompute repeats wk, wo and w3 (every 2nd matmul), Megatron's the attention core
    model = load_model("llama3.1-8b")
    cl = ClusterSpec.homogeneous(load_device("h100-sxm"), 8)
    config = ParallelConfig(dp=8, mbs=1, zero=3, recompute="selective")
    runs = {fw: estimate_training(model, cl, TrainingWorkload(global_batch=8, seq_len=4096, framework=fw), config)
            for fw in ("megatron", "torchtitan")}
    lf = layer_forward_flops(model, False, 8, 4096)
    extra = {fw: (r.hardware_tflops_per_gpu - r.model_tflops_per_gpu) * r.step_time_s * 8 * 1e12 / 32
             for fw, r in runs.items()}
    assert math.isclose(extra["megatron"], lf.attention_core, rel_tol=1e-9)
    per_token = 2 * 8 * 4096  # FLOPs per weight parameter of one micro-batch's tokens
    wk, wo, w3 = 4096 * 1024, 4096 * 4096, 4096 * 14336
    assert math.isclose(extra["torchtitan"], per_token * (wk + wo + w3), rel_tol=1e-9)
    assert math.isclose(per_token * (wk + wo + w3) / (lf.total - lf.attention_core), 0.3654, rel_tol=1e-3)


def test_homogeneous_cluster_rejects_zero_devices_per_node():
    dev = DeviceSpec(name="d", bf16_flops_per_s=1e15, fp8_flops_per_s=2e15, hbm_bytes=80 * 2**30,
                     hbm_bytes_per_s=3e12, devices_per_node=8, intra_node_bytes_per_s=400e9,
                     inter_node_bytes_per_s=50e9)
    with pytest.raises(SpecError, match="gpus_per_node"):
        ClusterSpec.homogeneous(dev, 16, devices_per_node=0)
    assert ClusterSpec.homogeneous(dev, 16).pools[0].devices_per_node == 8
