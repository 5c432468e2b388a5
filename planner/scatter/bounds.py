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
The left side h(T) is a non-increasing step function with steps at the table's times, built once per
weight vector by sorting; the smallest T passing the test is read off its intervals — closed form, no LP.
We use λ_k = w_k·[d_k ≥ δ] for the weight families in FAMILIES and each threshold δ in the support. With
w_k = d_k and δ = the smallest degree this is the
"GPU-seconds / units" bound restricted to degrees usable within T; larger δ charge only the sequences
that cannot finish within T on a group smaller than δ against the units held by groups of degree ≥ δ;
the other families price a large group below its unit count (at what a typical sequence gains on it), which
is what binds when a large group's spare time can only take sequences at a worse GPU-time than elsewhere.
Each is valid (any λ ≥ 0 is), so their maximum is; it is also ≥ the largest single-sequence time
max_i min_{k∈M} t[k,i], which we use as the search's start.
Long sequences (integrality): for a complete multiset, the few longest sequences (`long_idx`) are
assigned exactly, by enumeration over groups (identical groups with equal load are tried once), and only
the rest is relaxed. With preloads p_g from the long sequences, group g can take at most T - p_g, so
  T ≥ max_g p_g  and  Σ_{i short} min_{k: t[k,i] ≤ T} λ_k·t[k,i] + Σ_g λ_{k(g)}·p_g ≤ T·Σ_k c_k·λ_k;
the multiset's bound is the minimum over the enumerated assignments (each covers the plans that put the long
sequences that way, and together they cover all plans), computed only for multisets that survive the rest.
Top-degree waste (global, every multiset): for a candidate T, a_i(T) = min_{k: t[k,i] ≤ T} d_k·t[k,i] is the
fewest unit-seconds sequence i can use. Sequences H that finish within T only on the largest degree D need
m ≥ ceil(Σ_H t[D,i] / T) groups of degree D, whose other L ≥ m·D·T − Σ_H D·t[D,i] unit-seconds are idle or
run other sequences j at D·t[D,j] ≥ a_j(T): the least waste W(L) is a fractional knapsack filling L with
the lowest waste per unit-second (D·t[D,j] − a_j)/(D·t[D,j]) first, idle at 1. Any plan with step time ≤ T
satisfies Σ_i a_i(T) + W(L) ≤ U·T (U units); a T that fails the test is below every plan's step time,
so the bisection's largest failing T is a lower bound (no monotonicity needed: each failing T is one).
The same test bounds every completion of a partial multiset (counts fixed for degrees above a level,
the remaining units free among smaller degrees): the support then includes all smaller degrees, and
thresholds δ above the level only see the fixed groups' units.
"""

import numpy as np

FAMILIES = (("pow", 1.0), ("eq", 1.0))
"""weight families tried on every complete multiset (see BoundOracle.lam)"""
LONG_FAMILIES = (("pow", 1.0), ("eq", 1.0), ("eq", 0.5))
"""weight families tried when re-bounding a multiset with its long sequences placed"""
TUNING_FACTORS = (0.85, 0.95, 1.05, 1.2)
"""multipliers tried on one class's weight per coordinate-ascent step of tuned_bound"""
DEFAULT = ("pow", 1.0)


class BoundOracle:
    """Memoised evaluation of the bounds above for one cost table."""

    def __init__(self, degrees: tuple[int, ...], times: np.ndarray, long_idx: tuple[int, ...] = ()):
        self.degrees = degrees
        self.t = times
        self.long_idx = tuple(long_idx)
        short = np.ones(times.shape[1], dtype=bool)
        short[list(self.long_idx)] = False
        self.cols = {"all": np.ones(times.shape[1], dtype=bool), "short": short}
        self._w: dict = {}
        self._lam: dict = {}
        self._h: dict = {}
        self._base: dict = {}
        self._single: dict = {}
        self._bound: dict = {}

    def rows(self, mask: int) -> list[int]:
        return [k for k in range(len(self.degrees)) if mask >> k & 1]

    def single(self, mask: int, part: str = "all") -> float:
        """max_i min_{k in mask} t[k,i] over the part's sequences: one of them takes at least this long."""
        key = (mask, part)
        val = self._single.get(key)
        if val is None:
            sub = self.t[self.rows(mask)][:, self.cols[part]]
            val = float(sub.min(axis=0).max()) if sub.size else 0.0
            self._single[key] = val
        return val

    def lam(self, mask: int, fam: tuple) -> np.ndarray:
        """Per-row weights λ_k of family `fam` for this support: ("pow", α) is d_k^α; ("eq", β) blends
        d_k^(1-β) with e_k^β, e_k = Σ_S t[k0,i] / Σ_S t[k,i] over the sequences S that fit on every row of
        the support (k0 its smallest degree): the price that makes a typical sequence cost the same everywhere."""
        key = (mask, fam)
        if key not in self._lam:
            d = np.asarray(self.degrees, dtype=float)
            kind, x = fam
            lam = np.asarray(x, dtype=float) if kind == "vec" else d ** x if kind == "pow" else d.copy()
            if kind == "eq":
                rows = self.rows(mask)
                both = np.isfinite(self.t[rows]).all(axis=0)
                if both.any():
                    base = self.t[rows[0], both].sum()
                    for k in rows:
                        lam[k] = d[k] ** (1 - x) * (base / self.t[k, both].sum()) ** x
            self._lam[key] = lam
        return self._lam[key]

    def _weights(self, mask: int, fam: tuple) -> np.ndarray:
        key = (mask, fam)
        if key not in self._w:
            self._w[key] = self.t * self.lam(mask, fam)[:, None]
        return self._w[key]

    def _events(self, mask: int, part: str) -> tuple:
        """Weight-independent part of the curves of (mask, part): options sorted by time per sequence, and
        the finite option events in time order with the interval starts they define."""
        key = (mask, part)
        val = self._base.get(key)
        if val is None:
            rows = self.rows(mask)
            t = self.t[rows][:, self.cols[part]]
            order = np.argsort(t, axis=0, kind="stable")
            ts = np.take_along_axis(t, order, axis=0)
            fin = np.isfinite(ts)
            ev_t = ts[fin]
            idx = np.argsort(ev_t, kind="stable")
            ev_t = ev_t[idx]
            first = np.zeros_like(ts)
            first[0] = 1.0
            starts = np.unique(ev_t)
            last = np.searchsorted(ev_t, starts, side="right") - 1
            complete = np.cumsum(first[fin][idx])[last] >= t.shape[1]
            val = (rows, order, fin, idx, starts, last, complete)
            self._base[key] = val
        return val

    def _curve(self, mask: int, low: int, fam: tuple, part: str) -> tuple:
        """h as a step function over the part's sequences: (interval starts, their list with inf appended,
        h on each interval). Rows below `low` are free (λ = 0), the others cost λ_k·t; h is inf until every
        sequence has a row that finishes it. Each sequence's cost is the running minimum over its options in
        time order; the changes are summed as events in time order."""
        key = (mask, low, fam, part)
        val = self._h.get(key)
        if val is None:
            rows, order, fin, idx, starts, last, complete = self._events(mask, part)
            cost = self._weights(mask, fam)[rows][:, self.cols[part]].copy()
            cost[[r for r, k in enumerate(rows) if k < low], :] = 0.0
            cm = np.minimum.accumulate(np.take_along_axis(cost, order, axis=0), axis=0)
            with np.errstate(invalid="ignore"):  # inf - inf only where the time is inf too (dropped)
                delta = np.vstack([cm[:1], np.diff(cm, axis=0)])
            csum = np.cumsum(delta[fin][idx])
            h = np.where(complete, csum[last], np.inf) if starts.size else np.zeros(0)
            val = (starts, starts.tolist() + [np.inf], h.tolist())
            self._h[key] = val
        return val

    def _search(self, mask: int, low: int, units: float, fam: tuple, part: str, const: float,
                floor: float) -> float:
        """Smallest T ≥ floor with h_part(T) + const ≤ T·units."""
        t0 = max(floor, self.single(mask, part))
        if units <= 0:
            return t0
        starts, bounds_list, h = self._curve(mask, low, fam, part)
        if starts.size == 0:
            return max(t0, const / units)

        def value(e: int) -> float:
            """The smallest feasible T in interval e (≥ t0), or inf when there is none."""
            if h[e] == np.inf:
                return np.inf
            t = max(bounds_list[e], t0, (h[e] + const) / units)
            return t if t < bounds_list[e + 1] else np.inf

        lo = max(int(np.searchsorted(starts, t0, side="right")) - 1, 0)
        hi = len(h) - 1  # the last interval is always feasible (it never ends)
        if value(lo) < np.inf:
            return value(lo)
        while hi - lo > 1:  # feasibility is monotone in T: bisect for the first feasible interval
            mid = (lo + hi) // 2
            if value(mid) < np.inf:
                hi = mid
            else:
                lo = mid
        return value(hi)

    def bound(self, mask: int, low: int, units: float, cap: float = np.inf, fam: tuple = DEFAULT) -> float:
        """Smallest T passing the dual test for λ = lam(mask, fam)·[k ≥ low] with Σ c_k λ_k = `units`
        (`cap` is accepted for symmetry with the callers' pruning and does not change the value)."""
        key = (mask, low, units, fam)
        val = self._bound.get(key)
        if val is None:
            val = self._search(mask, low, units, fam, "all", 0.0, 0.0)
            self._bound[key] = val
        return val

    def multiset_bound(self, counts: dict[int, int], cap: float = np.inf) -> float:
        """Bound of a complete multiset {row k: group count}, all sequences relaxed."""
        support = [k for k in sorted(counts) if counts[k] > 0]
        mask = sum(1 << k for k in support)
        best = self.single(mask)
        for fam in FAMILIES:
            lam = self.lam(mask, fam)
            for low in support:
                units = float(sum(lam[k] * counts[k] for k in support if k >= low))
                best = max(best, self.bound(mask, low, units, cap, fam))
                if best >= cap:
                    return best
        return best

    def long_bound(self, counts: dict[int, int], cap: float = np.inf, extra: tuple = ()) -> float:
        """Bound of a complete multiset with the long sequences assigned exactly (see the module notes);
        `extra` adds weight families (e.g. the tuned vector of tuned_bound) to LONG_FAMILIES."""
        support = [k for k in sorted(counts) if counts[k] > 0]
        mask = sum(1 << k for k in support)
        groups = [k for k in support for _ in range(counts[k])]
        loads = [0.0] * len(groups)
        order = sorted(self.long_idx, key=lambda i: -float(np.min(self.t[support, i])))
        best = [cap]

        def leaf() -> float:
            pmax = max(loads)
            val = pmax
            for fam in LONG_FAMILIES + tuple(extra):
                lam = self.lam(mask, fam)
                for low in support:
                    units = float(sum(lam[k] * counts[k] for k in support if k >= low))
                    const = float(sum(lam[k] * p for k, p in zip(groups, loads, strict=True) if k >= low))
                    val = max(val, self._search(mask, low, units, fam, "short", const, pmax))
                    if val >= best[0]:
                        return val
            return val

        def dfs(pos: int) -> None:
            if pos == len(order):
                best[0] = min(best[0], leaf())
                return
            i = order[pos]
            seen = set()
            for g, k in enumerate(groups):
                t = self.t[k, i]
                if (k, loads[g]) in seen or not loads[g] + t < best[0]:
                    continue
                seen.add((k, loads[g]))
                old = loads[g]
                loads[g] = old + t
                dfs(pos + 1)
                loads[g] = old

        dfs(0)
        return best[0]

    def tuned_bound(self, counts: dict[int, int], rounds: int = 2) -> tuple[float, tuple]:
        """Plain bound (all sequences relaxed, δ = smallest degree) with per-class weights tuned by coordinate
        ascent from the best family: any λ ≥ 0 gives a valid bound, so the search only affects strength.
        Returns (bound, the weight family reached)."""
        support = [k for k in sorted(counts) if counts[k] > 0]
        mask = sum(1 << k for k in support)
        low = support[0]

        def as_fam(lam: np.ndarray) -> tuple:
            return ("vec", tuple(float(f"{v:.6g}") for v in lam))

        def value(lam: np.ndarray) -> float:
            fam = as_fam(lam)
            units = float(sum(fam[1][k] * counts[k] for k in support))
            return self.bound(mask, low, units, fam=fam)

        start = [self.lam(mask, fam) for fam in LONG_FAMILIES]
        scored = [(value(lam), k) for k, lam in enumerate(start)]
        best_val, at = max(scored)
        lam = start[at].copy()
        for _ in range(rounds):
            improved = False
            for k in support[1:]:
                for factor in TUNING_FACTORS:
                    trial = lam.copy()
                    trial[k] *= factor
                    val = value(trial)
                    if val > best_val * (1 + 1e-9):
                        best_val, lam, improved = val, trial, True
            if not improved:
                break
        return best_val, as_fam(lam)

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


def _waste_test_fails(t: np.ndarray, degs: np.ndarray, units: int, T: float) -> bool:
    """True when no plan has step time ≤ T by the top-degree waste test (module notes)."""
    allowed = t <= T
    if not allowed.any(axis=0).all():
        return True
    area = np.where(allowed, t * degs[:, None], np.inf)
    a = area.min(axis=0)
    top = t.shape[0] - 1
    only_top = allowed[top] & ~allowed[:top].any(axis=0)
    waste = 0.0
    if only_top.any():
        need = float(t[top, only_top].sum())
        m = max(int(np.ceil(need / T - 1e-9)), 1)
        if m * degs[top] > units:
            return True
        left = m * degs[top] * T - degs[top] * need
        fill = allowed[top] & ~only_top
        b = area[top, fill]
        w = b - a[fill]
        order = np.argsort(w / b, kind="stable")
        b, w = b[order], w[order]
        cb = np.cumsum(b)
        j = int(np.searchsorted(cb, left, side="right"))
        waste = float(w[:j].sum())
        if j < b.size:
            waste += float(w[j]) * (left - (float(cb[j - 1]) if j else 0.0)) / float(b[j])
        else:
            waste += left - (float(cb[-1]) if b.size else 0.0)
    return float(a.sum()) + waste > units * T * (1 + 1e-9)


def top_waste_bound(degrees: tuple[int, ...], times: np.ndarray, units: int, low: float, high: float,
                    steps: int = 12) -> float:
    """The largest T in [low, high) found by bisection that fails the waste test, else `low` (a valid bound
    when `low` is one)."""
    degs = np.asarray(degrees, dtype=float)
    best = low
    if not _waste_test_fails(times, degs, units, low):
        return low
    for _ in range(steps):
        mid = 0.5 * (low + high)
        if _waste_test_fails(times, degs, units, mid):
            best = low = mid
        else:
            high = mid
    return best
