"""Assign exact sequences to the groups of one multiset, minimising the slowest group's time.

Groups of the same class (degree, spans nodes) are identical; group g's time is the sum of its
sequences' times on its class (sequences run one after another; micro-batching only splits memory).
- `greedy`: longest-processing-time first — sequences by decreasing best time, each to the group that
  would finish it earliest (one heap per class, so each step looks at one candidate per class).
- `routed`: sequences routed to classes by prices (the bound's dual weights), then balanced by `improve`.
- `packed`: the same prices, but classes filled only up to their groups' capacity at a target time, the
  sequences with the most to lose from their second choice first (a regret rule, like the LP's split
  at capacity); `routed` alone sends every sequence past the price threshold to one class.
- `improve`: moves then swaps (with the SWAP_PARTNERS least-loaded groups) out of the slowest group
  while that strictly lowers its time and the receiving group stays below it.
- `exhaustive`: depth-first search over all assignments with symmetry breaking (identical groups with
  equal load are tried once) and pruning at the incumbent — provably optimal, for small batches.
"""

import heapq
import math

import numpy as np

from solvers.deadline import Deadline

SWAP_PARTNERS = 4
"""swaps are tried with this many least-loaded groups"""


def greedy(order: list[int], group_class: list[int], rows: list[list[float]]) -> tuple[list[int], list[float]]:
    """LPT assignment; returns (group of each sequence, load of each group)."""
    heaps: list[list] = [[] for _ in rows]
    for g, c in enumerate(group_class):
        heaps[c].append((0.0, g))
    for h in heaps:
        heapq.heapify(h)
    n = len(rows[0]) if rows else 0
    where = [-1] * n
    loads = [0.0] * len(group_class)
    live_rows = [(heaps[c], rows[c]) for c in range(len(rows)) if heaps[c]]
    replace = heapq.heapreplace
    for i in order:
        best, best_heap = math.inf, None
        for h, row in live_rows:
            top = h[0]
            cand = top[0] + row[i]  # inf where the sequence does not fit
            if cand < best or (cand == best and best_heap is not None and top[1] < best_heap[0][1]):
                best, best_heap = cand, h
        if best == math.inf:
            return [], []
        g = best_heap[0][1]
        replace(best_heap, (best, g))
        where[i] = g
        loads[g] = best
    return where, loads


def routed(order: list[int], group_class: list[int], rows: list[list[float]], price: list[float],
           limit: float) -> tuple[list[int], list[float]]:
    """Each sequence to the class where price_c · t[c,i] is least among the classes that finish it within
    `limit` (all classes if none does), longest first onto the class's least-loaded group. With the dual
    prices of the bound this follows the LP relaxation's routing; `improve` then balances the groups."""
    heaps: list[list] = [[] for _ in rows]
    for g, c in enumerate(group_class):
        heaps[c].append((0.0, g))
    live = [c for c in range(len(rows)) if heaps[c]]
    where = [-1] * (len(rows[0]) if rows else 0)
    loads = [0.0] * len(group_class)
    for i in order:
        pick, pick_key = -1, None
        for c in live:
            t = rows[c][i]
            if t == math.inf:
                continue
            key = (t > limit, price[c] * t)
            if pick_key is None or key < pick_key:
                pick, pick_key = c, key
        if pick < 0:
            return [], []
        load, g = heaps[pick][0]
        heapq.heapreplace(heaps[pick], (load + rows[pick][i], g))
        where[i] = g
        loads[g] = load + rows[pick][i]
    return where, loads


def packed(order: list[int], group_class: list[int], rows: list[list[float]], price: list[float],
           limit: float) -> tuple[list[int], list[float]]:
    """Like `routed`, but each class holds at most its groups' count × `limit` seconds: sequences claim their
    cheapest class (price_c · t[c,i]) in decreasing order of regret (the extra price of their second choice),
    so the sequences that gain most from a class get it first, as in the LP relaxation; a sequence whose
    cheap classes are full takes the next one with room (its cheapest if none has). Each class's sequences are
    then spread longest first over its groups."""
    n_groups = [0] * len(rows)
    for c in group_class:
        n_groups[c] += 1
    live = [c for c in range(len(rows)) if n_groups[c]]
    room = [n_groups[c] * limit for c in range(len(rows))]
    t = np.asarray([rows[c] for c in live], dtype=float)
    cost = np.asarray([price[c] for c in live], dtype=float)[:, None] * t
    over = t > limit
    fin = np.isfinite(t)
    if not fin.any(axis=0).all():
        return [], []
    big = 2.0 * float(cost[fin].max()) + 1.0
    key = np.where(fin, cost + over * big, np.inf)  # (beyond limit, price · t) in lexicographic order
    prefs = np.argsort(key, axis=0, kind="stable")
    ranked = np.take_along_axis(key, prefs, axis=0)
    if len(live) > 1:
        same = np.take_along_axis(over, prefs, axis=0)
        gain = np.where(np.isfinite(ranked[1]) & (same[0] == same[1]), ranked[1] - ranked[0], np.inf)
    else:
        gain = np.full(t.shape[1], np.inf)
    pos = np.empty(t.shape[1], dtype=np.int64)
    pos[np.asarray(order, dtype=np.int64)] = np.arange(len(order))
    claim = np.lexsort((pos, -gain))  # largest regret first, ties in `order`
    pref_lists = [[live[r] for r in col] for col in prefs.T.tolist()]
    chosen = [-1] * t.shape[1]
    for i in claim.tolist():
        opts = [c for c in pref_lists[i] if rows[c][i] < math.inf]
        c = next((c for c in opts if rows[c][i] <= room[c]), opts[0])
        room[c] -= rows[c][i]
        chosen[i] = c
    heaps: list[list] = [[] for _ in rows]
    for g, c in enumerate(group_class):
        heaps[c].append((0.0, g))
    where = [-1] * (len(rows[0]) if rows else 0)
    loads = [0.0] * len(group_class)
    for i in order:  # order is longest first
        c = chosen[i]
        load, g = heaps[c][0]
        heapq.heapreplace(heaps[c], (load + rows[c][i], g))
        where[i] = g
        loads[g] = load + rows[c][i]
    return where, loads


def improve(where: list[int], loads: list[float], group_class: list[int], rows: list[list[float]],
            rounds: int, deadline: Deadline | None = None) -> None:
    """Local search in place: move or swap sequences out of the slowest group (stops once `deadline` passed)."""
    members: list[list[int]] = [[] for _ in loads]
    for i, g in enumerate(where):
        members[g].append(i)
    classes = sorted(set(group_class))
    of_class = {c: [g for g, gc in enumerate(group_class) if gc == c] for c in classes}
    eps = 1e-12
    for _ in range(rounds):
        if deadline is not None and deadline.expired():
            return
        top = max(range(len(loads)), key=loads.__getitem__)
        row_top = rows[group_class[top]]
        lightest = {}
        for c in classes:
            cand = [g for g in of_class[c] if g != top]
            if cand:
                lightest[c] = min(cand, key=loads.__getitem__)
        moved = False
        for i in sorted(members[top], key=row_top.__getitem__, reverse=True):
            for c in classes:
                h = lightest.get(c)
                if h is None:
                    continue
                new_h = loads[h] + rows[c][i]
                if new_h < loads[top] - eps:
                    _move(i, top, h, where, loads, members, group_class, rows)
                    moved = True
                    break
            if moved:
                break
        if moved or _swap(top, where, loads, members, group_class, rows, eps, deadline):
            continue
        break


def _move(i, src, dst, where, loads, members, group_class, rows) -> None:
    members[src].remove(i)
    members[dst].append(i)
    loads[src] -= rows[group_class[src]][i]
    loads[dst] += rows[group_class[dst]][i]
    where[i] = dst


def _swap(top, where, loads, members, group_class, rows, eps, deadline) -> bool:
    """First swap (by group, then sequences) that lowers the slowest group and keeps the other below it."""
    rt = rows[group_class[top]]
    limit = loads[top]
    for h in sorted(range(len(loads)), key=lambda g: (loads[g], g))[:SWAP_PARTNERS]:
        if h == top or loads[h] >= limit - eps:
            continue
        rh = rows[group_class[h]]
        for i in members[top]:
            if deadline is not None and deadline.expired():
                return False
            for j in members[h]:
                d_top = rt[j] - rt[i]
                if d_top >= -eps:
                    continue
                new_h = loads[h] - rh[j] + rh[i]
                if new_h < limit - eps and loads[top] + d_top < limit - eps:
                    _move(i, top, h, where, loads, members, group_class, rows)
                    _move(j, h, top, where, loads, members, group_class, rows)
                    return True
    return False


def exhaustive(order: list[int], group_class: list[int], rows: list[list[float]],
               incumbent: float) -> tuple[list[int], float] | None:
    """Optimal assignment by branch and bound; None when nothing beats `incumbent`."""
    n_groups = len(group_class)
    loads = [0.0] * n_groups
    where = [-1] * (len(rows[0]) if rows else 0)
    best: list = [incumbent, None]

    def dfs(pos: int, cur_max: float) -> None:
        if pos == len(order):
            if cur_max < best[0]:
                best[0], best[1] = cur_max, list(where)
            return
        i = order[pos]
        seen = set()
        for g in range(n_groups):
            c = group_class[g]
            key = (c, loads[g])
            if key in seen:
                continue
            seen.add(key)
            t = rows[c][i]
            new = loads[g] + t
            if new >= best[0]:
                continue
            old = loads[g]
            loads[g] = new
            where[i] = g
            dfs(pos + 1, max(cur_max, new))
            loads[g] = old
            where[i] = -1

    dfs(0, 0.0)
    if best[1] is None:
        return None
    return best[1], best[0]


def micro_batches(seqs: list[int], act_bytes, left_bytes: float) -> list[int]:
    """Micro-batch index of each of `seqs` (first-fit decreasing on activation bytes per GPU; `act_bytes` is
    indexed by sequence, a list or a numpy array).

    First fit finds the lowest-numbered micro-batch with room through a max-tree over the room left in
    each (grown as micro-batches open), and a run of equal sizes fills a micro-batch in one visit, so a
    group of n sequences in m micro-batches takes O(n log m) steps instead of O(n·m)."""
    idx = np.asarray(seqs, dtype=np.int64)
    sizes = np.asarray(act_bytes, dtype=float)[idx]
    if float(sizes.sum()) <= left_bytes:
        return [0] * len(seqs)
    rank = np.lexsort((idx, -sizes))  # largest first, ties by sequence index
    need_of, seq_of = sizes[rank].tolist(), idx[rank].tolist()
    tree = _RoomTree()
    index = {}
    pos = 0
    while pos < len(seq_of):
        need = need_of[pos]
        b = tree.first_with(need)
        room = tree.room(b) if b >= 0 else left_bytes
        if b < 0:
            b = tree.open()
        index[seq_of[pos]] = b
        room -= need
        pos += 1
        while pos < len(seq_of) and need_of[pos] == need and room >= need:
            index[seq_of[pos]] = b  # equal sizes: first fit keeps choosing this micro-batch while it has room
            room -= need
            pos += 1
        tree.set(b, room)
    return [index[i] for i in seqs]


class _RoomTree:
    """Max-tree over the room left in each open micro-batch (leaves in opening order)."""

    def __init__(self) -> None:
        self.size = 64
        self.opened = 0
        self.node = [-math.inf] * (2 * self.size)

    def room(self, b: int) -> float:
        return self.node[self.size + b]

    def first_with(self, need: float) -> int:
        """The lowest-numbered micro-batch with at least `need` room, or -1."""
        node = self.node
        if node[1] < need:
            return -1
        k = 1
        while k < self.size:
            k = 2 * k if node[2 * k] >= need else 2 * k + 1
        return k - self.size

    def open(self) -> int:
        if self.opened == self.size:  # double the leaves, keeping the rooms
            leaves = self.node[self.size:]
            self.size *= 2
            self.node = [-math.inf] * (2 * self.size)
            for b, r in enumerate(leaves):
                self.set(b, r)
        self.opened += 1
        return self.opened - 1

    def set(self, b: int, room: float) -> None:
        node = self.node
        k = self.size + b
        node[k] = room
        k //= 2
        while k:  # refresh the maxima above, stopping where nothing changes
            a, c = node[2 * k], node[2 * k + 1]
            top = a if a >= c else c
            if node[k] == top:
                break
            node[k] = top
            k //= 2
