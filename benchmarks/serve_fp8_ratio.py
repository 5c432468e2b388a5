"""FP8 vs BF16 GEMM time ratio: measured tables vs the fitted serving model, per engine and device.

    .venv/bin/pip install 'aiconfigurator-core==0.12.0'
    .venv/bin/python benchmarks/serve_fp8_ratio.py [--out benchmarks/results/serve_fp8.md]

Over every GEMM shape measured in both BF16 and FP8 (n, k in 1024..16384; and, second, only the (n, k) of the
model profiles' dense GEMMs at TP 1-8, serve_engine_ops.SHIPPED_GEMMS), summed time of the BF16 kernels / summed
time of the FP8 kernels, for prefill-sized (m = 2048, 4096, 8192 tokens) and decode-sized (m = 1..64) GEMMs; the
model's ratio over the same shapes uses the fitted constants in profiles/hardware/*.yaml (with the FP8 input
quantisation the tables include: the quantise kernel, and for TensorRT-LLM, whose collector quantises with a dynamic
scale, the measured amax pass of benchmarks/aic_quant_tables.py). Target: model within 10 % of measured.
"""

import argparse
import pathlib
import sys

sys.path[:0] = [str(pathlib.Path(__file__).resolve().parents[1]), str(pathlib.Path(__file__).resolve().parent)]

from aic_quant_tables import ScaleTable, dynamic_scale_s  # noqa: E402
from aiconfigurator_tables import ENGINE_VERSIONS, VERSION, load  # noqa: E402
from machine import machine_note  # noqa: E402
from serve_engine_ops import SHIPPED_GEMMS  # noqa: E402

import profiles  # noqa: E402
from costmodels.serving_kernels import EngineKernels, KernelConstants, engine_calibration, gemm_s  # noqa: E402

REGIMES = {"prefill (m 2048-8192)": (2048, 4096, 8192), "decode (m 1-64)": (1, 2, 4, 8, 16, 32, 64)}
SHAPES = {"n, k 1024-16384": lambda n, k: 1024 <= n <= 16384 and 1024 <= k <= 16384,
          "model GEMMs": lambda n, k: (n, k) in SHIPPED_GEMMS}


SCALE_TABLES: dict[tuple[str, str], ScaleTable] = {}


def ratios(device: str, engine: str) -> list[tuple[str, float, float]]:
    dev = profiles.load_device(device)
    ek = EngineKernels(dev, KernelConstants.of_engine(engine_calibration(dev, engine)))
    table = {p[:4]: p[4] for p in load(device, engine).gemm}
    out = []
    for shapes, keep in SHAPES.items():
        for regime, ms in REGIMES.items():
            sums = [0.0, 0.0, 0.0, 0.0]
            for (m, n, k, dtype), t16 in sorted(table.items()):
                t8 = table.get((m, n, k, "fp8"))
                if dtype != "bf16" or m not in ms or t8 is None or not keep(n, k):
                    continue
                fp8 = gemm_s(ek, m, n, k, "fp8") + dynamic_scale_s(SCALE_TABLES, device, engine, m, k)
                for i, v in enumerate((t16, t8, gemm_s(ek, m, n, k, "bf16"), fp8)):
                    sums[i] += v
            out.append((f"{regime}, {shapes}", sums[0] / sums[1], sums[2] / sums[3]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent / "results" / "serve_fp8.md"))
    args = ap.parse_args()
    lines = ["# FP8 vs BF16 GEMM time ratio: measured vs fitted model", "",
             f"Command: `.venv/bin/python benchmarks/serve_fp8_ratio.py` (aiconfigurator-core {VERSION} tables). "
             f"{machine_note()}", "",
             "| device | engine | GEMMs | measured BF16/FP8 | model BF16/FP8 | model / measured - 1 |",
             "|---|---|---|---|---|---|"]
    for device in ("h100-sxm", "h200"):
        for engine in ENGINE_VERSIONS:
            for regime, meas, model in ratios(device, engine):
                lines.append(f"| {device} | {engine} | {regime} | {meas:.3f} | {model:.3f} | {model / meas - 1:+.1%} |")
    pathlib.Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
