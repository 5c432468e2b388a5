"""A100 kernel curves from measured kernel tables (NVIDIA aiconfigurator-core, Apache-2.0), for the two A100
constants the training rows cannot pin down.

    .venv/bin/pip install 'aiconfigurator-core==0.12.0'     # or: pip install -e '.[aiconfigurator]'
    .venv/bin/python benchmarks/a100_kernel_fit.py

* Flash attention. Every A100 row with fused attention in ../shared/calibration/ runs PyTorch SDPA's flash
  backend (FlashAttention-2), and those rows cannot tell attention time from eager element-wise time (both grow
  with the tokens): the fit left attention_efficiency at the top of its range. The curve comes instead from
  aiconfigurator-core's A100-SXM4 context-attention table of vLLM 0.14.0 (kernel vllm_flash_attn, a
  FlashAttention-2 build), causal, BF16, head width 128, s >= MIN_SEQ, b·a >= MIN_HEAD_ROWS: efficiency =
  causal-halved FLOPs 2·b·s²·a·2d/2 over latency x 312 TFLOP/s, fitted with compute.attention_efficiency's
  curve eff_max · w / (w + half), w = s·d/128. The table times the forward pass only; the cost model runs the
  backward's 2.5x FLOPs on the same curve.
* GEMM size knee. Every A100 GEMM of the rows has >= 1e10 FLOPs, so gemm_half_flops went to the bottom of its
  range unseen. The knee comes from the same package's A100 BF16 GEMM table (m >= 1024, n, k >= 256), fitted with
  compute.gemm_efficiency's curve eff_max · F / (F_padded + half); only `half` is kept: the level
  (gemm_efficiency_max) stays fitted on the training rows, whose eager/cuBLAS GEMMs run below vLLM's.

Each fit minimises the squared log error (a log grid over half, eff_max in closed form). benchmarks/calibrate.py
holds the results (A100_KERNELS) fixed; tests/costmodels/test_op_sac_terms.py checks that this script reproduces
them.
"""

import math
import os

import numpy as np
from aiconfigurator_tables import data_dir

import profiles
from costmodels.compute import GEMM_TILE
from costmodels.errors import SpecError

ROOT = ("a100_sxm",)
ATTENTION = ("attention", "vllm", "0.14.0", "context_attention_perf.parquet")
GEMM = ("gemm", "vllm", "0.14.0", "gemm_perf.parquet")
PEAK_BF16 = profiles.load_device("a100-80gb").bf16_flops_per_s
HEAD_DIM = 128
MIN_SEQ = 2048
MIN_HEAD_ROWS = 32
"""batch x heads: fewer leave most of the 108 SMs idle (no training row runs under 32)"""
MIN_M, MIN_NK = 1024, 256


def table(parts: tuple[str, ...]):
    try:
        root = data_dir()
    except SpecError as exc:
        raise SystemExit(str(exc)) from None
    import pandas as pd

    return pd.read_parquet(os.path.join(root, *ROOT, *parts))


def attention_points() -> list[tuple[float, float, float]]:
    """(w = s·d/128, forward efficiency, 1) per measured configuration (median of repeats)."""
    df = table(ATTENTION)
    df = df[(df.attn_dtype == "bfloat16") & (df.kv_cache_dtype == "bfloat16") & (df.head_dim == HEAD_DIM)
            & (df.isl >= MIN_SEQ) & (df.batch_size * df.num_heads >= MIN_HEAD_ROWS)]
    points = []
    for (b, s, heads, _), ms in df.groupby(["batch_size", "isl", "num_heads", "num_key_value_heads"],
                                           sort=True)["latency"].median().items():
        flops = 2.0 * b * s * s * heads * 2 * HEAD_DIM / 2
        points.append((s * HEAD_DIM / 128.0, flops / (ms * 1e-3 * PEAK_BF16), 1.0))
    return points


def gemm_points() -> list[tuple[float, float, float]]:
    """(padded FLOPs, efficiency, unpadded / padded FLOPs) per measured BF16 GEMM shape (median of repeats)."""
    df = table(GEMM)
    df = df[(df.gemm_dtype == "bfloat16") & (df.m >= MIN_M) & (df.n >= MIN_NK) & (df.k >= MIN_NK)]
    points = []
    for (m, n, k), ms in df.groupby(["m", "n", "k"], sort=True)["latency"].median().items():
        flops = 2.0 * m * n * k
        padded = 2.0 * math.ceil(m / GEMM_TILE) * GEMM_TILE * n * k
        points.append((padded, flops / (ms * 1e-3 * PEAK_BF16), flops / padded))
    return points


def fit_curve(points: list[tuple[float, float, float]], low: float, high: float) -> tuple[float, float]:
    """(eff_max, half) of eff = eff_max · scale · x / (x + half) minimising the squared log error."""
    x = np.array([p[0] for p in points])
    target = np.log(np.array([p[1] for p in points]) / np.array([p[2] for p in points]))
    best = (math.inf, 0.0, 0.0)
    for half in np.exp(np.linspace(math.log(low), math.log(high), 2001)):
        shape = np.log(x / (x + half))
        log_max = float(np.mean(target - shape))
        loss = float(np.sum((target - shape - log_max) ** 2))
        if loss < best[0]:
            best = (loss, math.exp(log_max), float(half))
    return best[1], best[2]


def fits() -> dict[str, float]:
    """The constants benchmarks/calibrate.py fixes for the A100 family."""
    eff_max, half = fit_curve(attention_points(), 16.0, 1e5)
    _, gemm_half = fit_curve(gemm_points(), 1e7, 5e11)
    return {"attention_efficiency": eff_max, "attention_half_work": half, "gemm_half_flops": gemm_half}


def main() -> None:
    for name, value in fits().items():
        print(f"{name} = {value:.4g}")
    print(f"({len(attention_points())} attention points: s >= {MIN_SEQ}, b·a >= {MIN_HEAD_ROWS}, d = {HEAD_DIM}; "
          f"{len(gemm_points())} GEMM shapes: m >= {MIN_M}, n, k >= {MIN_NK})")


if __name__ == "__main__":
    main()
