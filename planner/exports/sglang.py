"""SGLang 0.5.23 launch lines (and the sglang-router 0.3.2 PD router) for a serve plan, one per node.

- Shape: --tp-size counts every GPU of a data-parallel-attention instance (tp x dp) with --dp-size dp
  --enable-dp-attention; --pp-size; --ep-size. Multi-node: --nnodes N --node-rank r --dist-init-addr
  ADDR:PORT on every node of the instance; GPUs pinned with CUDA_VISIBLE_DEVICES.
- PD: --disaggregation-mode prefill|decode --disaggregation-transfer-backend nixl, prefill
  --disaggregation-bootstrap-port; the router `python -m sglang_router.launch_router --pd-disaggregation
  --prefill URL BOOTSTRAP --decode URL`, one per decode pool, with --prefill-policy/--decode-policy power_of_two
  (load-aware) when the instances' planned loads differ. Decode --max-running-requests = the plan's decode batch.
- Colocated: --chunked-prefill-size and --max-running-requests. Offline (objective throughput) plans:
  --chunked-prefill-size = the group's prefill_token_budget (the tokens per prefill batch its throughput assumes;
  --max-prefill-tokens too above 16384) and --max-running-requests = the in-flight batch; a budget of 1 is refused.
- Prefill: --chunked-prefill-size = the plan's prefill_token_budget (batched prefill).
- Intra-GPU: a prefill and a decode server on the same GPUs under CUDA MPS with
  CUDA_MPS_ACTIVE_THREAD_PERCENTAGE = each phase's share and --mem-fraction-static from serve_memory.
- FP8: --quantization fp8; NVFP4 (--dtype fp4): --quantization modelopt_fp4; FP8 KV cache --kv-cache-dtype fp8_e4m3.
"""

from planner.exports.common import ExportRefused, Target
from planner.exports.serve_layout import QUANTIZATION, Worker, load_weights, routes, shell_line, visible
from planner.exports.serve_memory import intra_gpu_fractions
from planner.plan import Plan

BOOTSTRAP_PORT = 8998
DIST_PORT = 20000


def _shape(w: Worker) -> list[str]:
    g = w.group
    args = ["--tp-size", str(g["tp"] * g["dp"])]
    if g["dp"] > 1:
        args += ["--dp-size", str(g["dp"]), "--enable-dp-attention"]
    if g["pp"] > 1:
        args += ["--pp-size", str(g["pp"])]
    if g["ep"] > 1:
        args += ["--ep-size", str(g["ep"])]
    return args


def _multi_node(w: Worker, rank: int, ordinal: int) -> list[str]:
    if len(w.placement) == 1:
        return []
    return ["--nnodes", str(len(w.placement)), "--node-rank", str(rank), "--dist-init-addr",
            f"{w.head.addr}:{DIST_PORT + ordinal}"]


def _pd(mode: str) -> list[str]:
    return ["--disaggregation-mode", mode, "--disaggregation-transfer-backend", "nixl"]


def _prefill_budget(g: dict) -> list[str]:
    """The prefill step's token budget: --chunked-prefill-size (the instance's total; SGLang gives each DP-attention
    rank 1/dp of it) and --max-prefill-tokens above its 16384 default; --max-running-requests 1 for budget 1."""
    budget = g.get("prefill_token_budget")
    if not budget:
        return []
    if budget == 1:
        return ["--max-running-requests", "1"]
    return ["--chunked-prefill-size", str(budget)] + (["--max-prefill-tokens", str(budget)] if budget > 16384 else [])


def _role_args(w: Worker, target: Target) -> list[str]:
    g = w.group
    if w.role == "colocated" and g.get("prefill_token_budget") == 1:
        raise ExportRefused(target, f"decision.groups[{w.group_index}].prefill_token_budget", 1,
                            "the plan's throughput assumes one prompt per prefill step (the legacy/modern engine "
                            "models, or --prefill-token-budget 1), which SGLang's token-budgeted prefill batches do "
                            "not run; re-plan with --engine sglang and a budget > 1")
    if w.role == "prefill":
        return _pd("prefill") + ["--disaggregation-bootstrap-port", str(BOOTSTRAP_PORT + w.n)] + _prefill_budget(g)
    if w.role == "decode":
        return _pd("decode") + ["--max-running-requests", str(g["max_batch"])]
    if g.get("prefill_token_budget"):  # offline (objective throughput): the budget its throughput assumes
        return _prefill_budget(g) + ["--max-running-requests", str(g["max_batch"])]
    return ["--chunked-prefill-size", str(g["chunk_tokens"]), "--max-running-requests", str(g["max_batch"])]


def worker_lines(plan: Plan, w: Worker, ordinal: int, target: Target, base: list[str]) -> list[str]:
    out = [f"# {w.role} instance {w.n} ({w.group['gpus']} GPUs): {w.where()}"]
    for rank, (node, ids) in enumerate(w.placement):
        tail = _multi_node(w, rank, ordinal)
        if w.role != "intra_gpu":
            out += [f"# on {node.name}", shell_line(visible(ids), base + ["--port", str(w.port)] + _shape(w)
                                                    + _role_args(w, target) + tail)]
            continue
        share = max(1, min(99, round(100 * w.group["prefill_share"])))
        pre_mem, dec_mem = intra_gpu_fractions(plan, w.group, w.group_index, target)
        pre = base + ["--port", str(w.port)] + _shape(w) + _pd("prefill") + [
            "--disaggregation-bootstrap-port", str(BOOTSTRAP_PORT + w.n), "--mem-fraction-static", str(pre_mem)]
        dec = base + ["--port", str(w.port + 100)] + _shape(w) + _pd("decode") + [
            "--max-running-requests", str(w.group["max_batch"]), "--mem-fraction-static", str(dec_mem)]
        out.append(f"# on {node.name} (start the MPS daemon first: nvidia-cuda-mps-control -d)")
        out.append(shell_line(visible(ids) | {"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": share}, pre + tail))
        dec_tail = _multi_node(w, rank, ordinal + 500)  # the decode server has its own rendezvous port
        out.append(shell_line(visible(ids) | {"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": 100 - share}, dec + dec_tail))
    return out


def router_lines(workers: list[Worker]) -> list[str]:
    """One PD router per decode pool; instances of unequal planned load are balanced by load (power_of_two)."""
    out = []
    for k, route in enumerate(routes(workers)):
        argv = ["python", "-m", "sglang_router.launch_router", "--pd-disaggregation"]
        for w in route.prefill:
            argv += ["--prefill", f"http://{w.head.addr}:{w.port}", str(BOOTSTRAP_PORT + w.n)]
        for w in route.decode:
            argv += ["--decode", f"http://{w.head.addr}:{w.port + (100 if w.role == 'intra_gpu' else 0)}"]
        for flag, group in (("--prefill-policy", route.prefill), ("--decode-policy", route.decode)):
            if len(set(load_weights(group))) > 1:
                argv += [flag, "power_of_two"]
        out += [f"# PD router to decode pool {route.dest_pool}: {route.rate_rps:.4g} req/s of the plan",
                shell_line({}, argv + ["--host", "0.0.0.0", "--port", str(8000 + k)])]
    return out


def sglang_lines(plan: Plan, workers: list[Worker], target: Target) -> list[str]:
    options = plan["inputs"]["options"]
    base = ["python", "-m", "sglang.launch_server", "--model-path", plan["inputs"]["model"]["name"],
            "--host", "0.0.0.0"]
    if options["dtype"] in QUANTIZATION:
        base += ["--quantization", QUANTIZATION[options["dtype"]]]
    if (options.get("kv_dtype") or options["dtype"]) == "fp8":
        base += ["--kv-cache-dtype", "fp8_e4m3"]
    out = []
    for ordinal, w in enumerate(workers):
        out += worker_lines(plan, w, ordinal, target, base)
    return out + router_lines(workers)
