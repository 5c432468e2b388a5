"""Pipeline schedule time and in-flight micro-batches."""

import math

from hypothesis import given
from hypothesis import strategies as st

from costmodels import pipeline_step_time
from costmodels.pipeline import in_flight_microbatches, pipeline_bubble_time


def test_equal_stages_give_the_classic_bubble():
    # p = 4 stages of 1 s, m = 8: (m + p - 1) * t = 11 s; bubble (p-1)/m of the ideal 8 s
    assert pipeline_step_time([1.0] * 4, 8) == 11.0
    assert pipeline_bubble_time([1.0] * 4, 8) == 3.0
    # interleaved v = 3: 8 + 3/3 = 9 s
    assert pipeline_step_time([1.0] * 4, 8, vpp=3) == 9.0


def test_unequal_stages_charge_the_slowest():
    # stages 1, 2, 1 s, m = 4: 4 * 2 + (1 + 1) = 10 s
    assert pipeline_step_time([1.0, 2.0, 1.0], 4) == 10.0


@given(st.lists(st.floats(0.01, 10), min_size=1, max_size=8), st.integers(1, 64), st.integers(1, 4))
def test_bounds(times, m, v):
    total = pipeline_step_time(times, m, v)
    assert total >= m * max(times) - 1e-9  # the slowest stage works m times
    assert total <= pipeline_step_time(times, m, 1) + 1e-9  # interleaving never hurts
    assert total >= sum(times) / len(times) * m - 1e-9


def test_in_flight():
    assert [in_flight_microbatches(i, 4, 8) for i in range(4)] == [4, 3, 2, 1]
    assert in_flight_microbatches(0, 4, 2) == 2  # fewer micro-batches than stages
    # interleaved stage 0: p * (1 + (p-1)/(p*v)) = 4 * (1 + 3/8) = 5.5
    assert math.isclose(in_flight_microbatches(0, 4, 16, vpp=2), 5.5)
