"""Swap local search on one layer's placement, alternating with the exact LP split.

A move exchanges one replica on a busiest GPU g (any of the GPUs tied at the maximum, lowest index
first, so that ties do not stall the search: each move lowers the number of GPUs at the maximum) with
one replica (or an empty slot) on another GPU h;
each replica keeps the tokens it serves, so g's pairs become T_g - t_i + t_j and h's T_h + t_i - t_j
(a feasible solution: the LP re-split afterwards can only lower the maximum). The best move lowers
max(time_g, time_h) below the current time_g; moves inside g's node come first (they leave every
expert's node shares, hence the cross-node traffic, unchanged); a move across nodes is taken only when
no move inside the node improves and `cross_node` is allowed, and then the improving one that moves the
fewest tokens between nodes (callers disallow these under node_limit). Rounds of moves alternate with
split.optimal_split until neither improves.
"""

import numpy as np

from planner.experts.split import optimal_split

MOVES_PER_ROUND = 64
ROUNDS = 4


def _best_move(load, slots, share, pairs, times, c0, kappa, node_of, cross_node: bool):
    """Best improving move from the first tied busiest GPU that has one (module docstring), or None."""
    top = float(np.max(times))
    for g in np.flatnonzero(times >= top * (1 - 1e-9)).tolist():
        move = _move_from(int(g), top, load, slots, share, pairs, c0, kappa, node_of, cross_node)
        if move is not None:
            return move
    return None


def _move_from(g: int, top: float, load, slots, share, pairs, c0, kappa, node_of, cross_node: bool):
    """Best move taking GPU g below `top` while its partner stays below `top`, or None."""
    gpus, width = slots.shape
    limit = top * (1 - 1e-9)
    valid = slots >= 0
    ids = np.where(valid, slots, 0)
    tok = np.where(valid, load[ids] * share[ids, np.arange(gpus)[:, None]], 0.0)  # [G, S] tokens per slot
    held = np.zeros((load.shape[0] + 1, gpus), dtype=bool)
    held[np.where(valid, slots, load.shape[0]), np.arange(gpus)[:, None]] = True
    held[load.shape[0]] = False  # empty slots hold nothing
    mine = np.flatnonzero(valid[g])
    ei, ti = slots[g, mine], tok[g, mine]  # [M]
    ej, tj = np.where(valid, slots, load.shape[0]), tok  # [G, S]
    ok = (tj[:, None, :] < ti[None, :, None])  # [G, M, S]
    ok &= ~held[ei].T[:, :, None]  # e_i not already on h
    ok &= ~held[ej, g][:, None, :]  # e_j not already on g
    ok[g] = False
    value = np.maximum(c0 + kappa[g] * (pairs[g] - ti[None, :, None] + tj[:, None, :]),
                       c0 + kappa[:, None, None] * (pairs[:, None, None] + ti[None, :, None] - tj[:, None, :]))
    ok &= value < limit
    same = (node_of == node_of[g])[:, None, None]
    inside, across = ok & same, ok & ~same
    if inside.any():
        flat = int(np.argmin(np.where(inside, value, np.inf)))
    elif cross_node and across.any():
        flat = int(np.argmin(np.where(across, ti[None, :, None] + tj[:, None, :], np.inf)))
    else:
        return None
    h, m, sj = np.unravel_index(flat, ok.shape)
    return g, int(mine[m]), int(ei[m]), int(h), int(sj), int(slots[h, sj])


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
