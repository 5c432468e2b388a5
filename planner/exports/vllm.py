"""vLLM 0.33.0 launch lines for a serve plan, one per node of every instance.

- PD disaggregation: --kv-transfer-config {"kv_connector": "NixlConnector", "kv_role": "kv_producer" (prefill)
  | "kv_consumer" (decode)}; each worker sets VLLM_NIXL_SIDE_CHANNEL_PORT (a block of 64 per instance, as vLLM
  adds the DP rank) and VLLM_NIXL_SIDE_CHANNEL_HOST (its node's address). Decode instances with pipeline > 1 raise
  NotImplementedError in vLLM's NixlConnector: refused. Requests enter through vLLM's PD proxy example
  (tests/v1/kv_connector/nixl_integration/toy_proxy_server.py), one per decode pool (each prefill's planned
  dest_pool); it round-robins over its host lists, so an instance is listed in proportion to its planned load.
- Shape: --tensor-parallel-size, --pipeline-parallel-size, --data-parallel-size (attention DP);
  --enable-expert-parallel makes EP = tp x dp, so the plan's ep must be 1 or tp x dp.
  --max-num-seqs is per data-parallel engine (the plan's max_batch / dp).
- Multi-node: tp x pp across nodes = --nnodes N --node-rank r --master-addr/--master-port (ranks > 0 run
  --headless); dp across nodes = --data-parallel-size-local, --data-parallel-start-rank, --data-parallel-address,
  --data-parallel-rpc-port (ranks > 0 --headless). GPUs are pinned with CUDA_VISIBLE_DEVICES.
- Colocated: --enable-chunked-prefill --max-num-batched-tokens (chunk + decode batch). Offline (objective
  throughput) plans: --max-num-batched-tokens = the group's prefill_token_budget (the tokens per step its throughput
  assumes) / dp and --max-num-seqs = the in-flight batch / dp; a budget of 1 (one prompt per step) is refused.
- Prefill: --max-num-batched-tokens = the plan's prefill_token_budget / dp (batched prefill; --max-num-seqs 1
  when the budget is 1, one prompt per step).
- Intra-GPU (semi-PD): a prefill and a decode process on the same GPUs under CUDA MPS, each with
  CUDA_MPS_ACTIVE_THREAD_PERCENTAGE = its compute share and --gpu-memory-utilization from serve_memory.
"""

import json
import math

from planner.exports.common import ExportRefused, Target
from planner.exports.serve_layout import QUANTIZATION, Worker, load_weights, routes, shell_line, visible
from planner.exports.serve_memory import intra_gpu_fractions
from planner.plan import Plan

NIXL_PORT = 5600
NIXL_STRIDE = 64
"""side-channel ports per instance: vLLM adds the data-parallel rank to VLLM_NIXL_SIDE_CHANNEL_PORT (dp <= 16 here,
and an intra-GPU decode process uses the upper half of its instance's block)"""
MASTER_PORT = 29500
DP_RPC_PORT = 13345


def _nixl_port(ordinal: int) -> int:
    return NIXL_PORT + NIXL_STRIDE * ordinal


def _kv(role: str) -> list[str]:
    config = {"kv_connector": "NixlConnector", "kv_role": role}
    return ["--kv-transfer-config", json.dumps(config, separators=(",", ":"))]


def _shape(w: Worker, target: Target) -> list[str]:
    g = w.group
    args = ["--tensor-parallel-size", str(g["tp"])]
    if g["pp"] > 1:
        args += ["--pipeline-parallel-size", str(g["pp"])]
    if g["dp"] > 1:
        args += ["--data-parallel-size", str(g["dp"])]
    if g["ep"] > 1:
        if g["ep"] != g["tp"] * g["dp"]:
            raise ExportRefused(target, f"decision.groups[{w.group_index}].ep", g["ep"],
                                f"--enable-expert-parallel uses EP = tp x dp = {g['tp'] * g['dp']}")
        args.append("--enable-expert-parallel")
    return args


def _multi_node(w: Worker, rank: int, ordinal: int) -> list[str]:
    g, nodes = w.group, len(w.placement)
    if nodes == 1:
        return []
    if g["dp"] > 1:
        local = g["dp"] // nodes  # place() gives whole nodes, and tp x dp = GPUs (dp > 1 has pp = 1)
        # the head serves the API for every DP rank (internal load balancing): no start rank there, which
        # would switch vLLM to hybrid balancing (an API server per node for its local ranks only)
        start = ["--data-parallel-start-rank", str(rank * local)] if rank else []
        args = ["--data-parallel-size-local", str(local), *start, "--data-parallel-address", w.head.addr,
                "--data-parallel-rpc-port", str(DP_RPC_PORT + ordinal)]
    else:
        args = ["--nnodes", str(nodes), "--node-rank", str(rank), "--master-addr", w.head.addr,
                "--master-port", str(MASTER_PORT + ordinal)]
    return args + (["--headless"] if rank > 0 else [])


def _prefill_budget(g: dict) -> list[str]:
    """The prefill step's token budget (plan: the instance's total; vLLM: per data-parallel engine), or one prompt
    per step (--max-num-seqs 1) when the plan's budget is 1."""
    budget = g.get("prefill_token_budget")
    if not budget:
        return []
    if budget == 1:
        return ["--max-num-seqs", "1"]
    return ["--max-num-batched-tokens", str(max(1, budget // g["dp"]))]


def _offline_args(w: Worker, target: Target, per_engine: int) -> list[str]:
    """An offline (objective throughput) instance: every step carries up to the plan's token budget (decodes first,
    then prompt tokens; per data-parallel engine budget / dp) and at most the in-flight batch; the running batch
    never exceeds the budget (vLLM requires max_num_batched_tokens >= max_num_seqs)."""
    g = w.group
    budget = g["prefill_token_budget"]
    if budget == 1:
        raise ExportRefused(target, f"decision.groups[{w.group_index}].prefill_token_budget", budget,
                            "the plan's throughput assumes one prompt per prefill step between decode steps (the "
                            "legacy/modern engine models, or --prefill-token-budget 1), which vLLM's mixed-step "
                            "scheduler does not run; re-plan with --engine vllm and a budget > 1")
    tokens = max(1, budget // g["dp"])
    return ["--enable-chunked-prefill", "--max-num-batched-tokens", str(tokens),
            "--max-num-seqs", str(min(per_engine, tokens))]


def _role_args(w: Worker, target: Target) -> list[str]:
    g, per_engine = w.group, math.ceil(w.group["max_batch"] / w.group["dp"])
    if len(w.placement) > 1 and g["dp"] > 1 and (g["dp"] % len(w.placement) or g["pp"] > 1):
        raise ExportRefused(target, f"decision.groups[{w.group_index}].dp", g["dp"],
                            f"multi-node data parallelism needs whole DP ranks per node ({len(w.placement)} nodes, "
                            f"pp={g['pp']})")
    if w.role in ("decode", "intra_gpu") and g["pp"] > 1:
        raise ExportRefused(target, f"decision.groups[{w.group_index}].pp", g["pp"],
                            "vLLM's NixlConnector raises NotImplementedError for a decode instance with pipeline > 1")
    if w.role == "prefill":
        return _kv("kv_producer") + _prefill_budget(g)
    if w.role == "decode":
        return _kv("kv_consumer") + ["--max-num-seqs", str(per_engine)]
    if w.role == "colocated" and g.get("prefill_token_budget"):
        return _offline_args(w, target, per_engine)
    if w.role == "colocated":
        return ["--enable-chunked-prefill", "--max-num-batched-tokens", str(g["chunk_tokens"] + per_engine),
                "--max-num-seqs", str(per_engine)]
    return ["--max-num-seqs", str(per_engine)]


def worker_lines(plan: Plan, w: Worker, ordinal: int, target: Target, base: list[str]) -> list[str]:
    """The lines of one instance: one per node (two per node for an intra-GPU instance)."""
    argv = base + ["--port", str(w.port)] + _shape(w, target) + _role_args(w, target)
    out = [f"# {w.role} instance {w.n} ({w.group['gpus']} GPUs): {w.where()}"]
    for rank, (node, ids) in enumerate(w.placement):
        env = visible(ids)
        tail = _multi_node(w, rank, ordinal)
        if w.role != "intra_gpu":
            if w.role in ("prefill", "decode"):
                env |= {"VLLM_NIXL_SIDE_CHANNEL_HOST": node.addr, "VLLM_NIXL_SIDE_CHANNEL_PORT": _nixl_port(ordinal)}
            out.append(f"# on {node.name}")
            out.append(shell_line(env, argv + tail))
            continue
        share = max(1, min(99, round(100 * w.group["prefill_share"])))
        pre_mem, dec_mem = intra_gpu_fractions(plan, w.group, w.group_index, target)
        pre = base + ["--port", str(w.port)] + _shape(w, target) + _kv("kv_producer")
        dec = argv[:]
        dec[dec.index("--port") + 1] = str(w.port + 100)
        out.append(f"# on {node.name} (start the MPS daemon first: nvidia-cuda-mps-control -d)")
        nixl = {"VLLM_NIXL_SIDE_CHANNEL_HOST": node.addr}
        out.append(shell_line(env | nixl | {"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": share,
                                            "VLLM_NIXL_SIDE_CHANNEL_PORT": _nixl_port(ordinal)},
                              pre + ["--gpu-memory-utilization", str(pre_mem)] + tail))
        out.append(shell_line(env | nixl | {"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": 100 - share,
                                            "VLLM_NIXL_SIDE_CHANNEL_PORT": _nixl_port(ordinal) + NIXL_STRIDE // 2},
                              dec + _kv("kv_consumer") + ["--gpu-memory-utilization", str(dec_mem)] + tail))
    return out


def proxy_lines(workers: list[Worker]) -> list[str]:
    """vLLM's PD proxy example in front of each route (API on each head node). The proxy round-robins over its
    lists, so each instance is listed in proportion to its planned load (serve_layout.load_weights)."""
    out = []
    for k, route in enumerate(routes(workers)):
        pre = [(w.head.addr, w.port) for w, n in zip(route.prefill, load_weights(route.prefill), strict=True)
               for _ in range(n)]
        dec = [(w.head.addr, w.port + (100 if w.role == "intra_gpu" else 0))
               for w, n in zip(route.decode, load_weights(route.decode), strict=True) for _ in range(n)]
        argv = ["python", "toy_proxy_server.py", "--port", str(8000 + k), "--prefiller-hosts", *[h for h, _ in pre],
                "--prefiller-ports", *[str(p) for _, p in pre], "--decoder-hosts", *[h for h, _ in dec],
                "--decoder-ports", *[str(p) for _, p in dec]]
        out += [f"# PD proxy to decode pool {route.dest_pool}: {route.rate_rps:.4g} req/s of the plan (vLLM "
                "repository: tests/v1/kv_connector/nixl_integration/toy_proxy_server.py)", shell_line({}, argv)]
    return out


def vllm_lines(plan: Plan, workers: list[Worker], target: Target) -> list[str]:
    model = plan["inputs"]["model"]["name"]
    options = plan["inputs"]["options"]
    base = ["vllm", "serve", model, "--host", "0.0.0.0", "--dtype", "bfloat16"]
    if options["dtype"] in QUANTIZATION:
        base += ["--quantization", QUANTIZATION[options["dtype"]]]
    if (options.get("kv_dtype") or options["dtype"]) == "fp8":
        base += ["--kv-cache-dtype", "fp8"]
    out = []
    for ordinal, w in enumerate(workers):
        out += worker_lines(plan, w, ordinal, target, base)
    return out + proxy_lines(workers)
