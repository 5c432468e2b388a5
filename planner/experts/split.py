"""Exact token split for a fixed placement (an LP), and the replica-counting lower bound of a layer.

Token split LP (one layer, placement fixed):
  Sets      E experts, G GPUs, P = {(e, g): GPU g holds a replica of e}
  Data      a_e   tokens routed to expert e (token-expert pairs)
            c0    fixed time of every GPU (s, or 0 in token mode)
            k_g   time per pair on GPU g (s/pair, or 1/speed_g in token mode)
  Variables y_eg >= 0 for (e, g) in P: fraction of e's tokens served on g;  z: busiest GPU's time
  Objective min z
  (C1) sum_g y_eg = 1                         for every expert e with a_e > 0
  (C2) c0 + k_g * sum_e a_e y_eg <= z          for every GPU g
Experts with no tokens are split equally across their replicas (any split is optimal).

Replica-counting bound (valid for every placement with at most S slots per GPU, one replica of an
expert per GPU): if the busiest GPU takes time z, GPU g serves at most cap_g(z) = (z - c0) / k_g pairs;
expert e then needs at least r_e(z) replicas, the fewest GPUs whose largest capacities sum to a_e, and
sum_e r_e(z) <= G * S, sum_g cap_g(z) >= sum_e a_e. The least z meeting both (bisection; both tests
are monotone in z) is a lower bound on the layer's optimum. It dominates the LP relaxation of the
layer MILP (whose value is the second test alone).
"""

import highspy
import numpy as np

_BISECTIONS = 100


def _highs() -> highspy.Highs:
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.setOptionValue("random_seed", 0)
    return h


def optimal_split(load: np.ndarray, slots: np.ndarray, c0: float, kappa: np.ndarray) -> tuple[np.ndarray, float]:
    """([E, G] shares, busiest-GPU time) minimising the busiest GPU's time for the placement `slots` [G, S]."""
    experts, gpus = load.shape[0], slots.shape[0]
    share = np.zeros((experts, gpus))
    holders = [[] for _ in range(experts)]
    for g in range(gpus):
        for e in slots[g]:
            if e >= 0:
                holders[int(e)].append(g)
    pairs = [(e, g) for e in range(experts) if load[e] > 0 for g in holders[e]]
    for e in range(experts):
        if load[e] <= 0 and holders[e]:
            share[e, holders[e]] = 1.0 / len(holders[e])
    if not pairs:
        return share, float(c0)
    n = len(pairs)
    lp = highspy.HighsLp()
    lp.num_col_ = n + 1
    active = [e for e in range(experts) if load[e] > 0]
    row_of_e = {e: i for i, e in enumerate(active)}
    lp.num_row_ = len(active) + gpus
    lp.col_cost_ = np.r_[np.zeros(n), 1.0]
    lp.col_lower_ = np.zeros(n + 1)
    lp.col_upper_ = np.r_[np.ones(n), highspy.kHighsInf]
    lp.row_lower_ = np.r_[np.ones(len(active)), np.full(gpus, -highspy.kHighsInf)]
    lp.row_upper_ = np.r_[np.ones(len(active)), np.full(gpus, -c0)]
    starts, index, value = [0], [], []
    for e, g in pairs:  # (C1) row of e, (C2) row of g
        index += [row_of_e[e], len(active) + g]
        value += [1.0, kappa[g] * load[e]]
        starts.append(len(index))
    index += [len(active) + g for g in range(gpus)]  # -z in every (C2)
    value += [-1.0] * gpus
    starts.append(len(index))
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.array(starts, dtype=np.int32)
    lp.a_matrix_.index_ = np.array(index, dtype=np.int32)
    lp.a_matrix_.value_ = np.array(value)
    h = _highs()
    h.passModel(lp)
    h.run()
    x = np.asarray(h.getSolution().col_value)
    for i, (e, g) in enumerate(pairs):
        share[e, g] = max(0.0, x[i])
    sums = share.sum(axis=1, keepdims=True)
    share = np.divide(share, sums, out=np.zeros_like(share), where=sums > 0)
    tokens = load @ share
    return share, float(np.max(c0 + kappa * tokens))


def _replicas_needed(load: np.ndarray, caps: np.ndarray) -> np.ndarray | None:
    """r_e(z) for capacities caps, or None when some expert exceeds all GPUs together."""
    cum = np.cumsum(np.sort(caps)[::-1])
    tol = 1e-12 * max(1.0, float(cum[-1]))
    if np.any(load > cum[-1] + tol):
        return None
    return np.searchsorted(cum, load - tol, side="left") + 1


def replica_bound(load: np.ndarray, gpus: int, slots_per_gpu: int, c0: float, kappa: np.ndarray,
                  max_replicas: int | None = None) -> tuple[float, np.ndarray]:
    """(lower bound on the layer's busiest-GPU time, replica counts r_e at that bound)."""
    total = float(load.sum())
    budget = gpus * slots_per_gpu
    limit = gpus if max_replicas is None else max_replicas

    def feasible(z: float) -> np.ndarray | None:
        caps = np.maximum(0.0, (z - c0) / kappa)
        if caps.sum() < total * (1 - 1e-12):
            return None
        need = _replicas_needed(load, caps)
        if need is None or need.max() > limit or need.sum() > budget:
            return None
        return need

    lo = c0 + total / float(np.sum(1.0 / kappa))
    if feasible(lo) is not None:
        return lo, feasible(lo)
    hi = c0 + float(kappa.max()) * max(total, 1e-12)
    while feasible(hi) is None:
        hi = c0 + 2 * (hi - c0)
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo + hi)
        if feasible(mid) is None:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * max(1.0, hi):
            break
    return lo, feasible(hi)
