"""Launch commands for the prefill and decode workers of a serve plan (vLLM, SGLang).

vLLM: PD disaggregation through a KV connector, `--kv-transfer-config` JSON with "kv_connector":
"NixlConnector" and "kv_role" "kv_producer" (prefill) / "kv_consumer" (decode); each worker sets
VLLM_NIXL_SIDE_CHANNEL_PORT; requests enter through vLLM's disaggregation proxy example
(toy_proxy_server.py --prefiller-hosts/--prefiller-ports/--decoder-hosts/--decoder-ports).
SGLang: `python -m sglang.launch_server --disaggregation-mode prefill|decode
--disaggregation-transfer-backend nixl --disaggregation-bootstrap-port PORT` and the PD router
`python -m sglang_router.launch_router --pd-disaggregation --prefill URL BOOTSTRAP_PORT --decode URL`.
Colocated plans use chunked prefill (vLLM --max-num-batched-tokens, SGLang --chunked-prefill-size); intra_gpu
plans run a prefill and a decode worker on the same GPUs under CUDA MPS with
CUDA_MPS_ACTIVE_THREAD_PERCENTAGE set to each phase's compute share (as semi-PD does).
"""

import json
import shlex

from costmodels.errors import SpecError
from planner.plan import Plan

EXPORT_FORMATS = ("vllm", "sglang")
BASE_PORT = {"prefill": 8100, "decode": 8200, "colocated": 8100, "intra_gpu": 8100}
NIXL_PORT = 5600
BOOTSTRAP_PORT = 8998


def _workers(plan: Plan):
    """(role, group, index, port) for every instance, in decision order."""
    counters = {}
    for g in plan["decision"]["groups"]:
        for _ in range(g["instances"]):
            n = counters.get(g["role"], 0)
            counters[g["role"]] = n + 1
            yield g["role"], g, n, BASE_PORT[g["role"]] + n


def _vllm_parallel(g: dict) -> list[str]:
    args = ["--tensor-parallel-size", str(g["tp"])]
    if g["pp"] > 1:
        args += ["--pipeline-parallel-size", str(g["pp"])]
    if g["dp"] > 1:
        args += ["--data-parallel-size", str(g["dp"])]
    if g["ep"] > 1:
        args += ["--enable-expert-parallel"]
    return args


def _sglang_parallel(g: dict) -> list[str]:
    args = ["--tp", str(g["tp"] * g["dp"])]
    if g["dp"] > 1:
        args += ["--dp-size", str(g["dp"]), "--enable-dp-attention"]
    if g["pp"] > 1:
        args += ["--pp-size", str(g["pp"])]
    if g["ep"] > 1:
        args += ["--ep-size", str(g["ep"])]
    return args


def _line(env: dict, argv: list[str]) -> str:
    return " ".join([f"{k}={shlex.quote(str(v))}" for k, v in env.items()] + [shlex.quote(a) for a in argv])


def _vllm(plan: Plan, model: str, dtype: str) -> list[str]:
    mode = plan["decision"]["mode"]
    out = []
    hosts = {"prefill": [], "decode": []}
    for role, g, n, port in _workers(plan):
        argv = ["vllm", "serve", model, "--port", str(port), "--dtype", "bfloat16"] + _vllm_parallel(g)
        if dtype == "fp8":
            argv += ["--quantization", "fp8", "--kv-cache-dtype", "fp8"]
        env = {}
        out.append(f"# {role} instance {n} on pool {g['pool']} ({g['gpus']} GPUs)")
        if role in ("prefill", "decode"):
            kv_role = "kv_producer" if role == "prefill" else "kv_consumer"
            env["VLLM_NIXL_SIDE_CHANNEL_PORT"] = NIXL_PORT + (0 if role == "prefill" else 100) + n
            argv += ["--kv-transfer-config", json.dumps({"kv_connector": "NixlConnector", "kv_role": kv_role},
                                                        separators=(",", ":"))]
            if role == "decode":
                argv += ["--max-num-seqs", str(g["max_batch"])]
            hosts[role].append(port)
        elif role == "colocated":
            argv += ["--enable-chunked-prefill", "--max-num-batched-tokens", str(g["chunk_tokens"] + g["max_batch"]),
                     "--max-num-seqs", str(g["max_batch"])]
        else:  # intra_gpu: two workers on the same GPUs under MPS
            share = max(1, min(99, round(100 * g["prefill_share"])))
            pre = argv + ["--gpu-memory-utilization", "0.3", "--kv-transfer-config",
                          json.dumps({"kv_connector": "NixlConnector", "kv_role": "kv_producer"}, separators=(",", ":"))]
            dec = ["vllm", "serve", model, "--port", str(port + 100), "--dtype", "bfloat16"] + _vllm_parallel(g) + [
                "--gpu-memory-utilization", "0.6", "--max-num-seqs", str(g["max_batch"]), "--kv-transfer-config",
                json.dumps({"kv_connector": "NixlConnector", "kv_role": "kv_consumer"}, separators=(",", ":"))]
            out.append(_line({"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": share, "VLLM_NIXL_SIDE_CHANNEL_PORT": NIXL_PORT + n},
                             pre))
            out.append(_line({"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": 100 - share,
                              "VLLM_NIXL_SIDE_CHANNEL_PORT": NIXL_PORT + 100 + n}, dec))
            hosts["prefill"].append(port)
            hosts["decode"].append(port + 100)
            continue
        out.append(_line(env, argv))
    if mode in ("disaggregated", "intra_gpu"):
        out.append("# proxy (vLLM examples: tests/v1/kv_connector/nixl_integration/toy_proxy_server.py)")
        out.append(_line({}, ["python", "toy_proxy_server.py", "--port", "8000",
                              "--prefiller-hosts", *(["localhost"] * len(hosts["prefill"])),
                              "--prefiller-ports", *map(str, hosts["prefill"]),
                              "--decoder-hosts", *(["localhost"] * len(hosts["decode"])),
                              "--decoder-ports", *map(str, hosts["decode"])]))
    return out


def _sglang(plan: Plan, model: str, dtype: str) -> list[str]:
    mode = plan["decision"]["mode"]
    out, prefill, decode = [], [], []
    for role, g, n, port in _workers(plan):
        argv = ["python", "-m", "sglang.launch_server", "--model-path", model, "--host", "0.0.0.0",
                "--port", str(port)] + _sglang_parallel(g)
        if dtype == "fp8":
            argv += ["--quantization", "fp8", "--kv-cache-dtype", "fp8_e5m2"]
        out.append(f"# {role} instance {n} on pool {g['pool']} ({g['gpus']} GPUs)")
        if role == "prefill":
            bootstrap = BOOTSTRAP_PORT + n
            argv += ["--disaggregation-mode", "prefill", "--disaggregation-transfer-backend", "nixl",
                     "--disaggregation-bootstrap-port", str(bootstrap)]
            prefill.append((port, bootstrap))
        elif role == "decode":
            argv += ["--disaggregation-mode", "decode", "--disaggregation-transfer-backend", "nixl",
                     "--max-running-requests", str(g["max_batch"])]
            decode.append(port)
        elif role == "colocated":
            argv += ["--chunked-prefill-size", str(g["chunk_tokens"]), "--max-running-requests", str(g["max_batch"])]
        else:
            share = max(1, min(99, round(100 * g["prefill_share"])))
            bootstrap = BOOTSTRAP_PORT + n
            pre = argv + ["--mem-fraction-static", "0.3", "--disaggregation-mode", "prefill",
                          "--disaggregation-transfer-backend", "nixl", "--disaggregation-bootstrap-port", str(bootstrap)]
            dec = ["python", "-m", "sglang.launch_server", "--model-path", model, "--host", "0.0.0.0",
                   "--port", str(port + 100)] + _sglang_parallel(g) + [
                "--mem-fraction-static", "0.55", "--disaggregation-mode", "decode",
                "--disaggregation-transfer-backend", "nixl", "--max-running-requests", str(g["max_batch"])]
            out.append(_line({"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": share}, pre))
            out.append(_line({"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": 100 - share}, dec))
            prefill.append((port, bootstrap))
            decode.append(port + 100)
            continue
        out.append(_line({}, argv))
    if mode in ("disaggregated", "intra_gpu"):
        argv = ["python", "-m", "sglang_router.launch_router", "--pd-disaggregation"]
        for port, bootstrap in prefill:
            argv += ["--prefill", f"http://localhost:{port}", str(bootstrap)]
        for port in decode:
            argv += ["--decode", f"http://localhost:{port}"]
        out.append("# PD router")
        out.append(_line({}, argv + ["--host", "0.0.0.0", "--port", "8000"]))
    return out


def export(plan: Plan, fmt: str) -> str:
    """Shell lines launching every worker of the plan (hosts are placeholders: localhost)."""
    if plan.kind != "serve":
        raise SpecError("only serve plans can be exported (an estimate has no deployment)", field="kind")
    if fmt not in EXPORT_FORMATS:
        raise SpecError(f"unknown format {fmt!r}; valid: {', '.join(EXPORT_FORMATS)}", field="format")
    model = plan["inputs"]["model"]["name"]
    dtype = plan["inputs"]["options"]["dtype"]
    header = [f"# parplan serve plan: mode {plan['decision']['mode']}, model {model} "
              "(replace the model name with its Hugging Face path; hosts are placeholders)"]
    body = _vllm(plan, model, dtype) if fmt == "vllm" else _sglang(plan, model, dtype)
    return "\n".join(header + body) + "\n"
