"""Three Hopper serving constants without a mechanism (issue 12): what the measured tables say about each.

    .venv/bin/python benchmarks/serve_hopper_bounds.py     # needs aiconfigurator-core 0.12.0; writes
                                                           # benchmarks/results/serve_hopper_bounds.md

Reads aiconfigurator-core's H100/H200 tables and the profiles' fitted constants; fits nothing, changes no profile.
  moe      SGLang's 'moe fp8' rows (its 128x128 block-FP8 Triton MoE) with the profile constants: residuals of the
           layers whose local expert weights fit in the L2 (DeviceSpec.l2_bytes; its collector, aiconfigurator
           collector/sglang/collect_moe.py benchmark_config, captures 5 fused_moe calls on the same w1/w2 in one CUDA
           graph and replays it without an L2 flush, collector/helper.py benchmark_with_power: such a layer can be
           read from L2) against
           the larger ones, and the fastest weight streaming the table measures (hit experts' weight bytes / time);
           with --wheels DIR, the row blocks (BLOCK_SIZE_M by token count) of SGLang 0.5.14's tuned FP8 config files
           for the domain's shapes (read from the wheel's JSON, nothing executed)
  fp8 row  vLLM's per-tensor FP8 GEMM rows at n 32 (the GEMM itself negligible) against the two quantise kernels its
           table measures alone (static_scaled_fp8_quant; dynamic per-token = static + compute_scale): the time per
           row that none of them has, by k
  dip      SGLang's FP8 GEMM (sgl-kernel fp8_scaled_mm) at k 5120 on H100 and H200: TFLOP/s of the large-m points, the
           neighbours of H200's (m 8192, n 51200) sample, and how many large-m points fall as low
"""

import argparse
import pathlib
import statistics
import sys

sys.path[:0] = [str(pathlib.Path(__file__).resolve().parents[1]), str(pathlib.Path(__file__).resolve().parent)]

from machine import machine_note  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent / "results" / "serve_hopper_bounds.md"
DEVICES = ("h100-sxm", "h200")
MIB = 2.0**20


def _sglang_kernels(device: str):
    import profiles
    from costmodels.serving_constants import KernelConstants
    from costmodels.serving_kernels import EngineKernels

    dev = profiles.load_device(device)
    cal = next(c for c in dev.serving_engines if c.engine == "sglang")
    return EngineKernels(dev, KernelConstants.of_engine(cal))


def moe_points(device: str) -> list[tuple[float, float, int, float, float, int]]:
    """(local layer weight bytes, hit experts' weight bytes, tokens, model / measured - 1, seconds, hidden) of SGLang's
    'moe fp8' points on `device`, predicted with the profile's constants on the rows its collector built."""
    from aic_moe_workload import GROUPED_ROUTING, RAW_KERNEL_SHAPES, measured_rows
    from aiconfigurator_tables import load
    from serve_engine_ops import OPS

    domain, predict, _ = OPS["moe fp8"]
    ek = _sglang_kernels(device)
    out = []
    for p in domain(load(device, "sglang")):
        tokens, h, inter, topk, experts, tp, ep, _, t = p
        per_expert = 3.0 * h * inter / tp  # FP8 gate+up and down weights of one expert on one GPU
        _, rows, _ = measured_rows(int(tokens), int(experts), int(topk), int(ep), p[1:5] in RAW_KERNEL_SHAPES,
                                   GROUPED_ROUTING.get(p[1:5]))
        hit = sum(count for r, count in rows if r > 0)
        out.append((experts / ep * per_expert, hit * per_expert, int(tokens), predict(ek, p, "sglang") / t - 1, t,
                    int(h)))
    return out


def _median_row(label: str, res: list[float]) -> str:
    return f"| {label} | {len(res)} | {statistics.median(res):+.1%} |" if res else f"| {label} | 0 | - |"


def moe_section() -> list[str]:
    import profiles

    l2 = {d: profiles.load_device(d).l2_bytes for d in DEVICES}  # the profiles' L2 (H100, H200 SXM: 50 MiB)
    out = ["## SGLang FP8 MoE: warm-L2 layers and the HBM bound", "",
           "Signed error (model / measured - 1) with the profile's constants, by whether the local layer's expert "
           f"weights fit in the L2 ({', '.join(f'{d} {b / MIB:.0f} MiB' for d, b in l2.items())}; only hidden 2048, "
           "expert width 768, 128 experts at "
           "moe_tp x ep 16 do; 'same shape': that shape's larger layers, at moe_tp x ep 1-8; '> L2': all larger "
           "layers):", "",
           "| device, layer, tokens | points | median error |", "|---|---|---|"]
    fastest = []
    for device in DEVICES:
        pts = moe_points(device)
        for fits, hidden, name in ((True, 2048, "<= L2"), (False, 2048, "> L2, same shape"), (False, 0, "> L2")):
            for lo, hi in ((1, 64), (65, 1024), (1025, 16384)):
                res = [r for w, _, tok, r, _, h in pts
                       if (w <= l2[device]) == fits and lo <= tok <= hi and hidden in (0, h)]
                out.append(_median_row(f"{device}, layer {name}, {lo}-{hi}", res))
        peak = profiles.load_device(device).hbm_bytes_per_s
        big = sorted(((hit / t, hit, tok) for w, hit, tok, _, t, _ in pts if w > l2[device]), reverse=True)
        rate, hit, tok = big[0]
        fastest.append(f"| {device} | {rate / 1e12:.2f} TB/s | {rate / peak:.2f} | {hit / MIB:.0f} MiB, {tok} tokens |")
    return out + ["", "Fastest weight streaming measured on layers larger than L2 (hit experts' weight bytes / time; "
                  "everything else in the layer only adds time):", "",
                  "| device | rate | / HBM peak | layer point |", "|---|---|---|---|", *fastest]


def row_excess_s(gemm_s: float, quant_s: float, m: int) -> float:
    """Time per row of a GEMM table row beyond its measured input quantise kernel: (row - quantise) / m."""
    return (gemm_s - quant_s) / m


def tuned_block_rows(wheel: pathlib.Path) -> dict[tuple[str, int, int], dict[int, int]]:
    """(device profile, E, N) -> {token count: BLOCK_SIZE_M} of the SGLang FP8 (128x128 block) tuned config files in
    its wheel whose (E, N) a shipped MoE model runs at moe_tp x ep <= 16 (serving_moe_configs.TUNED; one file each)."""
    import json
    import zipfile

    from moe_tuned_configs import CONFIG_DIRS, NAME
    from moe_tuned_configs import DEVICES as NAMES
    from serve_engine_ops import SHIPPED_MOE

    from costmodels.serving_moe_configs import TUNED

    sizes = (1, 2, 4, 8, 16)
    domain = {(e // ep, inter // tp) for _, inter, _, e in SHIPPED_MOE for tp in sizes for ep in sizes if tp * ep <= 16}

    out = {}
    archive = zipfile.ZipFile(wheel)
    for name in archive.namelist():
        m = NAME.fullmatch(name.rsplit("/", 1)[1].replace(" ", "")) if name.startswith(CONFIG_DIRS["sglang"]) else None
        if not m or m.group(3) not in NAMES or m.group(4) != ",dtype=fp8_w8a8,block_shape=[128,128]":
            continue
        device, key = NAMES[m.group(3)], (int(m.group(1)), int(m.group(2)))
        if key in TUNED.get(("sglang", device, "fp8"), ()) and key in domain:
            out[(device, *key)] = {int(t): c["BLOCK_SIZE_M"] for t, c in json.loads(archive.read(name)).items()}
    return out


def tuned_section(wheel: pathlib.Path | None) -> list[str]:
    if wheel is None:
        return ["## SGLang's tuned FP8 MoE row blocks", "", "Skipped: pass --wheels DIR (see "
                "benchmarks/moe_tuned_configs.py; the SGLang 0.5.14 wheel is downloaded there if absent)."]
    rows = [f"| {d} | {e} | {n} | " + ", ".join(f"{t}: {b}" for t, b in sorted(blocks.items())) + " |"
            for (d, e, n), blocks in sorted(tuned_block_rows(wheel).items())]
    return ["## SGLang's tuned FP8 MoE row blocks", "",
            "BLOCK_SIZE_M by token count (SGLang picks the nearest count) in SGLang 0.5.14's tuned files for the 'moe "
            "fp8' domain's shapes; the model now charges these very blocks (costmodels/serving_moe_blocks.py, "
            "serving_moe_configs.file_block_rows, in serving and in the fit; was one fitted block, moe_fp8_block_rows "
            "64, that held H200's moe_fp8_hbm_efficiency at its bound 1.0):", "",
            "| device | E | N | tokens: BLOCK_SIZE_M |", "|---|---|---|---|", *rows]


def _vllm_row_excess(device: str, m: int) -> list[str]:
    from aic_quant_tables import ScaleTable, static_quant_points
    from aiconfigurator_tables import load

    gemm = {(int(p[0]), int(p[1]), int(p[2])): p[4] for p in load(device, "vllm").gemm if p[3] == "fp8"}
    static = {(int(mm), int(k)): t for mm, k, t in static_quant_points(device, "vllm")}
    dynamic = ScaleTable(device, "vllm")
    rows = []
    for k in (32, 512, 2048, 2560, 4096, 5120, 8192, 16384):
        if (m, 32, k) not in gemm or (m, k) not in static:
            continue
        quant = static[(m, k)] + dynamic.at(m, k)
        excess = row_excess_s(gemm[(m, 32, k)], quant, m)
        rows.append(f"| {device} | {m} | {k} | {gemm[(m, 32, k)] * 1e6:.1f} | {static[(m, k)] * 1e6:.1f} | "
                    f"{quant * 1e6:.1f} | {excess * 1e9:.2f} |")
    return rows


def fp8_row_section() -> list[str]:
    rows = [r for device in DEVICES for m in (16384, 32768) for r in _vllm_row_excess(device, m)]
    return ["## vLLM's FP8 GEMM time per row", "",
            "vLLM 0.24.0 FP8 GEMM rows at n 32 against its measured quantise kernels (µs); excess = (GEMM row - "
            "dynamic per-token quantise) / m, what no measured quantise kernel has (the GEMM of n 32 is a few µs):",
            "", "| device | m | k | GEMM row | static quantise | dynamic per-token quantise | excess ns/row |",
            "|---|---|---|---|---|---|---|", *rows]


def _tflops(table: dict, m: int, n: int, k: int) -> str:
    t = table.get((m, n, k))
    return f"{2.0 * m * n * k / t / 1e12:.0f}" if t else "-"


def large_points(table: dict, k: int) -> dict[tuple[int, int, int], float]:
    """FLOP/s of the points of `table` ((m, n, k) -> seconds) with m >= 8192, n >= 5120 at depth k."""
    return {key: 2.0 * key[0] * key[1] * key[2] / t for key, t in table.items()
            if key[0] >= 8192 and key[1] >= 5120 and key[2] == k}


def slow_points(table: dict, k: int, share: float = 0.8) -> tuple[float, list[tuple[int, int, int]]]:
    """(median FLOP/s, the points below `share` of it) of large_points(table, k)."""
    big = large_points(table, k)
    typical = statistics.median(big.values())
    return typical, sorted(key for key, v in big.items() if v < share * typical)


def dip_section() -> list[str]:
    from aiconfigurator_tables import load

    ms, ns, k = (4352, 4353, 8192, 16384, 32768), (10240, 16384, 51200, 65536), 5120
    out = ["## SGLang FP8 GEMM at k 5120 (sgl-kernel fp8_scaled_mm)", "",
           "TFLOP/s; the tables have no m between 4353 and 8192 or between 8192 and 16384:", "",
           "| device | n | " + " | ".join(f"m {m}" for m in ms) + " |", "|---|---|" + "---|" * len(ms)]
    low = []
    for device in DEVICES:
        table = {(int(p[0]), int(p[1]), int(p[2])): p[4] for p in load(device, "sglang").gemm if p[3] == "fp8"}
        out += [f"| {device} | {n} | " + " | ".join(_tflops(table, m, n, k) for m in ms) + " |" for n in ns]
        typical, slow = slow_points(table, k)
        low.append(f"| {device} | {len(large_points(table, k))} | {typical / 1e12:.0f} | {len(slow)} | "
                   f"{', '.join(f'{m}/{n}' for m, n, _ in slow)} |")
    return out + ["", f"Points of m >= 8192, n >= 5120, k {k} more than 20 % below their median:", "",
                  "| device | points | median TFLOP/s | below 0.8x | m/n |", "|---|---|---|---|---|", *low]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheels", help="folder holding (or receiving) SGLang's 0.5.14 wheel: report its tuned MoE blocks")
    args = ap.parse_args()
    wheel = None
    if args.wheels:
        from moe_tuned_configs import wheel as engine_wheel

        wheel = engine_wheel("sglang", pathlib.Path(args.wheels))
    lines = ["# Hopper serving constants without a mechanism (issue 12)", "",
             f"Command: `.venv/bin/python benchmarks/serve_hopper_bounds.py{' --wheels DIR' if wheel else ''}` "
             "(aiconfigurator-core 0.12.0 tables, the profiles' constants; nothing fitted)", "", machine_note(), "",
             *moe_section(), "", *tuned_section(wheel), "", *fp8_row_section(), "", *dip_section()]
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
