"""Fit a few physical efficiency parameters per GPU die against measured training runs.

    .venv/bin/python benchmarks/calibrate.py [--dir ../shared/calibration] [--write]

Rows: every usable row of ../shared/calibration/published_training_runs.csv (Megatron 2021 paper + README on
A100-80GB, Megatron-LM README on H100-SXM; MoE rows are reported, not fitted) and torchtitan_fsdp_runs.csv
(FSDP2 with TP/PP/CP, compile, Float8, async TP on A100, the 500 W H100 and H200). Parts sharing a die form a
family (FAMILIES) whose efficiencies are fitted jointly, each row costed on its own part's datasheet.
Nelder-Mead (deterministic: seeded coarse search, then simplex) on

    sum over rows of log(predicted / published)^2  (+ a penalty beyond +-12 %)

over these DeviceCalibration fields, each kept in a physical range (a parameter no row exercises keeps its
profile value):
  gemm_efficiency_max, gemm_half_flops           16-bit GEMM curve (A100: the knee FIXED from measured kernels)
  fp8_gemm_efficiency_max, fp8_gemm_half_flops   FP8 GEMM curve (its own: FP8 rows only)
  attention_efficiency, attention_half_work      fused attention, rising with row length (A100: FIXED from
                                                 measured FlashAttention-2 kernels, A100_KERNELS)
  eager_elementwise_factor [1, 8]                element-wise traffic of uncompiled PyTorch (torchtitan rows)
  sdpa_attention_factor [0.3, 1]                 PyTorch SDPA flash (FA2) speed relative to cuDNN/TE attention
                                                 (A100: 1, its attention curve is FA2's own)
  dp_overlap [0, 1]                              ZeRO 0/1/2 step-level traffic hidden behind compute
  tp_overlap [0, 0.9]                            TP traffic hidden when TP overlap / async TP is on
hbm_efficiency (0.85), inter_node_efficiency (0.90: nccl-tests 46-48 GB/s on a 50 GB/s NIC),
intra_node_efficiency (FIXED, from nccl-tests bus bandwidths) and the latencies stay at their
datasheet-derived values. No per-row parameter exists. --write stores the fit in the `calibration:` block of
profiles/hardware/<device>.yaml for every part of the family (nothing else in the file changes).
"""

import argparse
import dataclasses
import math
import pathlib
import re
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from published_runs import load_all_rows, predict  # noqa: E402

from costmodels import DeviceCalibration  # noqa: E402
from profiles import load_device  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_DIR = REPO.parent / "shared" / "calibration"
PARAMS = {  # name: (low, high, log-scaled)
    "gemm_efficiency_max": (0.50, 0.95, False),
    "gemm_half_flops": (1e8, 5e11, True),
    "fp8_gemm_efficiency_max": (0.30, 0.95, False),
    "fp8_gemm_half_flops": (1e8, 2e12, True),
    "attention_efficiency": (0.10, 0.90, False),
    "attention_half_work": (16.0, 1e5, True),
    "eager_elementwise_factor": (1.0, 8.0, False),
    "sdpa_attention_factor": (0.3, 1.0, False),
    "dp_overlap": (0.0, 1.0, False),
    "tp_overlap": (0.0, 0.9, False),
}
FAMILIES = {
    # one die and its efficiencies (fractions of each part's own datasheet peaks), fitted jointly on every
    # row of the family's parts: the H100 die runs as H100 SXM (700 W), the 500 W 96 GB part and H200
    "a100": ("a100-80gb",),
    "h100": ("h100-sxm", "h100-96gb-500w", "h200"),
}
A100_KERNELS = {"attention_efficiency": 0.593, "attention_half_work": 660.0, "gemm_half_flops": 2.37e9}
"""A100 constants from measured kernel tables (benchmarks/a100_kernel_fit.py): FlashAttention-2's curve (the A100
rows cannot tell attention from eager element-wise time; the fit left attention_efficiency at the top of its
range) and the GEMM size knee (every A100 GEMM of the rows has >= 1e10 FLOPs; the fit left it at the bottom)"""
FIXED = {
    # 2021 Megatron stack and torchtitan on A100: no TP overlap anywhere in the rows; NVLink3 all-reduce bus
    # bandwidth ~230 of 300 GB/s (nccl-tests#175) -> 0.75. No FP8 tensor cores. Every fused-attention A100 row
    # runs SDPA's FlashAttention-2, the kernel A100_KERNELS measures: sdpa_attention_factor 1.
    "a100": {"tp_overlap": 0.0, "intra_node_efficiency": 0.75, "fp8_gemm_efficiency_max": 0.60,
             "fp8_gemm_half_flops": 1e11, "sdpa_attention_factor": 1.0, **A100_KERNELS},
    # NVLink4 all-gather/reduce-scatter bus bandwidth at 16-256 MiB is 216-332 of 450 GB/s (nccl-tests via
    # APEX+ profiles, costmodels.md 4.3) -> 0.70.
    "h100": {"intra_node_efficiency": 0.70},
}
RANGES = {
    # flash attention on H100 reaches 30-75 % of the dense peak in forward, less in backward (the 2021 A100 rows
    # ran unfused attention: batched GEMMs and the scores through HBM, no attention efficiency)
    "h100": {"attention_efficiency": (0.30, 0.85, False)},
}
DERIVED = {"a100-40gb": "a100-80gb", "h800": "h100-sxm"}
"""devices without rows that share a fitted family's die and software stack: the GEMM, attention and overlap
fractions carry over; their own datasheet figures (HBM size and bandwidth, NVLink) differ in their profiles.
b200, h100-pcie, mi300x and l40s keep uncalibrated defaults."""
CSV_NAMES = "published_training_runs.csv + torchtitan_fsdp_runs.csv"
SOURCE = f"training fields fitted by benchmarks/calibrate.py ({CSV_NAMES})"


def family_of(profile: str) -> str:
    return next((f for f, members in FAMILIES.items() if profile in members), profile)


def _range(profile, name):
    return RANGES.get(family_of(profile), {}).get(name, PARAMS[name])


def _decode(x, names, profile):
    out = {}
    for v, name in zip(x, names, strict=True):
        lo, hi, log = _range(profile, name)
        u = 1 / (1 + math.exp(-v))  # unconstrained -> (0, 1)
        out[name] = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))) if log else lo + u * (hi - lo)
    return out


def _encode(values, names, profile):
    x = []
    for name in names:
        lo, hi, log = _range(profile, name)
        v = values[name]
        u = (math.log(v) - math.log(lo)) / (math.log(hi) - math.log(lo)) if log else (v - lo) / (hi - lo)
        u = min(max(u, 1e-3), 1 - 1e-3)
        x.append(math.log(u / (1 - u)))
    return np.array(x)


def errors(rows, device) -> list[float]:
    """Relative errors (predicted / published - 1) of the rows on `device`."""
    return [predict(r, device)[0] / r.published - 1 for r in rows]


def family_errors(rows, calibration: DeviceCalibration, devices: dict) -> list[float]:
    """Relative errors of rows of several parts, each on its own datasheet with the shared calibration."""
    return [predict(r, dataclasses.replace(devices[r.gpu_profile], calibration=calibration))[0] / r.published - 1
            for r in rows]


def _loss(errs) -> float:
    logs = [math.log(1 + e) for e in errs]
    return sum(v * v for v in logs) + 10 * sum(max(0.0, abs(v) - 0.12) ** 2 for v in logs)


def nelder_mead(fun, x0, steps=400, scale=0.5):
    """Plain Nelder-Mead (deterministic; no scipy needed)."""
    n = len(x0)
    simplex = [np.array(x0, float)] + [np.array(x0, float) + scale * np.eye(n)[i] for i in range(n)]
    values = [fun(x) for x in simplex]
    for _ in range(steps):
        order = np.argsort(values)
        simplex, values = [simplex[i] for i in order], [values[i] for i in order]
        centroid = np.mean(simplex[:-1], axis=0)
        reflected = centroid + (centroid - simplex[-1])
        fr = fun(reflected)
        if fr < values[0]:
            expanded = centroid + 2 * (centroid - simplex[-1])
            fe = fun(expanded)
            simplex[-1], values[-1] = (expanded, fe) if fe < fr else (reflected, fr)
        elif fr < values[-2]:
            simplex[-1], values[-1] = reflected, fr
        else:
            contracted = centroid + 0.5 * (simplex[-1] - centroid)
            fc = fun(contracted)
            if fc < values[-1]:
                simplex[-1], values[-1] = contracted, fc
            else:
                simplex = [simplex[0] + 0.5 * (s - simplex[0]) for s in simplex]
                values = [fun(s) for s in simplex]
    best = int(np.argmin(values))
    return simplex[best], values[best]


def fit_device(profile: str, rows) -> DeviceCalibration:
    """The calibration of `profile` fitted on `rows` (rows of any part of its family, each costed on its own
    datasheet with the one shared calibration)."""
    family = family_of(profile)
    base = load_device(profile)
    devices = {r.gpu_profile: load_device(r.gpu_profile) for r in rows}
    fixed = FIXED.get(family, {})
    names = [n for n in PARAMS if n not in fixed and _used(n, rows)]

    def calibration(values):
        return dataclasses.replace(base.calibration, **values, **fixed, source=SOURCE)

    def fun(x):
        return _loss(family_errors(rows, calibration(_decode(x, names, profile)), devices))

    # deterministic coarse search over the box (seeded), then Nelder-Mead from the best few points
    rng = np.random.default_rng(0)
    starts = sorted((fun(x), i, x) for i, x in enumerate(rng.uniform(-3, 3, size=(120, len(names)))))
    best_x, best_f = None, math.inf
    for _, _, x0 in starts[:3]:
        x, f = nelder_mead(fun, x0, steps=250)
        if f < best_f:
            best_x, best_f = x, f
    x, _ = nelder_mead(fun, best_x, steps=150, scale=0.2)
    return calibration(_decode(x, names, profile))


def _used(name: str, rows) -> bool:
    """Whether any row exercises the parameter (otherwise it keeps the profile's value)."""
    w = [r.workload for r in rows]
    if name.startswith("fp8_"):
        return any(x.dtype == "fp8" for x in w)
    if name == "eager_elementwise_factor":
        return any(not x.fused_elementwise for x in w)
    if name == "sdpa_attention_factor":
        return any(x.framework == "torchtitan" for x in w)
    if name == "tp_overlap":
        return any(r.config.tp > 1 and x.tp_overlap for r, x in zip(rows, w, strict=True))
    if name == "dp_overlap":
        return any(r.config.zero < 3 and r.config.dp > 1 for r in rows)
    return True


def fitted_values(profile: str, cal: DeviceCalibration) -> dict:
    """The calibration fields this script owns, with their fitted (or fixed) values."""
    return {name: getattr(cal, name) for name in PARAMS}


def format_values(values: dict) -> str:
    return "\n".join(f"  {k}: {v:.4g}" for k, v in values.items())


def write_block(profile: str, cal: DeviceCalibration, note: str = "") -> None:
    """Update this script's keys (and the source line) inside the `calibration:` block of the device's
    YAML; every other line (datasheet figures, serving fields) stays as it is."""
    path = REPO / "profiles" / "hardware" / f"{profile}.yaml"
    text = path.read_text()
    head, sep, block = text.partition("\ncalibration:\n")
    if not sep:
        raise SystemExit(f"{path}: no calibration block")
    for name, value in fitted_values(profile, cal).items():
        line = f"  {name}: {value:.4g}"
        block, n = re.subn(rf"(?m)^  {name}:.*$", line, block, count=1)
        if n == 0:
            block = line + "\n" + block
    note = note or SOURCE
    match = re.search(r"(?m)^  source:(.*)$", block)
    old = match.group(1).strip() if match else ""
    if "calibrate.py" in old:
        new_source = re.sub(r"training fields (fitted|copied)[^;]*calibrate\.py( \([^)]*\))?", note, old)
    else:
        new_source = note if old in ("", "uncalibrated defaults") else f"{old}; {note}"
    if match:
        block = block[:match.start()] + f"  source: {new_source}" + block[match.end():]
    else:
        block = block.rstrip("\n") + f"\n  source: {new_source}\n"
    path.write_text(head + sep + block)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=str(DEFAULT_DIR), help="folder with the calibration CSVs")
    ap.add_argument("--write", action="store_true", help="store the fitted blocks in profiles/hardware/*.yaml")
    args = ap.parse_args(argv)
    rows = [r for r in load_all_rows(args.dir) if not r.skip and r.in_target]
    for family, members in FAMILIES.items():
        mine = [r for r in rows if r.gpu_profile in members]
        if not mine:
            continue
        cal = fit_device(members[0], mine)
        devices = {p: load_device(p) for p in members}
        errs = family_errors(mine, cal, devices)
        print(f"# {family} ({', '.join(members)}): {len(mine)} rows, max |err| {100 * max(map(abs, errs)):.1f}%, "
              f"median |err| {100 * float(np.median(np.abs(errs))):.1f}%")
        print(format_values(fitted_values(members[0], cal)))
        if args.write:
            for profile in members:
                write_block(profile, cal)
            for derived, parent in sorted(DERIVED.items()):
                if parent in members:
                    write_block(derived, cal, f"training fields copied from the {family} fit (same die and stack) "
                                              "by benchmarks/calibrate.py")


if __name__ == "__main__":
    main()
