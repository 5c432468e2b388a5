"""Calibration residuals for planner/confidence: one record per calibration row, with leave-one-out errors.

Training: every usable row of the calibration CSVs (published_runs.load_rows and, when published_runs
offers it, load_torchtitan_rows). The error is ln(predicted / measured) of the step time: the published
figure is a throughput (TFLOP/s, MFU, tokens/s), so predicted/measured time = published / predicted figure.
Rows that take part in a fit (in_target) get a leave-one-out error: their device family (calibrate.FAMILIES,
parts sharing a die and one fitted calibration) is refitted with calibrate.fit_device on its other rows and
the held-out row is predicted with that fit. Rows outside any fit (MoE rows) are out of sample already.

Serving: the measured prefill and decode medians (serve_fit_data.rows) against the shipped serving
calibration (the `legacy` engine the constants are fitted to); these errors are in sample (loo = false).
"""

import dataclasses
import math
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import calibrate  # noqa: E402
import published_runs  # noqa: E402
from serve_fit import model_of  # noqa: E402
from serve_fit_data import rows as serve_rows  # noqa: E402

from costmodels.serving import DEFAULT_ENGINE, InstanceShape, mean_decode_step_time, prefill_time  # noqa: E402
from planner.confidence.regimes import family_of, serve_regime, train_regime  # noqa: E402
from profiles import load_device  # noqa: E402

CALIBRATION = HERE.parent.parent / "shared" / "calibration"
TRAIN_CSVS = ("published_training_runs.csv", "torchtitan_fsdp_runs.csv")


def training_rows() -> list:
    """Usable rows of every training CSV published_runs can read (skipped rows left out)."""
    out = []
    for name in TRAIN_CSVS:
        path = CALIBRATION / name
        if not path.exists():
            continue
        loader = published_runs.load_rows if name == TRAIN_CSVS[0] else getattr(published_runs, "load_torchtitan_rows",
                                                                                None)
        if loader is None:
            continue
        out += [(name, r) for r in loader(path) if not r.skip]
    return out


def families() -> dict:
    """device profile -> family name (calibrate.FAMILIES members, and calibrate.DERIVED parts by their parent)."""
    fams = getattr(calibrate, "FAMILIES", None) or {p: (p,) for p in set(calibrate.DERIVED.values())}
    out = {member: name for name, members in fams.items() for member in members}
    out.update({part: out.get(parent, parent) for part, parent in calibrate.DERIVED.items()})
    return dict(sorted(out.items()))


def fit_profile(family: str) -> str:
    """The profile calibrate.fit_device is called with for a family (its first member)."""
    fams = getattr(calibrate, "FAMILIES", None) or {}
    return fams[family][0] if family in fams else family


def log_error(row, device) -> float:
    """ln(predicted / measured) of the row's step time."""
    figure, est = published_runs.predict(row, device)
    if row.metric.endswith("_s"):
        return math.log(figure / row.published)
    return math.log(row.published / figure)


def _record(label: str, source: str, regime, metric: str, size: int, length: int, err: float, fit: float,
            loo: bool) -> dict:
    fields = {k: v for k, v in regime.to_json().items() if k != "target"}
    return {"label": label, "source": source, "target": regime.target, "metric": metric, **fields, "size": size,
            "length": length, "log_error": err, "fit_error": fit, "loo": loo}


def train_record(source: str, row, err: float, fit: float, loo: bool) -> dict:
    c, w = row.config, row.workload
    regime = train_regime(moe=row.model.moe is not None, dtype=w.dtype, framework=getattr(w, "framework", "megatron"),
                          zero=c.zero, dp_group=c.dp * c.cp, seq_len=w.seq_len,
                          family=family_of(row.gpu_profile, families()))
    return _record(row.label, source, regime, "step_time_s", c.dp * c.cp, w.seq_len, err, fit, loo)


def fitted_groups(rows: list) -> dict:
    """family -> the rows its fit uses (as calibrate.main selects them: in_target rows of the family's parts)."""
    fam = families()
    groups: dict = {}
    for source, row in rows:
        if row.in_target:
            groups.setdefault(family_of(row.gpu_profile, fam), []).append((source, row))
    return groups


def train_records(loo: bool = True, progress=print) -> list[dict]:
    """One record per training row; leave-one-out refits when `loo` (minutes), else in-sample errors."""
    rows = training_rows()
    devices: dict = {}
    groups = fitted_groups(rows)
    out = []
    for source, row in rows:
        device = published_runs.device_for(row, devices)
        family = family_of(row.gpu_profile, families())
        mine = groups.get(family, [])
        fit = log_error(row, device)
        if loo and row.in_target and len(mine) > 2:
            others = [r for s, r in mine if r is not row]
            for _, r in mine:  # fit_device costs each row on its own part's datasheet
                published_runs.device_for(r, devices)
            cal = calibrate.fit_device(fit_profile(family), others)
            refit = dataclasses.replace(device, calibration=cal)
            out.append(train_record(source, row, log_error(row, refit), fit, True))
            progress(f"  loo {row.label}: {out[-1]['log_error']:+.3f} (in sample {fit:+.3f})")
        else:
            out.append(train_record(source, row, fit, fit, False))
    return out


def serve_records() -> list[dict]:
    """Two records (prefill, decode) per measured serving row, against the shipped calibration."""
    out = []
    devices: dict = {}
    for r in serve_rows():
        device = devices.setdefault(r["gpu"], load_device(r["gpu"]))
        model = model_of(r["model"])
        shape = InstanceShape(tp=r["tp"])
        pre = prefill_time(model, device, shape, batch=r["batch"], prompt_len=r["isl"])["time_s"]
        dec = mean_decode_step_time(model, device, shape, batch=r["batch"], input_len=r["isl"], output_len=r["osl"])
        regime = serve_regime(moe=model.moe is not None, dtype="bf16", engine=DEFAULT_ENGINE, tp=r["tp"],
                              prompt_len=r["isl"], family=family_of(r["gpu"], families()))
        label = f"{r['model']} {r['gpu']} tp{r['tp']} isl{r['isl']} batch{r['batch']}"
        errs = (("prefill_s", math.log(pre / r["prefill_s"])), ("decode_step_s", math.log(dec / r["decode_s"])))
        for metric, err in errs:
            out.append(_record(label, "serve_fit_data.py", regime, metric, r["tp"], r["isl"], err, err, False))
    return out
