"""Swap local search on one layer's placement, alternating with the exact LP split.

A move exchanges one replica on the busiest GPU g with one replica (or an empty slot) on another GPU h;
each replica keeps the tokens it serves, so g's pairs become T_g - t_i + t_j and h's T_h + t_i - t_j
(a feasible solution: the LP re-split afterwards can only lower the maximum). The best move lowers
max(time_g, time_h) below the current time_g; moves inside g's node come first (they leave every
expert's node shares, hence the cross-node traffic, unchanged); a move across nodes is taken only when
no move inside the node improves and `cross_node` is allowed, and then the improving one that moves the
fewest tokens between nodes. Rounds of moves alternate with split.optimal_split until neither improves.
"""

import numpy as np

from planner.experts.split import optimal_split

MOVES_PER_ROUND = 64
ROUNDS = 4


def _scan(load, slots, share, pairs, c0, kappa, g: int, others: np.ndarray, limit: float, same: bool):
    """Best improving move from GPU g to one of `others` (key: new max inside a node, else tokens moved)."""
    best_key, best = np.inf, None
    mine = [(s, int(e), load[e] * share[e, g]) for s, e in enumerate(slots[g]) if e >= 0]
    held_g = set(int(e) for e in slots[g] if e >= 0)
    for h in others:
        held_h = set(int(e) for e in slots[h] if e >= 0)
        theirs = [(s, int(e), load[e] * share[e, h] if e >= 0 else 0.0) for s, e in enumerate(slots[h])]
        for si, ei, ti in mine:
            if ei in held_h:
                continue
            for sj, ej, tj in theirs:
                if tj >= ti or (ej >= 0 and ej in held_g):
                    continue
                value = max(c0 + kappa[g] * (pairs[g] - ti + tj), c0 + kappa[h] * (pairs[h] + ti - tj))
                key = value if same else ti + tj
                if value < limit and key < best_key:
                    best_key, best = key, (g, si, ei, int(h), sj, ej)
    return best


def _best_move(load, slots, share, pairs, times, c0, kappa, node_of, cross_node: bool):
    g = int(np.argmax(times))
    limit = times[g] * (1 - 1e-9)
    inside = np.flatnonzero((node_of == node_of[g]) & (np.arange(node_of.shape[0]) != g))
    move = _scan(load, slots, share, pairs, c0, kappa, g, inside, limit, True)
    if move is None and cross_node:
        move = _scan(load, slots, share, pairs, c0, kappa, g, np.flatnonzero(node_of != node_of[g]), limit, False)
    return move


def improve(load: np.ndarray, slots: np.ndarray, share: np.ndarray, t: float, c0: float, kappa: np.ndarray,
            node_of: np.ndarray, *, cross_node: bool) -> tuple[np.ndarray, np.ndarray, float]:
    """(slots, share, busiest time) after swap rounds; never worse than the input."""
    slots, share = slots.copy(), share.copy()
    for _ in range(ROUNDS):
        moved = 0
        for _ in range(MOVES_PER_ROUND):
            pairs = load @ share
            move = _best_move(load, slots, share, pairs, c0 + kappa * pairs, c0, kappa, node_of, cross_node)
            if move is None:
                break
            g, si, ei, h, sj, ej = move
            slots[g, si], slots[h, sj] = ej, ei
            share[ei, h], share[ei, g] = share[ei, g], 0.0
            if ej >= 0:
                share[ej, g], share[ej, h] = share[ej, h], 0.0
            moved += 1
        if moved == 0:
            break
        new_share, new_t = optimal_split(load, slots, c0, kappa)
        if new_t >= t * (1 - 1e-9):
            share = new_share
            t = min(t, new_t)
            break
        share, t = new_share, new_t
    return slots, share, t
