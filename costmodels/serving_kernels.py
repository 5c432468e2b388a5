"""Kernel times of a serving engine on one GPU (seconds): the shared compute and comm layers with one set of
constants per engine and device.

Serving composes costmodels/compute.py (GEMMs with per-dtype curves and tile padding, attention efficiency
rising with row length, memory-bound kernels) and costmodels/comm.py (ring collectives, all-to-all); an engine
only changes the constants they run with (`KernelConstants`, applied as a DeviceCalibration by
`EngineKernels`). Serving-specific terms on top:
  GEMMs (BF16 on the compute layer's curve over whole output tiles in waves; FP8 CUTLASS kernels with their m-bucketed
      tiles, waves over the SMs and per-block streaming; the FP8 input quantisation, which engines that fuse it
      into the preceding norm/activation kernel (fused_quant) skip) and grouped expert GEMMs (MoE: experts hit,
      rows padded to the kernel's blocks, the fused MoE kernel's own efficiency and fixed time):
      costmodels/serving_gemm.py; vLLM's FP8 experts (FlashInfer's CUTLASS fused MoE, moe_fp8_tile_s > 0) as a
      server runs them, on autotuned tactics: TensorRT-LLM's fitted CUTLASS MoE of the same device
      (`EngineKernels.tuned_moe`); as vLLM's table measured them, on the fallback 128 x 16 tile:
      costmodels/serving_moe_flashinfer.py (the fit, benchmarks/serve_engine_fit.py); FP8 experts of a 128 x 128
      block-scaled checkpoint (quant_block > 0): the same grouped GEMM formula on the engine's block-scaled kernel
      constants (moe_blockfp8_*, block_fp8_kernels: TensorRT-LLM's own, vLLM its Triton kernel's at EP 1 and
      TensorRT-LLM's at EP > 1; SGLang's FP8 ones are block-scaled already)
  attention (prefill, decode): costmodels/serving_attention.py; the TP all-reduce: costmodels/serving_allreduce.py
Constants come from `EngineCalibration` (fitted to measured per-op tables by benchmarks/serve_engine_fit.py)
for trtllm/vllm/sglang, or from the device's `DeviceCalibration` serving fields for legacy/modern.
"""

import dataclasses

from costmodels import comm, serving_gemm, serving_moe_flashinfer
from costmodels.errors import require
from costmodels.hardware import DeviceSpec
from costmodels.serving_constants import EngineCalibration, KernelConstants

ATTENTION_REF_WIDTH = 128.0
"""head width at which the compute layer's attention curve is evaluated: the engines' measured prefill attention
(aiconfigurator tables, head_dim 64-256) rises with the keys per row but not with the head width"""


class EngineKernels:
    """A device as one engine runs it: `device` carries the engine's constants as its calibration; `tuned_moe`: the
    autotuned CUTLASS fused MoE its FP8 experts run in serving (tuned_moe_kernels), else None; built on first use,
    since most step-time evaluations (dense models, BF16 experts) never need it."""

    __slots__ = ("device", "k", "links", "_tuned_moe")

    def __init__(self, device: DeviceSpec, k: KernelConstants, devices_per_node: int | None = None):
        cal = dataclasses.replace(
            device.calibration, gemm_efficiency_max=k.gemm_efficiency_max, gemm_half_flops=k.gemm_half_flops,
            fp8_gemm_efficiency_max=k.fp8_gemm_efficiency_max, fp8_gemm_half_flops=k.fp8_gemm_half_flops,
            hbm_efficiency=k.hbm_efficiency, kernel_floor_s=k.kernel_floor_s,
            attention_efficiency=k.attention_efficiency, attention_half_work=k.attention_half_work)
        self.device = dataclasses.replace(device, calibration=cal)
        self.k = k
        per_node = devices_per_node or device.devices_per_node
        self.links = comm.Links(per_node, device.intra_node_bytes_per_s * k.allreduce_efficiency,
                                device.inter_node_bytes_per_s * device.calibration.inter_node_efficiency,
                                k.allreduce_hop_s, k.allreduce_hop_s + device.inter_node_latency_s,
                                k.allreduce_call_s)
        self._tuned_moe: EngineKernels | None | bool = False  # False: not built yet

    @property
    def tuned_moe(self) -> "EngineKernels | None":
        if self._tuned_moe is False:
            self._tuned_moe = tuned_moe_kernels(self.device, self.k)
        return self._tuned_moe if isinstance(self._tuned_moe, EngineKernels) else None


TUNED_CUTLASS_MOE_ENGINE = "trtllm"
"""the engine whose measured FP8 MoE table times the CUTLASS fused MoE on autotuned tactics (aiconfigurator's
TensorRT-LLM collector runs tensorrt_llm's autotune() over the layer before timing it); FlashInfer's CUTLASS fused
MoE, which vLLM's FP8 experts run, is TensorRT-LLM's kernel, and vLLM tunes it at startup (serving_moe_flashinfer)"""


def tuned_moe_kernels(device: DeviceSpec, k: KernelConstants) -> EngineKernels | None:
    """For an engine whose FP8 experts run FlashInfer's CUTLASS fused MoE (moe_fp8_tile_s > 0): the device as
    TUNED_CUTLASS_MOE_ENGINE runs it, whose fitted FP8 MoE constants time that kernel tuned; None for every other
    engine, or when the device has no measured constants for TUNED_CUTLASS_MOE_ENGINE (then the fallback-tile
    model, as measured, stands)."""
    if k.moe_fp8_tile_s <= 0:
        return None
    for cal in device.serving_engines:
        if cal.engine == TUNED_CUTLASS_MOE_ENGINE:
            return EngineKernels(device, KernelConstants.of_engine(cal))
    return None


def engine_calibration(device: DeviceSpec, engine: str) -> EngineCalibration:
    """The device's fitted constants for a measured engine (SpecError naming the engines it has)."""
    for cal in device.serving_engines:
        if cal.engine == engine:
            return cal
    have = ", ".join(c.engine for c in device.serving_engines) or "none"
    require(False, f"device {device.name!r} has no measured kernel constants for engine {engine!r} "
                   f"(measured engines on this device: {have}; 'legacy' and 'modern' need none)", field="engine")
    raise AssertionError  # unreachable: require raised


def gemm_s(ek: EngineKernels, m: float, n: float, kk: float, dtype: str, fused_quant: bool = False) -> float:
    """One (m x kk) @ (kk x n) GEMM with weights in `dtype` (FP8: plus the kernel quantising its input, unless the
    engine fuses that quantisation into the element-wise kernel before the GEMM: `fused_quant`)."""
    if m <= 0:
        return 0.0
    if dtype == "fp4":  # NVFP4: its input quantisation is never fused (serving_gemm.gemm_fp4_s)
        return serving_gemm.gemm_fp4_s(ek.device, ek.k, m, n, kk)
    if dtype != "fp8":
        return serving_gemm.gemm_bf16_s(ek.device, ek.k, m, n, kk)
    t = serving_gemm.gemm_fp8_s(ek.device, ek.k, m, n, kk)
    return t if fused_quant else t + serving_gemm.input_quant_s(ek.device, ek.k, m, kk)


def moe_exchange_s(ek: EngineKernels, tokens_per_rank: float, hidden: int, top_k: int, ep: int, stride: int,
                   fp8: bool) -> float:
    """MoE dispatch (FP8 payload when `fp8`) + combine (BF16) over ep ranks `stride` apart: the comm layer's
    moe_dispatch_time_s, the same term the training model uses."""
    return (comm.moe_dispatch_time_s(tokens_per_rank, hidden, top_k, ep, stride, ek.links, fp8=fp8)
            + comm.moe_dispatch_time_s(tokens_per_rank, hidden, top_k, ep, stride, ek.links))


def block_fp8_constants(k: KernelConstants) -> KernelConstants | None:
    """The constants of the engine's FP8 grouped GEMM for a block-scaled (128 x 128) checkpoint: the FP8 grouped
    GEMM formula (serving_gemm.grouped_gemm_s) with the block-scaled kernel's own efficiency, row block, fixed time,
    HBM efficiency, slot traffic, per-expert scheduler walk, serial slot kernels and per-tile prologue/epilogue
    (moe_blockfp8_*, fitted to the engine's fp8_block MoE rows) and, for a Triton kernel with shipped tile configs
    (vLLM at EP 1), its default config's efficiency; None when the engine has none fitted (moe_blockfp8_efficiency
    0: the per-tensor FP8 constants stand)."""
    if k.moe_blockfp8_efficiency <= 0:
        return None
    return dataclasses.replace(
        k, moe_fp8_efficiency=k.moe_blockfp8_efficiency, moe_fp8_block_rows=k.moe_blockfp8_block_rows,
        moe_fp8_floor_s=k.moe_blockfp8_floor_s, moe_fp8_hbm_efficiency=k.moe_blockfp8_hbm_efficiency,
        moe_fp8_slot_bytes=k.moe_blockfp8_slot_bytes, moe_fp8_default_efficiency=k.moe_blockfp8_default_efficiency,
        moe_fp8_overlap_exponent=0.0,
        moe_fp8_tile_s=0.0, moe_fp8_oob_penalty=0.0, moe_fp8_expert_s=k.moe_blockfp8_expert_s,
        moe_fp8_serial_bytes=k.moe_blockfp8_serial_bytes, moe_fp8_k_overhead=k.moe_blockfp8_k_overhead,
        moe_gen_act_s=k.moe_blockfp8_act_s)


def block_fp8_kernels(ek: EngineKernels, ep: int = 1) -> tuple[DeviceSpec, KernelConstants, bool] | None:
    """(device with the GEMM curve, constants, whether they are the engine's own kernel: its tile configs apply) of
    the block-scaled FP8 MoE kernel the engine serves with at expert-parallel size `ep`. An engine whose FP8
    experts run the tuned CUTLASS fused MoE (vLLM, ek.tuned_moe) picks by ep as vLLM 0.24.0 does on Hopper (FP8
    oracle, _get_priority_backends: block FP8 puts TRITON first at EP 1, FLASHINFER_CUTLASS at EP > 1): at EP 1 its
    own Triton kernel (its fitted moe_blockfp8_* constants), at EP > 1 TensorRT-LLM's block-scale CUTLASS kernel,
    autotuned at startup like the per-tensor one (ek.tuned_moe's constants); either falls back to the other where
    it is not fitted. On Blackwell's TensorRT-LLM-gen MoE (moe_trtllm_gen: vLLM 0.24.0 on SM100, whose oracle has no
    Hopper reordering and takes FLASHINFER_TRTLLM, TrtLlmFp8ExpertsMonolithic, first at every EP) and for other
    engines: their own (TensorRT-LLM); None: the per-tensor FP8 path (SGLang: its FP8 constants are block-scaled)."""
    cutlass = None if ek.k.moe_trtllm_gen else ek.tuned_moe
    for kern in ((cutlass, ek) if cutlass is not None and ep > 1 else (ek, cutlass)):
        k = block_fp8_constants(kern.k) if kern is not None else None
        if kern is not None and k is not None:
            return kern.device, k, kern is ek
    return None


def block_quant_s(ek: EngineKernels, tokens: float, hidden: float) -> float:
    """Time of the kernels that prepare a block-scaled FP8 MoE layer's input on FlashInfer's TensorRT-LLM-gen MoE
    (vLLM 0.24.0 on B200, TrtLlmFp8ExpertsMonolithic: the BF16 hidden states quantised per 128-element group with
    dynamic scales, the scales then transposed to the kernel's [hidden/128, tokens] layout, before the fused kernel):
    t_q · T · h over all `tokens` T entering the layer, whatever the expert-parallel size (every GPU quantises the
    layer's whole input); t_q = moe_blockfp8_quant_s (fitted; 0 for every other kernel)."""
    return ek.k.moe_blockfp8_quant_s * tokens * hidden


def gen_activation_s(ek: EngineKernels, routed_slots: float, width: float, ep: int = 1,
                     block_scaled: bool = False) -> float:
    """Time of the separate DeepSeek-FP8 activation kernel of an FP8 MoE layer on FlashInfer's TensorRT-LLM-gen MoE
    (moe_trtllm_gen; with DeepSeekFp8 block scales its first GEMM has no fused SwiGLU, so Runner::run launches
    activationDeepSeekKernel between the GEMMs): serving_moe_flashinfer.trtllm_gen_activation_s over the layer's
    `routed_slots` (tokens · top_k of all GPUs) and the expert `width` per GPU, on the constants the FP8 experts run
    with: for a `block_scaled` checkpoint the engine's block-scaled kernel's where it has one (vLLM 0.24.0 on B200,
    TrtLlmFp8ExpertsMonolithic: moe_blockfp8_act_s, which block_fp8_constants puts in moe_gen_act_s), else the
    engine's own (SGLang, whose FP8 experts are block-scaled: moe_gen_act_s; 0 for per-tensor experts, which fuse
    the activation); 0 on every other kernel."""
    if not ek.k.moe_trtllm_gen:
        return 0.0
    block = block_fp8_kernels(ek, ep) if block_scaled else None
    return serving_moe_flashinfer.trtllm_gen_activation_s(block[1] if block is not None else ek.k, routed_slots, width)


def grouped_gemm_s(ek: EngineKernels, slots: float, local_experts: float, n: float, kk: float, dtype: str,
                   fused_quant: bool = False, default_rows: float = 0.0, all_slots: float = 0.0,
                   block_scaled: bool = False, ep: int = 1) -> float:
    """One grouped GEMM kernel: `slots` token rows over `local_experts` experts of (kk x n) weights each
    (costmodels/serving_gemm.py), plus the FP8 input quantisation unless fused; `default_rows` > 0: on the
    engine's default tile config with blocks of that many rows (costmodels/serving_moe_configs.py); `all_slots`:
    the slots of the whole layer when the kernel walks them all. FP8 experts on FlashInfer's CUTLASS fused MoE
    (vLLM): the tuned kernel (ek.tuned_moe's constants), not the fallback tile vLLM's table timed.
    `block_scaled`: FP8 experts of a 128 x 128 block-scaled checkpoint, on the engine's block-scaled kernel at
    expert-parallel size `ep` where it has one (block_fp8_kernels; its own kernel on `default_rows`, a borrowed
    autotuned one on its fitted rows; else as per-tensor). An engine on FlashInfer's TensorRT-LLM-gen fused MoE
    (moe_trtllm_gen, Blackwell) runs no Triton tile config and computes only its own experts' slots: `default_rows`
    and `all_slots` do not apply; its rows are cut into its own token tiles (serving_moe_flashinfer.trtllm_gen_tile of
    the slots of all `ep` GPUs over the local experts) and it pays for the token-tile CTAs its grid launches
    (trtllm_gen_launch_s)."""
    if slots <= 0:
        return 0.0
    dtype = "fp8" if dtype == "fp8" else "bf16"
    if ek.k.moe_trtllm_gen:  # no Triton config, own slots only: its token tiles (the layer's tokens · top_k routed)
        default_rows, all_slots = serving_moe_flashinfer.trtllm_gen_tile(slots * ep, local_experts), 0.0
    block = block_fp8_kernels(ek, ep) if block_scaled and dtype == "fp8" else None
    tuned = ek.tuned_moe if dtype == "fp8" else None
    if block is not None:
        t = serving_gemm.grouped_gemm_s(block[0], block[1], slots, local_experts, n, kk, dtype,
                                        default_rows if block[2] else 0.0, all_slots)
    elif tuned is not None:  # vLLM's FP8 experts: FlashInfer's CUTLASS MoE, autotuned at server startup
        t = serving_gemm.grouped_gemm_s(tuned.device, tuned.k, slots, local_experts, n, kk, dtype, default_rows,
                                        all_slots)
    elif dtype == "fp8" and ek.k.moe_fp8_tile_s > 0:  # no tuned constants on this device: the fallback tile
        t = serving_moe_flashinfer.grouped_gemm_s(ek.device, ek.k, serving_moe_flashinfer.uniform_rows(
            slots, local_experts), n, kk)
    else:
        t = serving_gemm.grouped_gemm_s(ek.device, ek.k, slots, local_experts, n, kk, dtype, default_rows, all_slots)
    if dtype == "fp8" and not fused_quant:
        t += serving_gemm.fp8_quant_s(ek.device, ek.k, slots, kk)
    if ek.k.moe_trtllm_gen:  # the token-tile CTAs it launches for the layer's routed slots (all `ep` GPUs')
        t += serving_moe_flashinfer.trtllm_gen_launch_s(ek.k, slots * ep, local_experts)
    return t
