"""Kernel times on one device: GEMMs with a size-dependent efficiency, attention, memory-bound ops.

  GEMM        t = max(F / (P · eff(F)), bytes / (BW · hbm_efficiency), kernel_floor)
              eff(F) = gemm_efficiency_max · F / (F + gemm_half_flops)   (saturating in the FLOP count)
  attention   t = F / (P · attention_efficiency)           (fused FlashAttention-style kernel)
  elementwise t = bytes / (BW · hbm_efficiency)            (norms, activations, dropout, residuals, loss)
P is the dense peak of the compute dtype, BW the HBM bandwidth; the efficiencies come from
DeviceCalibration (fitted by benchmarks/calibrate.py, stored in profiles/hardware/*.yaml).
"""

from costmodels.hardware import DeviceCalibration


def gemm_efficiency(flops: float, calibration: DeviceCalibration) -> float:
    """Achievable fraction of peak for one GEMM of `flops` FLOPs."""
    return calibration.gemm_efficiency_max * flops / (flops + calibration.gemm_half_flops)


def gemm_time_s(flops: float, m: float, k: float, n: float, peak_flops_per_s: float, hbm_bytes_per_s: float,
                calibration: DeviceCalibration, elem_bytes: float = 2.0) -> float:
    """Roofline time of an (m x k) @ (k x n) GEMM doing `flops` FLOPs (= 2mkn)."""
    if flops <= 0:
        return 0.0
    compute = flops / (peak_flops_per_s * gemm_efficiency(flops, calibration))
    memory = elem_bytes * (m * k + k * n + m * n) / (hbm_bytes_per_s * calibration.hbm_efficiency)
    return max(compute, memory, calibration.kernel_floor_s)


def attention_time_s(flops: float, peak_flops_per_s: float, calibration: DeviceCalibration) -> float:
    """Time of the fused attention core (QK^T, softmax, AV)."""
    if flops <= 0:
        return 0.0
    return max(flops / (peak_flops_per_s * calibration.attention_efficiency), calibration.kernel_floor_s)


def memory_bound_time_s(nbytes: float, hbm_bytes_per_s: float, calibration: DeviceCalibration) -> float:
    """Time of element-wise kernels moving `nbytes` through HBM."""
    return nbytes / (hbm_bytes_per_s * calibration.hbm_efficiency) if nbytes > 0 else 0.0
