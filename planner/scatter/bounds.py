"""Lower bounds on the step time of a degree multiset (or of every completion of a partial one).

Data: sequences i, degree classes k with degree d_k (units) and time t[k,i] (s, inf where memory does not
fit; the intra-node time, which is never above the spanning time, so the bounds hold for any placement).
A multiset M has c_k groups of degree d_k. Relaxation (fractional assignment, per-class pooled capacity):
  find T, x[k,i] ≥ 0 with  Σ_k x[k,i] = 1 (every sequence fully processed),
  x[k,i] = 0 where t[k,i] > T (a sequence is never split across groups, so it can only use a class on
  which it finishes within T),  Σ_i t[k,i]·x[k,i] ≤ c_k·T (class k's groups together work at most c_k·T).
Every integral plan with step time T satisfies this, so the smallest feasible T is a lower bound.

Dual certificate (Farkas): for any weights λ_k ≥ 0 the system is infeasible at T when
  Σ_i min_{k: t[k,i] ≤ T} λ_k·t[k,i]  >  T · Σ_k c_k·λ_k.
The left side h(T) is a non-increasing step function with steps at the table's times, so the smallest T
passing the test is found by a search over those breakpoints — closed-form per weight vector, no LP solver.
We use λ_k = d_k^α·[d_k ≥ δ] for α in ALPHAS and each threshold δ in the support. With α = 1 and δ = the
smallest degree this is the
"GPU-seconds / units" bound restricted to degrees usable within T; larger δ charge only the sequences
that cannot finish within T on a group smaller than δ against the units held by groups of degree ≥ δ;
α < 1 prices a large group below its unit count, which is what binds when a multiset has too few small
groups for the short sequences (they run less efficiently on larger groups).
Each is valid (any λ ≥ 0 is), so their maximum is; it is also ≥ the largest single-sequence time
max_i min_{k∈M} t[k,i], which we use as the search's start.
The same test bounds every completion of a partial multiset (counts fixed for degrees above a level,
the remaining units free among smaller degrees): the support then includes all smaller degrees, and
thresholds δ above the level only see the fixed groups' units.
"""

import numpy as np

ALPHAS = (1.0, 0.75, 0.5)
"""exponents of the weight families λ_k = d_k^alpha tried on complete multisets"""


class BoundOracle:
    """Memoised evaluation of the bounds above for one cost table."""

    def __init__(self, degrees: tuple[int, ...], times: np.ndarray):
        self.degrees = degrees
        self.t = times
        self._w: dict = {}
        finite = times[np.isfinite(times)]
        self.breaks = np.unique(finite)
        self.breaks_list = self.breaks.tolist()
        self._h: dict = {}
        self._single: dict = {}
        self._bound: dict = {}

    def rows(self, mask: int) -> list[int]:
        return [k for k in range(len(self.degrees)) if mask >> k & 1]

    def single(self, mask: int) -> float:
        """max_i min_{k in mask} t[k,i]: some sequence takes at least this long."""
        val = self._single.get(mask)
        if val is None:
            val = float(self.t[self.rows(mask)].min(axis=0).max())
            self._single[mask] = val
        return val

    def weights(self, alpha: float) -> np.ndarray:
        if alpha not in self._w:
            self._w[alpha] = self.t * np.asarray(self.degrees, dtype=float)[:, None] ** alpha
        return self._w[alpha]

    def _h_at(self, mask: int, low: int, j: int, alpha: float = 1.0) -> float:
        """h at breakpoint j: rows below `low` are free (λ = 0), rows from `low` cost d_k^alpha·t."""
        key = (mask, low, j, alpha)
        val = self._h.get(key)
        if val is None:
            cap = self.breaks_list[j] if j >= 0 else np.inf
            rows = self.rows(mask)
            t = self.t[rows]
            ok = t <= cap
            charged = [r for r, k in enumerate(rows) if k >= low]
            free_rows = [r for r, k in enumerate(rows) if k < low]
            if not charged:
                val = 0.0
            else:
                w = self.weights(alpha)
                cost = np.where(ok[charged], w[[rows[r] for r in charged]], np.inf).min(axis=0)
                if free_rows:
                    cost = np.where(ok[free_rows].any(axis=0), 0.0, cost)
                val = float(cost.sum())
            self._h[key] = val
        return val

    def bound(self, mask: int, low: int, units: float, cap: float = np.inf, alpha: float = 1.0) -> float:
        """Smallest T passing the dual test for λ_k = d_k^alpha·[k ≥ low] with Σ c_k λ_k = `units`.

        Returns at least `cap` early when the bound is already known to reach `cap` (used for pruning).
        """
        key = (mask, low, units, alpha)
        val = self._bound.get(key)
        if val is not None:
            return val
        if units <= 0:
            return self.single(mask)
        breaks = self.breaks_list
        last = len(breaks) - 1
        t0 = self.single(mask)
        h_all = self._h_at(mask, low, last, alpha)
        t0 = max(t0, h_all / units)
        j = int(np.searchsorted(self.breaks, t0, side="right")) - 1

        def feasible(jj: int) -> tuple[bool, float]:
            hj = self._h_at(mask, low, jj, alpha)
            tj = max(breaks[jj], hj / units) if hj < np.inf else np.inf
            return (jj == last or tj < breaks[jj + 1]) and tj < np.inf, tj

        ok, tj = feasible(j)
        if ok:
            val = max(t0, tj)
        else:
            lo, step = j, 1
            hi = min(j + step, last)
            while True:
                ok_hi, _ = feasible(hi)
                if ok_hi or hi == last:
                    break
                if breaks[hi + 1] >= cap:
                    return breaks[hi + 1]  # infeasible below breaks[hi + 1], already past the cap
                lo, step = hi, step * 2
                hi = min(hi + step, last)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if feasible(mid)[0]:
                    hi = mid
                else:
                    lo = mid
            val = max(t0, feasible(hi)[1])
        self._bound[key] = val
        return val

    def multiset_bound(self, counts: dict[int, int], cap: float = np.inf) -> float:
        """Bound of a complete multiset {row k: group count}."""
        support = [k for k in sorted(counts) if counts[k] > 0]
        mask = sum(1 << k for k in support)
        best = self.single(mask)
        for alpha in ALPHAS:
            for low in support:
                units = float(sum(self.degrees[k] ** alpha * counts[k] for k in support if k >= low))
                best = max(best, self.bound(mask, low, units, cap, alpha))
                if best >= cap:
                    return best
        return best

    def partial_bound(self, fixed: dict[int, int], level: int, total_units: int, cap: float = np.inf) -> float:
        """Bound of every completion: rows above `level` fixed to `fixed`, rows ≤ level free."""
        free_mask = (1 << (level + 1)) - 1
        fixed_rows = [k for k in sorted(fixed) if fixed[k] > 0]
        mask = free_mask | sum(1 << k for k in fixed_rows)
        best = self.bound(mask, 0, float(total_units), cap)
        for low in fixed_rows:
            if best >= cap:
                break
            units = float(sum(self.degrees[k] * fixed[k] for k in fixed_rows if k >= low))
            best = max(best, self.bound(mask, low, units, cap))
        return best
