"""Coverage of the stated intervals on the calibration rows themselves, each row held out.

For every residual row: the regime distribution is rebuilt from the OTHER rows (support.assess on the
table without it), and the row counts as covered when its measured time lies inside the 80 % interval
built around its prediction, i.e. when m - k <= e <= m + k for its log error e. With leave-one-out errors
(rows whose `loo` is true: predicted by a refit that never saw the row) this is an honest out-of-sample
check of both the fit and the interval.
"""

from dataclasses import dataclass

from planner.confidence.regimes import Regime
from planner.confidence.residuals import Residual, ResidualTable
from planner.confidence.support import assess

TARGET_METRICS = {"train": ("step_time_s",), "serve": ("prefill_s", "decode_step_s")}


@dataclass(frozen=True, kw_only=True, slots=True)
class Held:
    """One held-out row's verdict."""

    label: str
    metric: str
    log_error: float
    """ln(predicted / measured) of the row"""
    low: float
    """interval bounds on the log error (m - k, m + k)"""
    high: float
    covered: bool
    extrapolated: bool
    """the held-out row's regime is extrapolated once the row is removed"""


def regime_of(row: Residual) -> Regime:
    return Regime(target=row.target, arch=row.arch, dtype=row.dtype, framework=row.framework, scale=row.scale,
                  context=row.context, family=row.family)


def held_out(table: ResidualTable, target: str, *, loo_only: bool = True) -> list[Held]:
    """One verdict per row of `target` (only leave-one-out rows when `loo_only`)."""
    rows = table.of(target, TARGET_METRICS[target])
    out = []
    for i, row in enumerate(rows):
        if loo_only and not row.loo:
            continue
        others = [r for j, r in enumerate(rows) if j != i]
        support = assess(regime_of(row), others, others, size=row.size, length=row.length)
        d = support.distribution
        low, high = d.mean - d.half_width, d.mean + d.half_width
        out.append(Held(label=row.label, metric=row.metric, log_error=row.log_error, low=low, high=high,
                        covered=low <= row.log_error <= high, extrapolated=bool(support.reasons)))
    return out


def coverage(verdicts: list[Held]) -> float:
    """Share of rows covered (0 for none)."""
    return sum(v.covered for v in verdicts) / len(verdicts) if verdicts else 0.0
