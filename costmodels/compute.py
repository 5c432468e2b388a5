"""Kernel times on one device (seconds): GEMMs, fused attention, FP8 casts, memory-bound kernels.

The compute layer every cost path (training, serving, sequence) builds on. All functions are pure arithmetic
on their arguments, so they accept numpy arrays as well as floats.

  GEMM (m x k) @ (k x n), F = 2·m·n·k FLOPs, dtype bf16/fp16 or fp8:
      eff(m, n, k, dtype) = eff_max(dtype) · F / (F + half(dtype)) · tile(m)
          eff_max, half: gemm_efficiency_max / gemm_half_flops (16-bit) or fp8_gemm_efficiency_max /
          fp8_gemm_half_flops (FP8 has its own curve: its peak is twice as high, so the same GEMM sits
          lower on it); tile(m) = m / (ceil(m / GEMM_TILE) · GEMM_TILE) wastes the padding of the last
          row tile (matters for the few tokens a local expert receives)
      t = max(F / (P(dtype) · eff), bytes / (BW · hbm_efficiency), kernel_floor)
          bytes = e_in·(m·k + k·n) + 2·m·n  (e_in = 1 for fp8, 2 for 16-bit operands)
  FP8 cast + amax (tensor-wise scaling, per GEMM for forward + backward):
      bytes = FP8_CAST_BYTES · (m·k + k·n + m·n)   (read 16-bit, write 8-bit, read again for amax)
  attention core (fused flash kernel, always 16-bit: FP8 training keeps attention in BF16):
      F_fwd = 2·b·s_q·s_kv·a·(d_qk + d_v), halved under a causal mask when s_q = s_kv
      eff(s_kv, d_qk) = attention_efficiency · w / (w + attention_half_work),  w = s_kv · d_qk / 128
          (the work of one query row: longer rows amortise the tile prologue/epilogue and the softmax
          rescaling, so TFLOP/s rise with sequence length as measured)
      backward = ATTENTION_BACKWARD_FACTOR × forward FLOPs (FlashAttention-2 recomputes the scores)
  unfused attention (scores materialised, no causal skipping, Megatron 2021): QK^T and AV are batched cuBLAS
      GEMMs (gemm_time_s with the b·a·s query rows as m: the QK^T kernel writes the 16-bit scores, AV reads
      them, each bounded by its compute or its bytes), plus the element-wise kernels between them:
      SCORE_BYTES_FORWARD per score element (fused scale-mask-softmax, dropout); backward: four batched GEMMs
      (twice the forward's) and SCORE_BYTES_BACKWARD (the scores are stored, not recomputed)
  memory-bound kernel: t = bytes / (BW · hbm_efficiency)
P is the device's dense peak of the dtype, BW its HBM bandwidth; efficiencies come from DeviceCalibration
(fitted by benchmarks/calibrate.py, stored in profiles/hardware/*.yaml).
"""

from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from costmodels.hardware import DeviceCalibration, DeviceSpec

GemmRows = TypeVar("GemmRows", float, npt.NDArray[np.floating[Any]])
"""GEMM row counts: one number, or an array of them (costmodels.sequence costs many lengths at once)"""

GEMM_TILE = 128
"""rows of one output tile of a tensor-core GEMM kernel (CUTLASS/cuBLAS 128 x N tiles on Ampere/Hopper)"""
FP8_CAST_BYTES = 5.0
"""HBM bytes per element of a tensor-wise FP8 cast: read 2 (amax), read 2 + write 1 (scale and cast)"""
ATTENTION_BACKWARD_FACTOR = 2.5
"""flash-attention backward FLOPs relative to forward (5 matmuls instead of 2: the scores are recomputed)"""
SCORE_BYTES_FORWARD = 9.0
"""unfused attention, HBM bytes per score element of the element-wise kernels in the forward pass: fused
scale-mask-softmax read + write (4), dropout read + write + 1-byte mask (5)"""
SCORE_BYTES_BACKWARD = 11.0
"""the same in the backward pass: dropout backward (read gradient and mask, write: 5), softmax backward (read
gradient and output, write: 6)"""


def gemm_curve(dtype: str, cal: DeviceCalibration) -> tuple[float, float]:
    """(eff_max, half) of the dtype's GEMM efficiency curve: time = (F_padded + half) / (eff_max · P)."""
    if dtype == "fp8":
        return cal.fp8_gemm_efficiency_max, cal.fp8_gemm_half_flops
    return cal.gemm_efficiency_max, cal.gemm_half_flops


def gemm_efficiency(m: GemmRows, n: float, k: float, dtype: str, calibration: DeviceCalibration) -> GemmRows:
    """Achievable fraction of the dtype's peak for one (m x k) @ (k x n) GEMM.

    The kernel computes m padded to whole row tiles; the size curve's fixed cost (`half` FLOPs) is paid once
    per kernel: time = (F_padded + half) / (eff_max * peak), so efficiency = eff_max * F / (F_padded + half).
    """
    eff_max, half = gemm_curve(dtype, calibration)
    tiles = -(-m // GEMM_TILE)  # ceil, also for numpy arrays
    efficiency: GemmRows = eff_max * 2.0 * m * n * k / (2.0 * tiles * GEMM_TILE * n * k + half)
    return efficiency


def gemm_time_s(m: float, n: float, k: float, dtype: str, device: DeviceSpec) -> float:
    """Roofline time of one (m x k) @ (k x n) GEMM in `dtype` (seconds); 0 for an empty GEMM."""
    if m <= 0 or n <= 0 or k <= 0:
        return 0.0
    cal = device.calibration
    flops = 2.0 * m * n * k
    compute = flops / (device.peak_flops_per_s(dtype) * gemm_efficiency(m, n, k, dtype, cal))
    e_in = 1.0 if dtype == "fp8" else 2.0
    memory = (e_in * (m * k + k * n) + 2.0 * m * n) / (device.hbm_bytes_per_s * cal.hbm_efficiency)
    return max(compute, memory, cal.kernel_floor_s)


def fp8_cast_time_s(m: float, n: float, k: float, device: DeviceSpec) -> float:
    """Casts and amax reductions of one FP8 GEMM's operands over forward + backward (seconds)."""
    return memory_bound_time_s(FP8_CAST_BYTES * (m * k + k * n + m * n), device)


def attention_flops(batch: float, seq_q: float, seq_kv: float, heads: float, d_qk: float, d_v: float,
                    causal: bool = True) -> float:
    """Forward FLOPs of QK^T and AV (causal halving when the query and key ranges coincide)."""
    full = 2.0 * batch * seq_q * seq_kv * heads * (d_qk + d_v)
    return full / 2 if causal else full


def attention_efficiency(seq_kv: float, d_qk: float, calibration: DeviceCalibration) -> float:
    """Fraction of the 16-bit peak a fused attention kernel reaches for rows of seq_kv keys of width d_qk."""
    work = seq_kv * d_qk / 128.0
    return calibration.attention_efficiency * work / (work + calibration.attention_half_work)


def attention_time_s(batch: float, seq_q: float, seq_kv: float, heads: float, d_qk: float, d_v: float,
                     device: DeviceSpec, *, causal: bool = True, backward: bool = False,
                     block_kv: float | None = None) -> float:
    """Fused attention core time (seconds): forward, or forward + backward when `backward`.

    `block_kv` is the key range one kernel call sees (ring attention: s/cp per step); default seq_kv.
    """
    flops = attention_flops(batch, seq_q, seq_kv, heads, d_qk, d_v, causal)
    if backward:
        flops = flops * (1.0 + ATTENTION_BACKWARD_FACTOR)
    row = seq_kv if block_kv is None else block_kv
    return flops / (device.peak_flops_per_s("bf16") * attention_efficiency(row, d_qk, device.calibration))


def memory_bound_time_s(nbytes: float, device: DeviceSpec) -> float:
    """Time of element-wise kernels moving `nbytes` through HBM (seconds)."""
    return nbytes / (device.hbm_bytes_per_s * device.calibration.hbm_efficiency)


def unfused_attention_time_s(batch: float, seq: float, heads: float, d_qk: float, d_v: float, device: DeviceSpec, *,
                             backward: bool = False) -> float:
    """Attention with materialised s x s scores (no FlashAttention): batched GEMMs on all scores plus the
    element-wise kernels' HBM traffic (seconds; forward, or forward + backward)."""
    rows = batch * heads * seq
    gemms = gemm_time_s(rows, seq, d_qk, "bf16", device) + gemm_time_s(rows, d_v, seq, "bf16", device)
    scores = batch * heads * seq * seq
    forward = gemms + memory_bound_time_s(SCORE_BYTES_FORWARD * scores, device)
    if not backward:
        return forward
    return forward + 2 * gemms + memory_bound_time_s(SCORE_BYTES_BACKWARD * scores, device)
