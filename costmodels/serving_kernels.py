"""Kernel times of a serving engine on one GPU (seconds): the shared compute and comm layers with one set of
constants per engine and device.

Serving composes costmodels/compute.py (GEMMs with per-dtype curves and tile padding, attention efficiency
rising with row length, memory-bound kernels) and costmodels/comm.py (ring collectives, all-to-all); an engine
only changes the constants they run with (`KernelConstants`, applied as a DeviceCalibration by
`EngineKernels`). Serving-specific terms on top:
  GEMM: t = max(F_pad / (P_d · eff(m_pad, n, k)), t_floor + bytes / (BW · η_hbm)) with the compute layer's eff
      on the GEMM padded to whole 128-row tiles (m_pad), so the curve's fixed cost is paid once, not once per
      padded row; the launch/ramp-up latency adds to streaming (measured small GEMMs sit above a pure max())
  GEMM in FP8 (tensor-wise scaling): + the kernel that quantises the input, t_q + 3·m·k / (BW · η_hbm), which the
      per-op tables include; engines that fuse it into the preceding norm/activation kernel (fused_quant) skip it
  attention (prefill, decode) and the TP all-reduce: costmodels/serving_attention.py
  grouped expert GEMMs (MoE, one kernel), s token-expert slots over E_l local experts of (k x n) weights:
      hit = E_l·(1 − (1 − 1/E_l)^s) experts receive s/hit rows each, F = 2·s·n·k,
      t = max(F / (P_d · eff), floor + (hit·β·k·n + s·(β·k + 2·n)) / (BW · η_hbm)), eff the GEMM curve at the
      kernel's total F with the tile padding of s/hit rows per expert, times the engine's moe_efficiency
Constants come from `EngineCalibration` (fitted to measured per-op tables by benchmarks/serve_engine_fit.py)
for trtllm/vllm/sglang, or from the device's `DeviceCalibration` serving fields for legacy/modern.
"""

import dataclasses
import math

from costmodels import comm, compute
from costmodels.errors import require
from costmodels.hardware import DeviceSpec, EngineCalibration, KernelConstants

ATTENTION_REF_WIDTH = 128.0
"""head width at which the compute layer's attention curve is evaluated: the engines' measured prefill attention
(aiconfigurator tables, head_dim 64-256) rises with the keys per row but not with the head width"""
QUANT_BYTES = 3.0
"""HBM bytes per input element of a tensor-wise FP8 activation quantisation (read 2, write 1)"""


class EngineKernels:
    """A device as one engine runs it: `device` carries the engine's constants as its calibration."""

    __slots__ = ("device", "k", "links")

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
    dtype = "fp8" if dtype == "fp8" else "bf16"
    if m <= 0:
        return 0.0
    dev = ek.device
    padded = _padded(m)  # the curve applies to the padded GEMM (its fixed cost is not multiplied by the padding)
    compute_s = 2.0 * padded * n * kk / (dev.peak_flops_per_s(dtype) * compute.gemm_efficiency(padded, n, kk, dtype,
                                                                                             dev.calibration))
    e_in = 1.0 if dtype == "fp8" else 2.0
    t = max(compute_s, ek.k.kernel_floor_s + compute.memory_bound_time_s(e_in * (m * kk + kk * n) + 2.0 * m * n, dev))
    if dtype == "fp8" and not fused_quant:
        t += ek.k.fp8_quant_s + compute.memory_bound_time_s(QUANT_BYTES * m * kk, dev)
    return t


def moe_exchange_s(ek: EngineKernels, tokens_per_rank: float, hidden: int, top_k: int, ep: int, stride: int,
                   fp8: bool) -> float:
    """MoE dispatch (FP8 payload when `fp8`) + combine (BF16) over ep ranks `stride` apart: the comm layer's
    moe_dispatch_time_s, the same term the training model uses."""
    return (comm.moe_dispatch_time_s(tokens_per_rank, hidden, top_k, ep, stride, ek.links, fp8=fp8)
            + comm.moe_dispatch_time_s(tokens_per_rank, hidden, top_k, ep, stride, ek.links))


def _padded(rows: float) -> float:
    """Rows a GEMM computes: `rows` padded to whole row tiles (compute.GEMM_TILE)."""
    return math.ceil(rows / compute.GEMM_TILE) * compute.GEMM_TILE


def experts_hit(local_experts: float, slots: float) -> float:
    """Expected distinct experts among `local_experts` that receive at least one of `slots` uniform slots."""
    if local_experts <= 0 or slots <= 0:
        return 0.0
    return float(local_experts * (1 - (1 - 1 / local_experts) ** slots))


def grouped_gemm_s(ek: EngineKernels, slots: float, local_experts: float, n: float, kk: float, dtype: str,
                   fused_quant: bool = False) -> float:
    """One grouped GEMM kernel: `slots` token rows over `local_experts` experts of (kk x n) weights each; the
    experts that receive tokens run s/hit rows each at the GEMM curve's efficiency (tile padding included)."""
    if slots <= 0:
        return 0.0
    dtype = "fp8" if dtype == "fp8" else "bf16"
    dev = ek.device
    hit = max(experts_hit(local_experts, slots), 1.0)
    rows = slots / hit
    # one kernel: the size curve sees all its (padded) FLOPs, padded per expert
    padded = hit * _padded(rows)
    eff = compute.gemm_efficiency(padded, n, kk, dtype, dev.calibration) * slots / padded * ek.k.moe_efficiency
    flops = 2.0 * slots * n * kk
    e_in = 1.0 if dtype == "fp8" else 2.0
    moved = hit * e_in * kk * n + slots * (e_in * kk + 2.0 * n)
    t = max(flops / (dev.peak_flops_per_s(dtype) * eff), ek.k.kernel_floor_s + compute.memory_bound_time_s(moved, dev))
    if dtype == "fp8" and not fused_quant:
        t += ek.k.fp8_quant_s + compute.memory_bound_time_s(QUANT_BYTES * slots * kk, dev)
    return t
