"""Offline batch inference: every request queued at once, fixed ISL/OSL, in-flight batching.

An instance keeps at most B = min(MAX_OFFLINE_BATCH, ⌊KV capacity / (ISL + OSL)⌋) requests in flight. F = ISL minus
the cached prefix (the tokens prefill computes), a = tokens emitted per decode step (speculative decoding verifies
t = depth + 1 tokens per sequence per step), C the engine's token budget per step (--prefill-token-budget, default
costmodels.serving.default_prefill_token_budget; the legacy and modern engines prefill one prompt per step, C = 1).
Output tokens/s per GPU = OSL · (requests/s) / GPUs, requests/s from the engine's steady state:

  mixed steps (vLLM V1, TensorRT-LLM in-flight batching; C > 1): every step carries the running decodes first, then
      prompt tokens up to the budget (vLLM's scheduler charges each running request's tokens to
      max_num_batched_tokens and gives the rest to waiting prompts, chunking the last one). In steady state D
      sequences decode and p prompt tokens are prefilled per step, with p = D · a · F / OSL (a request finishes
      every OSL / a of its steps) and D · t + p ≤ C:
          D = B                          if B · (t + a · F / OSL) ≤ C,
          D = C / (t + a · F / OSL)      otherwise (the budget, not the KV cache, bounds the running batch),
      step τ = m(D, p): one iteration of D · t decode tokens at the mean context ISL + OSL / 2 plus p / F prompts of
      F tokens (p < F: one chunk of p tokens at the mean context of a prompt's chunks), requests/s = D · a / OSL / τ.
      m (costmodels.serving.mixed_step_time) prices each prompt's attention as its own causal work.
  alternating steps (SGLang, whose scheduler runs a prefill batch whenever a waiting prompt can be admitted and
      mixes prefill with decode only with --enable-mixed-chunk; and C = 1): with the B slots full, a prefill batch
      admits the requests that finished since the last one, B · a / OSL per decode step, so prefill batches carry
      k = min(max(1, B · a / OSL), max(1, ⌊C / F⌋)) prompts on average (S(k, F) = prefill_time with batch k,
      interpolated between ⌊k⌋ and ⌈k⌉ prompts), between decode steps of the B running sequences:
          time per request  T = S(k, F) / k + (OSL / a) · d(B) / B,   d(B) averaged over contexts ISL .. ISL + OSL,
      requests/s = 1 / T. With C = 1 (k = 1) this is one prompt per prefill step.
`plan serve --objective throughput` (plan_offline) picks the shape with the most output tokens/s per GPU and
replicates it over its pool; the plan is a colocated deployment with max_batch = B, prefill_token_budget = C and no
SLOs (not simulated); `export` launches it with those two (planner/exports/vllm.py, sglang.py).
"""

import dataclasses
import math
from collections.abc import Callable

from costmodels.errors import InfeasibleError
from costmodels.hardware import MEASURED_ENGINES, DeviceSpec
from costmodels.model import ModelSpec
from costmodels.serving import (
    InstanceShape,
    kv_capacity_tokens,
    mean_decode_step_time,
    mixed_step_time,
    prefill_time,
)
from planner.confidence import serve_plan_fields
from planner.plan import Plan, make_plan
from planner.serve.capacity import CapacityModel, shapes_for

MAX_OFFLINE_BATCH = 1024
"""largest in-flight batch an engine schedules (vLLM max_num_seqs-style cap)"""
MIXED_STEP_ENGINES = ("vllm", "trtllm")
"""engines whose offline steps carry decode and prompt tokens together (the others alternate prefill and decode)"""


def offline_budget(engine: str, budget: int) -> int:
    """The token budget offline batches run with: `budget` on the measured engines, one prompt per step (1) on the
    legacy and modern engines."""
    return budget if engine in MEASURED_ENGINES else 1


def _mixed_rate(model: ModelSpec, device: DeviceSpec, shape: InstanceShape, kw: dict, *, batch: int, isl: int,
                osl: int, fresh: int, budget: int, per_seq: float, accept: float) -> tuple[float, float, float]:
    """(requests/s, running decodes D, prompts per step p / F) of the mixed-step steady state (module docstring)."""
    running = min(float(batch), budget / (per_seq + accept * fresh / osl))
    prompt_tokens = running * accept * fresh / osl
    room = budget - running * per_seq  # >= prompt_tokens
    context = (isl + osl / 2.0) / per_seq

    def step(units: int) -> float:
        whole = fresh <= room  # whole prompts, else one chunk of `room` tokens at its mean cached context
        tokens, cached = (float(fresh), float(isl - fresh)) if whole else (room, isl - fresh + (fresh - room) / 2)
        return mixed_step_time(model, device, shape, decode_batch=running * per_seq, decode_context=context,
                               chunk_tokens=units * tokens, chunk_context=cached, chunk_prompts=float(units), **kw)

    tau = _between_counts(step, prompt_tokens / min(float(fresh), room))
    return running * accept / osl / tau, running, prompt_tokens / fresh


def _alternating_rate(model: ModelSpec, device: DeviceSpec, shape: InstanceShape, kw: dict, *, batch: int, isl: int,
                      osl: int, fresh: int, budget: int, per_seq: float, accept: float) -> tuple[float, float, float]:
    """(requests/s, running decodes B, prompts per prefill step k) with prefill steps between decode steps."""
    k = min(max(1.0, batch * accept / osl), float(max(1, budget // fresh)))

    def prefill(n: int) -> float:
        return prefill_time(model, device, shape, batch=n, prompt_len=fresh, context_len=isl - fresh, **kw)["time_s"]

    step_s = _between_counts(prefill, k)
    decode = mean_decode_step_time(model, device, shape, batch=batch, input_len=isl, output_len=osl,
                                   tokens_per_seq=per_seq, **kw)
    return 1.0 / (step_s / k + osl / accept * decode / batch), float(batch), k


def _between_counts(step: Callable[[int], float], count: float) -> float:
    """step(count) for a fractional count of prompts: linear between ⌊count⌋ and ⌈count⌉."""
    whole = math.floor(count)
    return step(whole) if count == whole else (whole + 1 - count) * step(whole) + (count - whole) * step(whole + 1)


def offline_throughput(model: ModelSpec, device: DeviceSpec, shape: InstanceShape, *, isl: int, osl: int, kw: dict,
                       budget: int = 1, prefix_len: int = 0, spec_depth: int = 0, spec_accept: float = 1.0) -> dict:
    """{offline_batch (B), offline_decode_batch (D), offline_prompts_per_step, offline_requests_per_s,
    offline_output_tokens_per_s_per_gpu} of one instance (`kw`: engine, dtype, kv_dtype, skew, devices_per_node;
    `budget`: tokens per step, offline_budget)."""
    room = kv_capacity_tokens(model, device, shape, kw["dtype"], kw["kv_dtype"])
    batch = min(MAX_OFFLINE_BATCH, int(room // (isl + osl)))
    if batch < 1:
        return {"offline_batch": 0, "offline_decode_batch": 0.0, "offline_prompts_per_step": 0.0,
                "offline_requests_per_s": 0.0, "offline_output_tokens_per_s_per_gpu": 0.0}
    fresh = isl - min(prefix_len, isl - 1)
    mixed = budget > 1 and kw["engine"] in MIXED_STEP_ENGINES
    rate, running, prompts = (_mixed_rate if mixed else _alternating_rate)(
        model, device, shape, kw, batch=batch, isl=isl, osl=osl, fresh=fresh, budget=budget,
        per_seq=spec_depth + 1.0, accept=spec_accept)
    return {"offline_batch": batch, "offline_decode_batch": running, "offline_prompts_per_step": prompts,
            "offline_requests_per_s": rate, "offline_output_tokens_per_s_per_gpu": osl * rate / shape.gpus}


def _best_shape(cm, workload, options) -> list[tuple]:
    """[(tokens/s/GPU, pool, shape, figures)] of every shape that holds at least one request, best first (figures
    carry offline_token_budget, the tokens per step the shape's throughput assumes)."""
    rows = []
    for pool in cm.cluster.pools:
        budget = offline_budget(options.engine, cm.prefill_token_budget(pool))
        for shape in shapes_for(cm.model, pool, options):
            figures = offline_throughput(cm.model, pool.device, shape, isl=workload.input_len,
                                         osl=workload.output_len, kw=cm._kw(pool), budget=budget,
                                         prefix_len=workload.prefix_len, spec_depth=options.spec_depth,
                                         spec_accept=options.spec_accept)
            if figures["offline_batch"] >= 1:
                figures["offline_token_budget"] = budget
                rows.append((figures["offline_output_tokens_per_s_per_gpu"], pool, shape, figures))
    rows.sort(key=lambda r: (-r[0], r[2].gpus, r[1].name, (r[2].tp, r[2].pp, r[2].ep, r[2].dp)))
    return rows


def _group(pool, shape: InstanceShape, figures: dict, instances: int) -> dict:
    """The colocated group of `instances` copies of `shape`: max_batch is the in-flight batch B and
    prefill_token_budget the tokens per step C (1: one prompt per prefill step) — what export launches it with."""
    rate = figures["offline_requests_per_s"]
    return {"role": "colocated", "pool": pool.name, "dest_pool": pool.name, "tp": shape.tp, "pp": shape.pp,
            "ep": shape.ep, "dp": shape.dp, "gpus": shape.gpus, "instances": instances, "capacity_rps": rate,
            "load_rps": rate, "max_batch": figures["offline_batch"], "chunk_tokens": 0, "prefill_share": 0.0,
            "ttft_floor_s": 0.0, "tpot_s": 0.0,
            "prefill_token_budget": figures["offline_token_budget"]}


def plan_offline(request, options, progress=None) -> Plan:
    """`plan serve --objective throughput`: the instance shape with the most offline output tokens/s per GPU,
    replicated over every GPU of its pool (shapes divide a node or take whole nodes, so they pack exactly)."""
    from planner.serve.search import _decision

    cm = CapacityModel(request.model, request.cluster, request.workload, options)
    rows = _best_shape(cm, request.workload, options)
    if not rows:
        raise InfeasibleError("no instance shape holds the weights and one request's KV cache "
                              f"({request.workload.input_len + request.workload.output_len} tokens)",
                              details={"binding": ["memory"]})
    per_gpu, pool, shape, figures = rows[0]
    instances = pool.num_devices // shape.gpus
    groups = [_group(pool, shape, figures, instances)]
    gpus = instances * shape.gpus
    predicted = {"offline_output_tokens_per_s_per_gpu": per_gpu, "offline_batch": figures["offline_batch"],
                 "offline_output_tokens_per_s": per_gpu * gpus,
                 "rate_rps": figures["offline_requests_per_s"] * instances,
                 "gpus": gpus, "goodput_tokens_per_s_per_gpu": per_gpu, "ttft_s": 0.0, "tpot_s": 0.0,
                 "cost_per_hour": pool.device.cost_per_hour * gpus, "capacity_rps": 0.0}
    decision = _decision("colocated", groups)
    predicted.update(serve_plan_fields(request.model, request.cluster, request.workload, options, decision, predicted))
    alternatives = [{"mode": "colocated", "rank": i + 1, "groups": [_group(p, s, f, p.num_devices // s.gpus)],
                     "offline_output_tokens_per_s_per_gpu": t, "why": "fewer offline output tokens/s per GPU"}
                    for i, (t, p, s, f) in enumerate(rows[1:1 + options.top])]
    inputs = {"model": dataclasses.asdict(request.model), "cluster": dataclasses.asdict(request.cluster),
              "workload": dataclasses.asdict(request.workload), "options": dataclasses.asdict(options),
              "objective": "throughput"}
    if progress is not None:
        progress(f"parplan serve: offline, {len(rows)} shapes, best {per_gpu:.1f} output tok/s/GPU")
    return make_plan("serve", inputs=inputs, decision=decision, predicted=predicted,
                     alternatives=alternatives, baselines={}, solver={"backend": "enumeration", "status": "optimal"})
