"""How far calibration rows support a regime: the error distribution to use and the extrapolation reasons.

assess(regime, rows, size=, length=) -> Support

1. Rows of the same target, metric and device family are the candidates; the family is never relaxed.
2. Distribution: the regime's own rows if there are at least MIN_ROWS of them; otherwise the dimensions in
   regimes.BACKOFF are relaxed one after another (context first, arch last) until MIN_ROWS rows match;
   the family's rows alone with fewer than MIN_ROWS fall back to the prior.
3. Extrapolation reasons (each names the number it is about):
   - the family has no rows (a device with uncalibrated defaults, e.g. b200, mi300x);
   - MoE, FP8, the framework with its ZeRO stage (e.g. torchtitan-zero3) or the serving engine has no rows
     on the family;
   - the data-parallel group (train) / tensor-parallel degree (serve) exceeds the largest calibrated one of
     that framework on the family (e.g. ZeRO-3 beyond the fitted scale);
   - MoE routing skew above 1 (the busiest expert rank over the mean) is assumed, not measured;
   - the sequence / prompt length exceeds the longest calibrated one;
   - the family has fewer than MIN_ROWS rows (the prior is used).
   An extrapolated estimate uses the wider of its distribution and the prior. The prior is built from the
   family's rows when it has MIN_ROWS of them (extrapolating within a device), else from all rows of the
   target (a device without rows).
"""

from dataclasses import dataclass, replace

from planner.confidence.distribution import MIN_ROWS, ErrorDistribution, from_log_errors, prior_from, wider
from planner.confidence.regimes import BACKOFF, DIMENSIONS, Regime
from planner.confidence.residuals import Residual

WHAT = {"train": ("data-parallel group", "sequence length"), "serve": ("tensor-parallel degree", "prompt length")}


@dataclass(frozen=True, kw_only=True, slots=True)
class Support:
    """The distribution an estimate's interval comes from, and why it may be extrapolated."""

    regime: Regime
    matched: str
    """the regime key actually matched ('*' for relaxed dimensions; 'prior' when none)"""
    distribution: ErrorDistribution
    """what the interval uses: the rows' distribution, or the prior when it is wider and the estimate is
    extrapolated, or when too few rows exist"""
    support: ErrorDistribution | None
    """the matched rows' own distribution (None when fewer than MIN_ROWS rows matched)"""
    reasons: tuple[str, ...]
    """extrapolation reasons (empty: supported)"""

    def to_json(self) -> dict:
        rows = self.support or self.distribution
        return {"key": self.regime.key, **self.regime.to_json(), "matched": self.matched,
                "rows": self.support.rows if self.support else 0, "median_error": rows.median_error,
                "ratio_p10": rows.p10, "ratio_p90": rows.p90, "bias_log": self.distribution.mean,
                "half_width_log": self.distribution.half_width, "prior": self.distribution.prior}


def _matching(rows: list[Residual], regime: Regime, relaxed: tuple[str, ...]) -> list[Residual]:
    keep = [d for d in DIMENSIONS if d not in relaxed]
    return [r for r in rows if all(getattr(r, d) == getattr(regime, d) for d in keep)]


def _matched_key(regime: Regime, relaxed: tuple[str, ...]) -> str:
    return replace(regime, **{d: "*" for d in relaxed}).key


def _reasons(regime: Regime, rows: list[Residual], size: int, length: int, skew: float) -> list[str]:
    fam, target = regime.family, regime.target
    out = []
    if regime.arch == "moe" and skew > 1:
        out.append(f"MoE routing skew {skew:g} (busiest expert rank over the mean): assumed, no calibration row "
                   "measures it")
    if not rows:
        return out + [f"device {fam}: no {target} calibration rows (uncalibrated defaults)"]
    if regime.arch == "moe" and not any(r.arch == "moe" for r in rows):
        out.append(f"MoE on {fam}: no MoE {target} rows (expert load skew and all-to-all not validated)")
    if regime.dtype == "fp8" and not any(r.dtype == "fp8" for r in rows):
        out.append(f"FP8 on {fam}: no FP8 {target} calibration rows")
    same = [r for r in rows if r.framework == regime.framework]
    size_name, length_name = WHAT[target]
    label = regime.framework if target == "train" else f"engine model {regime.framework!r}"
    if not same:
        known = ", ".join(sorted({r.framework for r in rows}))
        out.append(f"{label} on {fam}: no calibration rows (rows exist for {known})")
    elif size > max(r.size for r in same):
        out.append(f"{label} with a {size_name} of {size}: beyond the calibrated {max(r.size for r in same)} on {fam}")
    longest = max(r.length for r in rows)
    if length > longest:
        out.append(f"{length_name} {length}: beyond the calibrated {longest} tokens on {fam}")
    if len(rows) < MIN_ROWS:
        out.append(f"only {len(rows)} {target} calibration rows on {fam} (< {MIN_ROWS}): wider prior")
    return out


def assess(regime: Regime, rows: list[Residual], pooled: list[Residual], *, size: int, length: int,
           skew: float = 1.0) -> Support:
    """Support of `regime` by `rows` (same target and metrics, any family); `pooled` sets the prior."""
    family_rows = [r for r in rows if r.family == regime.family]
    prior = prior_from([r.log_error for r in (family_rows if len(family_rows) >= MIN_ROWS else pooled)])
    reasons = _reasons(regime, family_rows, size, length, skew)
    rows_dist, matched = None, "prior"
    if len(family_rows) >= MIN_ROWS:
        for i in range(len(BACKOFF) + 1):
            found = _matching(family_rows, regime, BACKOFF[:i])
            if len(found) >= MIN_ROWS:
                rows_dist = from_log_errors([r.log_error for r in found])
                matched = _matched_key(regime, BACKOFF[:i])
                break
    dist = prior if rows_dist is None else wider(rows_dist, prior) if reasons else rows_dist
    return Support(regime=regime, matched=matched, distribution=dist, support=rows_dist, reasons=tuple(reasons))
