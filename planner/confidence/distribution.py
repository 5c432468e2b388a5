"""Error distributions of the cost model: log(predicted / measured) of calibration rows, and what follows.

For rows e_1..e_n (e = ln(predicted / measured) of the headline time) with mean m and sample standard
deviation s, a new estimate's error is taken as e ~ m + s·sqrt(1 + 1/n)·t(n-1) (the classical prediction
interval of one more draw from a normal sample; Student's t widens small regimes). Measured time is
predicted·exp(-e), so the central 80 % interval of the measured time is

    [predicted·exp(-m - k), predicted·exp(-m + k)],  k = t_0.90(n-1)·s·sqrt(1 + 1/n)

and the 90th-percentile (pessimistic) time is its upper end. Throughput-like metrics (tokens/s, goodput)
are inverse times: their interval is value·exp(m -/+ k).

Regimes with fewer than MIN_ROWS rows, and extrapolated ones, use the prior: mean 0 and an 80 % half-width
PRIOR_WIDEN times the pooled one of the device family's rows, or of all rows of the target for a device
without rows (the larger of |10th| and |90th| percentile of their log errors, so a few wild rows do not blow
it up), at least PRIOR_MIN_HALF_WIDTH (x1.25 either way).
This is a stated assumption, not a fit.
"""

import math
from dataclasses import dataclass

LEVEL = 0.8
"""coverage of the stated intervals"""
MIN_ROWS = 5
"""a regime needs this many calibration rows to use its own distribution"""
PRIOR_WIDEN = 2.0
"""the prior's standard deviation is this multiple of the pooled one"""
PRIOR_MIN_HALF_WIDTH = math.log(1.25)
"""the prior's 80 % half-width in log space is at least this (x1.25 either way)"""
Z_90 = 1.2815515655446004
"""standard normal 90th percentile"""
T_90 = {1: 3.078, 2: 1.886, 3: 1.638, 4: 1.533, 5: 1.476, 6: 1.440, 7: 1.415, 8: 1.397, 9: 1.383, 10: 1.372,
        12: 1.356, 15: 1.341, 20: 1.325, 30: 1.310, 60: 1.296}
"""Student's t 90th percentile by degrees of freedom (standard tables); between entries the smaller df is used"""
NOISE_PROBABILITY = 0.1
"""an alternative whose chance of being faster is at least this is 'within noise' of the plan"""


def t_90(df: int) -> float:
    """Student's t 90th percentile (conservative: the nearest tabulated df not above `df`)."""
    if df < 1:
        raise ValueError("t needs at least one degree of freedom")
    if df > max(T_90):
        return Z_90
    return T_90[max(d for d in T_90 if d <= df)]


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default) of a non-empty list, q in [0, 1]."""
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass(frozen=True, kw_only=True, slots=True)
class ErrorDistribution:
    """Log errors ln(predicted / measured) of a set of rows, or the prior."""

    rows: int
    """calibration rows behind it (0 for the prior)"""
    mean: float
    """mean log error (bias; > 0: the model over-predicts the time)"""
    half_width: float
    """k: half-width of the 80 % interval in log space"""
    median_error: float
    """median of predicted / measured - 1 over the rows (0 for the prior)"""
    p10: float
    """10th percentile of predicted / measured over the rows (exp(-k) for the prior)"""
    p90: float
    """90th percentile of predicted / measured over the rows (exp(k) for the prior)"""
    prior: bool = False
    """True when this is the wider prior, not the rows' own spread"""

    @property
    def sd(self) -> float:
        """predictive standard deviation in log space (k / Z_90, as a normal)"""
        return self.half_width / Z_90


def from_log_errors(errors: list[float]) -> ErrorDistribution:
    """The distribution of at least two log errors (prediction interval for one more row)."""
    n = len(errors)
    if n < 2:
        raise ValueError("a distribution needs at least two rows")
    mean = sum(errors) / n
    sd = math.sqrt(sum((e - mean) ** 2 for e in errors) / (n - 1))
    ratios = [math.exp(e) for e in errors]
    return ErrorDistribution(rows=n, mean=mean, half_width=t_90(n - 1) * sd * math.sqrt(1 + 1 / n),
                             median_error=percentile(ratios, 0.5) - 1, p10=percentile(ratios, 0.1),
                             p90=percentile(ratios, 0.9))


def prior_from(pooled: list[float]) -> ErrorDistribution:
    """The documented wider prior around zero bias (module docstring)."""
    spread = max(abs(percentile(pooled, 0.1)), abs(percentile(pooled, 0.9))) if pooled else 0.0
    k = max(PRIOR_WIDEN * spread, PRIOR_MIN_HALF_WIDTH)
    return ErrorDistribution(rows=0, mean=0.0, half_width=k, median_error=0.0, p10=math.exp(-k), p90=math.exp(k),
                             prior=True)


def wider(a: ErrorDistribution, b: ErrorDistribution) -> ErrorDistribution:
    """The one with the wider interval (ties: the first)."""
    return b if b.half_width > a.half_width else a


def time_interval(time_s: float, dist: ErrorDistribution) -> tuple[float, float]:
    """80 % interval of the measured time given a predicted time."""
    return time_s * math.exp(-dist.mean - dist.half_width), time_s * math.exp(-dist.mean + dist.half_width)


def rate_interval(rate: float, dist: ErrorDistribution) -> tuple[float, float]:
    """80 % interval of a measured throughput (an inverse time) given a predicted one."""
    return rate * math.exp(dist.mean - dist.half_width), rate * math.exp(dist.mean + dist.half_width)


def pessimistic_time(time_s: float, dist: ErrorDistribution) -> float:
    """The 90th-percentile (slow) measured time: the upper end of the 80 % interval."""
    return time_interval(time_s, dist)[1]


def probability_faster(alt_time_s: float, alt: ErrorDistribution, plan_time_s: float, plan: ErrorDistribution) -> float:
    """P(measured alternative time < measured plan time), the two errors independent normal draws.

    ln T = ln t - e, so ln T_alt - ln T_plan ~ N(ln(t_alt/t_plan) - m_alt + m_plan, sd_alt² + sd_plan²).
    Independence overstates the overlap of two configurations that share most of their cost (their errors
    are correlated), so the probability is an upper bound in spirit: a small one means a real difference.
    """
    mu = math.log(alt_time_s / plan_time_s) - alt.mean + plan.mean
    sd = math.hypot(alt.sd, plan.sd)
    if sd == 0:
        return 1.0 if mu < 0 else 0.0
    return 0.5 * math.erfc(mu / (sd * math.sqrt(2)))


def within_noise(probability: float) -> bool:
    return probability >= NOISE_PROBABILITY
