"""Placement heuristics: replica counts, affinity-aware packing, and sweeps across layers.

Per layer (the load part decomposes by layer):
  1. replica counts r_e: the counts the replica-counting bound needs (split.replica_bound), then the
     remaining slots go one at a time to the expert with the heaviest per-replica load (water-filling),
     so every slot holds a replica;
  2. packing (pack): with affinity scores and several nodes, phase A chooses how many replicas of each
     expert go to each node by an LP (maximise affinity; node slots; node load <= its share of the
     bound), rounded; phase B puts the replicas, heaviest per-replica load first, on a GPU of their node
     with a free slot that does not hold the expert yet (within node_limit nodes), preferring GPUs that
     stay under the target time (bound * (1 + PACK_SLACK)) and that link two groups of GPUs not yet
     sharing an expert (so the LP split can move tokens between them), then the least loaded GPU;
  3. split.optimal_split re-splits the tokens exactly (LP), and local_search.improve swaps replicas
     off the busiest GPU, alternating with the LP split.
Across layers (the traffic part couples neighbours), the affinity of expert e of layer l to node n is
  F[e, n] = sum_e' T[l-1, e', e] * node_share[l-1, e', n] + sum_e' T[l, e, e'] * node_share[l+1, e', n]
(affinity_scores); affinity.py repacks layers against it.
"""

import heapq

import highspy
import numpy as np

from costmodels.errors import InfeasibleError
from planner.experts.evaluate import boundary_cross

PACK_SLACK = 0.02
"""packing target = layer bound * (1 + PACK_SLACK); the LP re-split absorbs the rest"""
LOAD_TOLERANCE = 0.005
"""with traffic_weight 0 an affinity move may cost at most this fraction of the layer's target"""


def replica_counts(load: np.ndarray, base: np.ndarray, total_slots: int, max_replicas: int) -> np.ndarray:
    """Water-fill the slots left after `base` counts onto the heaviest per-replica loads."""
    counts = np.minimum(np.maximum(base.astype(np.int64), 1), max_replicas)
    spare = total_slots - int(counts.sum())
    heap = [(-load[e] / counts[e], e) for e in range(load.shape[0]) if counts[e] < max_replicas]
    heapq.heapify(heap)
    while spare > 0 and heap:
        _, e = heapq.heappop(heap)
        counts[e] += 1
        spare -= 1
        if counts[e] < max_replicas:
            heapq.heappush(heap, (-load[e] / counts[e], e))
    return counts


def _assign_nodes(load: np.ndarray, counts: np.ndarray, *, node_cap: np.ndarray, node_slots: np.ndarray,
                  per_node: np.ndarray, affinity: np.ndarray) -> np.ndarray:
    """Phase A: [E, N] replicas of each expert per node, from the LP
         max sum_{e,n} F[e,n] / r_e * x_en   s.t.  sum_n x_en = r_e,  sum_e x_en = slots_n,
         sum_e (a_e / r_e) x_en <= cap_n,  0 <= x_en <= min(r_e, GPUs of n),
    rounded down, the remaining replicas going to the largest fractional parts with free slots."""
    experts, nodes = affinity.shape
    w = load / counts
    cols = experts * nodes
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = cols, experts + 2 * nodes
    scale = max(1e-300, float(np.abs(affinity).max()))
    lp.col_cost_ = (-(affinity / scale) / counts[:, None]).ravel()
    lp.col_lower_ = np.zeros(cols)
    lp.col_upper_ = np.minimum(counts[:, None], per_node[None, :]).astype(np.float64).ravel()
    lp.row_lower_ = np.r_[counts.astype(np.float64), node_slots.astype(np.float64), np.full(nodes, -highspy.kHighsInf)]
    lp.row_upper_ = np.r_[counts.astype(np.float64), node_slots.astype(np.float64), node_cap]
    e_idx, n_idx = np.divmod(np.arange(cols), nodes)
    index = np.stack([e_idx, experts + n_idx, experts + nodes + n_idx], axis=1).ravel()
    value = np.stack([np.ones(cols), np.ones(cols), w[e_idx]], axis=1).ravel()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.arange(0, 3 * cols + 1, 3, dtype=np.int32)
    lp.a_matrix_.index_ = index.astype(np.int32)
    lp.a_matrix_.value_ = value
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.passModel(lp)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    x = np.asarray(h.getSolution().col_value).reshape(experts, nodes)
    out = np.floor(x + 1e-7).astype(np.int64)
    free = node_slots - out.sum(axis=0)
    room = node_cap - w @ out
    frac = x - out
    for e in sorted(range(experts), key=lambda e: (-w[e], e)):
        while out[e].sum() < counts[e]:
            ok = (free > 0) & (out[e] < per_node)
            pref = ok & (frac[e] > 1e-7)
            n = int(np.argmax(np.where(pref if pref.any() else ok, room, -np.inf)))
            out[e, n] += 1
            free[n] -= 1
            room[n] -= w[e]
            frac[e, n] = 0.0
    return out


def _root(parent: list, x: int) -> int:
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


def pack(load: np.ndarray, counts: np.ndarray, *, slots_per_gpu: int, c0: float, kappa: np.ndarray,
         node_of: np.ndarray, target: float, affinity: np.ndarray | None = None,
         node_limit: int | None = None, node_target: float | None = None) -> np.ndarray:
    """[G, S] slots (-1 empty) for `counts[e]` replicas of each expert; see the module docstring.

    Phase A (with affinity and several nodes) picks each replica's node; phase B puts it on a GPU of that
    node with a free slot, not holding the expert: among GPUs that stay under the target, one that joins
    two groups of GPUs not yet linked by a shared expert (so the LP split can move tokens between them),
    then the least loaded; otherwise the GPU whose time grows least.
    """
    gpus = kappa.shape[0]
    nodes = int(node_of.max()) + 1
    items = sorted(((load[e] / counts[e], e) for e in range(load.shape[0]) for _ in range(int(counts[e]))),
                   key=lambda it: (-it[0], it[1]))
    per_node = np.bincount(node_of, minlength=nodes)
    item_node = [None] * len(items)
    if affinity is not None and nodes > 1 and node_limit is None:
        node_caps = np.maximum(0.0, ((target if node_target is None else node_target) - c0) / kappa)
        node_cap = np.bincount(node_of, weights=node_caps, minlength=nodes)
        per_expert = _assign_nodes(load, counts, node_cap=node_cap, node_slots=per_node * slots_per_gpu,
                                   per_node=per_node, affinity=affinity)
        if per_expert is not None:
            taken = np.zeros_like(per_expert)
            for i, (_, e) in enumerate(items):
                n = int(np.flatnonzero(taken[e] < per_expert[e])[0])
                taken[e, n] += 1
                item_node[i] = n
    slots = np.full((gpus, slots_per_gpu), -1, dtype=np.int64)
    free = np.full(gpus, slots_per_gpu, dtype=np.int64)
    pairs = np.zeros(gpus)
    has = np.zeros((load.shape[0], gpus), dtype=bool)
    parent = list(range(gpus))
    for (w, e), n in zip(items, item_node, strict=True):
        cand = (free > 0) & ~has[e]
        if n is not None and (cand & (node_of == n)).any():
            cand &= node_of == n
        elif node_limit is not None:
            used = np.unique(node_of[has[e]])
            if used.shape[0] >= node_limit:
                cand &= np.isin(node_of, used)
            else:  # open a node with room for this expert's share of replicas
                room = np.bincount(node_of, weights=(free > 0) & ~has[e], minlength=nodes)
                roomy = cand & (room[node_of] >= -(-int(counts[e]) // node_limit))
                cand = roomy if roomy.any() else cand
            if not cand.any():  # node_limit leaves no GPU for this replica: its slot stays empty
                continue
        if not cand.any():
            raise InfeasibleError(f"no GPU with a free slot can take replica {int(has[e].sum()) + 1} of expert {e}")
        after = c0 + kappa * (pairs + w)
        fits = cand & (after <= target * (1 + 1e-12))
        key = after.copy()
        if fits.any():
            roots = {_root(parent, int(g)) for g in np.flatnonzero(has[e])}
            joins = np.array([_root(parent, g) not in roots for g in range(gpus)]) if roots else np.ones(gpus, bool)
            pool = fits & joins if (fits & joins).any() else fits
        else:
            pool = cand
        key[~pool] = np.inf
        g = int(np.argmin(key))
        for h in np.flatnonzero(has[e]):
            parent[_root(parent, int(h))] = _root(parent, g)
        slots[g, slots_per_gpu - free[g]] = e
        free[g] -= 1
        has[e, g] = True
        pairs[g] += w
    return slots


def affinity_scores(trans: np.ndarray | None, l: int, shares_by_node: list) -> np.ndarray | None:
    """F[e, n] of layer l against its neighbours' node shares (None entries = unknown neighbour)."""
    if trans is None:
        return None
    score = None
    if l > 0 and shares_by_node[l - 1] is not None:
        score = trans[l - 1].T @ shares_by_node[l - 1]
    if l + 1 < len(shares_by_node) and shares_by_node[l + 1] is not None:
        right = trans[l] @ shares_by_node[l + 1]
        score = right if score is None else score + right
    return score


def layer_cross(trans: np.ndarray | None, l: int, ns: list, mine: np.ndarray) -> float:
    """Cross-node transition tokens on both boundaries of layer l if it had node shares `mine`."""
    if trans is None:
        return 0.0
    total = 0.0
    if l > 0:
        total += boundary_cross(trans[l - 1], ns[l - 1], mine)
    if l + 1 < len(ns):
        total += boundary_cross(trans[l], mine, ns[l + 1])
    return total
