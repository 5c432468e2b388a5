"""The exact method: enumerate degree multisets without symmetry, bound each, assign exact lengths.

Sets: units U (SP ranks), allowed degrees D (ascending, 1 ∈ D), sequences I.
Decision: a multiset M = {c_d groups of degree d} with Σ_d c_d·d = U (C1) — a partition of U, so groups
are never labelled and no two solutions differ by a permutation of identical groups; an assignment of
every sequence to one group (C2) that fits memory on that group's degree (C3, inf times in the table);
objective: the slowest group's time (sum of its sequences' times).
Search (branch and bound over partitions): the relaxation rounded into a few multisets gives the incumbent
(`rounded_multisets`); degrees are fixed from the largest down, counts nearest the incumbent's first; a node's bound
(bounds.BoundOracle.partial_bound) holds for every completion, so a node whose bound reaches the
incumbent / (1 + relative_gap) is cut. Surviving complete multisets are sorted by their own bound, re-bounded
with their longest sequences placed exactly (bounds.BoundOracle.long_bound), and the survivors are
assigned (assign.greedy, and for promising ones assign.routed / assign.packed by the bound's dual prices,
each + assign.improve; or assign.exhaustive for small batches) until the next bound
reaches the incumbent / (1 + relative_gap), `max_evaluations` is spent, or `stall_evaluations` in a row
did not improve the incumbent. While the target gap is not proven, the incumbent's multiset is then improved by
a first-improvement descent over neighbouring multisets (split, merge, or exchange a group for degree-1
groups; `refine`), each scored by its LPT assignment — the bounds are often flat over many large-batch
multisets, so their order alone does not find the best one.
Proven bound: the minimum over (a) cut subtrees' bounds, (b) complete multisets' bounds (their exact
optimum when assigned exhaustively; every multiset still below the target, lowest first and within
`max_nodes` calls, re-bounded with its longest sequences placed, as the assigned ones are; the lowest few then
re-bounded with tuned dual weights, bounds.BoundOracle.tuned_bound), (c) the incumbent. That minimum is then
raised by the global top-degree waste test (bounds.top_waste_bound), valid for every plan. Each is a lower
bound on every plan in its part of the space, and the parts cover every multiset, so the minimum bounds the
step time of every plan.
Work limits (`max_nodes`, `max_evaluations`) are deterministic; the wall-clock limit is a safety net only.
"""

from dataclasses import dataclass

import numpy as np

from planner.scatter import assign, layout
from planner.scatter.bounds import BoundOracle, top_waste_bound
from planner.scatter.request import CostTable, ScatterOptions
from solvers.deadline import Deadline, ProgressReporter

ROUTING_FAMILIES = (("eq", 0.75), ("eq", 1.0))
"""bound weight families whose prices route sequences in the extra assignments of promising multisets"""
ROUNDING_FACTORS = (1.0, 1.05)
"""makespan targets (× the root bound) at which the relaxation is rounded into incumbent multisets"""
IMPROVE_WITHIN = 1.03
"""a multiset's greedy assignment is improved by local search only when within this factor of the incumbent"""


@dataclass(frozen=True, kw_only=True, slots=True)
class Assignment:
    """A multiset with its placement and assignment."""

    slots: tuple
    """layout.GroupSlot per group, in rank order"""
    group_rows: tuple
    """(row, spans_nodes) of each group"""
    groups: tuple
    """sorted sequence indices of each group"""
    loads_s: tuple
    """time of each group"""

    @property
    def step_time_s(self) -> float:
        return max(self.loads_s) if self.loads_s else 0.0


@dataclass(frozen=True, kw_only=True, slots=True)
class SearchResult:
    best: Assignment
    """the plan found"""
    bound_s: float
    """proven lower bound on every plan's step time"""
    exhausted: bool
    """the whole space was covered within the work limits"""
    nodes: int
    """enumeration nodes visited"""
    evaluated: int
    """multisets assigned"""


class Evaluator:
    """Assigns sequences to the groups of a multiset (rows: table row index per degree)."""

    def __init__(self, table: CostTable, total_units: int, options: ScatterOptions):
        self.table = table
        self.units = total_units
        self.options = options
        self._rows: dict = {}
        self._orders: dict = {}

    def row(self, k: int, spans: bool) -> list[float]:
        key = (k, spans)
        if key not in self._rows:
            src = self.table.inter_s if spans else self.table.intra_s
            self._rows[key] = src[k].tolist()
        return self._rows[key]

    def _prepare(self, counts: dict[int, int]) -> tuple:
        """(slots, class keys (row, spans_nodes), class of each group, time row per class, sequences by
        decreasing best time over the classes or None when one fits on no class)."""
        degs = self.table.degrees
        row_of = {d: k for k, d in enumerate(degs)}
        degree_list = [degs[k] for k in sorted(counts) for _ in range(counts[k])]
        slots = layout.place(degree_list, self.table.node_units, self.units)
        keys = sorted({(row_of[s.degree], s.spans_nodes) for s in slots})
        cls_index = {key: c for c, key in enumerate(keys)}
        group_class = [cls_index[(row_of[s.degree], s.spans_nodes)] for s in slots]
        rows = [self.row(k, spans) for k, spans in keys]
        order_key = tuple(keys)
        if order_key not in self._orders:
            src = [self.table.inter_s[k] if spans else self.table.intra_s[k] for k, spans in keys]
            best_time = np.min(src, axis=0)
            self._orders[order_key] = np.lexsort((np.arange(best_time.size), -best_time)).tolist() \
                if np.isfinite(best_time).all() else None
        return slots, keys, group_class, rows, self._orders[order_key]

    def score(self, counts: dict[int, int]) -> float:
        """Step time of the multiset's LPT assignment (inf when a sequence fits on none of its groups)."""
        _, _, group_class, rows, order = self._prepare(counts)
        if order is None:
            return np.inf
        _, loads = assign.greedy(order, group_class, rows)
        return max(loads) if loads else np.inf

    def evaluate(self, counts: dict[int, int], *, exhaustive: bool = False, promising: float = np.inf,
                 prices: list | None = None, limit: float = np.inf,
                 routes: tuple = (assign.routed, assign.packed),
                 deadline: Deadline | None = None) -> tuple[Assignment | None, bool]:
        """Best assignment found for the multiset; (None, _) when some sequence fits on none of its groups.

        The local search, and the routings `routes` by `prices` (per-row weights, sequences kept within `limit`),
        run only when the greedy assignment is below `promising` (exhaustive search always runs); they stop
        early once `deadline` has passed (the greedy assignment is always made)."""
        slots, keys, group_class, rows, order = self._prepare(counts)
        if order is None:
            return None, False
        where, loads = assign.greedy(order, group_class, rows)
        if max(loads) < promising:
            assign.improve(where, loads, group_class, rows, self.options.improve_rounds, deadline)
            for lam in prices or []:
                for route in routes:
                    if deadline is not None and deadline.expired():
                        break
                    cand = route(order, group_class, rows, [float(lam[k]) for k, _ in keys], limit)
                    if cand[1]:
                        assign.improve(*cand, group_class, rows, self.options.improve_rounds, deadline)
                        if max(cand[1]) < max(loads):
                            where, loads = cand
        proven = False
        if exhaustive:
            found = assign.exhaustive(order, group_class, rows, max(loads) * (1 - 1e-12))
            if found is not None:
                where = found[0]
            proven = True
        members: list[list[int]] = [[] for _ in slots]
        for i, g in enumerate(where):
            members[g].append(i)
        loads = [float(sum(rows[group_class[g]][i] for i in members[g])) for g in range(len(slots))]
        members, loads = canonical(members, loads, group_class)
        return Assignment(slots=tuple(slots), group_rows=tuple(keys[c] for c in group_class),
                          groups=tuple(tuple(m) for m in members), loads_s=tuple(loads)), proven


def canonical(members, loads, group_class):
    """Relabel identical groups: within a class, longer-running groups take the lower ranks."""
    out_m, out_l = list(members), list(loads)
    for c in sorted(set(group_class)):
        idx = [g for g, gc in enumerate(group_class) if gc == c]
        ranked = sorted(idx, key=lambda g: (-loads[g], members[g]))
        for slot, g in zip(idx, ranked, strict=True):
            out_m[slot], out_l[slot] = sorted(members[g]), loads[g]
    return out_m, out_l


def static_candidates(table: CostTable, units: int) -> list[dict[int, int]]:
    """One multiset per degree d that divides the units and fits every sequence: units / d groups of degree d."""
    fits = np.isfinite(table.intra_s).all(axis=1)
    return [{k: units // d} for k, d in enumerate(table.degrees) if fits[k] and units % d == 0]


def rounded_multisets(table: CostTable, units: int, root_bound: float) -> list[dict[int, int]]:
    """Incumbent candidates from the relaxation: at T = root_bound · f, each sequence takes the degree with the
    fewest GPU-seconds among those finishing it within T; degree d gets ceil(its work / T) groups, and
    degree-1 groups take the units left (candidates that overflow the units are dropped). The last
    candidate, one group of the largest degree plus degree-1 groups, always fits every sequence."""
    t = table.intra_s
    degs = np.asarray(table.degrees, dtype=float)
    out: list[dict[int, int]] = []
    for factor in ROUNDING_FACTORS:
        cap = root_bound * factor
        cost = np.where(t <= cap, t * degs[:, None], np.inf)
        choice = np.argmin(np.where(np.isfinite(cost).any(axis=0), cost, t), axis=0)
        counts = {}
        for k in range(1, len(degs)):
            work = float(t[k, choice == k].sum())
            if work > 0:
                counts[k] = int(np.ceil(work / cap - 1e-9))
        left = units - sum(int(degs[k]) * c for k, c in counts.items())
        if left >= 0:
            counts[0] = left
            counts = {k: c for k, c in counts.items() if c}
            if counts not in out:
                out.append(counts)
    top = len(degs) - 1
    fallback = {k: c for k, c in ((top, 1), (0, units - int(degs[top]))) if c}
    if fallback not in out:  # one group of the largest degree runs every sequence, so a plan always exists
        out.append(fallback)
    return out


def search(table: CostTable, units: int, options: ScatterOptions, *, deadline: Deadline,
           incumbent: Assignment | None, progress: ProgressReporter | None = None) -> SearchResult:
    """Branch and bound over partitions of `units` into the table's degrees (stopped by `deadline`: every
    check records a hit; the plan found so far and the bound of what was left unexplored are returned)."""
    report = progress or ProgressReporter(None)
    lengths_order = np.argsort(-np.nanmin(np.where(np.isfinite(table.intra_s), table.intra_s, np.nan), axis=0),
                               kind="stable")
    oracle = BoundOracle(table.degrees, table.intra_s, tuple(lengths_order[:options.long_sequences].tolist()))
    evaluator = Evaluator(table, units, options)
    tol = 1.0 + options.relative_gap
    best = incumbent
    degrees = table.degrees
    top = len(degrees) - 1
    root = oracle.partial_bound({}, top, units)
    best, seed = _round_relaxation(table, units, root, oracle, evaluator, best, deadline, report)
    ub = best.step_time_s if best is not None else np.inf
    cut_bound = np.inf
    leaves: list[tuple[float, tuple]] = []
    nodes = 0
    out_of_work = False

    def dfs(level: int, fixed: dict[int, int], remaining: int) -> None:
        nonlocal nodes, cut_bound, out_of_work
        nodes += 1
        if level == 0:
            counts = dict(fixed)
            counts[0] = remaining
            lb = oracle.multiset_bound(counts, cap=ub / tol)
            if lb >= ub / tol:
                cut_bound = min(cut_bound, lb)
            else:
                leaves.append((lb, tuple(counts.get(k, 0) for k in range(top + 1))))
            return
        lb = oracle.partial_bound(fixed, level, units, cap=ub / tol)
        if lb >= ub / tol or out_of_work:
            cut_bound = min(cut_bound, lb)
            return
        if nodes >= options.max_nodes or deadline.expired():
            out_of_work = True
            cut_bound = min(cut_bound, lb)
            return
        d = degrees[level]
        near = seed.get(level, 0)
        for c in sorted(range(remaining // d + 1), key=lambda c: (abs(c - near), -c)):
            if out_of_work:
                cut_bound = min(cut_bound, lb)  # this node's bound covers its unexplored children
                break
            fixed[level] = c
            dfs(level - 1, fixed, remaining - c * d)
        fixed.pop(level, None)

    dfs(top, {}, units)
    leaves.sort(key=lambda leaf: (leaf[0], tuple(-c for c in leaf[1])))
    floors: dict[tuple, float] = {}  # multiset -> its best lower bound (its optimum when proven)
    long_done: set = set()  # multisets whose floor includes long_bound
    settled: set = set()  # multisets whose floor is final (proven optimum or already tightened)
    best, evaluated, unfinished = _assign_leaves(leaves, oracle, evaluator, best, (floors, long_done, settled),
                                                 options, deadline, report)
    out_of_work = out_of_work or unfinished
    ub = best.step_time_s if best is not None else np.inf
    if min([cut_bound, *floors.values()]) < ub / tol and not deadline.expired():
        best = refine(evaluator, best, options.refine_evaluations, oracle, deadline)
        ub = best.step_time_s
    _raise_open_floors(oracle, floors, settled, long_done, ub, cut_bound, options, deadline)
    bound = min([ub, cut_bound, *floors.values()])
    if bound < ub * (1 - options.relative_gap):  # the global waste test holds for every plan (bounds.py)
        bound = max(bound, top_waste_bound(table.degrees, table.intra_s, units, bound, ub),
                    top_waste_bound(table.degrees, table.intra_s, units, root, ub))
    return SearchResult(best=best, bound_s=float(bound), exhausted=not out_of_work, nodes=nodes,
                        evaluated=evaluated)


def _assign_leaves(leaves: list[tuple[float, tuple]], oracle: BoundOracle, evaluator: Evaluator,
                   best: Assignment | None, state: tuple[dict[tuple, float], set, set], options: ScatterOptions,
                   deadline: Deadline, report: ProgressReporter) -> tuple[Assignment | None, int, bool]:
    """Assign the leaf multisets in bound order until the bound, a budget or the deadline stops it; fills the
    floors, long_done and settled of `state` in place. (best, multisets assigned, whether open leaves remain)."""
    floors, long_done, settled = state
    tol = 1.0 + options.relative_gap
    ub = best.step_time_s if best is not None else np.inf
    exhaustive = len(evaluator.table.intra_s[0]) <= options.exact_assign_max_sequences
    evaluated = stalled = 0
    for pos, (lb, vec) in enumerate(leaves):
        if lb >= ub / tol or evaluated >= options.max_evaluations or stalled >= options.stall_evaluations \
                or deadline.expired():
            floors.update((v, b) for b, v in leaves[pos:] if b < ub / tol)
            return best, evaluated, lb < ub / tol
        counts = {k: c for k, c in enumerate(vec) if c}
        strong = max(lb, oracle.long_bound(counts, cap=ub / tol))
        long_done.add(vec)
        floors[vec] = strong
        if strong >= ub / tol:
            continue
        mask = sum(1 << k for k in counts)
        prices = [oracle.lam(mask, fam) for fam in ROUTING_FAMILIES]
        if evaluated < options.tighten_multisets:  # the likeliest multisets: tune the duals, route by them
            tuned, fam = oracle.tuned_bound(counts)
            floors[vec] = strong = max(strong, tuned)
            prices.append(oracle.lam(mask, fam))
            if strong >= ub / tol:
                continue
        found, proven = evaluator.evaluate(counts, exhaustive=exhaustive, promising=ub * IMPROVE_WITHIN,
                                           prices=prices, limit=strong, deadline=deadline)
        evaluated += 1
        report.update(lambda n=evaluated, ub=ub: f"scatter: {n} multisets assigned, best step {ub:.6g} s, "
                              f"{deadline.elapsed():.1f} s elapsed")
        if found is None:
            floors[vec] = np.inf
            continue
        if proven:
            floors[vec] = found.step_time_s
            settled.add(vec)
        stalled = 0 if found.step_time_s < ub else stalled + 1
        if found.step_time_s < ub:
            best, ub = found, found.step_time_s
    return best, evaluated, False


def _round_relaxation(table: CostTable, units: int, root: float, oracle: BoundOracle, evaluator: "Evaluator",
                      best: Assignment | None, deadline: Deadline,
                      report: ProgressReporter) -> tuple[Assignment | None, dict[int, int]]:
    """Assign the rounded multisets of the relaxation (the search's first incumbent); (best, its multiset)."""
    ub = best.step_time_s if best is not None else np.inf
    seed: dict[int, int] = {}
    for counts in rounded_multisets(table, units, root):
        if best is not None and deadline.expired():
            break
        mask = sum(1 << k for k in counts)
        found, _ = evaluator.evaluate(counts, prices=[oracle.lam(mask, fam) for fam in ROUTING_FAMILIES],
                                      limit=root, routes=(assign.routed,), deadline=deadline)
        if found is not None and found.step_time_s < ub:
            best, ub, seed = found, found.step_time_s, counts
        report.update(lambda ub=ub: f"scatter: rounding the relaxation, best step {ub:.6g} s, "
                              f"{deadline.elapsed():.1f} s elapsed")
    return best, seed


def _raise_open_floors(oracle: BoundOracle, floors: dict[tuple, float], settled: set, long_done: set, ub: float,
                       cut_bound: float, options: ScatterOptions, deadline: Deadline) -> None:
    """Raise the lowest open multiset floor (long sequences placed, then tuned duals) while that can raise the
    global minimum; updates `floors`, `settled` and `long_done` in place."""
    placed, tunings = 0, options.tighten_multisets
    while not deadline.expired():
        open_floors = [(b, v) for v, b in floors.items() if v not in settled and b < ub]
        final = min([ub, cut_bound, *(b for v, b in floors.items() if v in settled)])
        if not open_floors or min(open_floors)[0] >= final:
            break
        _, vec = min(open_floors)
        counts = {k: c for k, c in enumerate(vec) if c}
        if vec not in long_done:  # first place its longest sequences exactly
            if placed >= options.max_nodes:
                break
            placed += 1
            long_done.add(vec)
            floors[vec] = max(floors[vec], oracle.long_bound(counts, cap=ub))
            continue
        if tunings <= 0:
            break
        tunings -= 1  # then tune the dual weights, with and without the long sequences placed
        tuned, fam = oracle.tuned_bound(counts)
        floors[vec] = max(floors[vec], tuned, oracle.long_bound(counts, cap=ub, extra=(fam,)))
        settled.add(vec)


def neighbours(counts: dict[int, int], degrees: tuple[int, ...]) -> list[dict[int, int]]:
    """Multisets one step away: one group of degree a split into groups of b | a, groups of a merged into one
    of b (a | b), or one group of a exchanged with degree-1 groups for one of b (any a ≠ b, units kept)."""
    out = []
    rows = range(len(degrees))
    for a in rows:
        for b in rows:
            if a == b:
                continue
            da, db = degrees[a], degrees[b]
            moves = []
            if counts.get(a, 0) >= 1 and da % db == 0:
                moves.append({a: -1, b: da // db})
            if db % da == 0 and counts.get(a, 0) >= db // da:
                moves.append({a: -(db // da), b: 1})
            if degrees[0] == 1 and 0 not in (a, b) and counts.get(a, 0) >= 1 and \
                    (da > db or counts.get(0, 0) >= db - da):
                moves.append({a: -1, b: 1, 0: da - db})
            for move in moves:
                new = dict(counts)
                for k, c in move.items():
                    new[k] = new.get(k, 0) + c
                new = {k: c for k, c in sorted(new.items()) if c}
                if all(c > 0 for c in new.values()) and new not in out:
                    out.append(new)
    return out


def refine(evaluator: Evaluator, best: Assignment, budget: int, oracle: BoundOracle,
           deadline: Deadline | None = None) -> Assignment:
    """First-improvement descent over degree multisets (neighbours), each scored by its LPT assignment (the
    start too, so that like is compared with like), within `budget` evaluations; the multiset reached is then
    assigned with the local search and the price routings of its bound. Returns the better of that and
    `best`. Stops early once `deadline` has passed."""
    deadline = deadline or Deadline(None)
    degrees = evaluator.table.degrees
    row_of = {d: k for k, d in enumerate(degrees)}
    current: dict[int, int] = {}
    for slot in best.slots:
        current[row_of[slot.degree]] = current.get(row_of[slot.degree], 0) + 1
    current = dict(sorted(current.items()))
    score = evaluator.score(current)
    seen = [current]
    moved = False
    while budget > 0 and not deadline.expired():
        step = None
        for cand in neighbours(current, degrees):
            if cand in seen or budget <= 0 or deadline.expired():
                continue
            seen.append(cand)
            budget -= 1
            value = evaluator.score(cand)
            if value < score:
                step, score = cand, value
                break
        if step is None:
            break
        current, moved = step, True
    if not moved:
        return best
    mask = sum(1 << k for k in current)
    found, _ = evaluator.evaluate(current, prices=[oracle.lam(mask, fam) for fam in ROUTING_FAMILIES],
                                  limit=oracle.multiset_bound(current), routes=(assign.packed,), deadline=deadline)
    return found if found is not None and found.step_time_s < best.step_time_s else best
