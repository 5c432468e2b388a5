"""Measured per-op latency tables of NVIDIA aiconfigurator-core (Apache-2.0), read for the serving fit.

    .venv/bin/pip install 'aiconfigurator-core==0.12.0'     # or: pip install -e '.[aiconfigurator]'

The package ships parquet tables measured on real GPUs per engine and version. This module reads, for
one device and one engine, the tables the serving model needs and returns plain points in SI units:
  gemm       (m, n, k, dtype bf16|fp8 per-tensor|fp4 NVFP4) -> seconds; the fastest kernel the engine ships per
             shape (fp4: NVFP4, FP4 E2M1 weights and activations with FP8 scales per 16 elements; B200 only)
  prefill    context attention (batch, isl, heads, kv_heads, head_dim; BF16, no sliding window)
  decode     generation attention (batch, context, heads, kv_heads, head_dim, kv dtype; no sliding window)
  allreduce  the engine's custom all-reduce under CUDA graphs (GPUs, bytes)
  moe        fused MoE layer of gated experts (tokens, hidden, inter, topk, experts, moe_tp, ep, dtype; balanced
             routing; fp8: per-tensor scales, block scales where the engine has only those); the fastest kernel
             the engine ships per point
  moe_block  the same for FP8 experts with 128x128 block scales (DeepSeek-V3-style checkpoints; dtype "fp8"),
             where the table has them: TensorRT-LLM's CUTLASS MoE, vLLM's Triton (expert-parallel size 1) and
             FlashInfer CUTLASS (EP > 1) kernels, SGLang's Triton kernel (the rows `moe` already holds)
Repeated measurements of one point are reduced to their median. Nothing here is fitted.
"""

import os
from dataclasses import dataclass

from costmodels.errors import SpecError

VERSION = "0.12.0"
DEVICES = {"h100-sxm": "h100_sxm", "h200": "h200_sxm", "b200": "b200_sxm"}
"""parplan hardware profile -> aiconfigurator system directory"""
ENGINE_VERSIONS = {"trtllm": "1.3.0rc20", "vllm": "0.24.0", "sglang": "0.5.14"}
"""engine -> the table version used (the newest with GEMM, attention, all-reduce and MoE tables on all three GPUs)"""
DTYPES = {"bfloat16": "bf16", "fp8": "fp8"}
GEMM_DTYPES = {**DTYPES, "nvfp4": "fp4"}
"""GEMM weight dtypes read (nvfp4 rows exist on Blackwell only)"""
MS = 1e-3


@dataclass(frozen=True, slots=True)
class Tables:
    """Points of one (device, engine): tuples of floats, latency in seconds last."""

    device: str
    engine: str
    version: str
    gemm: tuple
    """(m, n, k, dtype, t)"""
    prefill: tuple
    """(batch, isl, heads, kv_heads, head_dim, t)"""
    decode: tuple
    """(batch, context, heads, kv_heads, head_dim, kv_dtype, t)"""
    allreduce: tuple
    """(gpus, bytes, t)"""
    moe: tuple
    """(tokens, hidden, inter, topk, experts, moe_tp, ep, dtype, t)"""
    moe_block: tuple = ()
    """(tokens, hidden, inter, topk, experts, moe_tp, ep, "fp8", t) of FP8 experts with 128x128 block scales"""


def data_dir() -> str:
    try:
        import aiconfigurator_core
    except ImportError:
        raise SpecError(f"needs aiconfigurator-core: .venv/bin/pip install 'aiconfigurator-core=={VERSION}' "
                        "(optional extra `aiconfigurator`)", field="aiconfigurator") from None
    return os.path.join(os.path.dirname(aiconfigurator_core.__file__), "systems", "data")


def _read(path: str):
    import pandas as pd

    if not os.path.exists(path):
        raise SpecError("table not found (another aiconfigurator-core version?)", source=path)
    return pd.read_parquet(path)


def _points(df, keys: list[str]) -> tuple:
    """Median latency (s) per distinct key, sorted by key."""
    grouped = df.groupby(keys, sort=True)["latency"].median()
    return tuple((*key, float(t) * MS) for key, t in grouped.items())


def _fastest(df, keys: list[str]) -> tuple:
    """Per key, the median over repeats of each kernel source, then the fastest source."""
    per_source = df.groupby([*keys, "kernel_source"], sort=True)["latency"].median().reset_index()
    best = per_source.groupby(keys, sort=True)["latency"].min()
    return tuple((*key, float(t) * MS) for key, t in best.items())


DEFAULT_ATTENTION_BACKEND = {("b200", "sglang"): "trtllm_mha"}
"""the attention backend an engine runs by default on a device whose table also times others for some keys (their
medians would mix kernels): SGLang 0.5.14 on B200 picks trtllm_mha for MHA/GQA models (server_args
get_default_attn_backend: "Use trtllm_mha for SM100/SM103"); its table adds flashinfer rows for 1292 prefill and
264 decode keys"""


def _default_backend(df, device: str, engine: str):
    """The rows of the engine's default attention backend on the device (DEFAULT_ATTENTION_BACKEND), else all."""
    source = DEFAULT_ATTENTION_BACKEND.get((device, engine))
    return df[df.kernel_source == source] if source else df


def load(device: str, engine: str) -> Tables:
    """The tables of one parplan device profile and engine."""
    if device not in DEVICES or engine not in ENGINE_VERSIONS:
        raise SpecError(f"no tables for {device}/{engine}; devices: {', '.join(DEVICES)}; "
                        f"engines: {', '.join(ENGINE_VERSIONS)}", field="device")
    version = ENGINE_VERSIONS[engine]
    root = os.path.join(data_dir(), DEVICES[device])

    def table(op: str, name: str):
        return _read(os.path.join(root, op, engine, version, f"{name}.parquet"))

    g = table("gemm", "gemm_perf")
    g = g[g.gemm_dtype.isin(list(GEMM_DTYPES))].assign(dtype=lambda d: d.gemm_dtype.map(GEMM_DTYPES))
    gemm = _fastest(g, ["m", "n", "k", "dtype"])
    c = _default_backend(table("attention", "context_attention_perf"), device, engine)
    c = c[(c.attn_dtype == "bfloat16") & (c.kv_cache_dtype == "bfloat16") & (c.window_size == 0)]
    prefill = _points(c, ["batch_size", "isl", "num_heads", "num_key_value_heads", "head_dim"])
    d = _default_backend(table("attention", "generation_attention_perf"), device, engine)
    d = d[(d.window_size == 0) & d.kv_cache_dtype.isin(list(DTYPES))].assign(
        kv=lambda x: x.kv_cache_dtype.map(DTYPES))
    decode = _points(d, ["batch_size", "step", "num_heads", "num_key_value_heads", "head_dim", "kv"])
    a = table("comm", "custom_allreduce_perf")
    if "backend" in a.columns:
        a = a[a.backend.str.endswith("graph")]
    a = a[a.allreduce_dtype == "bfloat16"]
    allreduce = _points(a, ["num_gpus", "message_size"])
    m = table("moe", "moe_perf")
    # gated experts only (the *_nongated kernels run an MLP without gate: other FLOPs for the same key); FP8 experts
    # with per-tensor scales, or, for an engine measured only with 128x128 block scales (SGLang), those
    fp8 = "fp8" if (m.moe_dtype == "fp8").any() else "fp8_block"
    m = m[(m.distribution == "balanced") & ~m.kernel_source.str.contains("nongated")]
    keys = ["num_tokens", "hidden_size", "inter_size", "topk", "num_experts", "moe_tp_size", "moe_ep_size", "dtype"]
    moe = _fastest(m[m.moe_dtype.isin(["bfloat16", fp8])].assign(
        dtype=lambda x: x.moe_dtype.map({"bfloat16": "bf16", fp8: "fp8"})), keys)
    moe_block = _fastest(m[m.moe_dtype == "fp8_block"].assign(dtype="fp8"), keys)
    return Tables(device=device, engine=engine, version=version, gemm=gemm, prefill=prefill, decode=decode,
                  allreduce=allreduce, moe=moe, moe_block=moe_block)
