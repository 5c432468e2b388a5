"""Kernel times of a serving engine on one GPU (seconds), from one set of constants per engine and device.

The same formulas serve every engine; only the constants differ (`KernelConstants`):
  GEMM (m x k) @ (k x n), dtype d, F = 2mkn:
      t = max(floor, (F + F_half,d) / (P_d · e_max,d), bytes / (BW · η_hbm))
      (the saturating efficiency e(F) = e_max·F/(F + F_half) written as a time), P_d the dense peak of the
      dtype (FP8 at its own rate), bytes = β_d·(k·n + m·k) + 2·m·n (BF16 output)
      FP8 adds the kernel that quantises the input: max(floor, 3·m·k / (BW · η_hbm))
  prefill attention, F = 2·Σ_seq L·(L/2 + prefix)·heads·(d_qk + d_v), c = keys per query row (L/2 + prefix):
      t = max(floor, t_attn,0 + F·(1 + c_half/c) / (P_bf16 · e_attn))   (short rows leave SMs idle)
  decode attention of b sequences, KV bytes read K = Σ_seq context · kv_bytes_per_token:
      t = max(floor, t_dec,0 + b·t_seq + K / (BW · η_kv), F / (P_bf16 · e_attn))
  TP all-reduce of S bytes over n GPUs on NVLink of B bytes/s (η_ar applied by the caller; NIC: its own η):
      t = t_call + 2(n-1)·t_hop + 2(n-1)/n · S / (B · η_ar)
  grouped expert GEMMs (MoE), per GPU: s token-expert slots on E_l local experts of w weights each;
      hit = E_l·(1 − (1 − 1/E_l)^s) experts receive tokens; F = 2·s·w:
      t = max(floor, (F + hit·F_half,moe) / (P_d · e_moe), hit·w·β_d / (BW · η_hbm))
Constants come from `EngineCalibration` (fitted to measured per-op tables by benchmarks/serve_engine_fit.py)
for trtllm/vllm/sglang, or from the device's `DeviceCalibration` serving fields for legacy/modern.
"""

from dataclasses import dataclass

from costmodels.errors import require
from costmodels.hardware import DeviceSpec, EngineCalibration

BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0}
"""bytes per element of a weight / KV dtype"""
OUT_BYTES = 2.0
"""GEMM outputs and activations between kernels stay in BF16"""


@dataclass(frozen=True, kw_only=True, slots=True)
class KernelConstants:
    """The constants every serving kernel formula takes (see the module docstring)."""

    gemm_efficiency_max: float
    gemm_half_flops: float
    fp8_gemm_efficiency_max: float
    fp8_gemm_half_flops: float
    hbm_efficiency: float
    kernel_floor_s: float
    attention_efficiency: float
    attention_floor_s: float
    attention_half_context: float
    kv_read_efficiency: float
    decode_attention_floor_s: float
    decode_seq_s: float
    allreduce_call_s: float
    allreduce_hop_s: float
    allreduce_efficiency: float
    moe_efficiency_max: float
    moe_half_flops: float

    @classmethod
    def of_engine(cls, cal: EngineCalibration) -> "KernelConstants":
        """Constants fitted to an engine's measured tables (all-reduce latency folded into t_call)."""
        return cls(gemm_efficiency_max=cal.gemm_efficiency_max, gemm_half_flops=cal.gemm_half_flops,
                   fp8_gemm_efficiency_max=cal.fp8_gemm_efficiency_max, fp8_gemm_half_flops=cal.fp8_gemm_half_flops,
                   hbm_efficiency=cal.hbm_efficiency, kernel_floor_s=cal.kernel_floor_s,
                   attention_efficiency=cal.attention_efficiency, attention_floor_s=cal.attention_floor_s,
                   attention_half_context=cal.attention_half_context, kv_read_efficiency=cal.kv_read_efficiency,
                   decode_attention_floor_s=cal.decode_attention_floor_s, decode_seq_s=cal.decode_seq_s,
                   allreduce_call_s=cal.allreduce_call_s, allreduce_hop_s=0.0,
                   allreduce_efficiency=cal.allreduce_efficiency, moe_efficiency_max=cal.moe_efficiency_max,
                   moe_half_flops=cal.moe_half_flops)


def engine_calibration(device: DeviceSpec, engine: str) -> EngineCalibration:
    """The device's fitted constants for a measured engine (SpecError naming the engines it has)."""
    for cal in device.serving_engines:
        if cal.engine == engine:
            return cal
    have = ", ".join(c.engine for c in device.serving_engines) or "none"
    require(False, f"device {device.name!r} has no measured kernel constants for engine {engine!r} "
                   f"(measured engines on this device: {have}; 'legacy' and 'modern' need none)", field="engine")
    raise AssertionError  # unreachable: require raised


def peak(device: DeviceSpec, dtype: str) -> float:
    """Dense peak of a GEMM dtype (FP8 at the FP8 rate where the device has one)."""
    return device.peak_flops_per_s("fp8" if dtype == "fp8" else "bf16")


def _gemm_curve(k: KernelConstants, dtype: str) -> tuple[float, float]:
    if dtype == "fp8":
        return k.fp8_gemm_efficiency_max, k.fp8_gemm_half_flops
    return k.gemm_efficiency_max, k.gemm_half_flops


def gemm_s(device: DeviceSpec, k: KernelConstants, m: float, n: float, kk: float, dtype: str) -> float:
    """One (m x kk) @ (kk x n) GEMM with weights in `dtype` (FP8: plus the kernel quantising its input)."""
    flops = 2.0 * m * n * kk
    e_max, half = _gemm_curve(k, dtype)
    compute = (flops + half) / (peak(device, dtype) * e_max) if flops > 0 else 0.0
    moved = BYTES[dtype] * (kk * n + m * kk) + OUT_BYTES * m * n
    bw = device.hbm_bytes_per_s * k.hbm_efficiency
    t = max(k.kernel_floor_s, compute, moved / bw)
    if dtype == "fp8":
        t += max(k.kernel_floor_s, (OUT_BYTES + BYTES["fp8"]) * m * kk / bw)
    return t


def prefill_attention_s(device: DeviceSpec, k: KernelConstants, flops: float, context: float) -> float:
    """Causal flash attention doing `flops` FLOPs (BF16 math) with `context` keys per query row on average."""
    if flops <= 0:
        return 0.0
    occupancy = 1.0 + k.attention_half_context / max(context, 1.0)
    return max(k.kernel_floor_s,
               k.attention_floor_s + flops * occupancy / (device.bf16_flops_per_s * k.attention_efficiency))


def decode_attention_s(device: DeviceSpec, k: KernelConstants, batch: float, kv_bytes: float, flops: float) -> float:
    """Decode attention of `batch` sequences reading `kv_bytes` of KV cache and doing `flops` FLOPs."""
    if kv_bytes <= 0:
        return 0.0
    memory = k.decode_attention_floor_s + batch * k.decode_seq_s + kv_bytes / (device.hbm_bytes_per_s
                                                                               * k.kv_read_efficiency)
    compute = flops / (device.bf16_flops_per_s * k.attention_efficiency)
    return max(k.kernel_floor_s, memory, compute)


def allreduce_s(k: KernelConstants, size_bytes: float, n: int, bytes_per_s: float, extra_hop_s: float = 0.0) -> float:
    """TP all-reduce of `size_bytes` over n GPUs on a link reaching `bytes_per_s` per GPU (after efficiency)."""
    if n <= 1 or size_bytes <= 0:
        return 0.0
    hop = k.allreduce_hop_s + extra_hop_s
    return k.allreduce_call_s + 2 * (n - 1) * hop + 2 * (n - 1) / n * size_bytes / bytes_per_s


def experts_hit(local_experts: float, slots: float) -> float:
    """Expected distinct experts among `local_experts` that receive at least one of `slots` uniform slots."""
    if local_experts <= 0 or slots <= 0:
        return 0.0
    return local_experts * (1 - (1 - 1 / local_experts) ** slots)


def grouped_gemm_s(device: DeviceSpec, k: KernelConstants, slots: float, local_experts: float,
                   expert_weights: float, dtype: str) -> float:
    """One grouped GEMM over `local_experts` experts of `expert_weights` weights each, `slots` token rows."""
    if slots <= 0:
        return 0.0
    hit = experts_hit(local_experts, slots)
    flops = 2.0 * slots * expert_weights
    compute = (flops + hit * k.moe_half_flops) / (peak(device, dtype) * k.moe_efficiency_max)
    memory = hit * expert_weights * BYTES[dtype] / (device.hbm_bytes_per_s * k.hbm_efficiency)
    return max(k.kernel_floor_s, compute, memory)
