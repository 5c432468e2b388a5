"""Error distributions: prediction intervals, the prior, the probability that an alternative is faster."""

import math

import numpy as np
import pytest

from planner.confidence.distribution import (
    PRIOR_MIN_HALF_WIDTH,
    Z_90,
    from_log_errors,
    percentile,
        pessimistic_time,
    prior_from,
    probability_faster,
    rate_interval,
    t_90,
    time_interval,
    within_noise,
)


def test_prediction_interval_by_hand():
    # errors -0.1, 0, 0.1: mean 0, sample sd 0.1, n = 3 -> k = t_0.90(2) * 0.1 * sqrt(1 + 1/3) = 1.886 * 0.11547
    d = from_log_errors([-0.1, 0.0, 0.1])
    assert d.rows == 3 and d.mean == pytest.approx(0.0, abs=1e-12)
    assert d.half_width == pytest.approx(1.886 * 0.1 * math.sqrt(4 / 3))
    low, high = time_interval(10.0, d)
    assert low == pytest.approx(10 * math.exp(-d.half_width)) and high == pytest.approx(10 * math.exp(d.half_width))
    assert pessimistic_time(10.0, d) == high
    r_low, r_high = rate_interval(5.0, d)
    assert r_low == pytest.approx(5 * math.exp(-d.half_width))


def test_bias_shifts_the_interval():
    # the model over-predicts by ~10 % (e = ln 1.1): the measured time is lower than predicted
    d = from_log_errors([math.log(1.1) + x for x in (-0.01, 0.0, 0.01, 0.0, 0.005)])
    low, high = time_interval(1.0, d)
    assert high < 1.0 and low < 1 / 1.1 < high


def test_percentile_matches_numpy():
    values = [0.3, -0.2, 0.05, 0.9, 0.1, -0.4, 0.0]
    for q in (0.0, 0.1, 0.5, 0.9, 1.0):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q * 100)))


def test_student_t_is_conservative_between_table_entries():
    assert t_90(1) == pytest.approx(3.078)
    assert t_90(11) == t_90(10) > t_90(12)
    assert t_90(10_000) == pytest.approx(Z_90)
    with pytest.raises(ValueError):
        t_90(0)


def test_prior_is_wider_than_pooled_robust_to_outliers_and_has_a_floor():
    pooled = [-0.2, -0.1, -0.05, 0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 4.5]  # one wild row
    prior = prior_from(pooled)
    assert prior.prior and prior.rows == 0 and prior.mean == 0.0
    # 10th / 90th percentiles: -0.1 and 0.3 -> half-width 2 x 0.3
    assert prior.half_width == pytest.approx(2 * 0.3)
    assert prior_from([0.001, -0.001]).half_width == pytest.approx(PRIOR_MIN_HALF_WIDTH)


def test_probability_faster():
    d = from_log_errors([-0.05, 0.0, 0.05, 0.02, -0.02])
    assert probability_faster(1.0, d, 1.0, d) == pytest.approx(0.5)
    slower = [probability_faster(t, d, 1.0, d) for t in (1.01, 1.05, 1.2, 2.0)]
    assert slower == sorted(slower, reverse=True) and slower[-1] < 1e-6 and slower[0] > 0.3
    assert probability_faster(0.9, d, 1.0, d) > 0.5
    # normal arithmetic: difference of logs ~ N(ln 1.05, 2 sd^2)
    want = 0.5 * math.erfc(math.log(1.05) / (math.sqrt(2) * d.sd * math.sqrt(2)))
    assert probability_faster(1.05, d, 1.0, d) == pytest.approx(want)
    assert within_noise(0.2) and not within_noise(0.05)


def test_goodput_versus_uses_the_plan_regime():
    from planner.confidence.attach import goodput_versus

    d = from_log_errors([-0.05, 0.0, 0.05, 0.02, -0.02])
    predicted = {"goodput_tokens_per_s_per_gpu": 100.0,
                 "regime": {"rows": d.rows, "bias_log": d.mean, "half_width_log": d.half_width,
                            "median_error": d.median_error, "ratio_p10": d.p10, "ratio_p90": d.p90}}
    same = goodput_versus(predicted, 100.0)
    assert same["probability_better"] == pytest.approx(0.5) and same["within_noise"]
    worse = goodput_versus(predicted, 80.0)
    assert worse["probability_better"] == pytest.approx(probability_faster(1 / 80, d, 1 / 100, d))
    assert worse["probability_better"] < 0.05 and not worse["within_noise"]
