"""The prompt queue of a colocated (chunked-prefill) instance at chunk size C, as a function of the arrival rate λ.

An iteration carrying prompt tokens takes m(N, C) (N decodes plus a C-token chunk, CapacityModel.mixed_seconds),
one without takes d(N) (CapacityModel.token_seconds). The decode batch N the prompts share their iterations with
grows with the load: a request decodes for E[O] − 1 iterations after its prefill, so by Little's law
N = λ·(E[O] − 1)·τ̄ with τ̄ the mean iteration. Per second the engine runs λ·E[u] prompt iterations (u: a prompt's
iterations, below) taking ρ = λ·E[u]·m(N, C) of the second and fills the rest with decode-only ones, so
1/τ̄ = λ·E[u] + (1 − ρ)⁺ / d(N). N is the largest fixed point ≤ B_max (iteration from N = B_max, which only
decreases N; FIXED_POINT_STEPS steps: an upper bound, so a conservative iteration time). With τ(λ) = m(N(λ), C):
  packed (the engine batches prompts, token budget > 1): the C prompt tokens of an iteration come from the queued
      prompts in FCFS order (the head's remaining chunk, then the next prompts), so the prompts form a
      work-conserving token server at C tokens per τ: M/G/1 with service S = u·τ, u = L/C;
  one prompt per iteration (budget 1, legacy and modern engines): u = ⌈L/C⌉.
  TTFT_q(λ) = W_q(λ; E[S], E[S²]) + R(λ) + ⌈L_q/C⌉·τ(λ)   (the prompt's own iterations; exact at zero load)
  R(λ) = (1 − ρ)·min(1, N)·d(N)/2: a prompt that finds no prompt work queued waits for the decode-only iteration
      in flight (engines add prompts at iteration boundaries), half of one on average
TTFT_q rises with λ, so the SLO-feasible rate is found by bisection. m and d come from tables over a geometric
batch grid (linear interpolation), as in the simulator (planner/serve/simulate.py), which runs the same iterations.
"""
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from costmodels.queueing import mg1_wait_quantile_s

FIXED_POINT_STEPS = 8
"""iterations of N ← min(B_max, λ·(E[O] − 1)·τ̄(N))"""
BISECTIONS = 40
"""halvings of the rate interval of ColocatedQueue.max_rate"""
GRID_POINTS = 12
"""batch grid points of the iteration-time table (plus N = 0)"""


@dataclass(frozen=True, slots=True)
class ColocatedQueue:
    """The prompt queue of one colocated instance shape at one chunk size."""

    chunk: int
    """prompt tokens per iteration C"""
    batch_max: int
    """largest decode batch (TPOT and KV bound)"""
    mean_out: float
    """E[O]: decode iterations per request"""
    units: np.ndarray
    """per sampled prompt: iterations' worth of its tokens (L/C packed, ⌈L/C⌉ otherwise)"""
    own_units: int
    """⌈L_q/C⌉: iterations of the prompt at the input-length quantile"""
    grid: np.ndarray
    """decode batches of the table (0 first)"""
    times: np.ndarray
    """m(grid[i], C) seconds"""
    decode_times: np.ndarray
    """d(max(grid[i], 1)) seconds"""

    @staticmethod
    def build(step: Callable[[float], float], decode: Callable[[float], float], *, chunk: int, batch_max: int,
              mean_out: float, fresh: np.ndarray, fresh_q: float, pack: bool) -> "ColocatedQueue":
        """`step(N)` = m(N, C), `decode(N)` = d(N); `fresh`: sampled uncached prompt tokens; fresh_q: at the length
        quantile."""
        grid = np.concatenate([[0.0], np.unique(np.rint(np.geomspace(1, max(batch_max, 1), GRID_POINTS)))])
        units = fresh / chunk if pack else np.ceil(fresh / chunk)
        return ColocatedQueue(chunk=chunk, batch_max=batch_max, mean_out=mean_out, units=units,
                              own_units=math.ceil(fresh_q / chunk), grid=grid,
                              times=np.array([step(float(b)) for b in grid]),
                              decode_times=np.array([decode(max(float(b), 1.0)) for b in grid]))

    def iteration_s(self, rate: float) -> float:
        """τ(λ) = m(N(λ), C) with N(λ) from the fixed point above."""
        return self._m(self._running(rate))

    def _running(self, rate: float) -> float:
        """N(λ): the decode batch (fixed-point iteration from B_max)."""
        running = float(self.batch_max)
        prompt_rate = rate * float(self.units.mean())  # prompt iterations per second
        for _ in range(FIXED_POINT_STEPS):
            busy = min(1.0, prompt_rate * self._m(running))
            per_s = prompt_rate + (1.0 - busy) / self._d(running)
            running = min(float(self.batch_max), rate * max(self.mean_out - 1.0, 0.0) / per_s) if per_s > 0 else 0.0
        return running

    def _d(self, running: float) -> float:
        return float(np.interp(running, self.grid, self.decode_times))

    def residual_s(self, rate: float) -> float:
        """Mean wait of a prompt that finds no prompt work queued for the decode-only iteration in flight:
        (1 − ρ)·min(1, N)·d(N)/2 (the engine adds prompts at iteration boundaries only)."""
        return self._residual(rate, self._running(rate))

    def _residual(self, rate: float, running: float) -> float:
        busy = min(1.0, rate * float(self.units.mean()) * self._m(running))
        return (1.0 - busy) * min(1.0, running) * self._d(running) / 2.0

    def _m(self, running: float) -> float:
        return float(np.interp(running, self.grid, self.times))

    def moments(self, rate: float) -> tuple[float, float]:
        """(E[S], E[S²]) of the prompt service at rate λ."""
        return self._moments(self.iteration_s(rate))

    def _moments(self, tau: float) -> tuple[float, float]:
        service = self.units * tau
        return float(service.mean()), float((service ** 2).mean())

    def floor_s(self, rate: float = 0.0) -> float:
        """The own iterations ⌈L_q/C⌉·τ(λ) (zero load: the TTFT floor)."""
        return self.own_units * self.iteration_s(rate)

    def ttft_s(self, rate: float, quantile: float, arrival_scv: float = 1.0) -> float:
        """TTFT_q(λ) = W_q + residual + ⌈L_q/C⌉·τ(λ) (W_q of GI/G/1 for round-robin-fed arrivals of squared
        coefficient of variation arrival_scv < 1, costmodels.queueing); inf when the queue is unstable."""
        running = self._running(rate)
        tau = self._m(running)
        mean, second = self._moments(tau)
        return mg1_wait_quantile_s(rate, mean, second, quantile, arrival_scv) + self._residual(rate, running) \
            + self.own_units * tau

    def max_rate(self, quantile: float, ttft_s: float, arrival_scv: float = 1.0) -> float:
        """Largest λ with TTFT_q(λ) <= ttft_s (0 when even zero load misses it)."""
        if self.floor_s() > ttft_s:
            return 0.0
        lo, hi = 0.0, 1.0 / float(self.units.mean() * self.times[0])  # ρ >= 1 there: τ(λ) >= m(0, C)
        for _ in range(BISECTIONS):
            mid = 0.5 * (lo + hi)
            if self.ttft_s(mid, quantile, arrival_scv) <= ttft_s:
                lo = mid
            else:
                hi = mid
        return lo
