"""Time of one GPU's routed-expert work in one MoE layer, as an affine function of its token count.

A GPU that serves n token-expert pairs in a layer spends

    t(n) = fixed_s + n * per_pair_s / speed     (compute part scaled by the GPU's speed factor)
           + n * dispatch_s                      (dispatch + combine of those pairs over its links)

  per-pair compute   = 2 * m * hidden * expert_ffn FLOPs (m = 3 matrices for a gated MLP, else 2)
                       at peak(dtype) * gemm_efficiency_max
  dispatch + combine = 2 * hidden * act_bytes per pair, arriving from a uniformly spread token
                       origin: (G_node - 1) / G of them over the intra-node link, (G - G_node) / G over
                       the NIC (each at its calibrated efficiency); a pair that stays on its GPU is free
  fixed              = two collective latencies (dispatch, combine) and two kernel floors

Expert weight streaming is left out: it is the same for every GPU when every slot is filled.
The numbers are roofline estimates from the device profile's calibration, not measurements.
Token mode (no model/device) uses TOKEN_COST: t(n) = n / speed.
"""

from dataclasses import dataclass

from costmodels.errors import require
from costmodels.hardware import DeviceSpec
from costmodels.model import ModelSpec


@dataclass(frozen=True, kw_only=True, slots=True)
class ExpertCost:
    """t(n) = fixed_s + n * (compute_per_pair_s / speed + dispatch_per_pair_s) for one GPU."""

    fixed_s: float
    """placement-independent time per layer (latencies, kernel floors)"""
    compute_per_pair_s: float
    """expert GEMM time of one token-expert pair at speed 1"""
    dispatch_per_pair_s: float
    """dispatch + combine time of one token-expert pair"""

    def __post_init__(self) -> None:
        for name in ("fixed_s", "compute_per_pair_s", "dispatch_per_pair_s"):
            require(getattr(self, name) >= 0, "must be >= 0", field=name)
        require(self.compute_per_pair_s + self.dispatch_per_pair_s > 0, "a pair must cost something",
                field="compute_per_pair_s")

    def per_pair_s(self, speed: float = 1.0) -> float:
        """Marginal time of one more pair on a GPU of this speed factor."""
        return self.compute_per_pair_s / speed + self.dispatch_per_pair_s

    def time_s(self, pairs: float, speed: float = 1.0) -> float:
        """t(n) for n = pairs."""
        return self.fixed_s + pairs * self.per_pair_s(speed)


TOKEN_COST = ExpertCost(fixed_s=0.0, compute_per_pair_s=1.0, dispatch_per_pair_s=0.0)
"""token mode: a GPU's 'time' is its token-expert pair count (divided by its speed factor)"""


def expert_cost(model: ModelSpec, device: DeviceSpec, *, num_gpus: int, gpus_per_node: int,
                dtype: str = "bf16", act_bytes: float = 2.0) -> ExpertCost:
    """ExpertCost of one GPU in an EP group of num_gpus GPUs, gpus_per_node per node."""
    require(model.moe is not None, f"model {model.name!r} has no routed experts", field="model")
    require(num_gpus >= 1 and gpus_per_node >= 1, "GPU counts must be >= 1", field="num_gpus")
    cal = device.calibration
    matrices = 3 if model.gated_mlp else 2
    flops = 2.0 * matrices * model.hidden * model.moe_dims.expert_ffn
    compute = flops / (device.peak_flops_per_s(dtype) * cal.gemm_efficiency_max)
    per_node = min(gpus_per_node, num_gpus)
    intra = (per_node - 1) / num_gpus
    inter = (num_gpus - per_node) / num_gpus
    pair_bytes = 2.0 * model.hidden * act_bytes
    dispatch = pair_bytes * (intra / (device.intra_node_bytes_per_s * cal.intra_node_efficiency)
                             + inter / (device.inter_node_bytes_per_s * cal.inter_node_efficiency))
    fixed = 2.0 * cal.collective_latency_s + 2.0 * cal.kernel_floor_s
    return ExpertCost(fixed_s=fixed, compute_per_pair_s=compute, dispatch_per_pair_s=dispatch)
