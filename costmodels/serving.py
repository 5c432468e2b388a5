"""Serving cost model: prefill latency, decode step time, KV-cache capacity, KV transfer time.

One *instance* is a serving engine on tp·dp·pp GPUs: per pipeline stage, dp attention replicas of tp ranks
(dp = 1 unless DP attention is used, MoE models only); the routed experts of a stage are spread over ep of its
tp·dp GPUs (expert tensor parallelism tp·dp/ep). Times are per GPU of the busiest stage, times pp (a request
crosses every stage), in seconds.

Every kernel costs max(floor, FLOPs / (peak·eff), bytes / (BW·η_hbm)) (roofline with a launch floor):
  eff(F) = e_max · F / (F + F_half)                   size-dependent GEMM efficiency (F = FLOPs on one GPU)
  floor  = the GPU-side minimum kernel time (serving_kernel_floor_s, or kernel_floor_s for "modern")
Per layer and step (T tokens in the step, b sequences, context c):
  GEMMs         qkv, out, MLP gate/up and down (MoE: grouped GEMMs over the experts that receive tokens;
                the expected number of distinct experts hit by n token-slots is E·(1 - (1 - k/E)^n))
  attention     prefill: causal flash attention 4·T·(L/2)·(a/tp)·d FLOPs at attention_efficiency;
                decode: KV read b·c·kv_bytes/shard at η_hbm
  other kernels OTHER_KERNELS_PER_LAYER element-wise kernels (norms, rotary, KV write, activation, residuals),
                each max(floor, ELEMENTWISE_PASSES·T·h·β / OTHER_KERNELS_PER_LAYER / (BW·η))
  TP all-reduce 2 per layer: α + 2(n-1)·α_hop + 2(n-1)/n · S / (B_link·η_link), S = T·h·β
                ("legacy": α = 0, α_hop fitted; "modern": α = collective_latency_s, α_hop = 0)
  EP all-to-all dispatch + combine per MoE layer (replacing one all-reduce):
                2·[α + (ep-1)·α_hop + (ep-1)/ep · T·k·h·β/(tp·dp)], over the NIC when tp·dp spans nodes
  DP attention  dp attention replicas per stage share the MoE layers (instance = tp·dp·pp GPUs)
Per step: + LM head GEMM on the sampled tokens, + per-iteration overhead (decode_step_overhead_s),
  + seq_overhead_s per running sequence (decode), + prefill_overhead_s (prefill), + (pp-1) p2p sends.
KV capacity: (usable HBM · KV_MEMORY_FRACTION − weights on the GPU) / KV bytes per token on the GPU.
KV transfer: all layers' KV of a prompt over the link between the two instances (NVLink inside a node,
  the NIC across nodes, the inter-pool link across pools), sent in parallel by the prefill instance's tp·dp GPUs.

Engines (ENGINES): "legacy" reproduces the vLLM profiled by Splitwise (Patel et al., ISCA'24): decode replayed from
CUDA graphs, prefill launched eagerly (wall = max(CPU launches, GPU work)), CPU sampling per sequence; its
serving_* constants are fitted (profiles/hardware/*.yaml, benchmarks/serve_fit.py) and it is the default of
`estimate serve`. "modern" (planner default) models current CUDA-graph engines (vLLM V1, SGLang) with the
device's micro-benchmark figures and smaller CPU overheads — an estimate, not fitted to measurements.
"""

import math
from dataclasses import dataclass

from costmodels.errors import require
from costmodels.hardware import DeviceSpec
from costmodels.kv import BYTES_PER_ELEMENT, kv_bytes_per_token_layer, kv_shard, layer_params
from costmodels.model import ModelSpec

OTHER_KERNELS_PER_LAYER = 8
"""element-wise kernels per block: 2 norms, rotary, KV-cache write, activation, 2 residual adds, attention prep"""
ELEMENTWISE_PASSES = 12
"""reads+writes of a T·h activation per block by the element-wise kernels"""
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
    fitted_constants: bool
    """True: the serving_* calibration fitted to the profiled engine (HBM efficiency, kernel floor, all-reduce
    bandwidth and per-hop latency); False: the device's micro-benchmark figures (hbm_efficiency, kernel_floor_s,
    intra_node_efficiency, and collective_latency_s as one flat latency per all-reduce, as for one-shot/NVLS)"""


ENGINES = {
    # vLLM as profiled by Splitwise (2023): decode replayed from CUDA graphs, prefill eager, CPU sampling per sequence.
    "legacy": EngineModel(name="legacy", eager_prefill=True, seq_overhead_scale=1.0, prefill_overhead_scale=1.0,
                          fitted_constants=True),
    # current vLLM V1 / SGLang: piecewise CUDA graphs for prefill, GPU-side sampling and overlapped scheduling
    # (~10x less CPU per sequence, ~4x less per prefill), kernels and all-reduces at micro-benchmark speed
    # (GEMV HBM efficiency, nccl-tests latency and bus bandwidth). These factors are estimates, not fitted.
    "modern": EngineModel(name="modern", eager_prefill=False, seq_overhead_scale=0.1, prefill_overhead_scale=0.25,
                          fitted_constants=False),
}
DEFAULT_ENGINE = "legacy"


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

    def __post_init__(self):
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
        require(model.moe.experts % shape.ep == 0, f"ep ({shape.ep}) must divide experts ({model.moe.experts})",
                field="ep")


def engine_model(name: str) -> EngineModel:
    require(name in ENGINES, f"unknown engine {name!r}; valid: {', '.join(sorted(ENGINES))}", field="engine")
    return ENGINES[name]


def gemm_efficiency(device: DeviceSpec, flops: float) -> float:
    cal = device.calibration
    return cal.serving_gemm_efficiency_max * flops / (flops + cal.serving_gemm_half_flops)


def _hbm_efficiency(device: DeviceSpec, engine: EngineModel) -> float:
    cal = device.calibration
    return cal.serving_hbm_efficiency if engine.fitted_constants else cal.hbm_efficiency


def _kernel_floor(device: DeviceSpec, engine: EngineModel) -> float:
    cal = device.calibration
    return cal.serving_kernel_floor_s if engine.fitted_constants else cal.kernel_floor_s


def _kernel(device: DeviceSpec, floor: float, flops: float, bytes_: float, *, eff: float | None = None,
            hbm_eff: float = 0.8) -> float:
    """max(floor, compute time, memory time) of one kernel on one GPU."""
    peak = device.bf16_flops_per_s
    e = gemm_efficiency(device, flops) if eff is None else eff
    compute = flops / (peak * e) if flops > 0 else 0.0
    memory = bytes_ / (device.hbm_bytes_per_s * hbm_eff)
    return max(floor, compute, memory)


def tp_link(device: DeviceSpec, tp: int, devices_per_node: int | None = None,
            engine: EngineModel = ENGINES[DEFAULT_ENGINE]) -> tuple[float, float]:
    """(bytes/s, hop latency) seen by a TP group: NVLink inside a node, the NIC when it spans nodes."""
    per_node = devices_per_node or device.devices_per_node
    cal = device.calibration
    hop = cal.allreduce_hop_latency_s if engine.fitted_constants else 0.0
    if tp <= per_node:
        eff = cal.serving_allreduce_efficiency if engine.fitted_constants else cal.intra_node_efficiency
        return device.intra_node_bytes_per_s * eff, hop
    return device.inter_node_bytes_per_s * cal.inter_node_efficiency, hop + device.inter_node_latency_s


def allreduce_s(bytes_: float, n: int, link_bytes_per_s: float, hop_s: float, alpha_s: float = 0.0) -> float:
    """Ring all-reduce of `bytes_` over n ranks: alpha + 2(n-1) hop latencies + 2(n-1)/n of the data over the link."""
    if n <= 1:
        return 0.0
    return alpha_s + 2 * (n - 1) * hop_s + 2 * (n - 1) / n * bytes_ / link_bytes_per_s


def alltoall_s(bytes_per_rank: float, n: int, link_bytes_per_s: float, hop_s: float, alpha_s: float = 0.0) -> float:
    """Pairwise all-to-all: alpha + (n-1) hop latencies + (n-1)/n of each rank's data over the link."""
    if n <= 1:
        return 0.0
    return alpha_s + (n - 1) * hop_s + (n - 1) / n * bytes_per_rank / link_bytes_per_s


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


def _step_layers(model: ModelSpec, device: DeviceSpec, shape: InstanceShape, engine: EngineModel, *,
                 decode_seqs: float, decode_ctx: float, prefill_seqs: float, prefill_len: float, prefill_ctx: float,
                 dtype: str, devices_per_node: int | None) -> tuple[dict, int]:
    """Time of the blocks of the slowest stage for one engine iteration (decode tokens of `decode_seqs`
    sequences at context decode_ctx, plus `prefill_seqs` prompt chunks of prefill_len tokens after prefill_ctx
    cached tokens), by part, in seconds; and the number of kernels launched.

    With DP attention (dp > 1) the sequences are spread over dp attention replicas (the busiest one holds
    ceil-like shares: decode_seqs/dp decode sequences, max(1, prefill_seqs/dp) prompts); the MoE layers see
    every token of the instance, experts spread over ep of the tp·dp GPUs.
    """
    dp = shape.dp
    d_seqs = decode_seqs / dp
    p_seqs = max(1.0, prefill_seqs / dp) if prefill_seqs else 0.0
    local = d_seqs + p_seqs * prefill_len  # tokens through the attention/dense part of the busiest replica
    tokens = decode_seqs + prefill_seqs * prefill_len  # tokens of the whole instance (MoE layers)
    beta = BYTES_PER_ELEMENT[dtype]
    tp, ep = shape.tp, shape.ep
    floor = _kernel_floor(device, engine)
    hbm = _hbm_efficiency(device, engine)
    alpha = 0.0 if engine.fitted_constants else device.calibration.collective_latency_s
    link, hop = tp_link(device, tp, devices_per_node, engine)
    moe_link, moe_hop = tp_link(device, tp * dp, devices_per_node, engine)

    def kernel(flops, bytes_, eff=None):
        return _kernel(device, floor, flops, bytes_, eff=eff, hbm_eff=hbm)

    h = model.hidden
    out = {"gemm_s": 0.0, "attention_s": 0.0, "elementwise_s": 0.0, "allreduce_s": 0.0, "alltoall_s": 0.0}
    kernels = 0
    kv_layer = kv_bytes_per_token_layer(model, dtype) / kv_shard(model, tp)
    heads = model.heads / tp
    if model.attention == "mla":
        qk_dim = model.mla.qk_nope_head_dim + model.mla.qk_rope_head_dim
        v_dim = model.mla.v_head_dim
    else:
        qk_dim = v_dim = model.head_dim
    halves = (2 / 3, 1 / 3) if model.gated_mlp else (1 / 2, 1 / 2)
    for index, count in _layer_kinds(model, shape.pp):
        p = layer_params(model, index)
        gemm = 0.0
        n_kernels = 4 + OTHER_KERNELS_PER_LAYER + (3 if p.routed_expert else 0)
        for params in (p.qkv, p.out):
            w = params / tp
            gemm += kernel(2 * local * w, w * beta)
        if p.mlp:
            for share in halves:
                w = p.mlp * share / tp
                gemm += kernel(2 * local * w, w * beta)
        if p.routed_expert:
            moe = model.moe
            local_experts = moe.experts / ep
            slots = tokens * moe.top_k / ep  # token-expert pairs landing on this GPU's experts (balanced)
            hit = local_experts * (1 - (1 - 1 / local_experts) ** slots)
            for share in halves:
                w_expert = p.routed_expert * share / (tp * dp // ep)
                flops = 2 * slots * w_expert
                per_expert_flops = flops / max(hit, 1.0)
                gemm += kernel(flops, hit * w_expert * beta,
                                eff=gemm_efficiency(device, per_expert_flops))
            if p.shared:
                for share in halves:
                    w = p.shared * share / tp
                    gemm += kernel(2 * local * w, w * beta)
            gemm += kernel(2 * local * p.router, p.router * beta)
        attn = 0.0
        if p_seqs:
            # causal flash attention over each prompt chunk (plus the cached context before it)
            flops = 2 * p_seqs * prefill_len * (prefill_len / 2 + prefill_ctx) * heads * (qk_dim + v_dim)
            attn += max(floor, flops / (device.bf16_flops_per_s * device.calibration.attention_efficiency))
        if d_seqs:
            kv_read = d_seqs * decode_ctx * kv_layer
            flops = 2 * d_seqs * decode_ctx * heads * (qk_dim + v_dim)
            attn += kernel(flops, kv_read, eff=device.calibration.attention_efficiency)
        elem_bytes = ELEMENTWISE_PASSES * local * h * beta / OTHER_KERNELS_PER_LAYER
        elementwise = OTHER_KERNELS_PER_LAYER * kernel(0.0, elem_bytes)
        ar = allreduce_s(local * h * beta, tp, link, hop, alpha)
        a2a = 0.0
        if p.routed_expert and ep > 1:
            # dispatch and combine: each GPU sends its tokens' expert copies to the owners
            a2a = 2 * alltoall_s(tokens * model.moe.top_k * h * beta / (tp * dp), ep, moe_link, moe_hop, alpha)
            ar_count = 1 + (1 if (tp * dp // ep > 1 or p.shared) else 0)
        else:
            ar_count = 2
        out["gemm_s"] += count * gemm
        out["attention_s"] += count * attn
        out["elementwise_s"] += count * elementwise
        out["allreduce_s"] += count * ar_count * ar
        out["alltoall_s"] += count * a2a
        kernels += count * (n_kernels + (ar_count if tp > 1 else 0) + (2 if a2a else 0))
    return out, kernels


def _check_dtype(dtype: str) -> None:
    require(dtype in BYTES_PER_ELEMENT, f"unknown dtype {dtype!r}; valid: {', '.join(BYTES_PER_ELEMENT)}",
            field="dtype")


def _stage_total(model, device, shape, engine: EngineModel, parts: dict, *, tokens: float, sampled: float, dtype: str,
                 devices_per_node: int | None) -> dict:
    """Add LM head and pipeline sends; blocks of the slowest stage count pp times (every stage is crossed)."""
    beta = BYTES_PER_ELEMENT[dtype]
    w_head = model.vocab * model.hidden / shape.tp
    head = _kernel(device, _kernel_floor(device, engine), 2 * sampled * w_head, w_head * beta,
                   hbm_eff=_hbm_efficiency(device, engine))
    per_node = devices_per_node or device.devices_per_node
    stages_per_node = max(1, per_node // shape.tp)
    p2p = 0.0
    for boundary in range(1, shape.pp):
        cross_node = boundary % stages_per_node == 0
        bw = device.inter_node_bytes_per_s if cross_node else device.intra_node_bytes_per_s
        lat = device.inter_node_latency_s if cross_node else device.intra_node_latency_s
        p2p += lat + tokens * model.hidden * beta / shape.tp / bw
    total = {k: v * shape.pp for k, v in parts.items()}
    total["lm_head_s"] = head
    total["pipeline_p2p_s"] = p2p
    return total


def prefill_time(model: ModelSpec, device: DeviceSpec, shape: InstanceShape, *, batch: int, prompt_len: float,
                 context_len: float = 0.0, engine: str = DEFAULT_ENGINE, dtype: str = "bf16",
                 devices_per_node: int | None = None) -> dict:
    """Latency of prefilling `batch` prompts of `prompt_len` tokens together (after `context_len` cached tokens).

    Returns {"time_s": ..., breakdown...}.
    """
    _check_dtype(dtype)
    eng = engine_model(engine)
    tokens = float(batch * prompt_len)
    parts, kernels = _step_layers(model, device, shape, eng, decode_seqs=0, decode_ctx=0.0, prefill_seqs=batch,
                                  prefill_len=prompt_len, prefill_ctx=context_len, dtype=dtype,
                                  devices_per_node=devices_per_node)
    total = _stage_total(model, device, shape, eng, parts, tokens=tokens, sampled=batch, dtype=dtype,
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
                     engine: str = DEFAULT_ENGINE, dtype: str = "bf16", devices_per_node: int | None = None) -> dict:
    """One decode iteration of `batch` sequences whose context is `context_len` tokens: {"time_s", breakdown}."""
    _check_dtype(dtype)
    eng = engine_model(engine)
    parts, _ = _step_layers(model, device, shape, eng, decode_seqs=batch, decode_ctx=context_len, prefill_seqs=0,
                            prefill_len=0.0, prefill_ctx=0.0, dtype=dtype, devices_per_node=devices_per_node)
    total = _stage_total(model, device, shape, eng, parts, tokens=batch, sampled=batch, dtype=dtype,
                         devices_per_node=devices_per_node)
    cal = device.calibration
    total["overhead_s"] = cal.decode_step_overhead_s + batch * cal.seq_overhead_s * eng.seq_overhead_scale
    total["time_s"] = sum(total.values())
    return total


def mixed_step_time(model: ModelSpec, device: DeviceSpec, shape: InstanceShape, *, decode_batch: float,
                    decode_context: float, chunk_tokens: float, chunk_context: float, engine: str = DEFAULT_ENGINE,
                    dtype: str = "bf16", devices_per_node: int | None = None) -> float:
    """One chunked-prefill iteration (Sarathi): decode_batch decode tokens plus a prompt chunk of chunk_tokens."""
    _check_dtype(dtype)
    eng = engine_model(engine)
    parts, kernels = _step_layers(model, device, shape, eng, decode_seqs=decode_batch, decode_ctx=decode_context,
                                  prefill_seqs=1 if chunk_tokens > 0 else 0, prefill_len=chunk_tokens,
                                  prefill_ctx=chunk_context, dtype=dtype, devices_per_node=devices_per_node)
    total = _stage_total(model, device, shape, eng, parts, tokens=decode_batch + chunk_tokens, sampled=decode_batch + 1,
                         dtype=dtype, devices_per_node=devices_per_node)
    cal = device.calibration
    gpu = sum(total.values())
    launch = kernels * shape.pp * cal.launch_floor_s if (eng.eager_prefill and chunk_tokens > 0) else 0.0
    overhead = cal.decode_step_overhead_s + decode_batch * cal.seq_overhead_s * eng.seq_overhead_scale
    return max(gpu, launch) + overhead


def mean_decode_step_time(model, device, shape, *, batch: float, input_len: float, output_len: float,
                          engine: str = DEFAULT_ENGINE, dtype: str = "bf16", devices_per_node: int | None = None,
                          points: int = 4) -> float:
    """Mean time per output token over contexts input_len .. input_len + output_len (Simpson-free midpoints)."""
    total = 0.0
    for i in range(points):
        ctx = input_len + output_len * (i + 0.5) / points
        total += decode_step_time(model, device, shape, batch=batch, context_len=ctx, engine=engine, dtype=dtype,
                                  devices_per_node=devices_per_node)["time_s"]
    return total / points


def weight_bytes_per_gpu(model: ModelSpec, shape: InstanceShape, dtype: str = "bf16") -> float:
    """Weights on the fullest GPU: its stage's blocks / tp plus the embedding and/or LM head / tp."""
    beta = BYTES_PER_ELEMENT[dtype]
    experts = model.moe.experts if model.moe else 0
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


def kv_capacity_tokens(model: ModelSpec, device: DeviceSpec, shape: InstanceShape, dtype: str = "bf16") -> float:
    """Tokens of KV cache an instance holds (0 when the weights alone do not fit)."""
    budget = device.usable_bytes * KV_MEMORY_FRACTION - weight_bytes_per_gpu(model, shape, dtype)
    return max(0.0, shape.dp * budget / kv_bytes_per_token_gpu(model, shape, dtype))


def kv_transfer_time(model: ModelSpec, *, tokens: float, link_bytes_per_s: float, latency_s: float, senders: int,
                     dtype: str = "bf16") -> float:
    """Seconds to move the KV cache of `tokens` prompt tokens from a prefill to a decode instance.

    `link_bytes_per_s` is per GPU; `senders` GPUs send disjoint shards in parallel (min of the two TP degrees
    for GQA; MLA latents are replicated across TP, so one copy is sent, split over the senders as well).
    """
    require(senders >= 1, "must be >= 1", field="senders")
    data = tokens * kv_bytes_per_token_layer(model, dtype) * model.layers
    return latency_s + data / (senders * link_bytes_per_s)
