"""FP8 vs BF16 serving step latency: measured per-op tables composed into steps vs parplan's serving model.

    .venv/bin/pip install 'aiconfigurator-core==0.12.0'
    .venv/bin/python benchmarks/serve_fp8_step_ratio.py [--out benchmarks/results/serve_fp8_step.md]

Steps: Llama-3.1-70B on H100 (TP 2, 4, 8) and Qwen3-32B on H200 (TP 1, 2, 4, 8); prefill of one prompt of ISL 1024,
2048, 4096, 8192 tokens; decode of batch 1, 8, 32, 128 at KV length 1023 and 4095 (the tables' grid). Weights and
GEMMs in BF16 or FP8 (per-tensor), KV cache in BF16 in both (so only the GEMM dtype differs).

Measured step = layers x (the block's GEMMs, each at its exact (m, n, k) from costmodels/serving_shapes.py, from the
engine's GEMM table + attention from the context/generation attention table + 2 all-reduces from the all-reduce
table) + the parts no table measures (element-wise kernels, LM head, per-step overhead: parplan's model, the same in
both dtypes). The GEMM table is read at its m grid (the steps' token counts are grid points) and bilinearly between
the neighbouring (n, k) grid values (exact for t = a + b·n + c·k + d·n·k); all-reduce sizes linearly between the
neighbouring sizes. The tables' FP8 GEMMs include the kernel quantising their BF16 input.
Model step = costmodels/serving.py (prefill_time, decode_step_time) with the engine's fitted constants: "engine"
with the quantisations the engine fuses into the producing kernel for the model's family (costmodels/serving_fusions.py)
left out, "tables" with every dense GEMM's input quantisation counted as the tables do (for TensorRT-LLM, whose FP8
rows quantise with a dynamic scale, also its measured amax pass: benchmarks/aic_quant_tables.py). Ratio = BF16 step /
FP8 step; target: model ratio within 10 % of the measured ratio.
"""

import argparse
import bisect
import pathlib
import statistics
import sys
from collections.abc import Iterator
from dataclasses import dataclass

sys.path[:0] = [str(pathlib.Path(__file__).resolve().parents[1]), str(pathlib.Path(__file__).resolve().parent)]

from aic_quant_tables import ScaleTable, dynamic_scale_s  # noqa: E402
from aiconfigurator_tables import ENGINE_VERSIONS, VERSION, Tables, load  # noqa: E402
from machine import machine_note  # noqa: E402
from serve_engine_ops import SHIPPED_GEMMS  # noqa: E402

import profiles  # noqa: E402
from costmodels.hardware import DeviceSpec  # noqa: E402
from costmodels.model import ModelSpec  # noqa: E402
from costmodels.serving import InstanceShape, decode_step_time, prefill_time  # noqa: E402
from costmodels.serving_fusions import MEASURED_FUSED_QUANT, family_fused_quant, fused_quant_sources  # noqa: E402
from costmodels.serving_gemm import fp8_quant_s, input_quant_s  # noqa: E402
from costmodels.serving_kernels import EngineKernels, KernelConstants, engine_calibration, gemm_s  # noqa: E402
from costmodels.serving_shapes import attention_gemms, mlp_gemms  # noqa: E402

CASES = (("h100-sxm", "llama3.1-70b", (2, 4, 8)), ("h200", "qwen3-32b", (1, 2, 4, 8)))
PREFILL_ISL = (1024, 2048, 4096, 8192)
DECODE = tuple((b, ctx) for ctx in (1023, 4095) for b in (1, 8, 32, 128))
TABLE_OPS = ("gemm_s", "attention_s", "allreduce_s")
HEAD_DIM = 128
TARGET = 0.10
SCALE_TABLES: dict[tuple[str, str], ScaleTable] = {}
NOTES = """Reading the tables (no constant is fitted here):
- BF16 GEMMs (costmodels/serving_gemm.py gemm_bf16_s): the tables' m grid has pairs m, m+1 below 4353, and m+1
  runs 5-16 % faster than the 128-row padding of m+1 charges (a 64-row tile and a partial last wave, not a whole
  128-row tile, pay for the extra row), while multiples of 256 such as 1792, 3328, 4352 run slower (last wave
  partly idle); the model counts ⌈m/64⌉·⌈n/256⌉ tiles in waves over the SMs, a share ω ≈ 0.2 of the idle SMs of
  the last wave costing time (fitted per engine: 0.17-0.22 on all three). With the padding overcharge gone the
  fit no longer averages m+1's speed into the large-m round values. vLLM and SGLang (torch F.linear, cuBLAS
  heuristics) still run below their curve at m 8192 and 16384 (fitted: vLLM 8-9 %, SGLang 4-5 %; the tables
  have no m between 4353 and 8192), TensorRT-LLM (torch_flow) 0-1.5 %: m >= 8192 runs at its own fitted efficiency
  (gemm_large_efficiency_max, serving_gemm.BF16_LARGE_M). The per-shape scatter there (vLLM H200 m 16384:
  615-823 TFLOP/s at neighbouring (n, k)) is not a shape effect: the per-shape throughput of H100 and H200 (the
  same GH100 die and L2) correlates 0.94 at m 2048 but 0.51 at m 32768 for vLLM (0.33 SGLang; TensorRT-LLM 0.86
  at every m), so it is run-to-run variation no shape term can capture. Tested and rejected: an A-operand L2-miss
  re-read term (A = m·k·2 bytes over 50 MiB; no step in the residuals at that size), a serial epilogue term
  (output bytes; it leaves the large-m bias as it is) and a sustained-power term t·(1 + δ·t / (t + τ)) (δ, τ fit
  to their bounds; vLLM's large-m bias stays).
- FP8 GEMMs of vLLM and SGLang (CUTLASS, 128 x 128 tiles in clusters of two along m): the tables' m + 1 rows
  (m a multiple of 256) run far slower than their added tiles charge (H200 vLLM n 51200, k 5120: 1024 -> 1025
  rows 336 -> 618 µs, 1.84x, where the tiles grow 1.25x; 256 -> 257: 3.2x for 2x the tiles; TensorRT-LLM 1.00-1.08x),
  and the fit averaged that into round m: the model ran +8-10 % slow at m 1024-2048 and lower FP8 efficiency
  (0.69 on H200 vLLM) while the measured time per wave at m <= 2048 is 0.83-0.89 of the FP8 peak. A padded
  (out-of-bounds) row of the last row tiles now costs 1 + π real rows (serving_gemm.gemm_fp8_s; fitted π 0.78-1.37,
  e_max 0.66-0.77): the wide TP 1 gate+up (n 51200) went from +26 % (m 1024) to +14 %, and vLLM's H200 TP 1 prefill
  ratio from -12 % to -5 %. Still missing: the per-wave efficiency falls with m (H200 vLLM: 0.85 at m <= 2048, 0.76
  at 8192, 0.69 at 16384 at k 5120), so the model stays slow on wide GEMMs at m 1024 (+9 %); a per-wave traffic
  term (the shorter operand re-read every wave) was tried and did not move the fit. With the quantise kernel fitted
  to its own table (2.6-2.8 bytes per element; L2-resident inputs and vLLM's one block per row modelled) vLLM's
  rows keep a time per input row (6-7 ns: up to 115 µs at m 16384, most visible at small n); fitted inside the
  quantise kernel it had put that kernel 70-234 % above its measured time at m >= 256. It is vLLM's per-token
  quantisation as its collector runs it (Fp8Config activation_scheme "dynamic" under a default VllmConfig(): custom
  ops off, QuantFP8.forward_native compiled by Inductor, one program per row looping over 2048-element chunks, amax
  then quantise), not the CUDA per-token kernel its compute_scale table times (22 µs at m 32768, k 32, where the n 32
  rows take 240 µs): serving_gemm.token_quant_s = m·(t_p + 2·⌈k/2048⌉·t_c), fitted in 'gemm fp8' (t_p 4.3/4.8 ns,
  t_c 0.95/1.17 ns per row on H100/H200); the n 32 rows' time per row, flat to k 2048 and rising in steps of 2048 k,
  follows it within 20 % (tests/costmodels_serving/test_serving_vllm_token_quant.py). It adds to the GEMM (put
  inside the GEMM's overlap the H200 held-aside p90 grew 12.1 -> 13.9 %); SGLang's rows of the same CUTLASS kernel
  family quantise with sgl_per_token_quant_fp8 and do not have it; tested and not kept: serial input or output bytes,
  A re-read per column tile.
- Fit bounds: vLLM's per-tile overhead k_0 and TensorRT-LLM's padded-row penalty π had run to their lower bounds; both
  are 0 by rules read from the sources (benchmarks/serve_engine_ops.py FP8_GEMM_HOPPER: vLLM's SM90 kernels for m > 64
  are Pingpong with scalar scales, TensorRT-LLM's FP8 linear layer calls cuBLASLt, which picks its kernel per shape),
  with the same held-aside errors; no 'gemm fp8' constant sits at a bound on H100/H200.
- SGLang's FP8 table has isolated slow shapes at m 8192 (e.g. n 51200, k 5120: FP8 only 1.08x faster than BF16),
  which the tile/wave model does not reproduce: the +31 % step outlier (Qwen3-32B TP 1, ISL 8192). Not a kernel
  config effect: sgl-kernel's SM90 fp8_scaled_mm runs one config for every m > 1024 (128 x 128 tiles, clusters of
  2 along m, Pingpong, persistent; fp8_gemm_kernel.cu sm90_fp8_dispatch_shape), yet on H200 that shape runs
  1296 TFLOP/s at m 4352, 754 at 8192 and 1138 at 16384 (one sample each), while H100 (the same SMs) runs 1194, 1097,
  882: monotone. A single slow sample (n 10240, k 5120 dips the same way on H200 only: 1380, 913, 787, 1136 at m
  4096-32768), not a shape, tile or wave effect; not modelled, so that step stays the one miss.
- "model (engine)" leaves out the quantisation kernels each engine fuses into the producing kernel for the model's
  family (costmodels/serving_fusions.py); the tables, measured kernel by kernel, always include them. TensorRT-LLM
  fuses the attention-output and activation quantisations for both models here and the norm quantisations (inside
  the all-reduce) for Llama at TP > 1 only (modeling_llama.py; Qwen3's model file runs plain RMSNorms); its table's
  FP8 rows also hold the amax pass of a dynamic input scale (its collector loads no input_scale), 7-9 µs per GEMM at
  m <= 256 on H200 and about twice the quantise kernel's time at large m (the compute_scale table), which a
  static-scale checkpoint does not run: model (engine) leaves that pass out, model (tables) adds it back."""


QUANT_CHECK = ("Median over the shipped models' GEMM input widths k of serving_gemm.fp8_quant_s / the engine's "
               "measured static quantise kernel (aiconfigurator's scale_matrix table) - 1, by m. TensorRT-LLM: "
               "static_quantize_e4m3_per_tensor; vLLM: static_scaled_fp8_quant. The constants are fitted to this "
               "table (serve_engine_fit.py op 'fp8 quant'; its held-aside errors are in serve_engines.md), so this is "
               "the in-sample fit by m; until then they were fitted inside the FP8 GEMM rows and ran +49..+91 % "
               "(TensorRT-LLM) and -22..+234 % (vLLM) off this table. SGLang's table times a torch composite, not the "
               "per-token kernel its GEMM rows run (aic_quant_tables.py): left out.")


class GemmTable:
    """One engine's GEMM table of one dtype: time at (m, n, k), bilinear in (n, k) at a grid m."""

    def __init__(self, t: Tables, dtype: str):
        self.t = {p[:3]: p[4] for p in t.gemm if p[3] == dtype}
        self.ns = sorted({p[1] for p in self.t})
        self.ks = sorted({p[2] for p in self.t})

    def __call__(self, m: float, n: float, k: float) -> float:
        (n0, n1), (k0, k1) = _bracket(self.ns, n), _bracket(self.ks, k)
        out = 0.0
        for nn, wn in ((n0, _weight(n0, n1, n, 0)), (n1, _weight(n0, n1, n, 1))):
            for kk, wk in ((k0, _weight(k0, k1, k, 0)), (k1, _weight(k0, k1, k, 1))):
                if wn * wk:
                    out += wn * wk * self.t[(m, nn, kk)]
        return out


def _bracket(grid: list[float], x: float) -> tuple[float, float]:
    i = bisect.bisect_left(grid, x)
    if i < len(grid) and grid[i] == x:
        return x, x
    if i == 0 or i == len(grid):
        raise KeyError(f"{x} outside the table grid {grid[0]}..{grid[-1]}")
    return grid[i - 1], grid[i]


def _weight(lo: float, hi: float, x: float, side: int) -> float:
    if hi == lo:
        return 1.0 if side == 0 else 0.0
    w = (x - lo) / (hi - lo)
    return w if side else 1.0 - w


def _allreduce(t: Tables, gpus: int, elements: float) -> float:
    pts = sorted((p[1], p[2]) for p in t.allreduce if p[0] == gpus)
    sizes = [s for s, _ in pts]
    lo, hi = _bracket(sizes, elements)
    by = dict(pts)
    return by[lo] * _weight(lo, hi, elements, 0) + by[hi] * _weight(lo, hi, elements, 1)


def _attention(t: Tables, model: ModelSpec, tp: int, phase: str, a: float, b: float) -> float | None:
    """The measured attention of one block (None: the table has no such point)."""
    heads, kv = model.heads // tp, max(1, model.kv_heads // tp)
    if phase == "prefill":
        return next((p[5] for p in t.prefill if p[:5] == (1, a, heads, kv, HEAD_DIM)), None)
    return next((p[6] for p in t.decode if p[:6] == (a, b, heads, kv, HEAD_DIM, "bf16")), None)


def _block_gemms(model: ModelSpec, tp: int) -> list[tuple[float, float, str]]:
    return attention_gemms(model, tp) + mlp_gemms(model, model.ffn, tp)


def measured_step(t: Tables, gemm: GemmTable, model: ModelSpec, tp: int, point: tuple[str, int, int],
                  untabled_s: float) -> float | None:
    """A step from the tables: prefill (point = ("prefill", ISL, 0)) or decode (("decode", batch, KV length)); None
    where the attention table has no point."""
    phase, a, b = point
    attention = _attention(t, model, tp, phase, a, b)
    if attention is None:
        return None
    block = attention + sum(gemm(a, n, k) for n, k, _ in _block_gemms(model, tp))
    if tp > 1:
        block += 2 * _allreduce(t, tp, a * model.hidden)
    return model.layers * block + untabled_s


def model_step(dev: DeviceSpec, engine: str, model: ModelSpec, tp: int, point: tuple[str, int, int],
               dtype: str) -> dict[str, float]:
    phase, a, b = point
    shape = InstanceShape(tp=tp)
    if phase == "prefill":
        return prefill_time(model, dev, shape, batch=1, prompt_len=a, engine=engine, dtype=dtype, kv_dtype="bf16")
    return decode_step_time(model, dev, shape, batch=a, context_len=b, engine=engine, dtype=dtype, kv_dtype="bf16")


def tables_only_quant_s(device: str, engine: str, model: ModelSpec, tp: int, m: float) -> float:
    """The FP8 input quantisation work of one step the tables' GEMM rows hold and the engine's step does not: the
    quantise kernels the engine fuses for the model's family, and the amax pass of a dynamic scale (TensorRT-LLM)."""
    dev = profiles.load_device(device)
    k = KernelConstants.of_engine(engine_calibration(dev, engine))
    ek = EngineKernels(dev, k)
    fused = fused_quant_sources(family_fused_quant(engine, MEASURED_FUSED_QUANT[engine], model), model, tp)
    return model.layers * sum((input_quant_s(ek.device, k, m, kk) if src in fused else 0.0)
                              + dynamic_scale_s(SCALE_TABLES, device, engine, m, kk)
                              for _, kk, src in _block_gemms(model, tp))


@dataclass(frozen=True)
class Row:
    device: str
    engine: str
    tp: int
    point: tuple[str, int, int]
    measured: float
    """BF16 step / FP8 step from the tables"""
    model_tables: float
    """the model's ratio with every dense GEMM input quantisation counted (as in the tables)"""
    model_engine: float
    """the model's ratio with the engine's fused quantisations left out (what the engine runs)"""
    measured_bf16_s: float
    model_bf16_s: float

    @property
    def error(self) -> float:
        return self.model_tables / self.measured - 1


def step_ratio_row(device: str, engine: str, t: Tables, gemms: dict[str, GemmTable], model: ModelSpec, tp: int,
             point: tuple[str, int, int]) -> Row | None:
    """Measured and modelled BF16/FP8 ratio of one step (None: not in the attention table)."""
    dev = profiles.load_device(device)
    steps = {d: model_step(dev, engine, model, tp, point, d) for d in ("bf16", "fp8")}
    meas = {d: measured_step(t, gemms[d], model, tp, point, s["time_s"] - sum(s[o] for o in TABLE_OPS))
            for d, s in steps.items()}
    if meas["bf16"] is None or meas["fp8"] is None:
        return None
    fp8_tables = steps["fp8"]["time_s"] + tables_only_quant_s(device, engine, model, tp, point[1])
    return Row(device, engine, tp, point, meas["bf16"] / meas["fp8"], steps["bf16"]["time_s"] / fp8_tables,
               steps["bf16"]["time_s"] / steps["fp8"]["time_s"], meas["bf16"], steps["bf16"]["time_s"])


def rows() -> Iterator[Row]:
    """One row per (device, engine, TP, step) of CASES."""
    points = [("prefill", isl, 0) for isl in PREFILL_ISL] + [("decode", b, c) for b, c in DECODE]
    for device, name, tps in CASES:
        model = profiles.load_model(name)
        for engine in ENGINE_VERSIONS:
            t = load(device, engine)
            gemms = {d: GemmTable(t, d) for d in ("bf16", "fp8")}
            for tp in tps:
                for point in points:
                    row = step_ratio_row(device, engine, t, gemms, model, tp, point)
                    if row is not None:
                        yield row


def _summary(all_rows: list[Row]) -> list[str]:
    lines = ["| device | engine | phase | steps | measured BF16/FP8 (median) | model (tables) median | "
             "model (tables) / measured - 1: median, worst | within 10 % | model (engine) / measured - 1: median |",
             "|---|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple[str, str, str], list[Row]] = {}
    for r in all_rows:
        groups.setdefault((r.device, r.engine, r.point[0]), []).append(r)
    for (device, engine, phase), rs in groups.items():
        err = [r.error for r in rs]
        eng = [r.model_engine / r.measured - 1 for r in rs]
        inside = sum(abs(e) <= TARGET for e in err)
        lines.append(f"| {device} | {engine} | {phase} | {len(rs)} | {statistics.median(r.measured for r in rs):.3f} | "
                     f"{statistics.median(r.model_tables for r in rs):.3f} | "
                     f"{statistics.median(err):+.1%}, {max(err, key=abs):+.1%} | {inside}/{len(rs)} | "
                     f"{statistics.median(eng):+.1%} |")
    return lines


def _detail(all_rows: list[Row]) -> list[str]:
    lines = ["| device | engine | TP | step | measured BF16 step (ms) | model BF16 step (ms) | measured BF16/FP8 | "
             "model (tables) | diff | model (engine) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in all_rows:
        phase, a, b = r.point
        step = f"prefill ISL {a}" if phase == "prefill" else f"decode b {a} KV {b}"
        lines.append(f"| {r.device} | {r.engine} | {r.tp} | {step} | {r.measured_bf16_s * 1e3:.2f} | "
                     f"{r.model_bf16_s * 1e3:.2f} | {r.measured:.3f} | {r.model_tables:.3f} | {r.error:+.1%} | "
                     f"{r.model_engine:.3f} |")
    return lines


def gemm_error_by_m() -> list[str]:
    """Median model / measured - 1 of the GEMM kernels on the shipped models' (n, k) (serve_engine_ops.SHIPPED_GEMMS)
    by m, per engine, device and dtype: where the step ratios' prefill misses come from."""
    ms = (1024, 2048, 4096, 8192, 16384)
    lines = ["| device | engine | dtype | " + " | ".join(f"m {m}" for m in ms) + " |",
             "|---|---|---|" + "---|" * len(ms)]
    for device, _, _ in CASES:
        dev = profiles.load_device(device)
        for engine in ENGINE_VERSIONS:
            ek = EngineKernels(dev, KernelConstants.of_engine(engine_calibration(dev, engine)))
            pts = [p for p in load(device, engine).gemm if (p[1], p[2]) in SHIPPED_GEMMS]
            for dtype in ("bf16", "fp8"):
                cells = [statistics.median((gemm_s(ek, m, n, k, dtype) + (dynamic_scale_s(
                    SCALE_TABLES, device, engine, m, k) if dtype == "fp8" else 0.0)) / t - 1
                    for mm, n, k, d, t in pts if mm == m and d == dtype) for m in ms]
                lines.append(f"| {device} | {engine} | {dtype} | " + " | ".join(f"{c:+.1%}" for c in cells) + " |")
    return lines


def quant_kernel_check() -> list[str]:
    """The fitted quantise kernel (serving_gemm.fp8_quant_s) against the engines' measured static quantise kernel
    (the scale_matrix table the constants are fitted to) at the k of the shipped models' GEMM inputs, by m."""
    ms = (1, 64, 256, 1024, 4096, 16384)
    ks = sorted({k for _, k in SHIPPED_GEMMS})
    lines = ["| device | engine | " + " | ".join(f"m {m}" for m in ms) + " |", "|---|---|" + "---|" * len(ms)]
    for device, _, _ in CASES:
        dev = profiles.load_device(device)
        for engine in ("trtllm", "vllm"):
            ek = EngineKernels(dev, KernelConstants.of_engine(engine_calibration(dev, engine)))
            table = ScaleTable(device, engine, "scale_matrix_perf")
            cells = [statistics.median(fp8_quant_s(ek.device, ek.k, m, k) / table.at(m, k) - 1 for k in ks)
                     for m in ms]
            lines.append(f"| {device} | {engine} | " + " | ".join(f"{c:+.0%}" for c in cells) + " |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent / "results" / "serve_fp8_step.md"))
    args = ap.parse_args()
    all_rows = list(rows())
    lines = ["# FP8 vs BF16 serving step latency: measured per-op tables vs the serving model", "",
             f"Command: `.venv/bin/python benchmarks/serve_fp8_step_ratio.py` (aiconfigurator-core {VERSION} tables; "
             f"engines {', '.join(f'{e} {v}' for e, v in ENGINE_VERSIONS.items())}). {machine_note()}", "",
             (__doc__ or "").split("\n\n", 2)[2].strip(), "", *_summary(all_rows), "",
             "## GEMM kernels: model / measured - 1 by m", "",
             "Median over the shipped models' (n, k) of the fitted GEMM model against the engine's table (FP8 with "
             "its input quantisation, as measured).", "", *gemm_error_by_m(), "", NOTES, "",
             "## The quantise kernel: fitted vs measured", "", QUANT_CHECK, "", *quant_kernel_check(), "",
             "## Every step", "",
             *_detail(all_rows)]
    pathlib.Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(_summary(all_rows)))


if __name__ == "__main__":
    main()
