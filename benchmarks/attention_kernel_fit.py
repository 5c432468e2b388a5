"""The A100 flash-attention curve from a measured kernel table (NVIDIA aiconfigurator-core, Apache-2.0).

    .venv/bin/pip install 'aiconfigurator-core==0.12.0'     # or: pip install -e '.[aiconfigurator]'
    .venv/bin/python benchmarks/attention_kernel_fit.py

Every A100 row with fused attention in ../shared/calibration/ runs PyTorch SDPA's flash backend
(FlashAttention-2), and those rows cannot tell attention time from eager element-wise time (both grow with the
tokens), so the fit left attention_efficiency at the top of its range. The curve comes instead from measured
kernels: aiconfigurator-core's A100-SXM4 context-attention table of vLLM 0.14.0 (kernel vllm_flash_attn, a
FlashAttention-2 build), causal, BF16, head width 128. Each point's efficiency is its causal-halved FLOPs
2·b·s²·a·2d/2 over latency x 312 TFLOP/s; points of s >= MIN_SEQ (training lengths) and b·a >= MIN_HEAD_ROWS
are fitted, in log space,
with compute.attention_efficiency's curve eff_max · w / (w + half), w = s·d/128. The table times the forward
pass only; the cost model runs the backward's 2.5x FLOPs on the same curve (FlashAttention-2's backward is
no faster per FLOP, so the attention cost is if anything a lower bound). benchmarks/calibrate.py holds the
result (A100_ATTENTION) fixed; tests/costmodels/test_attention_kernel_fit.py checks that this script
reproduces it.
"""

import math
import os

import numpy as np

VERSION = "0.12.0"
TABLE = ("a100_sxm", "attention", "vllm", "0.14.0", "context_attention_perf.parquet")
PEAK_BF16 = 312e12
HEAD_DIM = 128
MIN_SEQ = 2048
MIN_HEAD_ROWS = 32
"""batch x heads: fewer leave most of the 108 SMs idle (no training row runs under 32)"""


def table_path() -> str:
    try:
        import aiconfigurator_core
    except ImportError:
        raise SystemExit(f"needs aiconfigurator-core: .venv/bin/pip install 'aiconfigurator-core=={VERSION}'") \
            from None
    return os.path.join(os.path.dirname(aiconfigurator_core.__file__), "systems", "data", *TABLE)


def measured_points() -> list[tuple[float, float]]:
    """(keys per query row w = s·d/128, forward efficiency) per measured configuration (median of repeats)."""
    import pandas as pd

    df = pd.read_parquet(table_path())
    df = df[(df.attn_dtype == "bfloat16") & (df.kv_cache_dtype == "bfloat16") & (df.head_dim == HEAD_DIM)
            & (df.isl >= MIN_SEQ) & (df.batch_size * df.num_heads >= MIN_HEAD_ROWS)]
    keys = ["batch_size", "isl", "num_heads", "num_key_value_heads"]
    points = []
    for (b, s, heads, _), ms in df.groupby(keys, sort=True)["latency"].median().items():
        flops = 2.0 * b * s * s * heads * 2 * HEAD_DIM / 2
        points.append((s * HEAD_DIM / 128.0, flops / (ms * 1e-3 * PEAK_BF16)))
    return points


def fit_curve(points: list[tuple[float, float]]) -> tuple[float, float]:
    """(eff_max, half) minimising the squared log error; a log grid over half with eff_max in closed form."""
    w = np.array([p[0] for p in points])
    eff = np.array([p[1] for p in points])
    best = (math.inf, 0.0, 0.0)
    for half in np.exp(np.linspace(math.log(16.0), math.log(1e5), 2001)):
        shape = np.log(w / (w + half))
        log_max = float(np.mean(np.log(eff) - shape))
        loss = float(np.sum((np.log(eff) - shape - log_max) ** 2))
        if loss < best[0]:
            best = (loss, math.exp(log_max), float(half))
    return best[1], best[2]


def main() -> None:
    points = measured_points()
    eff_max, half = fit_curve(points)
    errors = [eff_max * w / (w + half) / e - 1 for w, e in points]
    print(f"{len(points)} points of {'/'.join(TABLE)}, s >= {MIN_SEQ}, b·a >= {MIN_HEAD_ROWS}, d = {HEAD_DIM}")
    print(f"attention_efficiency = {eff_max:.3f}, attention_half_work = {half:.0f}; "
          f"median |err| {100 * float(np.median(np.abs(errors))):.1f}%, max {100 * max(map(abs, errors)):.1f}%")


if __name__ == "__main__":
    main()
