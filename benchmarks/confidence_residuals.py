"""Calibration residuals for planner/confidence: one record per calibration row, with leave-one-out errors.

Training: every usable row of the calibration CSVs (published_runs.load_rows, load_torchtitan_rows). The
error is ln(predicted / measured) of the step time: the published figure is a throughput (TFLOP/s, MFU,
tokens/s), so predicted/measured time = published / predicted figure.
Rows that take part in a fit (in_target) get a leave-one-out error (confidence_loo.py): by the leverage of
the row in its device family's linearised fit (default; calibrate.FAMILIES: parts sharing a die and one
fitted calibration), or by a true refit of the family with calibrate.fit_device on its other rows. Rows
outside any fit (MoE rows) are out of sample already.

Serving: the measured prefill and decode medians (serve_fit_data.rows) against the shipped serving
calibration (the `legacy` engine the constants are fitted to); these errors are in sample (loo = false).
"""

import math
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import calibrate  # noqa: E402
import confidence_loo  # noqa: E402
import published_runs  # noqa: E402
from serve_fit import model_of  # noqa: E402
from serve_fit_data import rows as serve_rows  # noqa: E402

from costmodels.serving import DEFAULT_ENGINE, InstanceShape, mean_decode_step_time, prefill_time  # noqa: E402
from planner.confidence.regimes import family_of, serve_regime, train_regime  # noqa: E402
from profiles import load_device  # noqa: E402

CALIBRATION = HERE.parent.parent / "shared" / "calibration"
TRAIN_CSVS = ("published_training_runs.csv", "torchtitan_fsdp_runs.csv")


def training_rows() -> list:
    """(csv name, row) for the usable rows of both training CSVs (skipped rows left out)."""
    loaders = {TRAIN_CSVS[0]: published_runs.load_rows, TRAIN_CSVS[1]: published_runs.load_torchtitan_rows}
    return [(name, r) for name, load in loaders.items() for r in load(CALIBRATION / name) if not r.skip]


def families() -> dict:
    """device profile -> family name (calibrate.FAMILIES members, and calibrate.DERIVED parts by their parent)."""
    out = {member: name for name, members in calibrate.FAMILIES.items() for member in members}
    out.update({part: out.get(parent, parent) for part, parent in calibrate.DERIVED.items()})
    return dict(sorted(out.items()))


def fit_profile(family: str) -> str:
    """The profile calibrate.fit_device is called with for a family (its first member)."""
    return calibrate.FAMILIES[family][0]


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
    regime = train_regime(moe=row.model.moe is not None, dtype=w.dtype, framework=w.framework,
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


def _step_error(row, residual: float) -> float:
    """The step-time error of a row from the fit's residual ln(predicted / published figure)."""
    return residual if row.metric.endswith("_s") else -residual


def loo_errors(rows: list, devices: dict, method: str, progress) -> dict:
    """id(row) -> leave-one-out step-time error of every fitted row ('leverage' or 'refit', confidence_loo.py)."""
    out = {}
    for family, members in sorted(fitted_groups(rows).items()):
        fitted = [r for _, r in members]
        for r in fitted:
            published_runs.device_for(r, devices)
        if len(fitted) <= 2:
            continue
        if method == "leverage":
            errors = confidence_loo.leverage_errors(fitted, devices, family)
        else:
            errors = [confidence_loo.refit_error(r, [o for o in fitted if o is not r], devices, fit_profile(family))
                      for r in fitted]
        for r, e in zip(fitted, errors, strict=True):
            out[id(r)] = _step_error(r, e)
            fit = log_error(r, devices[r.gpu_profile])
            progress(f"  loo ({method}) {r.label}: {out[id(r)]:+.3f} (in sample {fit:+.3f})")
    return out


def train_records(loo: str | None = "leverage", progress=print) -> list[dict]:
    """One record per training row, with leave-one-out errors by `loo` ('leverage', 'refit') or in-sample (None)."""
    rows = training_rows()
    devices: dict = {}
    held = loo_errors([(s, r) for s, r in rows], devices, loo, progress) if loo else {}
    out = []
    for source, row in rows:
        fit = log_error(row, published_runs.device_for(row, devices))
        out.append(train_record(source, row, held.get(id(row), fit), fit, id(row) in held))
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
