"""solvers.deadline: limits, hit recording and throttled progress, driven by a fake clock."""

import math

import pytest

from costmodels.errors import SpecError
from solvers.deadline import TIME_LIMIT_STATUS, Deadline, ProgressReporter


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_deadline_remaining_expired_and_hit() -> None:
    clock = FakeClock()
    d = Deadline(5.0, clock=clock)
    assert d.remaining() == 5.0 and not d.expired() and not d.hit
    assert d.status("optimal") == "optimal" and d.warning() is None
    clock.now += 4.0
    assert d.remaining() == pytest.approx(1.0) and not d.expired()
    clock.now += 1.5
    assert d.remaining() == 0.0 and d.expired() and d.hit
    assert d.status("optimal") == TIME_LIMIT_STATUS
    assert "5 s" in d.warning("plan scatter")


def test_no_limit_never_expires_and_mark_hit() -> None:
    clock = FakeClock()
    d = Deadline(None, clock=clock)
    clock.now += 1e9
    assert d.remaining() == math.inf and not d.expired()
    d.mark_hit()
    assert d.status("feasible") == TIME_LIMIT_STATUS


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_bad_limits_are_spec_errors(bad: float) -> None:
    with pytest.raises(SpecError, match="time_limit"):
        Deadline(bad)


def test_progress_is_throttled_and_silent_when_none() -> None:
    clock = FakeClock()
    seen: list[str] = []
    rep = ProgressReporter(seen.append, 1.0, clock=clock)
    rep.update("a")  # before the first interval: nothing
    clock.now += 1.0
    rep.update("b")
    rep.update("c")  # same instant: throttled
    clock.now += 0.5
    rep.update(lambda: "d")
    clock.now += 0.6
    rep.update(lambda: "e")
    rep.done("end")
    assert seen == ["b", "e", "end"]
    silent = ProgressReporter(None, clock=clock)
    silent.update(lambda: pytest.fail("built a message nobody reads"))
    silent.done("x")
    assert not silent.enabled


def test_reserve_ends_earlier_and_hits_the_parent() -> None:
    clock = FakeClock()
    parent = Deadline(10.0, clock=clock)
    child = parent.reserve(3.0)
    clock.now += 6.0
    assert child.remaining() == pytest.approx(1.0) and not child.expired()
    clock.now += 1.5
    assert child.expired() and parent.hit and parent.remaining() == pytest.approx(2.5)
    late = parent.reserve(100.0)  # never ends before now
    assert late.remaining() == 0.0
