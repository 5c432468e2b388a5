"""Fit each engine's serving kernel constants per device to aiconfigurator-core's measured per-op tables.

    .venv/bin/pip install 'aiconfigurator-core==0.12.0'
    .venv/bin/python benchmarks/serve_engine_fit.py [--write-profiles] [--refit OP,...] [--engines E,...]
        [--devices D,...] [--out FILE.md]

For each device (--devices; default h100-sxm, h200; b200: the ops of DEVICE_OPS) and engine (trtllm, vllm, sglang),
the points of each table in the serving domain (GEMM m <= 16384 at the (n, k) of the shipped models' dense GEMMs at
TP 1-8; prefill attention with >= 128 tokens per batch and decode attention, both at the head shapes of the shipped
models (SHIPPED); all TP sizes of the all-reduce from 2 KiB to 512 MiB; MoE layers of up to 16384 tokens at the
shipped MoE models' shapes) are split by a stable hash of their key: one in five is held aside, never
seen by the fit. The constants of costmodels/serving_kernels.py and serving_attention.py are fitted op by op on
the rest (least squares of log(predicted / measured), scipy, deterministic start; a size switch of GRID by
trying each value), and the
report gives the median and 90th-percentile |error| on the held-aside points. `--write-profiles` replaces
the `serving_engines:` block at the end of profiles/hardware/<device>.yaml with the fitted values and their
provenance. `--refit` fits only the ops named and `--engines` only the engines named (the others keep the profile's
constants and are evaluated).
Fitting uses only these measured tables (no published end-to-end numbers). The ops themselves (domains, predictors,
fitted constants) are in benchmarks/serve_engine_ops.py.
"""

import argparse
import dataclasses
import functools
import math
import pathlib
import statistics
import sys
import zlib

sys.path[:0] = [str(pathlib.Path(__file__).resolve().parents[1]), str(pathlib.Path(__file__).resolve().parent)]

import numpy as np  # noqa: E402
from aic_quant_tables import STATIC_KERNEL_ROWS  # noqa: E402
from aiconfigurator_tables import ENGINE_VERSIONS, VERSION, Tables, load  # noqa: E402
from machine import machine_note  # noqa: E402
from serve_engine_ops import (  # noqa: E402
    ATTENTION_SM100,
    OPS,
    SHIPPED,
    SHIPPED_GEMMS,
    SHIPPED_MOE,
    WIDE,
    predict_gemm,
    predict_moe,
    predict_moe_block,
)
from serve_fit_start import (  # noqa: E402
    BOUNDS,
    ENGINE_CONSTANTS,
    ENGINE_DEVICE_CONSTANTS,
    ENGINE_DEVICE_START,
    ENGINE_START,
    GRID,
    START,
)

import profiles  # noqa: E402
from costmodels.hardware import DeviceSpec  # noqa: E402
from costmodels.serving_constants import CURVE_RELATIVE, SLOT_KEYS, EngineCalibration, KernelConstants  # noqa: E402
from costmodels.serving_kernels import EngineKernels  # noqa: E402
from costmodels.serving_moe_configs import (  # noqa: E402
    MOE_REFUSED,
    TRTLLM_GEN_MOE,
    config_block_rows,
    default_config,
    flashinfer_fallback_tile,
)
from profiles.hardware import FLAGS  # noqa: E402

HELD_ASIDE = 5
"""one point in HELD_ASIDE (by key hash) is held aside for the error report"""


FITTED: dict[tuple[str, str], EngineCalibration] = {}
"""calibrations fitted earlier in this run, by (device, engine): an engine's rows that run another engine's kernel
(vLLM's FP8 MoE at EP > 1: TensorRT-LLM's constants) are predicted with that engine's new constants, not the
profile's old ones"""


def fitted_device(device: str) -> DeviceSpec:
    """The device profile with the calibrations fitted so far in this run in place of the profile's."""
    dev = profiles.load_device(device)
    mine = {e: c for (d, e), c in FITTED.items() if d == device}
    cals = tuple(mine.pop(c.engine, c) for c in dev.serving_engines) + tuple(mine.values())
    return dataclasses.replace(dev, serving_engines=cals)


def fold(key: tuple) -> int:
    """The point's fold of HELD_ASIDE by a stable hash of its key; fold 0 is the held-aside set."""
    return zlib.crc32(repr(key).encode()) % HELD_ASIDE


def held_aside(key: tuple) -> bool:
    return fold(key) == 0


CROSS_VALIDATED = ("all-reduce",)
"""ops with too few points for a one-in-five p90 (9 held aside: the p90 is the second-worst point): also reported
with every fold held aside in turn (each point predicted by constants fitted without it)"""


def cross_validated(device: str, cal: EngineCalibration, op: str) -> tuple[int, float, float, float]:
    """(points, median, p90, max |error|) of `op` over HELD_ASIDE folds, each predicted by the op's constants
    refitted on the other folds (the other ops' constants from `cal`)."""
    dev = fitted_device(device)
    domain, predict, names = OPS[op]
    points = domain(load(device, cal.engine))
    values = {n: getattr(cal, n) for n in START}
    err = []
    for k in range(HELD_ASIDE):
        train = [p for p in points if fold(p[:-1]) != k]
        fitted = fit_op(dev, values, _constrained(names, predict, cal.engine, device, train), train, predict)
        ek = _kernels(dev, fitted)
        err += [abs(predict(ek, p) / p[-1] - 1) for p in points if fold(p[:-1]) == k]
    err.sort()
    return len(err), statistics.median(err), float(np.quantile(err, 0.9)), err[-1]


VLLM_B200_BLOCK = ("on B200, where vLLM runs FlashInfer's TensorRT-LLM-gen MoE at every EP (kernel_source "
                   "..._trtllmfp8expertsmonolithic), its own fitted moe_blockfp8_* constants plus the per-128-group "
                   "quantisation of the layer's input (moe_blockfp8_quant_s per token-hidden element) and its "
                   "DeepSeek-FP8 activation kernel between the GEMMs (moe_blockfp8_act_s per routed slot and expert "
                   "width element per GPU; serving_kernels.gen_activation_s).")
"""how the report describes vLLM's B200 'moe fp8 block' rows (serve_engine_ops.predict_moe_block)"""
BLOCK_KINDS = ["", "vLLM's 'moe fp8 block' held-aside points by the kernel vLLM 0.24.0 runs on Hopper (the table's "
               "kernel_source): its Triton fused MoE at EP 1 (vllm_fp8moe_triton_tritonexperts, vLLM's own fitted "
               "moe_blockfp8_* constants) and FlashInfer's CUTLASS MoE at EP > 1 (vllm_fp8moe_flashinfer_cutlass_"
               "flashinferexperts, evaluated with TensorRT-LLM's fitted block-scaled constants):", "",
               "| device | kernel | held aside | median err | p90 err | max err |", "|---|---|---|---|---|---|"]


def block_kind_rows(device: str, cals: list[EngineCalibration]) -> list[str]:
    """BLOCK_KINDS rows of `device`: vLLM's held-aside 'moe fp8 block' errors by kernel (EP 1, EP > 1, both); none
    where the device has no such op or vLLM runs one kernel at every EP there (TRTLLM_GEN_MOE)."""
    if "moe fp8 block" not in device_ops(device) or ("vllm", device) in TRTLLM_GEN_MOE:
        return []
    cal = next(c for c in cals if c.engine == "vllm")
    ek = EngineKernels(fitted_device(device), KernelConstants.of_engine(cal))
    test = [p for p in OPS["moe fp8 block"][0](load(device, "vllm")) if held_aside(p[:-1])]
    out = []
    for kernel, points in (("Triton (EP 1)", [p for p in test if p[6] == 1]),
                           ("FlashInfer CUTLASS (EP > 1)", [p for p in test if p[6] > 1]), ("both", test)):
        err = sorted(abs(predict_moe_block(ek, p, "vllm") / p[-1] - 1) for p in points)
        out.append(f"| {device} | {kernel} | {len(err)} | {statistics.median(err):.1%} | "
                   f"{float(np.quantile(err, 0.9)):.1%} | {err[-1]:.1%} |")
    return out


DEVICES = ("h100-sxm", "h200")
"""devices fitted by default (--devices)"""
DEVICE_OPS = {"b200": ("gemm bf16", "fp8 quant", "gemm fp8", "gemm fp4", "prefill attention", "decode attention",
                       "all-reduce", "moe bf16", "moe fp8", "moe fp8 block")}
"""the ops fitted and reported on a device where not all of OPS (B200: no NVFP4 MoE op yet); an engine of
serving_moe_configs.MOE_REFUSED on the device skips its MoE ops (moe_fitted false, serving refuses MoE models)"""
MOE_BAR = (0.08, 0.20)
"""(median, p90) held-aside |error| an engine's MoE ops must meet on a device for serving to time MoE models with its
constants there: 'moe bf16' for any (moe_fitted), 'moe fp8' and 'moe fp8 block' too for FP8 experts (moe_fp8_fitted);
else refused (serving_precision.check_precision, with serving_moe_configs.moe_refusal's reason)"""


def device_ops(device: str) -> tuple[str, ...]:
    """The ops fitted and reported on `device`: DEVICE_OPS, else every op but 'gemm fp4' (Hopper has no FP4)."""
    return DEVICE_OPS.get(device, tuple(op for op in OPS if op != "gemm fp4"))


DEVICE_CONSTANTS = {"b200": dict(gemm_sms=148.0)}
"""constants of a device read from its datasheet, not fitted (B200: 148 SMs)"""


def _kernels(dev: DeviceSpec, values: dict) -> EngineKernels:
    return EngineKernels(dev, KernelConstants(**values))




FP4_QUANT_FROM_FP8 = ("vllm",)
"""engines whose NVFP4 input quantise kernel's fixed time fp4_quant_s is their FP8 quantise kernel's fp8_quant_s,
measured on its own table ('fp8 quant'), not fitted in 'gemm fp4': vLLM 0.24.0's NVFP4 rows do run
_C.scaled_fp4_quant before FlashInfer's CuTe-DSL GEMM (compressed_tensors_w4a4_nvfp4 ->
FlashInferCuteDslNvFp4LinearKernel.apply_weights), but the rows cannot tell its fixed time from the GEMM's size ramp
(fitted, it ran to its 1e-9 bound; held at the FP8 kernel's 2.16 us the held-aside error moved 6.0/16.0 ->
6.1/16.1 %); another one-pass activation quantise kernel of the same engine stands for it"""


def op_names(op: str, engine: str) -> tuple[str, ...]:
    """The constants `op` fits for `engine`: where the engine's scale_matrix table times its GEMM rows' quantise kernel
    (STATIC_KERNEL_ROWS) 'fp8 quant' fits them and 'gemm fp8', after it, keeps them and fits the GEMM's own time per
    row; else 'gemm fp8' fits them (the quantise kernel's time per row standing for both)."""
    measured = engine in STATIC_KERNEL_ROWS
    if op == "fp8 quant":  # one thread block per row: vLLM's static_scaled_fp8_quant (grid = rows)
        return tuple(n for n in OPS[op][2] if n != "fp8_quant_row_bytes_per_s" or engine == "vllm") if measured else ()
    if op == "gemm fp8":
        return tuple(n for n in OPS[op][2] if n not in (OPS["fp8 quant"][2] if measured else ("fp8_gemm_row_s",)))
    if op == "gemm fp4" and engine in FP4_QUANT_FROM_FP8:  # its fixed time is the FP8 quantise kernel's
        return tuple(n for n in OPS[op][2] if n != "fp4_quant_s")
    return OPS[op][2]


def _residuals(dev: DeviceSpec, values: dict, names, x, points, predict):
    ek = _kernels(dev, {**values, **dict(zip(names, np.exp(x), strict=True))})
    return np.array([math.log(predict(ek, p) / p[-1]) for p in points])


def _constrained(names, predict, engine: str, device: str, train) -> tuple:
    """The constants to fit, less a MoE default-config efficiency when no training point runs a default tile
    config (TensorRT-LLM, vLLM's FP8 experts): no table constrains it, it keeps its START value (1: unused); likewise
    the MHA decode kernel's per-block streaming time for an engine without that term (decode_mha_block_tokens 0)."""
    if not ENGINE_CONSTANTS.get(engine, {}).get("decode_mha_block_tokens"):
        names = tuple(n for n in names if n != "decode_mha_token_s")
    names = tuple(n for n in names if n not in _unused_allreduce(engine, device))
    if "fp8_gemm_row_chunk_s" not in ENGINE_DEVICE_START.get((engine, device), {}):  # vLLM's per-token quantise
        names = tuple(n for n in names if n != "fp8_gemm_row_chunk_s")  # program: vLLM only
    names = tuple(n for n in names if n not in ENGINE_CONSTANTS.get(engine, {})  # read from source, not fitted
                  and n not in ENGINE_DEVICE_CONSTANTS.get((engine, device), {}))
    sm100 = ATTENTION_SM100.get((engine, device), {})
    if not sm100.get("kv_warm_l2"):  # no warm-L2 reads: their rate unused
        names = tuple(n for n in names if n != "kv_l2_bytes_per_s")
    if sm100.get("decode_mha_as_gqa"):  # MHA decode on the GQA kernel: no MHA kernel constants
        names = tuple(n for n in names if not n.startswith("decode_mha_"))
    # the MoE predictors, bound to their engine
    if getattr(predict, "func", None) not in (predict_moe, predict_moe_block):
        return names
    # a term off at START (0) is fitted only for engines with their own start (ENGINE_START); FlashInfer's
    # fallback tile (vLLM FP8) has fixed 128-row tiles
    own = {**ENGINE_START.get(engine, {}), **ENGINE_DEVICE_START.get((engine, device), {})}
    names = tuple(n for n in names if START.get(n, 1.0) > 0 or n in own)
    if "moe_blockfp8_efficiency" not in names:  # no block-scaled kernel of its own: its other constants unused
        names = tuple(n for n in names if not n.startswith("moe_blockfp8_"))
    if flashinfer_fallback_tile(engine, "fp8") and (engine, device) not in TRTLLM_GEN_MOE:
        names = tuple(n for n in names if n != "moe_fp8_block_rows")
    if (engine, device) in TRTLLM_GEN_MOE:  # its token tiles come from FlashInfer's rule (trtllm_gen_tile)
        names = tuple(n for n in names if n not in ("moe_block_rows", "moe_fp8_block_rows", "moe_blockfp8_block_rows"))
    if own.get("moe_gen_l2_bytes"):  # its L2 term sets the re-read share: no flat share of its own
        names = tuple(n for n in names if n != "moe_block_weight_reads")
    block = getattr(predict, "func", None) is predict_moe_block  # FP8 experts with block scales: those configs
    if all(config_block_rows(engine, device, p[0], p[4] / p[6], p[2] / p[5], p[7], block) for p in train):
        names = tuple(n for n in names if not n.endswith("block_rows"))  # every row on a config's (file's) block
    if any(default_config(engine, device, p[4] / p[6], p[2] / p[5], p[7], block) for p in train):
        return names
    return tuple(n for n in names if not n.endswith("default_efficiency"))


ALLREDUCE_DOMAIN = ("all-reduce 1 Ki-256 Mi elements (9 held-aside points per engine: the p90 is the second-worst; "
                    "cross-validated over all folds below; vLLM by the algorithm its SM100 (B200) / SM90 (H100/H200) "
                    "size tables pick: custom one-/two-stage kernel, torch symmetric memory, PyNCCL; TensorRT-LLM "
                    "1.3.0rc20 by its AUTO strategy's 64 MiB workspace limit and lookup table, SM100 on B200, SM90 on "
                    "H100/H200: one-shot, two-shot, NCCL; SGLang on H100/H200 by its CustomAllReduceV2 tables: one-shot"
                    " push, one-shot pull, two-shot pull to 16 MiB, then NCCL); ")
"""the report's all-reduce domain and algorithm choice (serve_engine_fit main)"""


def _unused_allreduce(engine: str, device: str) -> tuple[str, ...]:
    """All-reduce constants the engine's algorithm choice leaves unused on the device: vLLM's SM100 / SM90 size tables
    stand for the custom kernel's size limit (its two-stage kernel has the one-shot efficiency, the two-shot one is
    torch symmetric memory's two-shot kernel's); on SM90 its two-stage kernel runs at n = 4 alone of the measured
    world sizes (at 8 its custom kernel stops at 256 KiB, one-stage), so no per-peer two-stage time beside its
    call time, and no pass bound (fitted, it fell below where it binds: the 450 GB/s link binds first); SGLang's
    Hopper tables (allreduce_sglang_v2) stand for the limit, no symmetric memory, no pass bound; TensorRT-LLM's
    Blackwell and Hopper rules (allreduce_trtllm_sm100 / _sm90) stand for the limit; elsewhere no per-peer two-stage
    time either."""
    rules = ENGINE_DEVICE_CONSTANTS.get((engine, device), {})
    if rules.get("allreduce_vllm_sm100"):
        return ("allreduce_custom_max_bytes",)
    if rules.get("allreduce_vllm_sm90"):
        return ("allreduce_custom_max_bytes", "allreduce_twoshot_hop_s", "allreduce_pass_s")
    if rules.get("allreduce_sglang_v2"):  # its tables stand for the limit
        return ("allreduce_custom_max_bytes", "allreduce_symm_call_s", "allreduce_symm_efficiency", "allreduce_pass_s")
    unused = ("allreduce_twoshot_hop_s", "allreduce_symm_call_s", "allreduce_symm_efficiency", "allreduce_pass_s")
    if rules.get("allreduce_trtllm_sm100") or rules.get("allreduce_trtllm_sm90"):
        return ("allreduce_custom_max_bytes", *unused)
    return unused


def fit_op(dev: DeviceSpec, values: dict, names, points, predict, starts: tuple[dict, ...] = ()) -> dict:
    """Least squares of the op's constants from `values` and from each of `starts` (other starting points of some
    of them), keeping the lowest cost; a constant of GRID is tried at each of its values."""
    fits = [fit for start in ({}, *starts) for fit in _grid_fits(dev, {**values, **start}, names, points, predict)]
    return min(fits, key=lambda f: f[1])[0]


def _grid_fits(dev: DeviceSpec, values: dict, names, points, predict) -> list[tuple[dict, float]]:
    grid = [n for n in names if n in GRID]
    if not grid:
        return [_least_squares(dev, values, names, points, predict)]
    rest = [n for n in names if n not in GRID]
    return [_least_squares(dev, {**values, grid[0]: g}, rest, points, predict) for g in GRID[grid[0]]]


def _least_squares(dev: DeviceSpec, values: dict, names, points, predict) -> tuple[dict, float]:
    from scipy.optimize import least_squares

    lo = [math.log(BOUNDS.get(n, (1e-9, 1e13))[0]) for n in names]
    hi = [math.log(1.0 / values[CURVE_RELATIVE[n]] if n in CURVE_RELATIVE else BOUNDS.get(n, (1e-9, 1e13))[1])
          for n in names]
    x0 = [min(max(math.log(values[n]), a + 1e-6), b - 1e-6) for n, a, b in zip(names, lo, hi, strict=True)]
    res = least_squares(lambda x: _residuals(dev, values, names, x, points, predict), x0, bounds=(lo, hi),
                        loss="soft_l1", f_scale=0.1, x_scale=1.0, max_nfev=400)
    return {**values, **{n: float(f"{math.exp(v):.4g}") for n, v in zip(names, res.x, strict=True)}}, res.cost


FIT_AFTER = {"gemm fp4": "decode attention"}
"""op -> the op whose constants it reads, fitted first (a full refit otherwise fits OPS in order): vLLM's NVFP4
quantise reads its warm input at the L2 rate decode attention fits (fp4_quant_warm_l2, kv_l2_bytes_per_s)"""


def fit_order() -> list[str]:
    """OPS in the order the fit takes them: OPS's, each op of FIT_AFTER moved to just after the op it reads."""
    order = [op for op in OPS if op not in FIT_AFTER]
    for op, after in FIT_AFTER.items():
        order.insert(order.index(after) + 1, op)
    return order


def fit(device: str, engine: str, refit: tuple[str, ...] = tuple(OPS)) -> tuple[EngineCalibration, list[tuple]]:
    """Fitted constants and the report rows (op, points fitted, held aside, median, p90, max |error|), every row
    evaluated on the final constants; ops not in `refit` keep the constants the device profile has (and are only
    evaluated)."""
    dev = fitted_device(device)
    tables: Tables = load(device, engine)
    values = {**START, **ENGINE_START.get(engine, {}), **ENGINE_CONSTANTS.get(engine, {}),
              **DEVICE_CONSTANTS.get(device, {}), **ENGINE_DEVICE_CONSTANTS.get((engine, device), {}),
              **ENGINE_DEVICE_START.get((engine, device), {})}
    if set(refit) != set(OPS):  # the profile's constants, except those fitted again (from START, as always)
        have = {c.engine: c for c in dev.serving_engines}
        fitted = {n for op in refit for n in op_names(op, engine)}
        values.update({n: getattr(have[engine], n) for n in START if engine in have and n not in fitted})
    values.update(ENGINE_DEVICE_CONSTANTS.get((engine, device), {}))  # a rule read from source, not the profile's
    ops = [op for op in fit_order() if op in device_ops(device)
           and not (op.startswith("moe") and (engine, device) in MOE_REFUSED)]
    for op in ops:
        names = op_names(op, engine) if op in refit else ()
        if op == "gemm fp4" and engine in FP4_QUANT_FROM_FP8:
            values["fp4_quant_s"] = values["fp8_quant_s"]
        domain, predict = _op_predictor(op, engine, device)
        train = [p for p in domain(tables) if not held_aside(p[:-1])]
        names = _constrained(names, predict, engine, device, train)
        if names and train:
            # an engine's own starting point (ENGINE_START) competes with START's where both exist
            alt = {n: START[n] for n in names if n in ENGINE_START.get(engine, {}) and START[n] > 0}
            values = fit_op(dev, values, names, train, predict, (alt,) if alt else ())
    ek = _kernels(dev, values)
    rows = [_report_row(op, ek, tables, engine, device) for op in OPS if op in ops]
    if "gemm fp4" not in device_ops(device):  # no NVFP4 on the device: its FP4 constants stay off (0)
        values.update({n: 0.0 for n in OPS["gemm fp4"][2]})
    moe, moe_fp8, moe_block = moe_served(rows)
    nvfp4 = " (incl. nvfp4)" if "gemm fp4" in device_ops(device) else ""
    source = (f"fitted by benchmarks/serve_engine_fit.py to aiconfigurator-core {VERSION} measured tables "
              f"({tables.device} {engine} {tables.version}: gemm{nvfp4}, context/generation attention, custom "
              "all-reduce; " + ("MoE not fitted)" if not any(r[0].startswith("moe") for r in rows) else
                                 "balanced MoE" + _moe_note(moe, moe_fp8, moe_block) + ")"))
    return EngineCalibration(engine=engine, source=source, moe_fitted=moe, moe_fp8_fitted=moe_fp8,
                             moe_blockfp8_fitted=moe_block, **values), rows


def _op_predictor(op: str, engine: str, device: str):
    """(domain, predictor) of the op, the predictor bound to the engine (and device) where it depends on them."""
    domain, predict, _ = OPS[op]
    if predict in (predict_moe, predict_moe_block):  # which shapes have tuned kernel configs depends on the engine
        predict = functools.partial(predict, engine=engine)
    elif predict is predict_gemm:  # which engines' FP8 rows quantise dynamically (aic_quant_tables)
        predict = functools.partial(predict, engine=engine, device=device)
    return domain, predict


def _report_row(op: str, ek, tables: Tables, engine: str, device: str) -> tuple:
    """(op, points fitted, held aside, median, p90, max |error| held aside, whole-table median, p90) on `ek`."""
    domain, predict = _op_predictor(op, engine, device)
    points = domain(tables)
    train = [p for p in points if not held_aside(p[:-1])]
    test = [p for p in points if held_aside(p[:-1])]
    if not train:
        return (op, 0, 0, math.nan, math.nan, math.nan, math.nan, math.nan)
    err = sorted(abs(predict(ek, p) / p[-1] - 1) for p in test)
    wide = sorted(abs(predict(ek, p) / p[-1] - 1) for p in WIDE.get(op, domain)(tables) if held_aside(p[:-1]))
    return (op, len(train), len(test), statistics.median(err), float(np.quantile(err, 0.9)), err[-1],
            statistics.median(wide), float(np.quantile(wide, 0.9)))


def _moe_note(moe: bool, fp8: bool, block: bool) -> str:
    """What of an engine's MoE the source line says is not served (moe_served)."""
    if not moe:
        return ", not served: it misses the accuracy bar"
    kinds = [k for k, ok in (("per-tensor", fp8), ("block-scaled", block)) if not ok]
    return f", {' and '.join(kinds)} FP8 experts not served: they miss the accuracy bar" if kinds else ""


def moe_served(rows: list[tuple]) -> tuple[bool, bool, bool]:
    """(moe_fitted, moe_fp8_fitted, moe_blockfp8_fitted) of an engine's report rows: its 'moe bf16' row, and with it
    its 'moe fp8' row, its 'moe fp8 block' row, meet MOE_BAR (held-aside median and p90 |error|); False without MoE
    rows."""
    def meets(ops: tuple[str, ...]) -> bool:
        mine = [r for r in rows if r[0] in ops]
        return bool(mine) and all(r[3] <= MOE_BAR[0] and r[4] <= MOE_BAR[1] for r in mine)
    moe = meets(("moe bf16",))
    return moe, moe and meets(("moe fp8",)), moe and meets(("moe fp8 block",))


def yaml_block(cals: list[EngineCalibration]) -> str:
    lines = ["serving_engines:", "  # per-engine kernel constants (costmodels/serving_kernels.py), "
             "written by benchmarks/serve_engine_fit.py --write-profiles"]
    for cal in cals:
        lines.append(f"  {cal.engine}:")
        for f in dataclasses.fields(cal):
            v = getattr(cal, f.name)
            if f.name in ("engine", *SLOT_KEYS) or (f.name in FLAGS and v):  # flags written only where false
                continue
            if f.name.startswith("fp4_") and not cal.fp4_gemm_efficiency_max:  # no NVFP4 fit (Hopper)
                continue
            lines.append(f"    {f.name}: {v!r}" if f.name not in ("source", *FLAGS) else
                         f"    source: \"{v}\"" if f.name == "source" else f"    {f.name}: false")
    return "\n".join(lines) + "\n"


def write_profile(device: str, cals: list[EngineCalibration]) -> None:
    path = pathlib.Path(profiles.__file__).resolve().parent / "hardware" / f"{device}.yaml"
    text = path.read_text()
    head = text.split("\nserving_engines:")[0].rstrip("\n") + "\n"
    path.write_text(head + yaml_block(cals))


def _checked(ap: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """The engines to fit, after checking --refit and --engines (exit with a message naming the valid choices)."""
    if not set(args.refit.split(",")) <= set(OPS):
        sys.exit(f"--refit: unknown op in {args.refit!r}; ops: {', '.join(OPS)}")
    if "fp8 quant" in args.refit.split(",") and "gemm fp8" not in args.refit.split(","):
        ap.error("--refit: 'fp8 quant' also needs 'gemm fp8' (fitted on top of the quantise kernel's constants)")
    if not set(args.devices.split(",")) <= {*DEVICES, *DEVICE_OPS}:
        sys.exit(f"--devices: unknown device in {args.devices!r}; devices: {', '.join((*DEVICES, *DEVICE_OPS))}")
    engines = args.engines.split(",")
    if not set(engines) <= set(ENGINE_VERSIONS):
        sys.exit(f"--engines: unknown engine in {args.engines!r}; engines: {', '.join(ENGINE_VERSIONS)}")
    return engines


def _arguments() -> tuple[argparse.Namespace, list[str]]:
    """The command line and the engines to fit."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--write-profiles", action="store_true")
    ap.add_argument("--refit", default=",".join(OPS),
                    help="ops to fit (comma-separated; the others keep the profile's constants): " + ", ".join(OPS))
    ap.add_argument("--engines", default=",".join(ENGINE_VERSIONS),
                    help="engines whose constants are fitted (the others keep the profile's and are only evaluated)")
    ap.add_argument("--devices", default=",".join(DEVICES),
                    help="device profiles to fit: " + ", ".join(DEVICES) + ", b200 (the ops of DEVICE_OPS)")
    ap.add_argument("--out", default=None, help="report (default: results/serve_engines.md, or, for devices none of "
                    "which is fitted by default, results/serve_engines_<devices>.md, e.g. serve_engines_b200.md)")
    args = ap.parse_args()
    if args.out is None:
        devices = args.devices.split(",")
        name = "serve_engines" + ("" if set(devices) & set(DEVICES) else "_" + "_".join(devices)) + ".md"
        args.out = str(pathlib.Path(__file__).resolve().parent / "results" / name)
    return args, _checked(ap, args)


def main() -> None:
    args, engines = _arguments()
    partial = set(args.refit.split(",")) != set(OPS) or set(engines) != set(ENGINE_VERSIONS)
    out = ["# serving kernel constants fitted to measured per-op tables", "",
           "Command: `.venv/bin/python benchmarks/serve_engine_fit.py --write-profiles"
           + (f" --refit '{args.refit}' --engines {args.engines}" if partial else "")
           + (f" --devices {args.devices}" if args.devices != ",".join(DEVICES) else "") + "` "
           f"(aiconfigurator-core {VERSION}). {machine_note()}", "",
           "Error = |model / measured - 1| on the held-aside points (one in five by key hash, not used by the fit). "
           "Domain: GEMM m <= 16384 with the (n, k) of a dense GEMM (QKV, output, gate+up, down) of a model "
           f"profile at TP 1-8 (of its {len(SHIPPED_GEMMS)} (n, k) pairs, those on the table's grid; the whole-table "
           "columns: every n, k >= 512); prefill attention (>= 128 tokens) and decode attention: head_dim "
           "128 and the (query heads, KV heads) per GPU the serving model issues for the GQA/MHA model profiles at "
           "TP 1-8 (" + ", ".join(f"{h}/{g}" for h, g in sorted(SHIPPED)) + "); the last two columns give the same "
           "constants on the whole attention table (every head count and width 64-512, incl. GQA groups of 24-128 "
           "no shipped model has; on B200 with the Blackwell attention terms of costmodels/serving_attention_sm100.py, "
           "serve_engine_ops.ATTENTION_SM100, SGLang's rows those of its default trtllm_mha backend); "
           + ALLREDUCE_DOMAIN +
           "MoE <= 16384 tokens, moe_tp x ep <= 16, balanced routing, the (hidden, expert width, "
           "top-k, experts) of the MoE model profiles, FP8 with per-tensor scales (SGLang's table has only "
           "128x128 block scales: those) (" + ", ".join("/".join(map(str, s)) for s in sorted(SHIPPED_MOE))
           + "; the whole-table columns: every MoE shape of the table). vLLM's and SGLang's Triton MoE kernels run "
           "a tuned tile config where the release ships one for (local experts, expert width per GPU), else its "
           "default config (costmodels/serving_moe_configs.py, from the wheels' file listings). vLLM's FP8 MoE rows "
           "are evaluated on the fallback tile the table timed (FlashInfer's CUTLASS fused MoE, never autotuned by the "
           "collector: costmodels/serving_moe_flashinfer.py); serving uses the tuned kernel vLLM autotunes at "
           "startup, timed with TensorRT-LLM's fitted FP8 MoE constants of the same device. All engines' MoE points "
           "are predicted on the rows their collector built (benchmarks/aic_moe_workload.py: balanced routing; "
           "SGLang's Mixtral rows under EP on the bare kernel, GPU 0's remote slots computed by its expert 0; "
           "DeepSeek-V3's grouped top-k (vLLM and SGLang) favouring groups 0-3 and experts 0-4; TensorRT-LLM's B200 "
           "rows read the hit experts' weights from L2 where they fit: MOE_WARM_L2); serving keeps each engine's own "
           "expert-parallel layer. 'moe fp8 block': FP8 experts with 128x128 block scales "
           "(DeepSeek-V3-style checkpoints, served with --quant-block), the table's fp8_block rows: TensorRT-LLM's "
           "CUTLASS MoE fitted with its own constants (moe_blockfp8_*); SGLang's rows are its 'moe fp8' rows, on "
           "those constants (not refitted); vLLM's, on the rows its collector built, by the kernel vLLM 0.24.0 "
           "picks for block FP8 on Hopper, as serving times them: at EP 1 its Triton fused MoE (scales applied per "
           "128-deep k step inside the k loop; its shipped block-FP8 tile configs or the default one) with vLLM's "
           "own fitted moe_blockfp8_* constants, at EP > 1 FlashInfer's CUTLASS MoE evaluated with TensorRT-LLM's "
           "fitted block-scaled constants of the same device (TensorRT-LLM's kernel, autotuned at vLLM's startup; "
           "not fitted to vLLM's untuned rows); by kernel in the last table; " + VLLM_B200_BLOCK + " "
           "'fp8 quant': the static-scale FP8 input quantise kernel on its own measured table (scale_matrix, m <= "
           "16384, k 512 to the widest shipped GEMM input; TensorRT-LLM and vLLM; SGLang's table times a torch "
           "composite, not the per-token kernel its GEMM rows run: its quantise constants are fitted in 'gemm fp8'), "
           "fixed in 'gemm fp8'. TensorRT-LLM's FP8 GEMM rows are "
           "predicted as GEMM + the static quantise kernel + the amax pass of the dynamic input scale its "
           "collector runs (no input_scale loaded), read from the measured compute_scale table "
           "(benchmarks/aic_quant_tables.py); serving prices static-scale checkpoints without that pass.",
           "",
           "| device | engine | op | fitted on | held aside | median err | p90 err | max err | whole table median "
           "| whole table p90 |", "|---|---|---|---|---|---|---|---|---|---|"]
    cv = ["", f"{HELD_ASIDE}-fold cross-validation of the ops with few points (the held-aside split above is "
          "fold 0; each point predicted by the op's constants fitted on the other folds):", "",
          "| device | engine | op | points | median err | p90 err | max err |", "|---|---|---|---|---|---|---|"]
    kinds = list(BLOCK_KINDS)
    for device in args.devices.split(","):
        cals = []
        for engine in ENGINE_VERSIONS:
            cal, rows = fit(device, engine, tuple(args.refit.split(",")) if engine in engines else ())
            cals.append(cal)
            FITTED[device, engine] = cal
            for op, n_fit, n_test, med, p90, worst, w_med, w_p90 in rows:
                if not n_fit:  # no measured table for this engine (SGLang's 'fp8 quant', see the text)
                    continue
                out.append(f"| {device} | {engine} | {op} | {n_fit} | {n_test} | {med:.1%} | {p90:.1%} | {worst:.1%} "
                           f"| {w_med:.1%} | {w_p90:.1%} |")
            print(device, engine, [(r[0], f"{r[3]:.3f}", f"{r[4]:.3f}") for r in rows], file=sys.stderr)
        cals.sort(key=lambda c: c.engine)
        cv.extend(f"| {device} | {cal.engine} | {op} | " + " | ".join(
            f"{v:.1%}" if i else str(v) for i, v in enumerate(cross_validated(device, cal, op))) + " |"
            for cal in cals for op in CROSS_VALIDATED)
        kinds += block_kind_rows(device, cals)
        if args.write_profiles:
            write_profile(device, cals)
        print(yaml_block(cals))
    out += cv + kinds
    pathlib.Path(args.out).write_text("\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
