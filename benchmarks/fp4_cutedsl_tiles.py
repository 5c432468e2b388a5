"""Which NVFP4 kernel terms the B200 'gemm fp4' tables need: each refitted on its own, held-aside errors compared.

    .venv/bin/python benchmarks/fp4_cutedsl_tiles.py     # needs aiconfigurator-core 0.12.0; writes
                                                         # benchmarks/results/fp4_cutedsl_tiles.md

SGLang 0.5.14's and vLLM 0.24.0's NVFP4 rows both time FlashInfer 0.6.12's CuTe-DSL GEMM untuned (the version both
pin; aiconfigurator's collectors call mm_fp4(backend="cute-dsl") outside autotune()), whose tactic rule
(serving_gemm_sm100.cutedsl_fp4_ctas) picks 128 x 64 to 128 x 256 tiles by (n, k, m bucket). SGLang's collector
quantises the input with flashinfer.fp4_quantize (CUDA backend; its TMA kernel from m 1024: serving_gemm.fp4_quant_s),
vLLM's with its own _C.scaled_fp4_quant, replaying one layer on one input. Variants, each fitted from the fit's start
on the engine's B200 training points (the 'gemm fp4' constants plus the variant's rates):
  fixed tiles      128 x 128 on every SM, one quantise pass (serving_gemm.FP4_TILE: the model before)
  tactic rule      the rule's tiles, MMA time only
  + SM traffic     each CTA's operand and output bytes through its SM at a fitted rate (fp4_sm_bytes_per_s)
  + TMA quantise   FlashInfer's TMA quantise kernel's few-CTA bound (fp4_quant_tma; SGLang's collector only)
  + L2 input       the quantise kernel's input read from L2 where the replayed layer fits there (fp4_quant_warm_l2;
                   vLLM's collector only)
The last variant of each engine is the profile's model (serve_engine_ops.GEMM_SM100). An earlier version of this file
scored tactics with terms FlashInfer's code has at no version (the rule's only commit, 42ff2b05, is in 0.6.9-0.6.12): a
1.05 bonus for 2-CTA tiles, cluster factors, 8- to 32-wide tiles, the next power of two of m as the bucket; it found the
rule worse than fixed tiles. Nothing here enters the profiles.
"""

import dataclasses
import pathlib
import sys

sys.path[:0] = [str(pathlib.Path(__file__).resolve().parents[1]), str(pathlib.Path(__file__).resolve().parent)]

RATES = ("fp4_sm_bytes_per_s", "fp4_quant_cta_bytes_per_s")
OFF = dict(fp4_cutedsl_tiles=0.0, fp4_quant_tma=0.0, fp4_quant_warm_l2=0.0)
VARIANTS = (("fixed 128 x 128 tiles", OFF, ()),
            ("tactic rule", {**OFF, "fp4_cutedsl_tiles": 1.0}, ()),
            ("tactic rule + SM traffic", {**OFF, "fp4_cutedsl_tiles": 1.0}, RATES[:1]),
            ("tactic rule + SM traffic + TMA quantise", {**OFF, "fp4_cutedsl_tiles": 1.0, "fp4_quant_tma": 1.0}, RATES),
            ("tactic rule + SM traffic + L2 input", {**OFF, "fp4_cutedsl_tiles": 1.0, "fp4_quant_warm_l2": 1.0},
             RATES[:1]))
"""(label, kernel selectors, rates fitted with the 'gemm fp4' constants)"""
ENGINES = {"sglang": VARIANTS[:4], "vllm": VARIANTS[:3] + VARIANTS[4:]}
"""the variants per engine: vLLM's quantise kernel is not FlashInfer's, SGLang's collector times six layer copies"""


def variant_fits(engine: str) -> list[tuple[str, float, float, dict]]:
    """(label, held-aside median, p90 |error|, fitted constants) of each of the engine's variants on B200."""
    import numpy as np
    import serve_engine_fit as fit
    import serve_engine_ops as ops
    from aiconfigurator_tables import load

    from costmodels.serving_constants import KernelConstants

    dev = fit.fitted_device("b200")
    cal = next(c for c in dev.serving_engines if c.engine == engine)
    domain, predict, _ = ops.OPS["gemm fp4"]
    points = domain(load("b200", engine))
    train = [p for p in points if not fit.held_aside(p[:-1])]
    test = [p for p in points if fit.held_aside(p[:-1])]
    rows = []
    for label, selectors, rates in ENGINES[engine]:
        names = tuple(n for n in fit.op_names("gemm fp4", engine) if n not in RATES) + rates
        values = {f.name: getattr(cal, f.name) for f in dataclasses.fields(KernelConstants)}
        values.update({**{n: 0.0 for n in RATES}, **selectors, **{n: fit.START[n] for n in names}})
        values = fit.fit_op(dev, values, names, train, predict)
        ek = fit._kernels(dev, values)
        err = np.abs([predict(ek, p) / p[-1] - 1 for p in test])
        rows.append((label, float(np.median(err)), float(np.quantile(err, 0.9)), {n: values[n] for n in names}))
    return rows


def compare(engine: str) -> list[tuple[str, float, float]]:
    """(variant, held-aside median, p90 |error|) on the engine's B200 NVFP4 rows."""
    return [(label, med, p90) for label, med, p90, _ in variant_fits(engine)]


def report() -> str:
    lines = ["# NVFP4 kernel terms on B200 (benchmarks/fp4_cutedsl_tiles.py)", "",
             "Command: `.venv/bin/python benchmarks/fp4_cutedsl_tiles.py` (aiconfigurator-core 0.12.0).", "", "```",
             (__doc__ or "").split("\n\n")[1].strip("\n"), "```", "",
             "| engine | variant | held-aside median | p90 | q4 (bytes/element) | B_SM (GB/s) | quantise CTA (GB/s) |",
             "|---|---|---|---|---|---|---|"]
    for engine in ENGINES:
        for label, med, p90, c in variant_fits(engine):
            rates = [f"{c[n] / 1e9:.1f}" if n in c else "-" for n in RATES]
            lines.append(f"| {engine} | {label} | {100 * med:.1f}% | {100 * p90:.1f}% | {c['fp4_quant_bytes']:.3g} | "
                         + " | ".join(rates) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    path = pathlib.Path(__file__).resolve().parent / "results" / "fp4_cutedsl_tiles.md"
    path.write_text(report())
    print(path.read_text())


if __name__ == "__main__":
    main()
