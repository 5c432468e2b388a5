"""Memory of the two engine processes an intra-GPU (semi-PD) instance runs on the same GPUs.

The planner prices one copy of the weights (semi-PD shares them); vLLM and SGLang run prefill and decode as
two processes that each load the weights. Per GPU, with the serving cost model's own terms
(costmodels.serving: weight_bytes_per_gpu, kv_bytes_per_token_gpu, KV_MEMORY_FRACTION of the usable HBM):
    prefill process  W + KV of one request at the (L+O) quantile the planner sizes for
    decode process   W + KV of max_batch such requests (what the planner's decode batch assumed)
    2W + both KV  <=  usable HBM x KV_MEMORY_FRACTION,  otherwise the export is refused.
The slack is split evenly; each process gets its bytes as a fraction of the HBM (vLLM --gpu-memory-utilization
and SGLang --mem-fraction-static are per-process fractions of the GPU's memory).
"""

import math

from costmodels.serving import KV_MEMORY_FRACTION, InstanceShape, kv_bytes_per_token_gpu, weight_bytes_per_gpu
from planner.exports.common import ExportRefused, Target
from planner.plan import Plan
from planner.serve.capacity import CapacityModel
from planner.serve.io import cluster_from_dict, model_from_dict, options_from_dict, workload_from_dict

GIB = 2**30


def intra_gpu_fractions(plan: Plan, group: dict, index: int, target: Target) -> tuple[float, float]:
    """(prefill, decode) memory fractions of the HBM for the two processes of an intra_gpu group."""
    inputs = plan["inputs"]
    model, cluster = model_from_dict(inputs["model"]), cluster_from_dict(inputs["cluster"])
    options = options_from_dict(inputs["options"])
    cm = CapacityModel(model, cluster, workload_from_dict(inputs["workload"]), options)
    device = cluster.pool(group["pool"]).device
    shape = InstanceShape(tp=group["tp"], pp=group["pp"], ep=group["ep"], dp=group["dp"])
    weights = weight_bytes_per_gpu(model, shape, options.dtype)
    per_request = cm.stats.q_total * kv_bytes_per_token_gpu(model, shape, options.kv_dtype or options.dtype) / shape.dp
    prefill, decode = weights + per_request, weights + group["max_batch"] * per_request
    budget = device.usable_bytes * KV_MEMORY_FRACTION
    if prefill + decode > budget:
        raise ExportRefused(target, f"decision.groups[{index}]", "intra_gpu",
                            f"two engine processes each load the weights: 2 x {weights / GIB:.1f} GiB + KV "
                            f"{(prefill + decode - 2 * weights) / GIB:.1f} GiB for max_batch={group['max_batch']} "
                            f"= {(prefill + decode) / GIB:.1f} GiB per GPU > {budget / GIB:.1f} GiB")
    slack = (budget - prefill - decode) / 2
    return (math.floor(1000 * (prefill + slack) / device.hbm_bytes) / 1000,
            math.floor(1000 * (decode + slack) / device.hbm_bytes) / 1000)
