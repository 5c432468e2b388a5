"""`parplan estimate serve`: the cost of one serving configuration (prefill latency, mean decode step, memory)."""

import dataclasses

from costmodels.errors import InfeasibleError, require
from costmodels.hardware import DeviceSpec
from costmodels.model import ModelSpec
from costmodels.serving import (
    DEFAULT_ENGINE,
    InstanceShape,
    Precision,
    check_shape,
    decode_step_time,
    kv_bytes_per_token_gpu,
    kv_capacity_tokens,
    mean_decode_step_time,
    prefill_time,
    quant_block_problem,
    weight_bytes_per_gpu,
)
from planner.confidence import serve_estimate_confidence
from planner.plan import Plan, make_plan


def estimate_numbers(model: ModelSpec, device: DeviceSpec, shape: InstanceShape, *, batch: int, isl: int, osl: int,
                     engine: str, dtype: str, devices_per_node: int | None, kv_dtype: str = "",
                     skew: float = 1.0) -> dict:
    """The predicted block of an estimate (also used by check to recompute)."""
    kw = dict(engine=engine, dtype=dtype, kv_dtype=kv_dtype, skew=skew, devices_per_node=devices_per_node)
    pre = prefill_time(model, device, shape, batch=batch, prompt_len=isl, **kw)
    mean_step = mean_decode_step_time(model, device, shape, batch=batch, input_len=isl, output_len=osl, **kw)
    last = decode_step_time(model, device, shape, batch=batch, context_len=isl + osl, **kw)
    weights = weight_bytes_per_gpu(model, shape, dtype)
    kv_need = batch * (isl + osl) * kv_bytes_per_token_gpu(model, shape, kv_dtype or dtype) / shape.dp
    capacity = kv_capacity_tokens(model, device, shape, dtype, kv_dtype)
    return {
        "prefill_s": pre["time_s"],
        "decode_step_s": mean_step,
        "decode_tokens_per_s": batch / mean_step,
        "weights_bytes_per_gpu": weights,
        "kv_bytes_per_gpu": kv_need,
        "kv_capacity_tokens": capacity,
        "breakdown": {"prefill": {k: v for k, v in sorted(pre.items()) if k != "time_s"},
                      "decode_last_step": {k: v for k, v in sorted(last.items()) if k != "time_s"}},
    }


def estimate_serving(model: ModelSpec, device: DeviceSpec, *, tp: int, pp: int = 1, ep: int = 1, dp: int = 1, batch: int,
                     isl: int, osl: int, engine: str = DEFAULT_ENGINE, dtype: str = "bf16", kv_dtype: str = "",
                     moe_skew: float = 1.0, quant_block: int = 0, devices_per_node: int | None = None) -> Plan:
    """An estimate document (kind "estimate", inputs.target "serve") for one instance shape and batch.

    Raises InfeasibleError (exit 3) when an FP8-block checkpoint (quant_block) cannot be split at this shape."""
    require(batch >= 1, f"must be >= 1, got {batch}", field="batch")
    require(isl >= 1, f"must be >= 1, got {isl}", field="isl")
    require(osl >= 1, f"must be >= 1, got {osl}", field="osl")
    shape = InstanceShape(tp=tp, pp=pp, ep=ep, dp=dp)
    check_shape(model, shape)
    Precision(dtype=dtype, kv_dtype=kv_dtype, skew=moe_skew)
    problem = quant_block_problem(model, shape, quant_block)
    if problem:
        raise InfeasibleError(problem, details={"binding": ["quant_block"], "quant_block": quant_block})
    per_node = devices_per_node or device.devices_per_node
    require(tp <= per_node, f"tp ({tp}) must fit in one node of {per_node} GPUs", field="tp")
    predicted = estimate_numbers(model, device, shape, batch=batch, isl=isl, osl=osl, engine=engine, dtype=dtype,
                                 kv_dtype=kv_dtype, skew=moe_skew, devices_per_node=per_node)
    reasons = []
    if predicted["kv_capacity_tokens"] <= 0:
        reasons.append(f"weights need {predicted['weights_bytes_per_gpu'] / 2**30:.1f} GiB per GPU at tp={tp}, pp={pp}; "
                       f"the engine may use {device.usable_bytes * 0.9 / 2**30:.1f} GiB")
    elif predicted["kv_capacity_tokens"] < batch * (isl + osl):
        reasons.append(f"KV cache for {batch} x {isl + osl} tokens needs {batch * (isl + osl)} tokens of room; "
                       f"the instance holds {predicted['kv_capacity_tokens']:.0f}")
    predicted.update(serve_estimate_confidence(model, device.name, tp=tp, isl=isl, engine=engine, dtype=dtype,
                                               predicted=predicted))
    inputs = {"target": "serve", "model": dataclasses.asdict(model), "device": dataclasses.asdict(device),
              "shape": {"tp": tp, "pp": pp, "ep": ep, "dp": dp}, "batch": batch, "isl": isl, "osl": osl, "engine": engine,
              "dtype": dtype, "kv_dtype": kv_dtype, "moe_skew": moe_skew, "quant_block": quant_block,
              "devices_per_node": per_node}
    return make_plan("estimate", inputs=inputs, decision={"tp": tp, "pp": pp, "ep": ep, "dp": dp, "batch": batch},
                     predicted=predicted, feasible=not reasons, infeasible_reasons=reasons)
