"""Pooled prefill queue (M/G/c): hand-worked Erlang C, exact M/M/c tail, M/G/1 limit, pooling gain."""

import math

import pytest

from costmodels.queueing import erlang_c, mg1_max_rate, mg1_wait_quantile_s, mgc_max_rate, mgc_wait_quantile_s


def test_erlang_c_by_hand():
    # M/M/2 with a = 1: C = (a²/2!·c/(c−a)) / (1 + a + a²/2!·c/(c−a)) = 1 / (1 + 1 + 1) = 1/3
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    # M/M/1: C = ρ
    assert erlang_c(1, 0.7) == pytest.approx(0.7)
    assert erlang_c(3, 3.0) == 1.0 and erlang_c(3, 0.0) == 0.0


def test_mmc_tail_is_exact():
    # M/M/c: P(W > t) = C·exp(−(cμ − λ)t), so w_q = ln(C/(1 − q)) / (cμ − λ); exponential service: E[S²] = 2/μ²
    mu, lam, c, q = 2.0, 5.0, 3, 0.95
    exact = math.log(erlang_c(c, lam / mu) / (1 - q)) / (c * mu - lam)
    assert mgc_wait_quantile_s(lam, 1 / mu, 2 / mu ** 2, q, c) == pytest.approx(exact)


def test_one_server_is_mg1():
    for rate in (1.0, 4.0, 7.5):
        one = mg1_wait_quantile_s(rate, 0.1, 0.015, 0.9)
        assert mgc_wait_quantile_s(rate, 0.1, 0.015, 0.9, 1) == pytest.approx(one)
    assert mgc_max_rate(0.1, 0.015, 0.9, 0.25, 1) == pytest.approx(mg1_max_rate(0.1, 0.015, 0.9, 0.25))


def test_pooling_gains_and_stays_stable():
    one = mgc_max_rate(0.2, 0.05, 0.9, 0.3, 1)
    rates = [mgc_max_rate(0.2, 0.05, 0.9, 0.3, c) for c in range(1, 9)]
    assert all(r > c * one * (1 - 1e-9) for c, r in enumerate(rates, start=1))   # more than c separate queues
    assert all(r < c / 0.2 for c, r in enumerate(rates, start=1))                # below c / E[S] (stability)
    assert rates == sorted(rates)
    assert mgc_wait_quantile_s(rates[3], 0.2, 0.05, 0.9, 4) == pytest.approx(0.3, rel=1e-6)
