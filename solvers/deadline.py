"""Wall-clock deadlines and throttled progress for every planner (one helper, shared).

Usage:

    deadline = Deadline(time_limit_s)              # starts the clock now
    while work_left and not deadline.expired():    # checks also record a hit
        ...
        reporter.update(f"{done}/{total} multisets")  # prints at most once per interval
    solver["status"] = deadline.status("optimal" if proven else "feasible")
    # -> "time_limit" when the limit stopped the work, else the status given

`Deadline` tells the time left (`remaining()`, never negative, to hand to a backend as its own limit),
whether the limit has passed (`expired()`), and remembers whether any check found it passed (`hit`), so that
the plan can say its solve was cut short (its result then depends on machine speed and is not
reproducible byte for byte). `mark_hit()` records a hit that a backend reported (e.g. HiGHS stopped on its
own time limit). A `Deadline` made with `time_limit_s=None` never expires. `reserve(seconds)` gives a
child deadline that ends that much earlier (for the search, keeping time to write the plan up); a hit on
the child is a hit on its parent.

`ProgressReporter(progress, interval_s=1.0)` wraps a callback `progress(message: str)`: `update(message)`
forwards at most one message per `interval_s` (the first after `interval_s` has passed, so that fast solves
print nothing), `done(message)` always forwards. `progress=None` makes both silent, so library code can
take `progress=None` and pass it straight through. `stderr_progress` is a ready callback that writes one
line to stderr (never stdout, which may carry JSON).
"""

import math
import sys
import time
from collections.abc import Callable

from costmodels.errors import require

TIME_LIMIT_STATUS = "time_limit"
"""solver.status of a plan whose search was stopped by its wall-clock limit"""


class Deadline:
    """A wall-clock limit started at construction (time.perf_counter)."""

    __slots__ = ("limit_s", "started", "hit", "_clock", "_parent", "_end")

    def __init__(self, time_limit_s: float | None, *, clock: Callable[[], float] = time.perf_counter):
        if time_limit_s is not None:
            require(math.isfinite(time_limit_s) and time_limit_s > 0,
                    f"must be a finite number of seconds > 0, got {time_limit_s}", field="time_limit")
        self.limit_s = time_limit_s
        self._clock = clock
        self.started = clock()
        self.hit = False
        self._parent: Deadline | None = None
        self._end = math.inf if time_limit_s is None else self.started + time_limit_s

    def reserve(self, seconds: float) -> "Deadline":
        """A child deadline ending `seconds` before this one (not before now); its hits are this one's too."""
        child = Deadline(self.limit_s, clock=self._clock)
        child.started = self.started
        child._end = max(self._end - max(seconds, 0.0), min(self._clock(), self._end))
        child._parent = self
        return child

    @property
    def at(self) -> float:
        """The clock reading at which the limit passes (inf without a limit)."""
        return self._end

    def elapsed(self) -> float:
        """Seconds since the deadline was made."""
        return self._clock() - self.started

    def remaining(self) -> float:
        """Seconds left (0 once passed, inf without a limit)."""
        return max(self.at - self._clock(), 0.0)

    def expired(self) -> bool:
        """True once the limit has passed; records the hit."""
        if not self.hit and self._clock() >= self._end:
            self.mark_hit()
        return self.hit

    def mark_hit(self) -> None:
        """Record that a backend stopped on this limit."""
        self.hit = True
        if self._parent is not None:
            self._parent.mark_hit()

    def status(self, finished_status: str) -> str:
        """`TIME_LIMIT_STATUS` when the limit stopped the work, else `finished_status`."""
        return TIME_LIMIT_STATUS if self.hit else finished_status

    def warning(self, what: str = "the solve") -> str | None:
        """A one-line warning for the user when the limit was hit, else None."""
        if not self.hit:
            return None
        return (f"{what} stopped at its time limit ({self.limit_s:g} s); the plan is the best found so far and "
                f"may differ from run to run — raise --time-limit for a reproducible plan")


class ProgressReporter:
    """Forwards progress messages to a callback at most once per `interval_s` (silent when it is None)."""

    __slots__ = ("_progress", "_interval", "_clock", "_next")

    def __init__(self, progress: Callable[[str], None] | None, interval_s: float = 1.0, *,
                 clock: Callable[[], float] = time.perf_counter):
        self._progress = progress
        self._interval = interval_s
        self._clock = clock
        self._next = clock() + interval_s

    @property
    def enabled(self) -> bool:
        return self._progress is not None

    def update(self, message: str | Callable[[], str]) -> None:
        """Forward `message` (or the result of calling it, built only when printed) if the interval passed."""
        if self._progress is None:
            return
        now = self._clock()
        if now < self._next:
            return
        self._next = now + self._interval
        self._progress(message() if callable(message) else message)

    def done(self, message: str) -> None:
        """Forward `message` unconditionally (unless silent)."""
        if self._progress is not None:
            self._progress(message)


def stderr_progress(message: str) -> None:
    """A progress callback: one line on stderr."""
    print(message, file=sys.stderr, flush=True)
