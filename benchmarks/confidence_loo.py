"""Leave-one-out errors of the training calibration: by the leverage of each row, or by true refits.

A family's fit minimises sum_i r_i(θ)² over its rows, r_i = ln(predicted_i / published_i) (calibrate.py; its
small penalty beyond ±12 % is left out here). Linearised at the fitted θ, the residual the row would have if it
were left out of the fit is the classical

    r_i,LOO = r_i / (1 - h_ii),   H = J (JᵀJ)⁺ Jᵀ,   J_ij = ∂r_i / ∂θ_j

(the hat matrix of least squares; J by central differences of the cost model). Only parameters the fit is
free to move enter J: calibrate.FIXED ones, parameters no row exercises (zero column) and parameters sitting
within EDGE of their range (a refit keeps them there) are left out. This costs one cost-model evaluation per
row and parameter instead of one full calibrate.fit_device per row (about a minute each on the project's
2-core machine), so the shipped residuals can be regenerated whenever the cost model changes.
`refit_error` is the true leave-one-out error (calibrate.fit_device without the row) that the bench uses to
check the approximation on a sample and the slow test on every row.
"""

import dataclasses
import math

import calibrate
import numpy as np
import published_runs

STEP = 1e-3
"""relative step of the central differences"""
EDGE = 0.01
"""a parameter within this fraction of its range from a bound counts as pinned"""


def _free_params(family: str, cal) -> list[tuple[str, float, float]]:
    fixed = calibrate.FIXED.get(family, {})
    ranges = calibrate.RANGES.get(family, {})
    out = []
    for name, (lo, hi, _log) in calibrate.PARAMS.items():
        lo, hi = ranges.get(name, (lo, hi, _log))[:2]
        if name in fixed or not hasattr(cal, name):
            continue
        value = getattr(cal, name)
        if lo + EDGE * (hi - lo) < value < hi - EDGE * (hi - lo):
            out.append((name, lo, hi))
    return out


def log_residual(row, device) -> float:
    """ln(predicted / published) of the row's own figure (the fit's residual; a throughput's sign is opposite
    to the step time's)."""
    figure, _ = published_runs.predict(row, device)
    return math.log(figure / row.published)


def jacobian(rows, devices: dict, family: str) -> np.ndarray:
    """J_ij = ∂ r_i / ∂ θ_j for the family's free parameters (columns), rows in order."""
    cal = devices[rows[0].gpu_profile].calibration
    columns = []
    for name, lo, hi in _free_params(family, cal):
        value = getattr(cal, name)
        h = STEP * max(abs(value), (hi - lo))
        diffs = []
        for r in rows:
            base = devices[r.gpu_profile]
            up = dataclasses.replace(base, calibration=dataclasses.replace(base.calibration, **{name: value + h}))
            down = dataclasses.replace(base, calibration=dataclasses.replace(base.calibration, **{name: value - h}))
            diffs.append((log_residual(r, up) - log_residual(r, down)) / (2 * h))
        column = np.array(diffs)
        if np.linalg.norm(column) > 1e-9:
            columns.append(column)
    return np.column_stack(columns) if columns else np.zeros((len(rows), 0))


def leverage_errors(rows, devices: dict, family: str) -> list[float]:
    """ln(predicted / published) of each row as if the family had been fitted without it (linearised)."""
    residuals = np.array([log_residual(r, devices[r.gpu_profile]) for r in rows])
    j = jacobian(rows, devices, family)
    if j.shape[1] == 0:
        return list(residuals)
    hat = j @ np.linalg.pinv(j.T @ j) @ j.T
    h = np.clip(np.diag(hat), 0.0, 0.99)
    return list(residuals / (1 - h))


def refit_error(row, others, devices: dict, fit_profile: str) -> float:
    """ln(predicted / published) of `row` with the family refitted on `others` by calibrate.fit_device."""
    cal = calibrate.fit_device(fit_profile, others)
    return log_residual(row, dataclasses.replace(devices[row.gpu_profile], calibration=cal))
