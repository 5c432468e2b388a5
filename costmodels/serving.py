"""Serving cost model: prefill latency, decode step time, KV-cache capacity, KV transfer time.

One *instance* is a serving engine on tp·dp·pp GPUs: per pipeline stage, dp attention replicas of tp ranks
(dp = 1 unless DP attention is used, MoE models only); the routed experts of a stage are spread over ep of its
tp·dp GPUs (expert tensor parallelism tp·dp/ep). Times are per GPU of the busiest stage, times pp (a request
crosses every stage), in seconds.

Every kernel is priced by costmodels/serving_kernels.py (roofline with a launch floor, GEMMs with a
size-dependent efficiency at the peak of their dtype) with the engine's KernelConstants.
Per layer and step (T tokens in the step, b sequences, context c):
  GEMMs         qkv, out, MLP gate/up and down (MoE: grouped GEMMs over the experts that receive tokens;
                the expected number of distinct experts hit by n token-slots is E·(1 - (1 - k/E)^n))
  attention     prefill: causal flash attention 4·T·(L/2)·(a/tp)·d FLOPs at attention_efficiency;
                decode: KV read b·c·kv_bytes/shard at η_hbm
  other kernels n_e element-wise kernels (norms, rotary, KV write, activation, residuals; n_e = 8 unfused,
                4 fused), each max(floor, ELEMENTWISE_PASSES·T·h·2 / n_e / (BW·η))
  MoE skew      the busiest expert-parallel GPU receives skew × the mean token-expert slots (1 = balanced)
                (one skew, or a table by expert-parallel degree from routing statistics: skew_at)
  TP all-reduce 2 per layer: t_call + 2(n-1)·t_hop + 2(n-1)/n · S / (B_link·η_ar), S = T·h·2 (BF16)
  EP dispatch + combine per MoE layer (replacing one all-reduce): comm.moe_dispatch_time_s (the training
                model's term) for skew·T/(tp·dp) tokens per rank, FP8 dispatch payload with FP8 weights
  DP attention  dp attention replicas per stage share the MoE layers (instance = tp·dp·pp GPUs)
Per step: + LM head GEMM on the sampled tokens, + per-iteration overhead (decode_step_overhead_s),
  + seq_overhead_s per running sequence (decode; overlapped schedulers hide it behind the GPU work up to the
  step's GPU time, `cpu_overhead_s`), + prefill_overhead_s (prefill), + (pp-1) p2p sends.
KV capacity: (usable HBM · KV_MEMORY_FRACTION − weights on the GPU) / KV bytes per token on the GPU.
KV transfer: all layers' KV of a prompt over the link between the two instances (NVLink inside a node,
  the NIC across nodes, the inter-pool link across pools), sent in parallel by the prefill instance's tp·dp GPUs.

Engines (ENGINES): "trtllm", "vllm", "sglang" take their GEMM, attention and all-reduce constants from the
device profile's `serving_engines` block, fitted per engine and device to the engine's measured per-op tables
(aiconfigurator-core; benchmarks/serve_engine_fit.py), with CUDA-graph CPU overheads and fused element-wise
kernels (estimates). "legacy" reproduces the vLLM profiled by Splitwise (Patel et al., ISCA'24): decode replayed
from CUDA graphs, prefill launched eagerly (wall = max(CPU launches, GPU work)), CPU sampling per sequence;
its serving_* constants are fitted (benchmarks/serve_fit.py) and it is the default of `estimate serve`.
"modern" is a generic CUDA-graph engine at the device's micro-benchmark figures (an estimate, not fitted).
Kernel formulas: costmodels/serving_kernels.py (GEMMs in the weight dtype at its own peak, KV in the KV dtype).
"""

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from costmodels.compute import memory_bound_time_s
from costmodels.errors import require
from costmodels.geometry import mlp_params
from costmodels.hardware import MEASURED_ENGINES, DeviceSpec
from costmodels.kv import LayerParams, kv_bytes_per_token_layer, kv_shard, layer_params
from costmodels.model import ModelSpec
from costmodels.serving_allreduce import allreduce_s
from costmodels.serving_attention import decode_attention_s, prefill_attention_s, query_tiles
from costmodels.serving_attention_sm100 import longest_tile_flops
from costmodels.serving_constants import KernelConstants
from costmodels.serving_fusions import MEASURED_FUSED_QUANT, family_fused_quant, fused_quant_sources
from costmodels.serving_gemm import moe_input_quant_s
from costmodels.serving_kernels import (
    EngineKernels,
    block_quant_s,
    engine_calibration,
    gemm_s,
    gen_activation_s,
    grouped_gemm_s,
    moe_exchange_s,
)
from costmodels.serving_moe_configs import config_block_rows, walks_all_slots
from costmodels.serving_precision import WEIGHT_BYTES, Precision, check_precision, max_routing_skew
from costmodels.serving_shapes import attention_gemms, mlp_gemms

OTHER_KERNELS_PER_LAYER = 8
"""element-wise kernels per block: 2 norms, rotary, KV-cache write, activation, 2 residual adds, attention prep"""
ELEMENTWISE_PASSES = 12
"""reads+writes of a T·h activation per block by the element-wise kernels"""
FUSED_KERNELS_PER_LAYER = 4
"""element-wise kernels per block in engines that fuse them (add+norm twice, rotary+KV write, activation)"""
KV_MEMORY_FRACTION = 0.90
"""share of usable HBM an engine hands to weights + KV cache (vLLM gpu_memory_utilization default)"""


@dataclass(frozen=True, kw_only=True, slots=True)
class EngineModel:
    """How an inference engine turns GPU work into wall time."""

    name: str
    """preset name"""
    eager_prefill: bool
    """prefill kernels are launched one by one from Python (wall = max(CPU launches, GPU work))"""
    seq_overhead_scale: float
    """multiplier on calibration.seq_overhead_s"""
    prefill_overhead_scale: float
    """multiplier on calibration.prefill_overhead_s"""
    constants: str
    """where the kernel constants come from: "legacy" (the device's serving_* fit to Splitwise-profiled vLLM),
    "micro" (the device's micro-benchmark figures), "measured" (the device's serving_engines entry for this
    engine, fitted to the engine's measured per-op tables)"""
    elementwise_kernels: int
    """element-wise kernels per block outside GEMMs and attention (norms, rotary, KV write, activation, residuals)"""
    fused_quant: frozenset[str] = frozenset()
    """FP8: the GEMM inputs (by producing kernel, serving_shapes.QUANT_SOURCES) quantised inside that kernel; every
    other FP8 GEMM input is quantised by a kernel of its own"""
    overlapped_cpu: bool = False
    """step n+1 is scheduled on the CPU while the GPU runs step n: per-sequence CPU work costs only what exceeds the
    GPU work (default in TensorRT-LLM's PyTorch backend, SGLang, vLLM V1 async scheduling: vllm#27614)"""


ENGINES = {
    # vLLM as profiled by Splitwise (2023): decode replayed from CUDA graphs, prefill eager, CPU sampling per sequence.
    "legacy": EngineModel(name="legacy", eager_prefill=True, seq_overhead_scale=1.0, prefill_overhead_scale=1.0,
                          constants="legacy", elementwise_kernels=OTHER_KERNELS_PER_LAYER),
    # a generic CUDA-graph engine at micro-benchmark speed (kept for comparison; estimates, not fitted)
    "modern": EngineModel(name="modern", eager_prefill=False, seq_overhead_scale=0.1, prefill_overhead_scale=0.25,
                          constants="micro", elementwise_kernels=OTHER_KERNELS_PER_LAYER),
    # engines with measured kernels (aiconfigurator-core tables): GEMM, attention and all-reduce constants are
    # fitted per device (profiles/hardware/*.yaml serving_engines). Not in the tables, so estimates: CPU overheads
    # as "modern" (CUDA graphs, GPU-side sampling), hidden behind the GPU work by their overlapped schedulers, and
    # FUSED_KERNELS_PER_LAYER fused element-wise kernels (add+norm twice, rotary+KV write, activation) that also
    # quantise FP8 GEMM inputs.
    **{name: EngineModel(name=name, eager_prefill=False, seq_overhead_scale=0.1, prefill_overhead_scale=0.25,
                         constants="measured", elementwise_kernels=FUSED_KERNELS_PER_LAYER,
                         fused_quant=MEASURED_FUSED_QUANT[name], overlapped_cpu=True)
       for name in MEASURED_ENGINES},
}
DEFAULT_ENGINE = "legacy"


def default_prefill_token_budget(engine: str, device: DeviceSpec) -> int:
    """Tokens one prefill iteration carries at most by default (1 = one prompt per step) — the engine's own default:
      vllm    `max_num_batched_tokens` of `vllm serve`: 8192 on GPUs with >= 70 GiB that are not A100, else 2048
              (vllm/engine/arg_utils.py, EngineArgs.get_batch_defaults, UsageContext.OPENAI_API_SERVER)
      sglang  `chunked_prefill_size` by GPU memory: < 35 GiB 2048, < 60 GiB 4096, < 160 GiB 8192, else 16384
              (sglang/srt/server_args.py); with DP attention it is the instance's total (each rank gets 1/dp)
      trtllm  `max_num_tokens` 8192 (trtllm-serve / LLM API default; some releases document 2048)
      legacy, modern: one prompt per step (the 2023 Splitwise-profiled vLLM the legacy constants are fitted to)."""
    gib = device.hbm_bytes / 2**30
    if engine == "vllm":
        return 8192 if gib >= 70 and "a100" not in device.name.lower() else 2048
    if engine == "sglang":
        return 2048 if gib < 35 else 4096 if gib < 60 else 8192 if gib < 160 else 16384
    if engine == "trtllm":
        return 8192
    return 1


def kernel_constants(device: DeviceSpec, engine: EngineModel) -> KernelConstants:
    """The kernel constants an engine runs with on a device (see EngineModel.constants)."""
    if engine.constants == "measured":
        return KernelConstants.of_engine(engine_calibration(device, engine.name))
    cal = device.calibration
    legacy = engine.constants == "legacy"
    hbm = cal.serving_hbm_efficiency if legacy else cal.hbm_efficiency
    return KernelConstants(
        gemm_efficiency_max=cal.serving_gemm_efficiency_max, gemm_half_flops=cal.serving_gemm_half_flops,
        fp8_gemm_efficiency_max=cal.serving_gemm_efficiency_max, fp8_gemm_half_flops=cal.serving_gemm_half_flops,
        fp8_quant_s=cal.serving_kernel_floor_s if legacy else cal.kernel_floor_s, hbm_efficiency=hbm,
        kernel_floor_s=cal.serving_kernel_floor_s if legacy else cal.kernel_floor_s,
        attention_efficiency=cal.attention_efficiency, attention_floor_s=0.0, attention_half_work=0.0,
        kv_read_efficiency=hbm, decode_attention_floor_s=0.0, decode_seq_s=0.0,
        allreduce_call_s=0.0 if legacy else cal.collective_latency_s,
        allreduce_hop_s=cal.allreduce_hop_latency_s if legacy else 0.0,
        allreduce_efficiency=cal.serving_allreduce_efficiency if legacy else cal.intra_node_efficiency)


@functools.lru_cache(maxsize=64)
def engine_kernels(device: DeviceSpec, engine: EngineModel, devices_per_node: int | None = None) -> EngineKernels:
    """The device as `engine` runs it (shared: EngineKernels is immutable but for its lazily built, deterministic
    tuned MoE kernels; a planner solve prices thousands of steps on a few (device, engine) pairs)."""
    return EngineKernels(device, kernel_constants(device, engine), devices_per_node)


@dataclass(frozen=True, kw_only=True, slots=True)
class InstanceShape:
    """Parallel shape of one serving instance."""

    tp: int = 1
    """tensor-parallel ranks per stage"""
    pp: int = 1
    """pipeline stages"""
    ep: int = 1
    """expert-parallel ranks among the tp·dp GPUs of a stage (ep | tp·dp); experts are tensor-split tp·dp/ep ways"""
    dp: int = 1
    """attention data-parallel replicas per stage (DP attention); MoE layers span all tp·dp GPUs of the stage"""

    def __post_init__(self) -> None:
        for name in ("tp", "pp", "ep", "dp"):
            v = getattr(self, name)
            require(isinstance(v, int) and v >= 1, f"must be a positive integer, got {v!r}", field=name)
        require((self.tp * self.dp) % self.ep == 0, f"ep ({self.ep}) must divide tp*dp ({self.tp * self.dp})",
                field="ep")

    @property
    def gpus(self) -> int:
        return self.tp * self.dp * self.pp


def check_shape(model: ModelSpec, shape: InstanceShape) -> None:
    """Divisibility rules (SpecError naming the field)."""
    require(model.heads % shape.tp == 0, f"tp ({shape.tp}) must divide heads ({model.heads})", field="tp")
    require(shape.pp <= model.layers, f"pp ({shape.pp}) must be <= layers ({model.layers})", field="pp")
    require(shape.dp == 1 or model.moe is not None, "dp attention (dp > 1) is for MoE models", field="dp")
    if shape.ep > 1:
        require(model.moe is not None, "ep > 1 needs an MoE model", field="ep")
        experts = model.moe_dims.experts
        require(experts % shape.ep == 0, f"ep ({shape.ep}) must divide experts ({experts})", field="ep")


def engine_model(name: str) -> EngineModel:
    require(name in ENGINES, f"unknown engine {name!r}; valid: {', '.join(sorted(ENGINES))}", field="engine")
    return ENGINES[name]


def _layer_kinds(model: ModelSpec, pp: int) -> list[tuple[int, int]]:
    """[(representative layer index, count)] of the slowest stage: dense and MoE blocks, worst stage by count."""
    per_stage = math.ceil(model.layers / pp)
    moe_layers = model.moe_layers
    dense = model.layers - moe_layers
    # the stage holding the most MoE layers is the slowest; it has min(per_stage, moe_layers) of them
    moe_in_stage = min(per_stage, moe_layers)
    dense_in_stage = min(per_stage - moe_in_stage, dense)
    kinds = []
    if dense_in_stage:
        first_dense = next(i for i in range(model.layers) if not model.layer_is_moe(i))
        kinds.append((first_dense, dense_in_stage))
    if moe_in_stage:
        first_moe = next(i for i in range(model.layers) if model.layer_is_moe(i))
        kinds.append((first_moe, moe_in_stage))
    return kinds


@dataclass(frozen=True, kw_only=True, slots=True)
class PromptGroup:
    """`count` prompts (or prompt chunks) of one length prefilled in an engine iteration."""

    count: float
    """prompts of this length in the step"""
    tokens: float
    """tokens each computes in this step"""
    context: float = 0.0
    """cached tokens before them (earlier chunks, shared prefix)"""


@dataclass(frozen=True, kw_only=True, slots=True)
class StepLoad:
    """The work of one engine iteration: decode tokens plus prompts (varlen: each prompt attends to itself only)."""

    decode_seqs: float
    """sequences decoding one token each"""
    decode_ctx: float
    """their context length"""
    prompts: tuple[PromptGroup, ...] = ()
    """prompts prefilled in this iteration, grouped by (tokens, context)"""

    @property
    def prefill_seqs(self) -> float:
        return sum(g.count for g in self.prompts)

    @property
    def prefill_tokens(self) -> float:
        return sum(g.count * g.tokens for g in self.prompts)

    def busiest_replica(self, dp: int) -> tuple[PromptGroup, ...]:
        """The prompts of the busiest of dp attention replicas: with no more prompts than replicas each runs on its
        own replica and the busiest holds the longest; otherwise every group spreads evenly (count/dp each)."""
        if not self.prompts:
            return ()
        if self.prefill_seqs <= dp:
            longest = max(self.prompts, key=lambda g: (g.tokens * (g.tokens / 2 + g.context), g.tokens))
            return (PromptGroup(count=1.0, tokens=longest.tokens, context=longest.context),)
        return tuple(PromptGroup(count=g.count / dp, tokens=g.tokens, context=g.context) for g in self.prompts)


def _attention(model: ModelSpec, ek: EngineKernels, tp: int, load: StepLoad, dp: int, prec: Precision) -> float:
    """Attention core of one block on the busiest DP replica (prefill chunks and decode reads)."""
    heads = model.heads / tp
    if model.attention == "mla":
        qk_dim, v_dim = model.mla_dims.qk_nope_head_dim + model.mla_dims.qk_rope_head_dim, model.mla_dims.v_head_dim
    else:
        qk_dim = v_dim = model.head_dim
    t = 0.0
    kv_layer = kv_bytes_per_token_layer(model, prec.kv) / kv_shard(model, tp)
    mine = load.busiest_replica(dp)
    if mine:
        # one varlen flash-attention kernel: each prompt's causal work (its tokens x its mean keys per row), the
        # efficiency curve at the FLOP-weighted mean keys per row
        work = [(2 * g.count * g.tokens * (g.tokens / 2 + g.context) * heads * (qk_dim + v_dim),
                 g.tokens / 2 + g.context) for g in mine]
        flops = sum(f for f, _ in work)
        rows = work[0][1] if len(work) == 1 else sum(f * r for f, r in work) / flops
        tiles = sum(query_tiles(g.count, heads, g.tokens) for g in mine)
        kv_bytes = sum(g.count * (g.tokens + g.context) for g in mine) * kv_layer
        longest = max(longest_tile_flops(g.tokens, g.context, qk_dim + v_dim) for g in mine)  # Blackwell's tail
        t += prefill_attention_s(ek, flops, rows, tiles, kv_bytes, longest)
    d_seqs = load.decode_seqs / dp
    if d_seqs:
        flops = 2 * d_seqs * load.decode_ctx * heads * (qk_dim + v_dim)
        kv_heads = 1.0 if model.attention == "mla" else max(1.0, model.kv_heads / tp)
        t += decode_attention_s(ek, d_seqs, kv_heads, heads, load.decode_ctx, d_seqs * load.decode_ctx * kv_layer,
                                flops, prec.kv == "fp8")
    return t


def _dense_gemms(ek: EngineKernels, model: ModelSpec, p: LayerParams, tp: int, tokens: float, dtype: str,
                 fused: frozenset[str]) -> float:
    """Attention projections and the dense MLP (or shared experts and router) of one block, at the (n, k) of each
    GEMM (costmodels/serving_shapes.py)."""
    per_row = mlp_params(model, 1)  # MLP parameters per unit of intermediate width
    fused = fused_quant_sources(fused, model, tp)
    shapes = attention_gemms(model, tp)
    for params in (p.mlp, p.shared):
        if params:
            shapes += mlp_gemms(model, params / per_row, tp)
    t = sum(gemm_s(ek, tokens, n, kk, dtype, source in fused) for n, kk, source in shapes)
    if p.router:
        t += gemm_s(ek, tokens, p.router / model.hidden, model.hidden, "bf16")
    return t


def _routed_experts(ek: EngineKernels, model: ModelSpec, p: LayerParams, shape: InstanceShape, tokens: float,
                    prec: Precision, engine: EngineModel) -> float:
    """Grouped GEMMs (gate+up, down) of the routed experts on the busiest GPU (skew x the mean token-expert
    slots), each expert split over the expert tensor-parallel ranks; on a tuned or the default tile config of
    the engine's MoE kernel (serving_moe_configs)."""
    moe = model.moe_dims
    slots = tokens * moe.top_k / shape.ep * prec.skew
    local = moe.experts / shape.ep
    etp = shape.tp * shape.dp // shape.ep
    width = p.routed_expert / mlp_params(model, 1)
    rows = config_block_rows(engine.name, ek.device.name, tokens, local, width / etp, prec.dtype, prec.block_scaled)
    walked = tokens * moe.top_k if walks_all_slots(engine.name, prec.dtype) else 0.0
    # block-scaled FP8 on TensorRT-LLM-gen (vLLM on B200): its input's quantisation; per-tensor FP8 where the layer
    # quantises its input in a kernel of its own (TensorRT-LLM's CUTLASS MoE: moe_input_quant; vLLM's FlashInfer
    # CUTLASS experts on Hopper too, timed on TensorRT-LLM's constants: ek.tuned_moe), each attention-DP replica
    # its own tokens before the all-gather (CutlassFusedMoE: quantize_input, then allgather); else 0
    qk = ek.tuned_moe or ek
    quant = (block_quant_s(ek, tokens, model.hidden) if prec.block_scaled
             else moe_input_quant_s(qk.device, qk.k, tokens / shape.dp, model.hidden) if prec.dtype == "fp8" else 0.0)
    # FP8 experts on TensorRT-LLM-gen with block scales (vLLM's block-scaled, SGLang's): the activation kernel between
    # the GEMMs, once per layer (else 0)
    act = (gen_activation_s(ek, tokens * moe.top_k, width / etp, shape.ep, prec.block_scaled)
           if prec.dtype == "fp8" else 0.0)
    return act + quant + sum(grouped_gemm_s(ek, slots, local, n, kk, prec.dtype, "moe" in engine.fused_quant, rows,
                                            walked, prec.block_scaled, shape.ep)
                             for n, kk, _ in mlp_gemms(model, width, etp))


def _step_layers(model: ModelSpec, ek: EngineKernels, shape: InstanceShape, engine: EngineModel, load: StepLoad,
                 prec: Precision) -> tuple[dict[str, float], int]:
    """Time of the blocks of the slowest stage for one engine iteration, by part (s); and the kernels launched.

    With DP attention (dp > 1) the sequences are spread over dp attention replicas (the busiest one holds
    decode_seqs/dp decode sequences, StepLoad.busiest_replica's prompts); the MoE layers see every token of the
    instance, experts spread over ep of the tp·dp GPUs.
    """
    check_precision(model, ek.device, engine.name, prec.dtype, prec.quant_block)
    dp, tp, ep = shape.dp, shape.tp, shape.ep
    if model.is_moe:  # no routing puts more than max_routing_skew on the busiest GPU: experts and all-to-all see that
        prec = replace(prec, skew=min(prec.skew, max_routing_skew(model, ep)))
    # tokens of the busiest attention replica, and of the whole instance (MoE layers)
    local = load.decode_seqs / dp + sum(g.count * g.tokens for g in load.busiest_replica(dp))
    tokens = load.decode_seqs + load.prefill_tokens
    act = 2.0  # activations between kernels and on the wire stay in BF16
    out = {"gemm_s": 0.0, "attention_s": 0.0, "elementwise_s": 0.0, "allreduce_s": 0.0, "alltoall_s": 0.0}
    kernels = 0
    n_elem = engine.elementwise_kernels
    for index, count in _layer_kinds(model, shape.pp):
        p = layer_params(model, index)
        gemm = _dense_gemms(ek, model, p, tp, local, prec.dtype,
                            family_fused_quant(engine.name, engine.fused_quant, model))
        if p.routed_expert:
            gemm += _routed_experts(ek, model, p, shape, tokens, prec, engine)
        elem_bytes = ELEMENTWISE_PASSES * local * model.hidden * act / n_elem
        elementwise = n_elem * max(ek.k.kernel_floor_s, memory_bound_time_s(elem_bytes, ek.device))
        ar = allreduce_s(ek, local * model.hidden * act, tp)
        a2a = 0.0
        if p.routed_expert and ep > 1:
            # dispatch and combine: each GPU sends its tokens' expert copies to the owners (busiest: skew x mean)
            a2a = moe_exchange_s(ek, tokens / (tp * dp) * prec.skew, model.hidden, model.moe_dims.top_k, ep,
                                 tp * dp // ep, prec.dtype == "fp8")
            ar_count = 1 + (1 if (tp * dp // ep > 1 or p.shared) else 0)
        else:
            ar_count = 2
        out["gemm_s"] += count * gemm
        out["attention_s"] += count * _attention(model, ek, tp, load, dp, prec)
        out["elementwise_s"] += count * elementwise
        out["allreduce_s"] += count * ar_count * ar
        out["alltoall_s"] += count * a2a
        n_kernels = 5 + n_elem + (3 if p.routed_expert else 0)
        kernels += count * (n_kernels + (ar_count if tp > 1 else 0) + (2 if a2a else 0))
    return out, kernels


def _stage_total(model: ModelSpec, ek: EngineKernels, shape: InstanceShape, parts: dict[str, float], *,
                 tokens: float, sampled: float, devices_per_node: int | None) -> dict[str, float]:
    """Add LM head and pipeline sends; blocks of the slowest stage count pp times (every stage is crossed)."""
    device = ek.device
    head = gemm_s(ek, sampled, model.vocab / shape.tp, model.hidden, "bf16")
    per_node = devices_per_node or device.devices_per_node
    stages_per_node = max(1, per_node // shape.tp)
    p2p = 0.0
    for boundary in range(1, shape.pp):
        cross_node = boundary % stages_per_node == 0
        bw = device.inter_node_bytes_per_s if cross_node else device.intra_node_bytes_per_s
        lat = device.inter_node_latency_s if cross_node else device.intra_node_latency_s
        p2p += lat + tokens * model.hidden * 2.0 / shape.tp / bw
    total = {k: v * shape.pp for k, v in parts.items()}
    total["lm_head_s"] = head
    total["pipeline_p2p_s"] = p2p
    return total


SkewByEp = tuple[tuple[int, float], ...]
"""MoE routing skew per expert-parallel degree, (ep, skew) pairs (routing statistics: planner/serve/moe_skew.py)"""
Skew = float | SkewByEp
"""one routing skew for every degree, or a table the step model looks its own degree up in (skew_at)"""


def skew_at(skew: Skew, ep: int) -> float:
    """The routing skew at expert-parallel degree `ep`: `skew` itself, or the value its per-degree table holds."""
    if not isinstance(skew, tuple):
        return skew
    table = dict(skew)
    require(ep in table, f"the routing-skew table has no value at ep {ep} (it has ep "
            f"{', '.join(str(e) for e in sorted(table))})", field="moe-stats")
    return table[ep]


def _precision(dtype: str, kv_dtype: str, skew: Skew, quant_block: int, ep: int) -> Precision:
    return Precision(dtype=dtype, kv_dtype=kv_dtype, skew=skew_at(skew, ep), quant_block=quant_block)


def prefill_time(model: ModelSpec, device: DeviceSpec, shape: InstanceShape, *, batch: float, prompt_len: float,
                 context_len: float = 0.0, engine: str = DEFAULT_ENGINE, dtype: str = "bf16", kv_dtype: str = "",
                 skew: Skew = 1.0, devices_per_node: int | None = None, quant_block: int = 0) -> dict[str, Any]:
    """Latency of prefilling `batch` prompts of `prompt_len` tokens together (after `context_len` cached tokens):
    prefill_batch_time with `batch` equal prompts. Returns {"time_s": ..., breakdown...}."""
    group = PromptGroup(count=batch, tokens=prompt_len, context=context_len)
    return _prefill_step(model, device, shape, (group,), engine=engine,
                         prec=_precision(dtype, kv_dtype, skew, quant_block, shape.ep),
                         devices_per_node=devices_per_node)


def prefill_batch_time(model: ModelSpec, device: DeviceSpec, shape: InstanceShape, *,
                       prompts: Sequence[tuple[float, float]], engine: str = DEFAULT_ENGINE, dtype: str = "bf16",
                       kv_dtype: str = "", skew: Skew = 1.0, devices_per_node: int | None = None,
                       quant_block: int = 0) -> dict[str, Any]:
    """One prefill iteration carrying several prompts, each (tokens computed, cached context tokens): the GEMMs and
    MoE layers run on the summed tokens, attention is varlen (each prompt's own causal work), one LM-head row per
    prompt. With one prompt it is prefill_time(batch=1). Returns {"time_s": ..., breakdown...}."""
    require(len(prompts) >= 1, "needs at least one prompt", field="prompts")
    counts: dict[tuple[float, float], int] = {}
    for tokens, context in prompts:
        require(tokens >= 1 and context >= 0, f"prompt ({tokens}, {context}) needs tokens >= 1, context >= 0",
                field="prompts")
        counts[(float(tokens), float(context))] = counts.get((float(tokens), float(context)), 0) + 1
    groups = tuple(PromptGroup(count=n, tokens=t, context=c) for (t, c), n in sorted(counts.items()))
    return _prefill_step(model, device, shape, groups, engine=engine,
                         prec=_precision(dtype, kv_dtype, skew, quant_block, shape.ep),
                         devices_per_node=devices_per_node)


def _prefill_step(model: ModelSpec, device: DeviceSpec, shape: InstanceShape, groups: tuple[PromptGroup, ...], *,
                  engine: str, prec: Precision, devices_per_node: int | None) -> dict[str, Any]:
    """The prefill iteration of `groups` (the one formula behind prefill_time and prefill_batch_time)."""
    eng = engine_model(engine)
    load = StepLoad(decode_seqs=0.0, decode_ctx=0.0, prompts=groups)
    ek = engine_kernels(device, eng, devices_per_node)
    parts, kernels = _step_layers(model, ek, shape, eng, load, prec)
    total = _stage_total(model, ek, shape, parts, tokens=load.prefill_tokens, sampled=load.prefill_seqs,
                         devices_per_node=devices_per_node)
    cal = device.calibration
    gpu = sum(total.values())
    # an eager engine enqueues kernels from the CPU while the GPU runs them: wall = max(CPU launches, GPU work)
    launch = kernels * shape.pp * cal.launch_floor_s if eng.eager_prefill else 0.0
    total["launch_bound_s"] = max(0.0, launch - gpu)
    total["overhead_s"] = cal.decode_step_overhead_s + cal.prefill_overhead_s * eng.prefill_overhead_scale
    total["time_s"] = sum(total.values())
    return total


def decode_step_time(model: ModelSpec, device: DeviceSpec, shape: InstanceShape, *, batch: float, context_len: float,
                     engine: str = DEFAULT_ENGINE, dtype: str = "bf16", kv_dtype: str = "", skew: Skew = 1.0,
                     devices_per_node: int | None = None, tokens_per_seq: float = 1.0,
                     quant_block: int = 0) -> dict[str, Any]:
    """One decode iteration of `batch` sequences whose context is `context_len` tokens: {"time_s", breakdown}.

    `tokens_per_seq` > 1: speculative decoding verifies that many tokens per sequence in the step (their GEMM rows
    and KV writes; attention reads each sequence's KV once).
    """
    prec = _precision(dtype, kv_dtype, skew, quant_block, shape.ep)
    eng = engine_model(engine)
    load = StepLoad(decode_seqs=batch * tokens_per_seq, decode_ctx=context_len / tokens_per_seq)
    ek = engine_kernels(device, eng, devices_per_node)
    parts, _ = _step_layers(model, ek, shape, eng, load, prec)
    total = _stage_total(model, ek, shape, parts, tokens=batch * tokens_per_seq,
                         sampled=batch * tokens_per_seq, devices_per_node=devices_per_node)
    total["overhead_s"] = cpu_overhead_s(device, eng, batch, sum(total.values()))
    total["time_s"] = sum(total.values())
    return total


def cpu_overhead_s(device: DeviceSpec, eng: EngineModel, seqs: float, gpu_s: float) -> float:
    """CPU time a step adds to `gpu_s` of GPU work with `seqs` running sequences: the per-iteration overhead plus
    seqs · seq_overhead_s · scale, of which an overlapped scheduler hides up to gpu_s (wall = max(GPU, CPU))."""
    cal = device.calibration
    per_seq = seqs * cal.seq_overhead_s * eng.seq_overhead_scale
    return cal.decode_step_overhead_s + (max(per_seq - gpu_s, 0.0) if eng.overlapped_cpu else per_seq)


def mixed_step_time(model: ModelSpec, device: DeviceSpec, shape: InstanceShape, *, decode_batch: float,
                    decode_context: float, chunk_tokens: float, chunk_context: float, engine: str = DEFAULT_ENGINE,
                    dtype: str = "bf16", kv_dtype: str = "", skew: Skew = 1.0,
                    devices_per_node: int | None = None, chunk_prompts: float = 1.0, quant_block: int = 0) -> float:
    """One chunked-prefill iteration (Sarathi): decode_batch decode tokens plus chunk_tokens prompt tokens, split
    evenly over chunk_prompts prompts (varlen: each attends to itself after chunk_context cached tokens)."""
    prec = _precision(dtype, kv_dtype, skew, quant_block, shape.ep)
    eng = engine_model(engine)
    prompts = max(chunk_prompts, 1.0)
    chunk = ((PromptGroup(count=prompts, tokens=chunk_tokens / prompts, context=chunk_context),)
             if chunk_tokens > 0 else ())
    load = StepLoad(decode_seqs=decode_batch, decode_ctx=decode_context, prompts=chunk)
    ek = engine_kernels(device, eng, devices_per_node)
    parts, kernels = _step_layers(model, ek, shape, eng, load, prec)
    total = _stage_total(model, ek, shape, parts, tokens=decode_batch + chunk_tokens,
                         sampled=decode_batch + prompts, devices_per_node=devices_per_node)
    cal = device.calibration
    gpu = sum(total.values())
    launch = kernels * shape.pp * cal.launch_floor_s if (eng.eager_prefill and chunk_tokens > 0) else 0.0
    return max(gpu, launch) + cpu_overhead_s(device, eng, decode_batch, gpu)


def mean_decode_step_time(model: ModelSpec, device: DeviceSpec, shape: InstanceShape, *, batch: float,
                          input_len: float, output_len: float, engine: str = DEFAULT_ENGINE, dtype: str = "bf16",
                          kv_dtype: str = "", skew: Skew = 1.0,
                          devices_per_node: int | None = None, points: int = 4, tokens_per_seq: float = 1.0,
                          quant_block: int = 0) -> float:
    """Mean time per decode step over contexts input_len .. input_len + output_len (midpoints)."""
    total = 0.0
    for i in range(points):
        ctx = input_len + output_len * (i + 0.5) / points
        total += decode_step_time(model, device, shape, batch=batch, context_len=ctx, engine=engine, dtype=dtype,
                                  kv_dtype=kv_dtype, skew=skew, devices_per_node=devices_per_node,
                                  tokens_per_seq=tokens_per_seq, quant_block=quant_block)["time_s"]
    return total / points


def weight_bytes_per_gpu(model: ModelSpec, shape: InstanceShape, dtype: str = "bf16") -> float:
    """Weights on the fullest GPU: its stage's blocks / tp plus the embedding and/or LM head / tp."""
    beta = WEIGHT_BYTES[dtype]
    experts = model.moe_dims.experts if model.moe else 0
    blocks = 0.0
    for index, count in _layer_kinds(model, shape.pp):
        p = layer_params(model, index)
        blocks += count * ((p.qkv + p.out + p.mlp + p.shared + p.router) / shape.tp
                           + experts * p.routed_expert / (shape.tp * shape.dp))
    vocab = model.vocab * model.hidden
    ends = vocab * (1 if model.tied_embeddings else 2) if shape.pp == 1 else vocab
    return (blocks + ends / shape.tp) * beta


def kv_bytes_per_token_gpu(model: ModelSpec, shape: InstanceShape, dtype: str = "bf16") -> float:
    """KV bytes one token occupies on the fullest GPU."""
    per_stage = math.ceil(model.layers / shape.pp)
    return kv_bytes_per_token_layer(model, dtype) / kv_shard(model, shape.tp) * per_stage


def kv_capacity_tokens(model: ModelSpec, device: DeviceSpec, shape: InstanceShape, dtype: str = "bf16",
                       kv_dtype: str = "", weight_copies: int = 1) -> float:
    """Tokens of KV cache an instance holds (0 when the weights alone do not fit); KV in kv_dtype ("" = dtype).
    `weight_copies` = 2 for two engine processes sharing the GPUs (intra-GPU prefill/decode), each with the weights."""
    budget = device.usable_bytes * KV_MEMORY_FRACTION - weight_copies * weight_bytes_per_gpu(model, shape, dtype)
    return max(0.0, shape.dp * budget / kv_bytes_per_token_gpu(model, shape, kv_dtype or dtype))


def kv_transfer_time(model: ModelSpec, *, tokens: float, link_bytes_per_s: float, latency_s: float, senders: int,
                     dtype: str = "bf16") -> float:
    """Seconds to move the KV cache of `tokens` prompt tokens from a prefill to a decode instance.

    `link_bytes_per_s` is per GPU; `senders` GPUs send disjoint shards in parallel (min of the two TP degrees
    for GQA; MLA latents are replicated across TP, so one copy is sent, split over the senders as well).
    """
    require(senders >= 1, "must be >= 1", field="senders")
    data = tokens * kv_bytes_per_token_layer(model, dtype) * model.layers
    return latency_s + data / (senders * link_bytes_per_s)
