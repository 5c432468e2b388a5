"""Offline batch inference: every request queued at once, fixed ISL/OSL, in-flight batching.

An instance keeps B = min(MAX_OFFLINE_BATCH, ⌊KV capacity / (ISL + OSL)⌋) requests in flight. In steady
state, each request costs the GPU its prefill P (the uncached part of the prompt, one prompt per prefill
step) and a 1/B share of OSL/a decode steps of the whole batch, d(B) averaged over contexts ISL .. ISL + OSL
(a = tokens emitted per step with speculative decoding, each step verifying depth + 1 tokens per sequence):
    time per request  T = P + (OSL / a) · d(B) / B,      output tokens/s per GPU = OSL / T / GPUs.
`plan serve --objective throughput` (plan_offline) picks the shape with the most output tokens/s per GPU and
replicates it over its pool; the plan is a colocated deployment with max_batch = B and no SLOs (not simulated).
"""

import dataclasses

from costmodels.errors import InfeasibleError
from costmodels.hardware import DeviceSpec
from costmodels.model import ModelSpec
from costmodels.serving import InstanceShape, kv_capacity_tokens, mean_decode_step_time, prefill_time
from planner.confidence import serve_plan_fields
from planner.plan import Plan, make_plan
from planner.serve.capacity import CapacityModel, shapes_for

MAX_OFFLINE_BATCH = 1024
"""largest in-flight batch an engine schedules (vLLM max_num_seqs-style cap)"""


def offline_throughput(model: ModelSpec, device: DeviceSpec, shape: InstanceShape, *, isl: int, osl: int, kw: dict,
                       prefix_len: int = 0, spec_depth: int = 0, spec_accept: float = 1.0) -> dict:
    """{offline_batch, offline_requests_per_s, offline_output_tokens_per_s_per_gpu} of one instance
    (`kw`: engine, dtype, kv_dtype, skew, devices_per_node)."""
    room = kv_capacity_tokens(model, device, shape, kw["dtype"], kw["kv_dtype"])
    batch = min(MAX_OFFLINE_BATCH, int(room // (isl + osl)))
    if batch < 1:
        return {"offline_batch": 0, "offline_requests_per_s": 0.0, "offline_output_tokens_per_s_per_gpu": 0.0}
    cached = min(prefix_len, isl - 1)
    prefill = prefill_time(model, device, shape, batch=1, prompt_len=isl - cached, context_len=cached, **kw)["time_s"]
    step = mean_decode_step_time(model, device, shape, batch=batch, input_len=isl, output_len=osl,
                                 tokens_per_seq=spec_depth + 1.0, **kw)
    per_request = prefill + osl / spec_accept * step / batch
    return {"offline_batch": batch, "offline_requests_per_s": 1.0 / per_request,
            "offline_output_tokens_per_s_per_gpu": osl / per_request / shape.gpus}


def _best_shape(cm, workload, options) -> list[tuple]:
    """[(tokens/s/GPU, pool, shape, figures)] of every shape that holds at least one request, best first."""
    rows = []
    for pool in cm.cluster.pools:
        for shape in shapes_for(cm.model, pool, options):
            figures = offline_throughput(cm.model, pool.device, shape, isl=workload.input_len,
                                         osl=workload.output_len, kw=cm._kw(pool), prefix_len=workload.prefix_len,
                                         spec_depth=options.spec_depth, spec_accept=options.spec_accept)
            if figures["offline_batch"] >= 1:
                rows.append((figures["offline_output_tokens_per_s_per_gpu"], pool, shape, figures))
    rows.sort(key=lambda r: (-r[0], r[2].gpus, r[1].name, (r[2].tp, r[2].pp, r[2].ep, r[2].dp)))
    return rows


def _group(pool, shape: InstanceShape, figures: dict, instances: int) -> dict:
    rate = figures["offline_requests_per_s"]
    return {"role": "colocated", "pool": pool.name, "dest_pool": pool.name, "tp": shape.tp, "pp": shape.pp,
            "ep": shape.ep, "dp": shape.dp, "gpus": shape.gpus, "instances": instances, "capacity_rps": rate,
            "load_rps": rate, "max_batch": figures["offline_batch"], "chunk_tokens": 0, "prefill_share": 0.0,
            "ttft_floor_s": 0.0, "tpot_s": 0.0}


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
