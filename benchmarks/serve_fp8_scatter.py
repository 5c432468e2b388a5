"""Is the tail of vLLM's B200 per-tensor FP8 GEMM table a kernel choice by shape or a measurement artefact?

    .venv/bin/python benchmarks/serve_fp8_scatter.py       # needs aiconfigurator-core 0.12.0; writes
                                                           # benchmarks/results/serve_fp8_scatter.md

Reads the fp8 rows of aiconfigurator-core's vLLM 0.24.0 GEMM tables of H100, H200, B200 and GB200 (GB200: the same
SM100 kernels, the same collector, another collection run; parplan has no GB200 profile, its table is read here
only) and tests them without any model where it can:
  next n      a GEMM's time does not fall as n grows at fixed (m, k) (same tile along m, more tiles along n):
              points > 15 % slower than the next larger n of the grid are anomalies
  flat region m 2-16: vLLM's SM100 dispatch (scaled_mm_sm100_fp8_dispatch.cuh, cutlass_gemm_sm100_fp8_dispatch)
              runs its M16 swap-AB config (MMA 128 (n) x 32 (m) x 128, cluster 4 x 1) for every m <= 16, one CTA row
              along m, and the per-token quantise program is one Inductor kernel for every m > 1 (m is a size
              symbol under torch.compile(dynamic=True)): at fixed (n, k) the time should not depend on m;
              r = t / median over m 2-16 of its (n, k) group, r > 1.15 an outlier. A kernel chosen by (n, k) makes
              whole groups slow; per-run noise scatters single points (binomial counts per group of 15)
  tiles       the anomaly rate by the tile structure vllm_fp8_tiles gives the shape (m bucket, one wave or more of
              CTAs on 148 SMs, odd or even CTA count along n, n padded by cluster rounding; chi-square)
  excess      t(n) - t(next larger n) of the anomalies per 1024 of k, by m range: an additive cost with no n or
              m in it is neither a tile nor a wave
  chunks      the flat-region outliers' excess over their group median, median per k (768-16384), against
              2·L·(⌈k/c⌉ − ⌈k/2048⌉): the per-token quantise program (serving_gemm.token_quant_s: one program per row,
              two passes over it in chunks of R0_BLOCK elements, 2048 in the fitted model) run with c-element chunks;
              L (one chunk's time) fitted per c by least squares, and a cost linear in k for comparison. Inductor
              sizes the chunk from the compile-time hint of k (torch/_inductor/runtime/triton_heuristics.py
              _reduction_configs: R0_BLOCK = k hint if 256 <= hint < 2048, else 2048, then no more than the hint),
              and torch.compile(dynamic=True) keeps the compiled QuantFP8.forward_native for later m and k, so the
              chunk a point ran with depends on the history of the collector process that took it (collector/
              collect.py: worker processes, one per GPU, taking tasks from a shared queue), not on its shape
  other run   the held-aside 'gemm fp8' points of B200 against GB200's time of the same (m, n, k), by the fitted
              model's error on them (profile constants; the model predicted against both tables)
  m = 1       median over (n, k) of t(1) - t(2) and t(3) - t(2) per device and dtype (serving_gemm_sm100,
              "Not modelled")
Nothing here enters the profiles.
"""

import argparse
import math
import os
import pathlib
import statistics
import sys

sys.path[:0] = [str(pathlib.Path(__file__).resolve().parents[1]), str(pathlib.Path(__file__).resolve().parent)]

import serve_gemm_scatter  # noqa: E402
from machine import machine_note  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent / "results" / "serve_fp8_scatter.md"
SYSTEMS = {"h100-sxm": "h100_sxm", "h200": "h200_sxm", "b200": "b200_sxm", "gb200": "gb200"}
"""device -> aiconfigurator system directory (gb200: read here only, no parplan profile)"""
SLOW = 0.15
"""share by which a point is slower than its reference (next larger n, or its flat group's median)"""
FLAT_M = range(2, 17)
SMS = 148
"""B200's SMs (the wave count of the tile rows)"""
M_RANGES = ((2, 16), (17, 256), (257, 4353), (8192, 32768))

Table = dict[tuple[int, int, int], float]


def table(device: str, dtype: str = "fp8") -> Table:
    """(m, n, k) -> seconds of vLLM 0.24.0's `dtype` GEMM rows on `device` (median of repeats)."""
    import aiconfigurator_tables as aic
    import pandas as pd

    version = aic.ENGINE_VERSIONS["vllm"]
    g = pd.read_parquet(os.path.join(aic.data_dir(), SYSTEMS[device], "gemm", "vllm", version, "gemm_perf.parquet"))
    g = g[g.gemm_dtype == dtype].groupby(["m", "n", "k"], sort=True)["latency"].median()
    return {(int(m), int(n), int(k)): float(t) * aic.MS for (m, n, k), t in g.items()}


def next_n(t: Table) -> dict[tuple[int, int, int], float]:
    """t(m, n, k) / t(m, n', k), n' the next larger n of the grid at the same (m, k), for every point that has one."""
    by_mk: dict[tuple[int, int], list[tuple[int, float]]] = {}
    for (m, n, k), s in t.items():
        by_mk.setdefault((m, k), []).append((n, s))
    out = {}
    for (m, k), pts in by_mk.items():
        pts.sort()
        for (n, s), (_, s_next) in zip(pts, pts[1:], strict=False):
            out[(m, n, k)] = s / s_next
    return out


def flat_ratios(t: Table) -> dict[tuple[int, int, int], float]:
    """r = t / median over m 2-16 of the point's (n, k) group, for the complete groups (serve_gemm_scatter's)."""
    return serve_gemm_scatter.flat_ratios(t, FLAT_M)


def group_counts(r: dict) -> list[int]:
    """Outliers (r > 1 + SLOW) per (n, k) group, sorted by group."""
    counts: dict[tuple[int, int], int] = {}
    for (_, n, k), x in r.items():
        counts[(n, k)] = counts.get((n, k), 0) + (x > 1 + SLOW)
    return [counts[nk] for nk in sorted(counts)]


def follow_rate(r: dict) -> float:
    """P(outlier at m + 1 | outlier at m) within the flat region."""
    pairs = [(m, n, k) for (m, n, k), x in r.items() if x > 1 + SLOW and (m + 1, n, k) in r]
    return sum(r[(m + 1, n, k)] > 1 + SLOW for m, n, k in pairs) / max(len(pairs), 1)


def flat_rows(tables: dict[str, Table]) -> list[str]:
    from scipy.stats import binom

    rows = ["| device | flat points | outliers | rate | P(outlier at m+1 given m) | most outliers in one group of 15 "
            "| groups with 0 / 1 / 2 / 3 / >= 4 (binomial) |", "|---|---|---|---|---|---|---|"]
    for device, t in tables.items():
        r = flat_ratios(t)
        counts = group_counts(r)
        p = sum(counts) / len(r)
        size = len(FLAT_M)
        seen = [counts.count(c) for c in range(4)] + [sum(c >= 4 for c in counts)]
        expect = [binom.pmf(c, size, p) * len(counts) for c in range(4)] + [binom.sf(3, size, p) * len(counts)]
        pairs = " / ".join(f"{s} ({e:.0f})" for s, e in zip(seen, expect, strict=True))
        rows.append(f"| {device} | {len(r)} | {sum(counts)} | {100 * p:.1f}% | {100 * follow_rate(r):.1f}% | "
                    f"{max(counts)} | {pairs} |")
    return rows


def anomaly_rows(tables: dict[str, Table]) -> list[str]:
    rows = ["| device | points with a larger n | > 15 % slower than the next larger n | share |", "|---|---|---|---|"]
    for device, t in tables.items():
        q = next_n(t)
        bad = sum(x > 1 + SLOW for x in q.values())
        rows.append(f"| {device} | {len(q)} | {bad} | {100 * bad / len(q):.1f}% |")
    return rows


def tile_features(m: int, n: int, k: int) -> dict[str, str]:
    """The tile structure of vLLM's SM100 FP8 GEMM of the shape (serving_gemm_sm100.vllm_fp8_tiles)."""
    from costmodels import serving_gemm_sm100 as sm100

    _, n_pad, ctas = sm100.vllm_fp8_tiles(m, n, k)
    bucket = next(b for b in sm100.VLLM_FP8_TILES if m <= b[0])
    small_m, small_k, _, small_cols = sm100.VLLM_FP8_M64_SMALL_K
    cols = small_cols if m == small_m and k < small_k else bucket[2]
    return {"m bucket (largest m)": str(bucket[0]), "CTA waves on 148 SMs": "1" if ctas <= SMS else "> 1",
            "CTAs along n": "odd" if (n_pad // cols) % 2 else "even",
            "n padded by cluster rounding": "yes" if n_pad > math.ceil(n / cols) * cols else "no"}


def tile_rows(t: Table) -> list[str]:
    from scipy.stats import chi2_contingency

    q = next_n(t)
    cells: dict[str, dict[str, list[int]]] = {}
    for key, x in sorted(q.items()):
        for name, value in tile_features(*key).items():
            cells.setdefault(name, {}).setdefault(value, [0, 0])[x > 1 + SLOW] += 1
    rows = ["| tile feature | value: anomaly rate (points) | chi2 | p |", "|---|---|---|---|"]
    for name, by_value in cells.items():
        stat, p, _, _ = chi2_contingency([by_value[v] for v in sorted(by_value)])
        rates = ", ".join(f"{v}: {100 * b / (a + b):.1f}% ({a + b})" for v, (a, b) in sorted(by_value.items()))
        rows.append(f"| {name} | {rates} | {stat:.1f} | {p:.3f} |")
    return rows


def excess_rows(t: Table) -> list[str]:
    q = next_n(t)
    ks = sorted({k for _, _, k in q})
    head = " | ".join(f"m {lo}-{hi}" for lo, hi in M_RANGES)
    rows = [f"| k | {head} |", "|---" * (len(M_RANGES) + 1) + "|"]
    ns = sorted({n for _, n, _ in t})
    for k in ks:
        cells = []
        for lo, hi in M_RANGES:
            ex = [(t[(m, n, kk)] - t[(m, ns[ns.index(n) + 1], kk)]) * 1e6 * 1024 / k
                  for (m, n, kk), x in q.items() if kk == k and lo <= m <= hi and x > 1 + SLOW]
            cells.append(f"{statistics.median(ex):.2f} ({len(ex)})" if ex else "-")
        rows.append(f"| {k} | " + " | ".join(cells) + " |")
    return rows


CHUNKS = (128, 256, 512)
"""chunk sizes c (R0_BLOCK) compared with the fitted model's 2048 (serving_gemm.INDUCTOR_R0_BLOCK)"""


def chunk_excess(t: Table) -> dict[int, float]:
    """k -> median over the flat-region outliers of that k of t - group median (seconds), k 768-16384."""
    r = flat_ratios(t)
    by_k: dict[int, list[float]] = {}
    for (m, n, k), x in r.items():
        if x > 1 + SLOW and 768 <= k <= 16384:
            by_k.setdefault(k, []).append(t[(m, n, k)] * (1 - 1 / x))
    return {k: statistics.median(v) for k, v in sorted(by_k.items())}


def chunk_fit(excess: dict[int, float], steps) -> tuple[float, float, float]:
    """(L, max, rms relative deviation) of excess(k) ≈ L · steps(k), L by least squares."""
    x = [steps(k) for k in excess]
    y = list(excess.values())
    scale = sum(a * b for a, b in zip(x, y, strict=True)) / sum(a * a for a in x)
    dev = [scale * a / b - 1 for a, b in zip(x, y, strict=True)]
    return scale, max(abs(d) for d in dev), math.sqrt(sum(d * d for d in dev) / len(dev))


def chunk_rows(t: Table) -> list[str]:
    from costmodels.serving_gemm import INDUCTOR_R0_BLOCK as full

    excess = chunk_excess(t)
    scale, worst, rms = chunk_fit(excess, float)
    rows = ["| excess model | L (us) | max relative deviation | rms |", "|---|---|---|---|",
            f"| L·k (L per element) | {scale * 1e6:.5f} | {worst:.1%} | {rms:.1%} |"]
    for c in CHUNKS:
        scale, worst, rms = chunk_fit(excess, lambda k, c=c: 2 * (math.ceil(k / c) - math.ceil(k / full)))
        rows.append(f"| 2·L·(⌈k/{c}⌉ − ⌈k/{full}⌉) | {scale * 1e6:.3f} | {worst:.1%} | {rms:.1%} |")
    rows += ["", "| k | " + " | ".join(str(k) for k in excess) + " |", "|---" * (len(excess) + 1) + "|",
             "| median excess (us) | " + " | ".join(f"{v * 1e6:.2f}" for v in excess.values()) + " |"]
    return rows


def model_rows(b200: Table, gb200: Table) -> list[str]:
    """The fitted model (B200 profile constants) on B200's held-aside 'gemm fp8' points, against B200's and
    GB200's time of each, by the size of its error against B200's."""
    import aiconfigurator_tables as aic
    import serve_engine_fit as fit
    import serve_engine_ops as ops

    from costmodels.serving_constants import KernelConstants
    from costmodels.serving_kernels import EngineKernels

    dev = fit.fitted_device("b200")
    ek = EngineKernels(dev, KernelConstants.of_engine(next(c for c in dev.serving_engines if c.engine == "vllm")))
    domain, predict, _ = ops.OPS["gemm fp8"]
    test = [p for p in domain(aic.load("b200", "vllm")) if fit.held_aside(p[:-1])]
    pts = []
    for p in test:
        key = (int(p[0]), int(p[1]), int(p[2]))
        model = predict(ek, p, "vllm", "b200")
        pts.append((model / b200[key] - 1, model / gb200[key] - 1, b200[key] / gb200[key]))
    rows = ["| held-aside points (error against B200) | points | median abs error vs B200 | vs GB200 | "
            "median B200/GB200 time | share with B200/GB200 off by > 15 % |", "|---|---|---|---|---|---|"]
    classes = (("all", lambda e: True), ("under-predicted by > 20 %", lambda e: e < -0.2),
               ("over-predicted by > 20 %", lambda e: e > 0.2), ("within 20 %", lambda e: abs(e) <= 0.2))
    for name, keep in classes:
        sel = [x for x in pts if keep(x[0])]
        rows.append(f"| {name} | {len(sel)} | {100 * statistics.median(abs(x[0]) for x in sel):.1f}% | "
                    f"{100 * statistics.median(abs(x[1]) for x in sel):.1f}% | "
                    f"{statistics.median(x[2] for x in sel):.3f} | "
                    f"{100 * sum(abs(x[2] - 1) > SLOW for x in sel) / len(sel):.0f}% |")
    quantile = [sorted(abs(x[i]) for x in pts)[int(0.9 * len(pts))] for i in (0, 1)]
    rows += ["", f"p90 of the same model's error on the same {len(pts)} (m, n, k): {100 * quantile[0]:.1f}% against "
             f"B200's times, {100 * quantile[1]:.1f}% against GB200's."]
    return rows


def step_rows() -> list[str]:
    rows = ["| device | dtype | median t(1) - t(2), us | p10 | p90 | median t(3) - t(2), us |",
            "|---|---|---|---|---|---|"]
    for device in SYSTEMS:
        for dtype in ("fp8", "bfloat16"):
            t = table(device, dtype)
            nk = sorted({(n, k) for m, n, k in t if m == 1 and (2, n, k) in t and (3, n, k) in t})
            one = sorted((t[(1, n, k)] - t[(2, n, k)]) * 1e6 for n, k in nk)
            three = [(t[(3, n, k)] - t[(2, n, k)]) * 1e6 for n, k in nk]
            rows.append(f"| {device} | {dtype} | {statistics.median(one):.1f} | {one[len(one) // 10]:.1f} | "
                        f"{one[9 * len(one) // 10]:.1f} | {statistics.median(three):.1f} |")
    return rows


def report(tables: dict[str, Table]) -> str:
    b200 = tables["b200"]
    lines = ["# vLLM's B200 per-tensor FP8 GEMM table: kernel choice or measurement artefact?", "",
             "Command: `.venv/bin/python benchmarks/serve_fp8_scatter.py` (aiconfigurator-core 0.12.0). "
             + machine_note(), "", "```", (__doc__ or "").split("\n\n")[2].strip("\n"), "```", "",
             "## Points slower than the next larger n", "", *anomaly_rows(tables), "",
             "## Flat region (m 2-16, one tile config and one CTA row along m; r = t / group median)", "",
             *flat_rows(tables), "",
             "## B200: anomaly rate (next larger n) by the tile structure of the shape", "", *tile_rows(b200), "",
             "## B200: t(n) - t(next larger n) of the anomalies, us per 1024 of k (median, points)", "",
             *excess_rows(b200), "",
             "## B200: the flat-region outliers' excess by k, against chunked per-row quantise programs", "",
             *chunk_rows(b200), "",
             "## The same held-aside points on another run of the same kernels (GB200)", "",
             *model_rows(b200, tables["gb200"]), "",
             "## The m = 1 step", "", *step_rows()]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--out", default=str(OUT), help="report file (default: benchmarks/results/serve_fp8_scatter.md)")
    args = ap.parse_args()
    text = report({device: table(device) for device in SYSTEMS})
    pathlib.Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
