"""Is the scatter of SGLang's B200 NVFP4 GEMM table deterministic (a kernel choice by shape) or measurement noise?

    .venv/bin/python benchmarks/serve_gemm_scatter.py      # needs aiconfigurator-core 0.12.0; writes
                                                           # benchmarks/results/serve_gemm_scatter.md

Reads the nvfp4 rows of aiconfigurator-core's B200 GEMM tables (SGLang 0.5.14, vLLM 0.24.0, TensorRT-LLM 1.3.0rc20)
and tests the residual structure without any model where it can:
  flat region   m 1-16: every shape runs one tile along m (FlashInfer 0.6.12's untuned CuTe-DSL rule, the tiles
                of costmodels/serving_gemm_sm100.cutedsl_fp4_ctas: at most 128 rows, or A and B swapped), so the time
                at fixed (n, k) should not depend on m; a point's ratio r = t / median over m 1-16 of its (n, k) group;
                |r - 1| > 20 % is an outlier; a shape-determined kernel choice would make whole groups or buckets slow
  buckets       FlashInfer's untuned mm_fp4(backend="cute-dsl") path (flashinfer/gemm/kernels/utils.py,
                _select_sm100_mm_fp4_cute_dsl_tactic, since v0.6.9) picks one tactic per (n, k, largest power of two
                <= m): a tactic switch is shared by all m of a bucket (2-3, 4-7, 8-15); noise is not
  neighbours    P(outlier at m+1 | outlier at m) against P(outlier); outliers per (n, k) group against a binomial
  n and k       outlier rate by n and by k (chi-square test of independence)
  other engine  vLLM's collector times the same FlashInfer CuTe-DSL kernel on the same grid: its ratio at SGLang's
                outliers
  monotone      over the whole m grid a GEMM's time does not fall as m grows at fixed (n, k): points > 20 % slower
                than the fastest larger m are anomalies (any region)
  model         the fitted model's held-aside error (profile constants) with and without those anomalies
  tiles         'gemm fp4' refitted on the fixed 128 x 128 tiles and on the rule's tiles (benchmarks/
                fp4_cutedsl_tiles.py: held-aside errors)
Nothing here enters the profiles.
"""

import argparse
import math
import pathlib
import statistics
import sys

sys.path[:0] = [str(pathlib.Path(__file__).resolve().parents[1]), str(pathlib.Path(__file__).resolve().parent)]

from machine import machine_note  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent / "results" / "serve_gemm_scatter.md"
ENGINES = ("sglang", "vllm", "trtllm")
FLAT_M = range(1, 17)
BUCKETS = ((2, 3), (4, 5, 6, 7), (8, 9, 10, 11, 12, 13, 14, 15))
"""the m of one untuned CuTe-DSL tactic bucket (the largest power of two <= m: 2, 4, 8) within the flat region"""
OUTLIER = 0.20

Table = dict[tuple[int, int, int], float]


def fp4_table(engine: str) -> Table:
    """(m, n, k) -> seconds of the engine's B200 nvfp4 GEMM rows (median of repeats)."""
    import aiconfigurator_tables as aic

    t = aic.load("b200", engine)
    return {(int(m), int(n), int(k)): s for m, n, k, dtype, s in t.gemm if dtype == "fp4"}


def flat_ratios(table: Table, flat_m: range = FLAT_M) -> dict[tuple[int, int, int], float]:
    """r = t / median over the m of `flat_m` (default 1-16) of the point's (n, k) group, for the flat-region points
    of the groups timed at every one of those m."""
    groups: dict[tuple[int, int], list[float]] = {}
    for (m, n, k), t in table.items():
        if m in flat_m:
            groups.setdefault((n, k), []).append(t)
    medians = {nk: statistics.median(ts) for nk, ts in groups.items() if len(ts) == len(flat_m)}
    return {(m, n, k): t / medians[(n, k)] for (m, n, k), t in table.items() if m in flat_m and (n, k) in medians}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else math.nan


def spread_rows(ratios: dict[str, dict]) -> list[str]:
    rows = ["| engine | flat points | median abs(r-1) | p90 abs(r-1) | > 20 % slower | > 20 % faster | p90 error of a "
            "model on the group median |", "|---|---|---|---|---|---|---|"]
    for engine, r in ratios.items():
        dev = [abs(x - 1) for x in r.values()]
        slow = sum(x > 1 + OUTLIER for x in r.values()) / len(r)
        fast = sum(x < 1 - OUTLIER for x in r.values()) / len(r)
        oracle = pct([abs(1 / x - 1) for x in r.values()], 0.9)
        rows.append(f"| {engine} | {len(r)} | {100 * statistics.median(dev):.1f}% | {100 * pct(dev, 0.9):.1f}% | "
                    f"{100 * slow:.1f}% | {100 * fast:.1f}% | {100 * oracle:.1f}% |")
    return rows


def bucket_coherence(r: dict) -> tuple[float, float, int]:
    """(P(an outlier's bucket-mate is an outlier), P(outlier) over the buckets' points, outliers counted)."""
    out = {key for key, x in r.items() if abs(x - 1) > OUTLIER}
    mates = hits = 0
    for m, n, k in out:
        bucket = next((b for b in BUCKETS if m in b), ())
        for other in bucket:
            if other != m:
                mates += 1
                hits += (other, n, k) in out
    inside = [key for key in r if any(key[0] in b for b in BUCKETS)]
    base = sum(key in out for key in inside) / len(inside)
    return hits / max(mates, 1), base, len(out)


def neighbour_rows(r: dict) -> list[str]:
    out = {key for key, x in r.items() if abs(x - 1) > OUTLIER}
    base = len(out) / len(r)
    pairs = [(m, n, k) for m, n, k in r if m + 1 in FLAT_M and (m, n, k) in out]
    follow = sum((m + 1, n, k) in out for m, n, k in pairs) / max(len(pairs), 1)
    same, base_b, count = bucket_coherence(r)
    per_group: dict[tuple[int, int], int] = {}
    for m, n, k in r:
        per_group[(n, k)] = per_group.get((n, k), 0) + ((m, n, k) in out)
    counts = list(per_group.values())
    size = len(FLAT_M)
    var_binom = size * base * (1 - base)
    zero_expected = (1 - base) ** size
    return ["| test | observed | if independent |", "|---|---|---|",
            f"| P(outlier at m+1 given outlier at m) | {100 * follow:.1f}% | {100 * base:.1f}% |",
            f"| P(bucket-mate outlier given outlier; {count} outliers) | {100 * same:.1f}% | {100 * base_b:.1f}% |",
            f"| variance of outliers per (n, k) group of 16 | {statistics.pvariance(counts):.2f} | "
            f"{var_binom:.2f} (binomial) |",
            f"| (n, k) groups without an outlier | {100 * counts.count(0) / len(counts):.1f}% | "
            f"{100 * zero_expected:.1f}% |"]


def chi_square(r: dict, axis: int) -> tuple[float, int, float, float, float]:
    """(chi2, dof, p, lowest rate, highest rate) of outlier vs the value of n (axis 1) or k (axis 2)."""
    from scipy.stats import chi2_contingency

    cells: dict[int, list[int]] = {}
    for key, x in r.items():
        cell = cells.setdefault(key[axis], [0, 0])
        cell[abs(x - 1) > OUTLIER] += 1
    table = [cells[v] for v in sorted(cells)]
    stat, p, dof, _ = chi2_contingency(table)
    rates = [b / (a + b) for a, b in table]
    return float(stat), int(dof), float(p), min(rates), max(rates)


def axis_rows(r: dict) -> list[str]:
    rows = ["| against | chi2 | dof | p | lowest outlier rate | highest |", "|---|---|---|---|---|---|"]
    for name, axis in (("n", 1), ("k", 2)):
        stat, dof, p, lo, hi = chi_square(r, axis)
        rows.append(f"| {name} | {stat:.1f} | {dof} | {p:.3f} | {100 * lo:.1f}% | {100 * hi:.1f}% |")
    return rows


def cross_rows(ratios: dict[str, dict]) -> list[str]:
    sg, vl = ratios["sglang"], ratios["vllm"]
    out = [key for key, x in sg.items() if x > 1 + OUTLIER and key in vl]
    v = [vl[key] for key in out]
    return [f"At SGLang's {len(out)} flat-region points > 20 % slower than their group, vLLM's table (same FlashInfer "
            f"CuTe-DSL kernel, same shapes) has median r {statistics.median(v):.3f}, p90 {pct(v, 0.9):.3f}; "
            f"{100 * sum(x > 1 + OUTLIER for x in v) / len(v):.1f}% of them are also > 20 % slow in vLLM's."]


def anomalies(table: Table) -> set[tuple[int, int, int]]:
    """Points more than 20 % slower than the fastest larger m of their (n, k): the time of a GEMM does not fall as
    m grows (same kernel family, more work)."""
    by_nk: dict[tuple[int, int], list[tuple[int, float]]] = {}
    for (m, n, k), t in table.items():
        by_nk.setdefault((n, k), []).append((m, t))
    found = set()
    for (n, k), pts in by_nk.items():
        pts.sort()
        floor = math.inf
        for m, t in reversed(pts):
            if t > (1 + OUTLIER) * floor:
                found.add((m, n, k))
            floor = min(floor, t)
    return found


def aligned_rows(ratios: dict[str, dict]) -> list[str]:
    rows = ["| engine | median r, m 8 and 16 | median r, other m | share of m 8/16 points > 10 % faster |",
            "|---|---|---|---|"]
    for engine, r in ratios.items():
        big = {key: x for key, x in r.items() if key[1] * key[2] >= 5e7}
        on = [x for key, x in big.items() if key[0] in (8, 16)]
        off = [x for key, x in big.items() if key[0] not in (8, 16)]
        rows.append(f"| {engine} | {statistics.median(on):.3f} | {statistics.median(off):.3f} | "
                    f"{100 * sum(x < 0.9 for x in on) / len(on):.1f}% |")
    return rows


def model_rows(tables: dict[str, Table]) -> list[str]:
    """Held-aside error of the fitted profile on each engine's 'gemm fp4' domain, all points and without the
    monotonicity anomalies."""
    import aiconfigurator_tables as aic
    import serve_engine_fit as fit
    import serve_engine_ops as ops

    from costmodels.serving_constants import KernelConstants
    from costmodels.serving_kernels import EngineKernels

    rows = ["| engine | held aside | median | p90 | anomalies held aside | p90 without them | median without |",
            "|---|---|---|---|---|---|---|"]
    for engine in ENGINES:
        bad = anomalies(tables[engine])
        cal = next(c for c in fit.fitted_device("b200").serving_engines if c.engine == engine)
        ek = EngineKernels(fit.fitted_device("b200"), KernelConstants.of_engine(cal))
        domain, predict, _ = ops.OPS["gemm fp4"]
        test = [p for p in domain(aic.load("b200", engine)) if fit.held_aside(p[:-1])]
        err = [(abs(predict(ek, p, engine, "b200") / p[-1] - 1), (int(p[0]), int(p[1]), int(p[2])) in bad)
               for p in test]
        clean = [e for e, b in err if not b]
        rows.append(f"| {engine} | {len(err)} | {100 * statistics.median(e for e, _ in err):.1f}% | "
                    f"{100 * pct([e for e, _ in err], 0.9):.1f}% | {len(err) - len(clean)} | "
                    f"{100 * pct(clean, 0.9):.1f}% | {100 * statistics.median(clean):.1f}% |")
    return rows


def boundary_rows() -> list[str]:
    """t(m+1) / t(m) of the per-tensor FP8 GEMM where m crosses a 256-row boundary (m 256-2048, n 4096-8192,
    k 16384: compute-bound, few waves): fixed-tile kernels step by a tile row's share of the waves."""
    import aiconfigurator_tables as aic

    rows = ["| device | engine (FP8 kernel) | boundaries | median t(m+1)/t(m) | max |", "|---|---|---|---|---|"]
    kernels = {"trtllm": "TensorRT-LLM (cublas_scaled_mm: cuBLASLt)", "vllm": "vLLM (cutlass_scaled_mm)"}
    for device in ("b200", "h200"):
        for engine, kernel in kernels.items():
            g = {(int(m), int(n), int(k)): t for m, n, k, dtype, t in aic.load(device, engine).gemm if dtype == "fp8"}
            steps = [g[(m + 1, n, 16384)] / g[(m, n, 16384)] for n in (4096, 5120, 8192)
                     for m in range(256, 2049, 256) if (m + 1, n, 16384) in g and (m, n, 16384) in g]
            rows.append(f"| {device} | {kernel} | {len(steps)} | {statistics.median(steps):.3f} | {max(steps):.3f} |")
    return rows


def tile_rows() -> list[str]:
    from fp4_cutedsl_tiles import compare

    rows = ["| engine | tiles | held-aside median | p90 |", "|---|---|---|---|"]
    for engine in ("sglang", "vllm"):
        rows += [f"| {engine} | {label} | {100 * med:.1f}% | {100 * p90:.1f}% |" for label, med, p90 in compare(engine)]
    return rows


def report(tables: dict[str, Table]) -> str:
    ratios = {e: flat_ratios(t) for e, t in tables.items()}
    anomaly_share = {e: len(anomalies(t)) / len(t) for e, t in tables.items()}
    lines = ["# B200 NVFP4 GEMM table scatter: deterministic or noise?", "",
             "Command: `.venv/bin/python benchmarks/serve_gemm_scatter.py` (aiconfigurator-core 0.12.0). "
             + machine_note(), "", "```", (__doc__ or "").split("\n\n")[2].strip("\n"), "```", "",
             "## Spread in the flat region (m 1-16, r = t / group median)", "", *spread_rows(ratios), "",
             "## SGLang: independence of the outliers", "", *neighbour_rows(ratios["sglang"]), "",
             "## SGLang: outliers against n and k", "", *axis_rows(ratios["sglang"]), "",
             "## Same points, other engine", "", *cross_rows(ratios), "",
             "## The deterministic part: m 8 and 16 (shapes with n·k >= 5e7)", "", *aligned_rows(ratios), "",
             "## Whole m grid: points > 20 % slower than a larger m of the same (n, k)", "",
             "| engine | share of the table |", "|---|---|",
             *[f"| {e} | {100 * s:.1f}% |" for e, s in anomaly_share.items()], "",
             "## The fitted model (profile constants) on its held-aside 'gemm fp4' points", "", *model_rows(tables), "",
             "## FlashInfer's untuned CuTe-DSL tiles (benchmarks/fp4_cutedsl_tiles.py; 'gemm fp4' refitted on each)",
             "",
             *tile_rows(), "",
             "## Per-tensor FP8: one row past a 256-row boundary (why TensorRT-LLM's fp8_wave_weight is 0 by rule)",
             "", *boundary_rows()]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--out", default=str(OUT), help="report file (default: benchmarks/results/serve_gemm_scatter.md)")
    args = ap.parse_args()
    tables = {e: fp4_table(e) for e in ENGINES}
    text = report(tables)
    pathlib.Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
