"""`parplan estimate serve`: the cost of one serving configuration (prefill latency, mean decode step, memory)."""

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from costmodels.errors import InfeasibleError, require
from costmodels.hardware import MEASURED_ENGINES, DeviceSpec
from costmodels.model import ModelSpec
from costmodels.routing import RoutingStats
from costmodels.serving import (
    DEFAULT_ENGINE,
    InstanceShape,
    Precision,
    Skew,
    check_shape,
    decode_step_time,
    default_prefill_token_budget,
    engine_model,
    kv_bytes_per_token_gpu,
    kv_capacity_tokens,
    mean_decode_step_time,
    prefill_time,
    skew_at,
    weight_bytes_per_gpu,
)
from costmodels.serving_precision import max_routing_skew
from costmodels.serving_shapes import quant_block_problem
from planner.confidence import serve_estimate_confidence
from planner.plan import Plan, make_plan
from planner.serve.moe_skew import stats_skew
from planner.serve.offline import offline_budget, offline_throughput
from planner.serve.request import check_token_budget


@dataclass(frozen=True, kw_only=True, slots=True)
class Workload:
    """What an estimate serves: prompt and output lengths, shared cached prefix, speculative decoding, offline."""

    isl: int
    """prompt tokens"""
    osl: int
    """output tokens"""
    prefix_len: int = 0
    """prompt tokens already in the prefix cache (prefill computes only isl - prefix_len, attending to all)"""
    spec_depth: int = 0
    """draft tokens verified per decode step (speculative decoding / MTP; 0 = off)"""
    spec_accept: float = 1.0
    """mean tokens emitted per decode step, 1 .. spec_depth + 1"""
    offline: bool = False
    """also estimate offline batch inference (planner.serve.offline)"""
    prefill_token_budget: int = 0
    """tokens one prefill step carries: the batch is prefilled in steps of max(1, budget // fresh tokens) prompts
    (0: the whole batch in one step)"""

    def __post_init__(self):
        require(self.isl >= 1, f"must be >= 1, got {self.isl}", field="isl")
        require(self.osl >= 1, f"must be >= 1, got {self.osl}", field="osl")
        require(0 <= self.prefix_len < self.isl, f"must be in [0, isl), got {self.prefix_len}", field="prefix-len")
        require(self.spec_depth >= 0, f"must be >= 0, got {self.spec_depth}", field="spec-depth")
        require(1.0 <= self.spec_accept <= self.spec_depth + 1,
                f"must be in [1, spec-depth + 1 = {self.spec_depth + 1}], got {self.spec_accept}", field="spec-accept")


def estimate_numbers(model: ModelSpec, device: DeviceSpec, shape: InstanceShape, *, batch: int, isl: int, osl: int,
                     engine: str, dtype: str, devices_per_node: int | None, kv_dtype: str = "",
                     skew: Skew = 1.0, work: Workload | None = None, quant_block: int = 0) -> dict:
    """The predicted block of an estimate (also used by check to recompute)."""
    work = work or Workload(isl=isl, osl=osl)
    kw = dict(engine=engine, dtype=dtype, kv_dtype=kv_dtype, skew=skew, devices_per_node=devices_per_node,
              quant_block=quant_block)
    per_seq = work.spec_depth + 1.0
    fresh = isl - work.prefix_len
    per_step = min(batch, max(1, work.prefill_token_budget // fresh)) if work.prefill_token_budget else batch
    pre = prefill_time(model, device, shape, batch=per_step, prompt_len=fresh, context_len=work.prefix_len, **kw)
    prefill_s = batch // per_step * pre["time_s"]
    if batch % per_step:
        prefill_s += prefill_time(model, device, shape, batch=batch % per_step, prompt_len=fresh,
                                  context_len=work.prefix_len, **kw)["time_s"]
    mean_step = mean_decode_step_time(model, device, shape, batch=batch, input_len=isl, output_len=osl,
                                      tokens_per_seq=per_seq, **kw)
    last = decode_step_time(model, device, shape, batch=batch, context_len=isl + osl, tokens_per_seq=per_seq, **kw)
    weights = weight_bytes_per_gpu(model, shape, dtype)
    kv_need = batch * (isl + osl) * kv_bytes_per_token_gpu(model, shape, kv_dtype or dtype) / shape.dp
    capacity = kv_capacity_tokens(model, device, shape, dtype, kv_dtype)
    out = {
        "prefill_s": prefill_s,
        "prefill_steps": -(-batch // per_step),
        "decode_step_s": mean_step,
        "tpot_s": mean_step / work.spec_accept,
        "decode_tokens_per_s": batch * work.spec_accept / mean_step,
        "weights_bytes_per_gpu": weights,
        "kv_bytes_per_gpu": kv_need,
        "kv_capacity_tokens": capacity,
        "breakdown": {"prefill": {k: v for k, v in sorted(pre.items()) if k != "time_s"},
                      "decode_last_step": {k: v for k, v in sorted(last.items()) if k != "time_s"}},
    }
    if work.offline:
        out.update(offline_throughput(model, device, shape, isl=isl, osl=osl, kw=kw,
                                      budget=offline_budget(engine, work.prefill_token_budget),
                                      prefix_len=work.prefix_len, spec_depth=work.spec_depth,
                                      spec_accept=work.spec_accept))
    return out


def _check_arguments(model: object, device: object, counts: dict[str, object], reals: dict[str, object]) -> None:
    """SpecError naming the argument when an API caller passes the wrong type: a name instead of a spec, a float
    or string where an integer count goes, a non-finite number."""
    require(isinstance(model, ModelSpec), f"must be a ModelSpec (profiles.load_model(name)), got {model!r}",
            field="model")
    require(isinstance(device, DeviceSpec), f"must be a DeviceSpec (profiles.load_device(name)), got {device!r}",
            field="device")
    for name, v in counts.items():
        require(isinstance(v, int) and not isinstance(v, bool), f"must be an integer, got {v!r}", field=name)
    for name, v in reals.items():
        require(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v),
                f"must be a finite number, got {v!r}", field=name)


def _block_hint(model: ModelSpec, shape: InstanceShape, block: int) -> str:
    """The --ep values at which this tp/dp splits the block-scaled checkpoint, else the smaller --tp that do."""
    group = shape.tp * shape.dp
    eps = [e for e in range(1, group + 1) if group % e == 0 and model.is_moe and model.moe_dims.experts % e == 0
           and not quant_block_problem(model, dataclasses.replace(shape, ep=e), block)]
    if eps:
        return f"; at tp={shape.tp} attention-dp={shape.dp} it splits with --ep {' or '.join(map(str, eps))}"
    tps = [t for t in range(1, shape.tp) if shape.tp % t == 0 and model.heads % t == 0
           and not quant_block_problem(model, InstanceShape(tp=t, pp=shape.pp), block)]
    return f"; no --ep splits it at tp={shape.tp}" + (f"; --tp {' or '.join(map(str, tps))} does" if tps else "")


def _check_skew(model: ModelSpec, shape: InstanceShape, skew: float) -> None:
    """SpecError naming --moe-skew unless the skew can happen at this shape: the busiest of ep GPUs receives at most
    min(top_k, experts / ep) of each token's top_k slots, so skew <= ep * min(top_k, experts / ep) / top_k (1 at
    ep 1: one GPU holds every slot; a dense model has no routing)."""
    if skew == 1.0:
        return
    require(model.is_moe, f"routing skew needs an MoE model; {model.name} is dense (omit --moe-skew)",
            field="moe-skew")
    moe = model.moe_dims
    most = max_routing_skew(model, shape.ep)
    require(skew <= most, f"must be in [1, {most:g}] at ep={shape.ep} ({moe.experts} experts, top-{moe.top_k}: the "
            f"busiest GPU holds at most min(top_k, experts/ep) slots of each token), got {skew:g}"
            + ("; skew needs --ep > 1" if shape.ep == 1 else ""), field="moe-skew")


def estimate_serving(model: ModelSpec, device: DeviceSpec, *, tp: int, pp: int = 1, ep: int = 1, dp: int = 1,
                     batch: int,
                     isl: int, osl: int, engine: str = DEFAULT_ENGINE, dtype: str = "bf16", kv_dtype: str = "",
                     moe_skew: float = 1.0, quant_block: int = 0, devices_per_node: int | None = None,
                     prefix_len: int = 0, spec_depth: int = 0, spec_accept: float = 1.0, offline: bool = False,
                     prefill_token_budget: int | str | None = None,
                     moe_stats: str | Path | RoutingStats | None = None) -> Plan:
    """An estimate document (kind "estimate", inputs.target "serve") for one instance shape and batch.

    The batch is prefilled in steps of at most `prefill_token_budget` uncached tokens (None: the engine's default,
    costmodels.serving.default_prefill_token_budget; legacy and modern: the whole batch in one step, as the
    Splitwise profile measured it). Raises InfeasibleError (exit 3) when an FP8-block checkpoint (quant_block)
    cannot be split at this shape. `moe_stats` (routing statistics, a file or RoutingStats; not with moe_skew) gives
    the skew at `ep` of the engines' contiguous expert placement (planner/serve/moe_skew.py)."""
    _check_arguments(model, device, {"batch": batch, "isl": isl, "osl": osl, "prefix-len": prefix_len,
                                     "spec-depth": spec_depth, "quant-block": quant_block},
                     {"moe-skew": moe_skew, "spec-accept": spec_accept})
    require(batch >= 1, f"must be >= 1, got {batch}", field="batch")
    check_token_budget(prefill_token_budget)
    require(not isinstance(prefill_token_budget, str), "auto picks a budget by SLO capacity, which only plan serve "
            "has; give an integer >= 1 (or omit it for the engine's default)", field="prefill-token-budget")
    engine_model(engine)
    budget = prefill_token_budget or default_prefill_token_budget(engine, device)
    if prefill_token_budget is None and engine not in MEASURED_ENGINES:
        budget = batch * (isl - prefix_len)
    work = Workload(isl=isl, osl=osl, prefix_len=prefix_len, spec_depth=spec_depth, spec_accept=spec_accept,
                    offline=offline, prefill_token_budget=budget)
    shape = InstanceShape(tp=tp, pp=pp, ep=ep, dp=dp)
    check_shape(model, shape)
    Precision(dtype=dtype, kv_dtype=kv_dtype, skew=moe_skew)
    require(moe_stats is None or moe_skew == 1.0, "give --moe-skew or --moe-stats, not both", field="moe-stats")
    stats = stats_skew(moe_stats, model) if moe_stats is not None else None
    skew: Skew = stats.by_ep if stats is not None else moe_skew
    moe_skew = skew_at(skew, ep)
    _check_skew(model, shape, moe_skew)
    problem = quant_block_problem(model, shape, quant_block)
    if problem:
        raise InfeasibleError(problem + _block_hint(model, shape, quant_block),
                              details={"binding": ["quant_block"], "quant_block": quant_block})
    per_node = devices_per_node or device.devices_per_node
    require(tp <= per_node, f"tp ({tp}) must fit in one node of {per_node} GPUs", field="tp")
    predicted = estimate_numbers(model, device, shape, batch=batch, isl=isl, osl=osl, engine=engine, dtype=dtype,
                                 kv_dtype=kv_dtype, skew=skew, devices_per_node=per_node, work=work,
                                 quant_block=quant_block)
    reasons = []
    if predicted["kv_capacity_tokens"] <= 0:
        reasons.append(f"weights need {predicted['weights_bytes_per_gpu'] / 2**30:.1f} GiB per GPU at tp={tp}, "
                       f"pp={pp}; "
                       f"the engine may use {device.usable_bytes * 0.9 / 2**30:.1f} GiB")
    elif predicted["kv_capacity_tokens"] < batch * (isl + osl):
        reasons.append(f"KV cache for {batch} x {isl + osl} tokens needs {batch * (isl + osl)} tokens of room; "
                       f"the instance holds {predicted['kv_capacity_tokens']:.0f}")
    predicted.update(serve_estimate_confidence(model, device.name, tp=tp, isl=isl, engine=engine, dtype=dtype,
                                               predicted=predicted))
    inputs = {"target": "serve", "model": dataclasses.asdict(model), "device": dataclasses.asdict(device),
              "shape": {"tp": tp, "pp": pp, "ep": ep, "dp": dp}, "batch": batch, "isl": isl, "osl": osl,
              "engine": engine,
              "dtype": dtype, "kv_dtype": kv_dtype, "moe_skew": moe_skew, "quant_block": quant_block,
              "prefix_len": prefix_len, "spec_depth": spec_depth, "spec_accept": spec_accept, "offline": offline,
              "prefill_token_budget": budget,
              "devices_per_node": per_node}
    if stats is not None:
        inputs["moe_stats"] = {"digest": stats.digest, "skew_by_ep": [list(p) for p in stats.by_ep]}
    return make_plan("estimate", inputs=inputs, decision={"tp": tp, "pp": pp, "ep": ep, "dp": dp, "batch": batch},
                     predicted=predicted, feasible=not reasons, infeasible_reasons=reasons)
