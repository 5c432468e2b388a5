"""The serve planner's wall-clock budget: count ILPs and simulator replays stop at `--time-limit`.

One `Deadline` (solvers.deadline) covers the whole solve. The count ILPs get the time left as their own
limit; a simulator replay starts only when the time left covers the slowest replay seen so far (a replay is
never cut in the middle, so the deadline is kept within one replay's duration at worst). The very first
replay of a plan always runs, so that every plan carries a simulated block. A replay refused for lack of time
marks the deadline hit: the plan then says `solver.status = "time_limit"` and is the best verified so far.
"""

from collections.abc import Callable

from solvers import SolverOptions
from solvers.deadline import Deadline, ProgressReporter

MIN_SOLVER_S = 0.05
"""the least time limit handed to a count ILP (HiGHS needs a positive limit; it finishes such ILPs in ms)"""


class VerifyBudget:
    """Decides whether another replay fits in the time left, and reports progress on long solves."""

    def __init__(self, deadline: Deadline, progress: Callable[[str], None] | None = None):
        self.deadline = deadline
        self.reporter = ProgressReporter(progress)
        self.slowest_s = 0.0
        self.replays = 0
        self.stage = "verifying"

    def solver_options(self) -> SolverOptions:
        """Options for one count ILP: the time left (at least MIN_SOLVER_S), deterministic settings."""
        left = self.deadline.remaining()
        return SolverOptions(time_limit_s=max(min(left, 1e7), MIN_SOLVER_S), threads=1, seed=0, relative_gap=1e-9)

    def allows_replay(self) -> bool:
        """True when a replay may start: the first of the plan always, later ones while the time left covers
        the slowest replay so far (a refusal records the deadline as hit)."""
        if self.replays == 0:
            return True
        if self.deadline.expired() or self.deadline.remaining() < self.slowest_s:
            self.deadline.mark_hit()
            return False
        return True

    def timed(self, replay: Callable[[int], dict]) -> Callable[[int], dict]:
        """`replay` wrapped to record its duration and report progress."""
        def run(seed: int) -> dict:
            started = self.deadline.elapsed()  # the deadline's own clock
            out = replay(seed)
            self.slowest_s = max(self.slowest_s, self.deadline.elapsed() - started)
            self.replays += 1
            self.reporter.update(lambda: f"parplan serve: {self.stage}: {self.replays} simulator replays, "
                                         f"{self.deadline.elapsed():.1f} s elapsed")
            return out
        return run
