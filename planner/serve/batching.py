"""Batched prefill: a prefill server that, whenever it frees, takes every queued prompt (FCFS) whose tokens fit in
the step's token budget B (vLLM max_num_batched_tokens, SGLang chunked_prefill_size, TRT-LLM max_num_tokens).

Engine semantics modelled: FCFS, no skipping; the head prompt always runs, so a prompt whose uncached tokens exceed
B runs alone in one step of its full length (vLLM V1 and SGLang instead chunk it into B-token pieces over
consecutive steps: the same GEMM and attention work, plus one step overhead per extra piece, which is omitted).
B = 1 is one prompt per step (the legacy engine). With DP attention the budget is the instance's total and the
prompts of a step are spread over the dp ranks (costmodels.serving.StepLoad.busiest_replica prices the busiest).
SGLang does this per rank: its DP controller dispatches requests round-robin to the ranks, each rank's scheduler
batches its own queue up to chunked_prefill_size / dp, and the ranks step together (the MoE layers need all of
them); one instance queue is the same when the ranks' queues are balanced and credits the pooling otherwise.

Step time table: S(k, n) = prefill of k prompts of n input tokens each (their uncached part) in one iteration
(costmodels.serving.prefill_time with batch k, the batched form), on a grid of k = 1 .. K(n_min) and of input
lengths n; a step of k prompts of mean length n̄ is priced S(k, n̄) (bilinear interpolation; exact for fixed
lengths). K(n) = max(1, ⌊B / fresh(n)⌋), at most MAX_PREFILL_BATCH.

Queueing approximation (the analytic capacity and TTFT; planner/serve/simulate.py runs the batch server exactly):
for a batch cap k ≤ K(mean length) (a step carries about B / mean prompts; larger caps would let the short
prompts of a mixed workload hide the long ones' steps), c instances whose steps carry k prompts are treated as
M/G/(c·k) with per-slot service S_k(n) = S(k_n, n)·k/k_n (k_n = min(k, K(n)): a prompt too long to share k
ways takes k/k_n slots' worth of time).
Crommelin's equivalence justifies it at the loads where the TTFT percentile binds: in M/D/m the number in system
one service time later is max(N − m, 0) + arrivals, exactly the recursion of a server taking up to m waiting
prompts per step of the same length, so the queue (and the wait) of a saturated batch server with cap k is the
M/D/k one. The wait quantile W_k comes from that queue; the request's own step then carries at least min(k, K)
prompts and, because the engine takes every queued prompt, also those that arrived while it waited:
b = min(K(L_q), max(k, 1 + λ·W_k)), own step S(b, L_q) (this is what makes two 4000-token prompts sharing an
8192-token step slower for the first of them). TTFT_k(λ) = W_k + S(b, L_q) + t_kv. The engine's batches follow the
load, so the model takes the cap k with the smallest TTFT percentile at each rate, and the largest SLO-feasible
rate over k (bisection: TTFT_k rises with λ). k = 1 with K = 1 is the one-prompt-per-step M/G/c model.
"""

import bisect
import math
from dataclasses import dataclass

import numpy as np

from costmodels.queueing import mgc_max_rate, mgc_wait_quantile_s

BISECTIONS = 40
"""halvings of the rate interval in CapModel.max_rate (a relative precision of 1e-12, beyond the plan's 9 digits)"""
MAX_PREFILL_BATCH = 256
"""most prompts one prefill step carries (engines cap running requests; the table stays small)"""
BATCH_CAPS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
"""batch caps k the analytic model tries (and the table's k grid beyond K = 16)"""


def batch_grid(most: int, dense: bool) -> tuple[int, ...]:
    """k values of the step table: BATCH_CAPS (dense: every k up to 16 as well), always ending at `most`."""
    ks = {k for k in range(1, min(most, 16) + 1)} if dense else set()
    return tuple(sorted(ks | {k for k in BATCH_CAPS if k <= most} | {most}))


@dataclass(frozen=True, slots=True)
class PrefillTable:
    """Prefill step times of one instance shape: times[i, j] = S(batches[i], lengths[j]) seconds."""

    lengths: np.ndarray
    """input lengths (tokens, cached prefix included)"""
    batches: tuple[int, ...]
    """prompts per step"""
    times: np.ndarray
    """step seconds, shape (len(batches), len(lengths))"""
    budget: int
    """token budget per step (uncached tokens)"""
    prefix: int
    """cached prefix tokens of every prompt (not counted against the budget)"""

    def fresh(self, n: float) -> float:
        return max(n - min(float(self.prefix), n - 1.0), 1.0)

    def most(self, n: float) -> int:
        """Prompts of n input tokens one step carries: max(1, ⌊B / fresh(n)⌋), at most the table's largest k."""
        return max(1, min(int(self.budget // self.fresh(n)), self.batches[-1]))

    def step(self, k: float, n: float) -> float:
        """S(k, n̄): one step of k prompts of mean input length n̄ (bilinear in k and n̄)."""
        ks = self.batches
        k = min(max(k, ks[0]), ks[-1])
        j = bisect.bisect_left(ks, k)
        at_j = self._at(j, n)
        if ks[j] == k:
            return at_j
        w = (k - ks[j - 1]) / (ks[j] - ks[j - 1])
        return (1 - w) * self._at(j - 1, n) + w * at_j

    def _at(self, row: int, n: float) -> float:
        """times[row] at input length n (linear in n; one length: that entry)."""
        if len(self.lengths) == 1:
            return float(self.times[row, 0])
        return float(np.interp(n, self.lengths, self.times[row]))

    def steps(self, ks: np.ndarray, ns: np.ndarray) -> np.ndarray:
        """S(ks[i], ns[i]) for every i (vectorised step)."""
        by_len = np.array([np.interp(ns, self.lengths, row) for row in self.times])  # (batches, len(ns))
        grid = np.asarray(self.batches, dtype=float)
        ks = np.clip(ks, grid[0], grid[-1])
        hi = np.clip(np.searchsorted(grid, ks), 1, len(grid) - 1) if len(grid) > 1 else np.zeros(len(ks), dtype=int)
        lo = np.maximum(hi - 1, 0)
        span = grid[hi] - grid[lo]
        w = np.where(span > 0, (ks - grid[lo]) / np.where(span > 0, span, 1.0), 0.0)
        cols = np.arange(len(ns))
        return by_len[lo, cols] * (1 - w) + by_len[hi, cols] * w

    def most_of(self, ns: np.ndarray) -> np.ndarray:
        """most(n) for every n."""
        fresh = np.maximum(ns - np.minimum(float(self.prefix), ns - 1.0), 1.0)
        return np.clip(np.floor(self.budget / fresh), 1, self.batches[-1])


def build_table(step_seconds, lengths: np.ndarray, budget: int, prefix: int, widest: float) -> PrefillTable:
    """The table of `step_seconds(k, n)` over the length grid and k = 1 .. K(widest) (every k up to 16 for one
    length, BATCH_CAPS otherwise). The analytic model needs K(mean length), the simulator K(shortest)."""
    probe = PrefillTable(lengths=lengths, batches=(MAX_PREFILL_BATCH,), times=np.zeros((1, len(lengths))),
                         budget=budget, prefix=prefix)
    ks = batch_grid(probe.most(widest), dense=len(lengths) == 1)
    times = np.array([[step_seconds(k, float(n)) for n in lengths] for k in ks])
    return PrefillTable(lengths=lengths, batches=ks, times=times, budget=budget, prefix=prefix)


@dataclass(frozen=True, slots=True)
class CapModel:
    """The M/G/(c·k) model of one batch cap k: per-slot service moments, and the own step of the prompt at the
    input-length quantile by the number of prompts it shares the step with."""

    cap: int
    mean_s: float
    second_s2: float
    own_s: tuple[float, ...]
    """S(b, L_q) for b = 1 .. K(L_q): the quantile prompt's step when it carries b prompts"""
    transfer_s: float = 0.0
    """KV transfer of the quantile prompt"""

    @property
    def floor_s(self) -> float:
        """TTFT at zero load: own step at this cap (min(k, K(L_q)) prompts) + KV transfer."""
        return self.own_s[min(self.cap, len(self.own_s)) - 1] + self.transfer_s

    def ttft_s(self, rate: float, quantile: float, servers: int, arrival_scv: float = 1.0) -> float:
        """TTFT percentile at total rate `rate` over `servers` pooled instances: the wait quantile W of
        M/G/(servers·k) (GI/G/k for an instance fed round-robin, arrivals of squared coefficient of variation
        arrival_scv, costmodels.queueing), then the own step, which carries at least min(k, K) prompts and every
        prompt that arrived during the wait (the engine takes all queued prompts):
        b = min(K(L_q), max(k, 1 + rate·W))."""
        wait = mgc_wait_quantile_s(rate, self.mean_s, self.second_s2, quantile, servers * self.cap, arrival_scv)
        if len(self.own_s) == 1 or not math.isfinite(wait):
            return wait + (self.own_s[0] + self.transfer_s) if len(self.own_s) == 1 else math.inf
        most = len(self.own_s)
        batch = min(float(most), max(float(min(self.cap, most)), 1.0 + rate * wait))
        whole = min(int(batch), most - 1)  # linear between own_s[whole - 1] (b = whole) and own_s[whole]
        own = self.own_s[whole - 1] + (batch - whole) * (self.own_s[whole] - self.own_s[whole - 1])
        return wait + (own + self.transfer_s)

    def scaled(self, factor: float) -> "CapModel":
        """The same server with every step `factor` times longer (an intra-GPU compute share s: 1/s)."""
        return CapModel(cap=self.cap, mean_s=self.mean_s * factor, second_s2=self.second_s2 * factor * factor,
                        own_s=tuple(t * factor for t in self.own_s), transfer_s=self.transfer_s)

    def max_rate(self, quantile: float, ttft_s: float, servers: int, arrival_scv: float = 1.0) -> float:
        """Largest total rate whose TTFT percentile is <= ttft_s (TTFT rises with the rate; bisection)."""
        if len(self.own_s) == 1:  # the own step does not depend on the load: the M/G/c wait budget
            return mgc_max_rate(self.mean_s, self.second_s2, quantile, ttft_s - self.floor_s, servers * self.cap,
                                arrival_scv)
        if ttft_s < self.floor_s or self.mean_s <= 0:
            return 0.0
        lo, hi = 0.0, servers * self.cap / self.mean_s
        for _ in range(BISECTIONS):
            mid = 0.5 * (lo + hi)
            if self.ttft_s(mid, quantile, servers, arrival_scv) <= ttft_s:
                lo = mid
            else:
                hi = mid
        return lo


def cap_models(table: PrefillTable, inputs: np.ndarray, q_in: float, pp: int,
               transfer_s: float) -> tuple[CapModel, ...]:
    """Per batch cap k in BATCH_CAPS ∩ [1, K(mean length)]: moments of S_k/pp over the length sample, and the own
    steps of the prompt at the length quantile (+ KV transfer); pp stages pipeline steps: a new step starts every
    S/pp."""
    most = table.most(float(inputs.mean()))  # a step carries about budget / mean length prompts
    lengths, where = np.unique(inputs, return_inverse=True)
    fit = table.most_of(lengths)
    most_q = table.most(q_in)
    own = tuple(table.step(float(b), q_in) for b in range(1, most_q + 1))
    out = []
    for cap in [k for k in BATCH_CAPS if k <= most] or [1]:
        k_n = np.minimum(float(cap), fit)
        per = table.steps(k_n, lengths) * cap / k_n  # a prompt that shares a step k_n ways holds cap/k_n slots
        service = per[where] / pp
        out.append(CapModel(cap=cap, mean_s=float(service.mean()), second_s2=float((service ** 2).mean()),
                            own_s=own, transfer_s=transfer_s))
    return tuple(out)


def pooled_rate(models: tuple[CapModel, ...], quantile: float, ttft_s: float, servers: int,
                arrival_scv: float = 1.0) -> float:
    """SLO-feasible rate of `servers` pooled instances (one instance fed round-robin: arrival_scv < 1): the best
    batch cap's."""
    best = 0.0
    for m in models:
        if m.mean_s > 0 and servers * m.cap / m.mean_s > best:  # a cap whose peak rate is below the best cannot win
            best = max(best, m.max_rate(quantile, ttft_s, servers, arrival_scv))
    return best


def pooled_rates(models: tuple[CapModel, ...], quantile: float, ttft_s: float, most: int) -> tuple[float, ...]:
    """SLO-feasible rate of c = 1 .. most pooled instances: the best batch cap for each c."""
    return tuple(pooled_rate(models, quantile, ttft_s, c) for c in range(1, most + 1))


def ttft_quantile_s(models: tuple[CapModel, ...], rate: float, quantile: float, servers: int,
                    arrival_scv: float = 1.0) -> float:
    """TTFT percentile of `servers` pooled batch servers at total rate `rate` (one instance fed round-robin:
    arrival_scv < 1): the best batch cap's figure."""
    return min(m.ttft_s(rate, quantile, servers, arrival_scv) for m in models)
