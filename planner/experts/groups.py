"""Component (group) bound and exact placement of one layer on identical GPUs.

Notation: E experts with a_e token-expert pairs, G identical GPUs with S slots each (one replica of an
expert per GPU), P = pairs on the busiest GPU (its time is c0 + kappa * P).

Lemma 1 (bound). In any placement the bipartite graph experts-GPUs (an edge per replica) splits into
connected components. A component with k GPUs and m experts is connected, so it has >= m + k - 1 edges,
and it has <= S k edges (slots), hence m <= (S - 1) k + 1. Its experts' tokens are served only on its k
GPUs, so P >= a(component) / k. Therefore
    P* >= min over partitions of the experts into groups j with GPU counts k_j >= 1, sum_j k_j <= G,
          m_j <= (S - 1) k_j + 1   of   max_j a_j / k_j.                                   (group bound)
Lemma 2 (the bound is attained). m items of total <= k C with m <= (S - 1) k + 1 fit in k bins of
capacity C with <= S pieces per bin and every item's pieces in distinct bins. Proof by induction on k
(k = 1: m <= S, total <= C). For k >= 2 fill one bin so that the rest, k - 1 bins, satisfies the
hypothesis: it must take D = max(0, total - (k-1) C) <= C tokens and remove r = max(0, m - (S-1)(k-1) - 1)
<= S - 1 items whole. Let p be the largest item and, for w in [r, S - 1], W_w the windows of w consecutive
items of the other items sorted ascending. Take the least w whose largest window plus a_p reaches D (it
exists: if the S largest items summed to < D <= C, every other item would be < D / S and the total
(k-1) C + D < D m / S would force m > k S >= (S-1) k + 1). Consecutive windows differ by one swap, which
adds at most a_p, so the first window W with a(W) >= D - a_p has a(W) <= C (if it is the first window:
for w = r it is the r smallest items, a(W) <= r k C / m <= C; for w > r, a(W) <= the w largest < D).
The bin takes W whole and max(0, D - a(W)) <= a_p of p: <= w + 1 <= S pieces, between D and C tokens,
and at least r items leave. Hence the group bound is the layer optimum, and pack_group builds it.

Group MILP (experts sorted by load, descending, index i; group j is led by its first expert j):
  Variables u[i,j] in {0,1} (j <= i): expert i in group j;  b[j,k] in {0,1}: group j has k GPUs;
            w[j,k] in [0, P_hi]: = P * b[j,k];  P: busiest GPU's pairs
  Objective min P
  (G1) sum_{j<=i} u[i,j] = 1                 every expert in one group
  (G2) u[i,j] <= u[j,j]                      a group exists only with its leader
  (G3) sum_k b[j,k] = u[j,j]                 an existing group has one GPU count
  (G4) sum_i a_i u[i,j] <= sum_k k w[j,k]    load of a group <= P * its GPUs
  (G5) sum_i u[i,j] <= sum_k ((S-1) k + 1) b[j,k]   Lemma 1's count
  (G6) sum_{j,k} k b[j,k] <= G               GPUs
  (G7) w[j,k] <= P,  w[j,k] <= P_hi b[j,k]   (exact linearisation of P * b for P <= P_hi)
The leader rule breaks the symmetry between groups; P_hi is the warm start's value (the heuristic's
components), so the search never leaves the region that can improve on it.

Subset search (small E, subset_search): for a trial P a group X needs k(X) = max(ceil(a(X)/P),
ceil((|X|-1)/(S-1)), 1) GPUs and wastes k(X) - a(X)/P of them; a partition fits iff its total waste is
<= G - a(E)/P, which a depth-first search over the groups holding the lowest uncovered expert decides
exactly (least waste first, failed states memoised). Bisection on P from the warm start down to the
known lower bound, then "strictly below the best found" until infeasible, proves the optimum.
"""

import bisect
from dataclasses import dataclass

import highspy
import numpy as np

_TOL = 1e-9


@dataclass(frozen=True, kw_only=True, slots=True)
class GroupSolution:
    """Groups of one layer: expert ids and GPU count per group, the busiest pairs P and a proven lower bound."""

    groups: list[tuple[list[int], int]]
    """(expert ids, GPUs) per group"""
    pairs: float
    """max_j a_j / k_j of these groups"""
    bound: float
    """proven lower bound on P* (== pairs when optimal)"""


def components(slots: np.ndarray, experts: int) -> list[tuple[list[int], int]]:
    """(expert ids, GPU count) of every connected component of a placement [G, S] holding experts."""
    gpus = slots.shape[0]
    parent = list(range(experts + gpus))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for g in range(gpus):
        for e in slots[g][slots[g] >= 0]:
            parent[root(int(e))] = root(experts + g)
    members: dict[int, tuple[list[int], list[int]]] = {}
    for e in range(experts):
        members.setdefault(root(e), ([], []))[0].append(e)
    for g in range(gpus):
        if root(experts + g) in members:
            members[root(experts + g)][1].append(g)
    return [(ex, len(gs)) for ex, gs in sorted(members.values())]


def ratio(load: np.ndarray, groups: list[tuple[list[int], int]]) -> float:
    """max_j a_j / k_j."""
    return max(float(load[ex].sum()) / k for ex, k in groups)


def spread_spare(load: np.ndarray, groups: list[tuple[list[int], int]], gpus: int) -> list[tuple[list[int], int]]:
    """Give GPUs no group uses to the group with the largest a_j / k_j, one at a time."""
    out = [(list(ex), k) for ex, k in groups]
    for _ in range(gpus - sum(k for _, k in out)):
        j = max(range(len(out)), key=lambda i: (float(load[out[i][0]].sum()) / out[i][1], -i))
        out[j] = (out[j][0], out[j][1] + 1)
    return out


def _fill_one(items: list[tuple[float, int]], left: int, slots: int, cap: float) -> list[tuple[int, float]]:
    """One bin of Lemma 2's induction: [(expert, tokens)] taken from `items`, a list of (tokens, expert)
    sorted ascending (updated in place)."""
    total = sum(t for t, _ in items)
    need = max(0.0, total - left * cap)
    remove = max(0, len(items) - (slots - 1) * left - 1)
    size_p, p = items[-1]
    size = np.array([t for t, _ in items[:-1]])
    width = min(slots - 1, size.shape[0])
    w = remove
    while w < width and size[size.shape[0] - w:].sum() + size_p < need * (1 - _TOL):
        w += 1
    first = 0
    if w:
        sums = np.convolve(size, np.ones(w), mode="valid")
        first = int(np.argmax(sums >= need - size_p - _TOL * max(1.0, need)))
    taken = [(e, t) for t, e in items[first:first + w]]
    del items[first:first + w]
    rest = need - sum(t for _, t in taken)
    if rest > _TOL * max(1.0, cap):
        part = min(rest, size_p)
        taken.append((p, part))
        items.pop()
        if size_p - part > _TOL * max(1.0, cap):
            bisect.insort(items, (size_p - part, p))
    return taken


def pack_group(load: np.ndarray, experts: list[int], gpus: list[int], slots: int) -> list[tuple[int, int, float]]:
    """Lemma 2's packing of `experts` onto `gpus` at capacity a(group) / k: [(expert, GPU, tokens)]."""
    items = sorted((float(load[e]), int(e)) for e in experts)
    cap = sum(t for t, _ in items) / len(gpus)
    out = []
    for i, g in enumerate(gpus):
        left = len(gpus) - i - 1
        if left == 0:
            out += [(e, g, t) for t, e in items]
            break
        out += [(e, g, t) for e, t in _fill_one(items, left, slots, cap)]
    return out


def place_groups(load: np.ndarray, groups: list[tuple[list[int], int]], gpus: int,
                 slots: int) -> tuple[np.ndarray, np.ndarray]:
    """([G, S] slots, [E, G] shares) for groups on consecutive GPUs, each group packed by pack_group
    (its GPUs then carry exactly a(group) / k pairs each)."""
    out = np.full((gpus, slots), -1, dtype=np.int64)
    share = np.zeros((load.shape[0], gpus))
    fill = np.zeros(gpus, dtype=np.int64)
    first = 0
    for experts, k in groups:
        for e, g, tokens in pack_group(load, experts, list(range(first, first + k)), slots):
            out[g, fill[g]] = e
            fill[g] += 1
            share[e, g] = tokens / load[e] if load[e] > 0 else 1.0
        first += k
    return out, share / share.sum(axis=1, keepdims=True)


class _Model:
    """A sparse MILP for highspy, built row by row."""

    def __init__(self):
        self.cost, self.lower, self.upper, self.integer = [], [], [], []
        self.rows: list[tuple[list[int], list[float], float, float]] = []
        self.infeasible = False

    def var(self, lo: float, hi: float, *, integer: bool = False, cost: float = 0.0) -> int:
        self.cost.append(cost)
        self.lower.append(lo)
        self.upper.append(hi)
        self.integer.append(integer)
        return len(self.cost) - 1

    def row(self, cols: list[int], vals: list[float], lo: float, hi: float) -> None:
        self.rows.append((cols, vals, lo, hi))

    def solve(self, time_limit_s: float, warm: np.ndarray | None) -> tuple[np.ndarray | None, float, bool]:
        """(values or None, proven bound, optimal)."""
        inf = highspy.kHighsInf
        h = highspy.Highs()
        for name, value in (("output_flag", False), ("threads", 1), ("random_seed", 0),
                            ("time_limit", max(1e-3, float(time_limit_s))), ("mip_rel_gap", 1e-9)):
            h.setOptionValue(name, value)
        n = len(self.cost)
        h.addCols(n, np.array(self.cost, dtype=np.float64), np.array(self.lower, dtype=np.float64),
                  np.array(self.upper, dtype=np.float64), 0,
                  np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32), np.zeros(0))
        ints = np.flatnonzero(self.integer).astype(np.int32)
        h.changeColsIntegrality(len(ints), ints, np.array([highspy.HighsVarType.kInteger] * len(ints)))
        starts = np.cumsum([0] + [len(r[0]) for r in self.rows[:-1]]).astype(np.int32)
        index = np.array([c for r in self.rows for c in r[0]], dtype=np.int32)
        value = np.array([v for r in self.rows for v in r[1]], dtype=np.float64)
        lo = np.array([-inf if r[2] == -np.inf else r[2] for r in self.rows], dtype=np.float64)
        hi = np.array([inf if r[3] == np.inf else r[3] for r in self.rows], dtype=np.float64)
        if h.addRows(len(self.rows), lo, hi, len(index), starts, index, value) != highspy.HighsStatus.kOk:
            raise RuntimeError("HiGHS rejected the group model's rows")
        if warm is not None:
            sol = highspy.HighsSolution()
            sol.col_value = list(map(float, warm))
            h.setSolution(sol)
        h.run()
        info = h.getInfo()
        self.infeasible = h.getModelStatus() == highspy.HighsModelStatus.kInfeasible
        optimal = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
        bound = float(info.mip_dual_bound) if np.isfinite(info.mip_dual_bound) else -np.inf
        if info.primal_solution_status != 2:
            return None, bound, False
        return np.asarray(h.getSolution().col_value), bound, optimal


def _subset_tables(load: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Load and size of every subset of the experts (bit e of the index = expert e)."""
    sums, sizes = np.zeros(1), np.zeros(1, dtype=np.int64)
    for e in range(load.shape[0]):
        sums, sizes = np.r_[sums, sums + load[e]], np.r_[sizes, sizes + 1]
    return sums, sizes


def _partition_under(sums: np.ndarray, sizes: np.ndarray, gpus: int, slots: int, pairs: float, deadline):
    """Groups (as (mask, GPUs)) with every a_j / k_j <= pairs, or None; raises TimeoutError at the deadline.

    A group X needs k(X) = max(ceil(a(X) / pairs), ceil((|X| - 1) / (S - 1)), 1) GPUs and wastes
    k(X) - a(X) / pairs of them; a partition fits in G GPUs iff its total waste <= G - a(E) / pairs.
    Depth-first over the groups holding the lowest expert not yet covered, least waste first.
    """
    budget = gpus - sums[-1] / pairs
    if budget < -1e-9:
        return None
    tol = 1e-9 * max(1.0, gpus)
    with np.errstate(divide="ignore", invalid="ignore"):
        by_count = np.ceil((sizes - 1) / (slots - 1) - 1e-9) if slots > 1 else np.where(sizes > 1, np.inf, 0.0)
    need = np.maximum(np.maximum(np.ceil(sums / pairs - 1e-9), by_count), 1.0)
    waste = need - sums / pairs
    masks = np.flatnonzero((waste <= budget + tol) & (need <= gpus))
    masks = masks[masks > 0]
    low = np.log2(masks & -masks).astype(np.int64)
    buckets = [masks[low == e][np.argsort(waste[masks[low == e]], kind="stable")]
               for e in range(int(np.log2(len(sums))))]
    full = len(sums) - 1
    failed: dict[int, float] = {}

    def dfs(covered: int, used: float) -> list | None:
        if covered == full:
            return []
        if failed.get(covered, np.inf) <= used + tol:
            return None
        if deadline.expired():
            raise TimeoutError
        e = (~covered & (covered + 1)).bit_length() - 1
        for m in buckets[e].tolist():
            if m & covered:
                continue
            if used + waste[m] > budget + tol:
                break
            rest = dfs(covered | m, used + waste[m])
            if rest is not None:
                return [(m, int(need[m]))] + rest
        failed[covered] = min(failed.get(covered, np.inf), used)
        return None

    return dfs(0, 0.0)


def subset_search(load: np.ndarray, gpus: int, slots: int, warm: list[tuple[list[int], int]], lower: float,
                  deadline) -> GroupSolution:
    """The group bound by exhaustive search over subsets (experts <= SUBSET_LIMIT): from the warm start's
    P, ask for a partition with P strictly lower until none exists (each answer is exact)."""
    sums, sizes = _subset_tables(load)
    best, hi = warm, ratio(load, warm)
    lo = lower
    while hi > lo * (1 + 1e-9):
        target = 0.5 * (lo + hi) if hi > lo * (1 + 1e-3) else hi * (1 - 1e-9)
        try:
            found = _partition_under(sums, sizes, gpus, slots, target, deadline)
        except TimeoutError:
            deadline.mark_hit()
            break
        groups = None if found is None else [([e for e in range(load.shape[0]) if m >> e & 1], k) for m, k in found]
        if groups is None or ratio(load, groups) >= hi * (1 - 1e-10):
            lo = target if target < hi * (1 - 1e-9) else hi
            continue
        best, hi = groups, ratio(load, groups)
    return GroupSolution(groups=best, pairs=hi, bound=min(hi, lo))


def group_milp(load: np.ndarray, gpus: int, slots: int, warm: list[tuple[list[int], int]], lower: float,
               deadline) -> GroupSolution:
    """The group MILP (module docstring) warm-started from `warm`; `lower` is a known valid bound."""
    experts = load.shape[0]
    order = sorted(range(experts), key=lambda e: (-load[e], e))
    pos = {e: i for i, e in enumerate(order)}
    a = load[order]
    hi = ratio(load, warm)
    model = _Model()
    pv = model.var(min(lower, hi), hi, cost=1.0)
    u = {(i, j): model.var(0, 1, integer=True) for i in range(experts) for j in range(i + 1)}
    ks = range(1, gpus + 1)
    b = {(j, k): model.var(0, 1, integer=True) for j in range(experts) for k in ks}
    w = {(j, k): model.var(0, hi) for j in range(experts) for k in ks}
    for i in range(experts):
        model.row([u[i, j] for j in range(i + 1)], [1.0] * (i + 1), 1, 1)  # (G1)
        for j in range(i):
            model.row([u[i, j], u[j, j]], [1.0, -1.0], -np.inf, 0)  # (G2)
    for j in range(experts):
        mem = [u[i, j] for i in range(j, experts)]
        model.row([b[j, k] for k in ks] + [u[j, j]], [1.0] * gpus + [-1.0], 0, 0)  # (G3)
        model.row(mem + [w[j, k] for k in ks], list(a[j:]) + [-float(k) for k in ks], -np.inf, 0)  # (G4)
        model.row(mem + [b[j, k] for k in ks], [1.0] * len(mem) + [-float((slots - 1) * k + 1) for k in ks],
                  -np.inf, 0)  # (G5)
        for k in ks:
            model.row([w[j, k], pv], [1.0, -1.0], -np.inf, 0)  # (G7)
            model.row([w[j, k], b[j, k]], [1.0, -hi], -np.inf, 0)
    model.row([b[j, k] for j in range(experts) for k in ks], [float(k) for _ in range(experts) for k in ks],
              -np.inf, gpus)  # (G6)
    start = np.zeros(len(model.cost))
    start[pv] = hi
    for members, k in warm:
        lead = min(pos[e] for e in members)
        for e in members:
            start[u[pos[e], lead]] = 1.0
        start[b[lead, k]], start[w[lead, k]] = 1.0, hi
    values, bound, optimal = model.solve(deadline.remaining(), start)
    if not optimal:
        deadline.mark_hit()
    groups = warm
    if values is not None:
        found = [(sorted(order[i] for i in range(j, experts) if values[u[i, j]] > 0.5),
                  next(k for k in ks if values[b[j, k]] > 0.5)) for j in range(experts) if values[u[j, j]] > 0.5]
        if ratio(load, found) < ratio(load, groups):
            groups = found
    value = ratio(load, groups)
    return GroupSolution(groups=groups, pairs=value, bound=value if optimal else max(lower, min(bound, value)))
