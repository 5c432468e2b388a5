"""Affinity as graph partitioning: keep heavy layer-to-layer transitions inside a node.

Graph: one vertex per (layer, expert), weighted by its tokens; an edge (l, e) - (l+1, e') weighted by
transitions[l, e, e']. Cross-node traffic is the weight of the edges cut by the node assignment. Every layer
must still meet its load cap, and replicas and the token split follow each layer's assignment:
  identical GPUs and nodes (no node_limit): every node takes a(E) / N tokens in at most (S-1) g + 1
  expert pieces (an expert may be split over nodes); by Lemma 2 of groups.py such a node packs exactly,
  every GPU at a(E) / G pairs (groups.pack_group): the layer optimum when E <= (S-1) G + 1, so affinity
  costs no load. (Allowing nodes up to the load cap gained < 1 % traffic on the benchmark families.)
  The assignment (_node_tokens): greedy by affinity under count and load quotas, then a
  one-way repair of the node loads;
  otherwise (or when that fails): heuristic.pack with node affinity, the LP split and local_search.improve.

Method (a seeded partitioning by propagation, from two seeds: spectral and contiguous ids; the better wins):
  1. seed: one middle layer l0 is partitioned into N node parts by recursive spectral bisection of the
     similarity of its experts, S = R R^T + Q Q^T (R: rows of transitions[l0] normalised, the successor
     profile of each expert; Q: columns of transitions[l0-1] normalised, the predecessor profile). Each
     bisection sorts the experts of a part by the Fiedler vector of the normalised Laplacian of S (power
     iteration) and
     cuts at the count share of the two halves' node counts; this finds the hidden order of a
     window-successor structure (a ring: Fiedler vector ~ cos of the position) and clusters alike.
  2. propagation: layers l0+1 .. L-1, then l0-1 .. 0, each repacked against its already-placed
     neighbour's node shares (affinity F[e, n], heuristic.affinity_scores), so the seed's structure
     carries along the transition chain;
  3. refinement: full sweeps (alternating direction) while the time limit allows and some layer improves.
A repacked layer is kept only when it lowers the layer's part of the objective (traffic_weight 0: when it
lowers its cross-node traffic with its busiest GPU under the cap); in the propagation (2) the affinity and
the traffic count only the boundary with the neighbour already placed.
No affinity: if the plan's cross-node share of the transitions is not clearly below what a random balanced
assignment gives, 1 - 1/N (NO_AFFINITY_RATIO of it), the statistics show no node structure: the layers go
back to their load-optimal placements and the plan says so.
"""

from dataclasses import dataclass

import numpy as np

from costmodels.errors import InfeasibleError
from planner.experts.evaluate import boundary_cross, node_shares
from planner.experts.groups import pack_group
from planner.experts.heuristic import PACK_SLACK, affinity_scores, layer_cross, pack
from planner.experts.local_search import improve
from planner.experts.split import optimal_split

NO_AFFINITY_RATIO = 0.95
"""cross-node share >= this fraction of a random assignment's (1 - 1/N) counts as no affinity found"""
PASSES = 5
"""refinement sweeps after the propagation (each stops early when nothing improves)"""
SWAP_ROUNDS = 8
"""rounds of expert exchanges between nodes per layer assignment (_swap)"""
SWAP_DRIFT = 0.05
"""an exchange keeps every node within this fraction of the mean tokens (the repair balances the rest)"""
FIEDLER_ITERATIONS = 300
"""power iterations for a Fiedler vector (a seed needs its order, not full accuracy)"""
WINDOWS = (8.0, 4.0, 2.0, 1.0)
"""a node may take an expert while within this many of its token counts of the lightest node: the widest
window whose assignment the repair can balance is used"""


@dataclass(kw_only=True, slots=True)
class SweepState:
    """Per-layer placements being improved (lists indexed by layer, updated in place)."""

    load: np.ndarray
    trans: np.ndarray
    slots: list
    shares: list
    times: list
    targets: list
    """each layer's proven bound (packing target)"""
    caps: list
    """each layer's busiest-GPU cap"""
    counts: list
    slots_per_gpu: int
    c0: float
    kappa: np.ndarray
    node_of: np.ndarray
    traffic_weight: float
    node_limit: int | None
    frozen: set
    ns: list | None = None
    """[E, N] node shares per layer (derived)"""

    def __post_init__(self):
        nodes = int(self.node_of.max()) + 1
        self.ns = [node_shares(s, self.node_of, nodes) for s in self.shares]


def _swap(out: np.ndarray, load: np.ndarray, score: np.ndarray) -> None:
    """Exchange experts of two nodes while that raises the affinity and keeps every node within SWAP_DRIFT of
    the mean tokens. Each round ranks all exchanges by gain and applies the best ones that share no expert
    (an exchange's gain depends only on its two experts' nodes, so the others stay exact); at most
    SWAP_ROUNDS rounds. `out` holds whole experts and is updated in place."""
    experts, nodes = out.shape
    node = np.argmax(out, axis=1)
    mean = load.sum() / nodes
    have = out.sum(axis=0)
    tol = 1e-12 * max(1.0, float(np.abs(score).max()))
    for _ in range(SWAP_ROUNDS):
        own = score[np.arange(experts), node]
        cross = score[:, node]  # [e1, e2] = affinity of e1 to e2's node
        gain = np.triu(cross + cross.T - own[:, None] - own[None, :], 1)
        gain[node[:, None] == node[None, :]] = 0.0
        cand = np.flatnonzero(gain > tol)
        if cand.size == 0:
            return
        used = np.zeros(experts, dtype=bool)
        applied = 0
        for flat in cand[np.argsort(-gain.flat[cand], kind="stable")].tolist():
            e1, e2 = divmod(flat, experts)
            if used[e1] or used[e2]:
                continue
            n1, n2, d = node[e1], node[e2], load[e1] - load[e2]
            if abs(have[n1] - d - mean) > SWAP_DRIFT * mean or abs(have[n2] + d - mean) > SWAP_DRIFT * mean:
                continue
            have[n1] -= d
            have[n2] += d
            out[e1, n1], out[e2, n2], out[e1, n2], out[e2, n1] = 0.0, 0.0, load[e1], load[e2]
            node[e1], node[e2] = n2, n1
            used[e1] = used[e2] = True
            applied += 1
        if applied == 0:
            return


def _node_tokens(load: np.ndarray, score: np.ndarray, room: np.ndarray, window: float,
                 cap: float) -> np.ndarray | None:
    """[E, N] tokens of each expert per node, every node at most `cap` (>= a(E) / N; equal nodes), or None.

    Greedy (LPT with room for affinity): experts by load, heaviest first, each onto its best-affinity node
    among those with a free expert quota (E / N) whose tokens so far exceed the lightest such node's by at
    most `window` x its own tokens (so the imbalance shrinks with the experts still to come). Exchanges
    (_swap): pairs of experts of two nodes change nodes while that raises the affinity. Repair:
    nodes sorted by surplus over `cap`, node i passes the running surplus on to node i+1 as a part of
    one expert: among those holding at least the surplus, the one whose tokens have the most affinity to
    node i+1 over node i per token (splitting the largest expert instead cost 4-5 % more traffic on the
    benchmark families); surpluses sorted descending: all flows go one way
    and each node receives at most one piece; a node below `cap` absorbs what it has room for. None when
    no expert holds the flow or a node would hold more than `room` pieces."""
    experts, nodes = score.shape
    out = np.zeros((experts, nodes))
    order = sorted(range(experts), key=lambda e: (-load[e], e))
    have = np.zeros(nodes)  # tokens on each node so far
    quota = np.full(nodes, experts // nodes) + (np.arange(nodes) < experts % nodes)  # experts it still takes
    for e in order:
        open_ = quota > 0
        lightest = float(have[open_].min())
        allowed = open_ & (have <= lightest + window * load[e])
        n = int(np.argmin(np.where(allowed, -score[e], np.inf)))
        out[e, n] = load[e]
        have[n] += load[e]
        quota[n] -= 1
    _swap(out, load, score)
    surplus = out.sum(axis=0) - cap
    chain = sorted(range(nodes), key=lambda n: (-surplus[n], n))
    carry = 0.0
    for i, n in enumerate(chain[:-1]):
        carry = max(0.0, carry + surplus[n])
        if carry <= 1e-12 * max(1.0, float(load.sum())):
            continue
        nxt = chain[i + 1]
        able = out[:, n] >= carry
        if not able.any():
            return None
        per_token = (score[:, nxt] - score[:, n]) / np.maximum(load, 1e-300)  # affinity kept per token moved
        e = int(np.argmax(np.where(able, per_token, -np.inf)))
        out[e, n] -= carry
        out[e, nxt] += carry
    if np.any((out > 0).sum(axis=0) > room):
        return None
    return out


def _node_candidate(st: SweepState, l: int, score: np.ndarray):
    """Identical GPUs: nodes by _node_tokens under the cap, each node packed exactly (groups.pack_group)."""
    load, gpus, width = st.load[l], st.kappa.shape[0], st.slots_per_gpu
    nodes = st.ns[l].shape[1]
    per_node = np.bincount(st.node_of, minlength=nodes)
    if np.any(per_node != per_node[0]):
        return None
    node_cap = float(load.sum()) / nodes  # every node at the mean: each GPU at a(E) / G, the closed-form optimum
    tokens = None
    for window in WINDOWS:
        tokens = _node_tokens(load, score, (width - 1) * per_node + 1, window, node_cap)
        if tokens is not None:
            break
    if tokens is None:
        return None
    slots = np.full((gpus, width), -1, dtype=np.int64)
    share = np.zeros((load.shape[0], gpus))
    for n in range(nodes):
        members = np.flatnonzero(tokens[:, n] > 0).tolist()
        fill = {}
        for e, g, t in pack_group(tokens[:, n], members, np.flatnonzero(st.node_of == n).tolist(), width):
            slots[g, fill.setdefault(g, 0)] = e
            fill[g] += 1
            share[e, g] += t / load[e]
    for e in np.flatnonzero(load <= 0):  # experts without tokens take a free slot anywhere
        free = np.flatnonzero((slots < 0).any(axis=1))
        if free.size == 0:
            return None
        g = int(free[0])
        slots[g, int(np.argmax(slots[g] < 0))] = e
        share[e, g] = 1.0
    t = float(np.max(st.c0 + st.kappa * (load @ share)))
    return slots, share, t


def _candidate(st: SweepState, l: int, score: np.ndarray):
    if st.node_limit is None and np.all(st.kappa == st.kappa[0]):
        fast = _node_candidate(st, l, score)
        if fast is not None:
            return fast
    try:
        cand = pack(st.load[l], st.counts[l], slots_per_gpu=st.slots_per_gpu, c0=st.c0, kappa=st.kappa,
                    node_of=st.node_of, target=st.targets[l] * (1 + PACK_SLACK), affinity=score,
                    node_limit=st.node_limit, node_target=st.targets[l])
    except InfeasibleError:  # the rounded node assignment left a replica no GPU can take: keep the layer
        return st.slots[l], st.shares[l], st.times[l]
    share, t = optimal_split(st.load[l], cand, st.c0, st.kappa)
    cand, share, t = improve(st.load[l], cand, share, t, st.c0, st.kappa, st.node_of, cross_node=False)
    if t > st.caps[l] and st.node_limit is None and st.traffic_weight == 0:
        cand, share, t = improve(st.load[l], cand, share, t, st.c0, st.kappa, st.node_of, cross_node=True)
    return cand, share, t


def repack(st: SweepState, l: int, only: int | None = None) -> bool:
    """Repack layer l against its neighbours' node shares (or neighbour `only`'s alone, judged on that
    boundary alone: propagation); keep it if better (module docstring)."""
    if l in st.frozen:
        return False
    view = st.ns if only is None else [x if k == only else None for k, x in enumerate(st.ns)]
    score = affinity_scores(st.trans, l, view)
    if score is None:
        return False
    cand, share, t = _candidate(st, l, score)
    cand_ns = node_shares(share, st.node_of, st.ns[l].shape[1])
    if only is None:
        old, new = layer_cross(st.trans, l, st.ns, st.ns[l]), layer_cross(st.trans, l, st.ns, cand_ns)
    else:
        pair = st.trans[min(l, only)]
        left, right = (st.ns[only], None) if only < l else (None, st.ns[only])
        old = boundary_cross(pair, st.ns[l] if left is None else left, st.ns[l] if right is None else right)
        new = boundary_cross(pair, cand_ns if left is None else left, cand_ns if right is None else right)
    if st.traffic_weight > 0:
        better = t + st.traffic_weight * new < st.times[l] + st.traffic_weight * old - 1e-12
    else:
        better = new < old * (1 - 1e-9) and t <= st.caps[l]
    if better:
        st.slots[l], st.shares[l], st.times[l], st.ns[l] = cand, share, t, cand_ns
    return better


def _similarity(trans: np.ndarray, l: int) -> np.ndarray:
    """S = R R^T + Q Q^T of layer l's experts (module docstring), zero diagonal."""
    parts = []
    if l < trans.shape[0]:
        parts.append(trans[l])
    if l > 0:
        parts.append(trans[l - 1].T)
    sim = np.zeros((trans.shape[1], trans.shape[1]))
    for m in parts:
        norm = np.linalg.norm(m, axis=1, keepdims=True)
        r = np.divide(m, norm, out=np.zeros_like(m), where=norm > 0)
        sim += r @ r.T
    np.fill_diagonal(sim, 0.0)
    return sim


def _fiedler(norm_w: np.ndarray, trivial: np.ndarray) -> np.ndarray:
    """Second eigenvector of I + D^-1/2 W D^-1/2 (the Fiedler vector of the normalised Laplacian) by power
    iteration orthogonal to the trivial eigenvector sqrt(d), from a fixed start (deterministic)."""
    n = norm_w.shape[0]
    top = trivial / max(float(np.linalg.norm(trivial)), 1e-300)
    vec = np.cos(np.linspace(0.0, np.pi, n)) + 0.01 * np.arange(n) / n
    for _ in range(FIEDLER_ITERATIONS):
        vec = vec + norm_w @ vec
        vec -= top * float(top @ vec)
        vec /= max(float(np.linalg.norm(vec)), 1e-300)
    return vec


def _bisect(sim: np.ndarray, idx: np.ndarray, parts: int, out: np.ndarray, first: int) -> None:
    """Label idx with parts first .. first + parts - 1 by recursive Fiedler bisection."""
    if parts == 1 or idx.shape[0] <= 1:
        out[idx] = first
        return
    w = sim[np.ix_(idx, idx)]
    deg = w.sum(axis=1)
    inv = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1e-300)), 0.0)
    fiedler = _fiedler(inv[:, None] * w * inv[None, :], np.sqrt(np.maximum(deg, 0.0))) * inv
    if fiedler[np.argmax(np.abs(fiedler))] < 0:  # eigenvector sign is arbitrary: fix it
        fiedler = -fiedler
    order = idx[np.lexsort((idx, fiedler))]
    left = parts // 2
    cut = int(round(idx.shape[0] * left / parts))
    _bisect(sim, np.sort(order[:cut]), left, out, first)
    _bisect(sim, np.sort(order[cut:]), parts - left, out, first + left)


def spectral_seed(trans: np.ndarray, l: int, nodes: int) -> np.ndarray:
    """[E, N] one-hot node of every expert of layer l (recursive spectral bisection)."""
    experts = trans.shape[1]
    label = np.zeros(experts, dtype=np.int64)
    _bisect(_similarity(trans, l), np.arange(experts), nodes, label, 0)
    seed = np.zeros((experts, nodes))
    seed[np.arange(experts), label] = 1.0
    return seed


def contiguous_seed(experts: int, nodes: int) -> np.ndarray:
    """[E, N] one-hot node e * N // E (the expert-id order a contiguous placement follows)."""
    seed = np.zeros((experts, nodes))
    seed[np.arange(experts), np.arange(experts) * nodes // experts] = 1.0
    return seed


def _run_seed(st: SweepState, seed: np.ndarray, l0: int, deadline, progress) -> None:
    """Seed layer l0, propagate, refine (module docstring), within `deadline`."""
    layers, nodes = st.load.shape[0], seed.shape[1]
    if l0 not in st.frozen:
        cand, share, t = _candidate(st, l0, seed * st.load[l0][:, None])
        if t <= st.caps[l0] or st.traffic_weight > 0:
            st.slots[l0], st.shares[l0], st.times[l0] = cand, share, t
            st.ns[l0] = node_shares(share, st.node_of, nodes)
    for order, step in ((range(l0 + 1, layers), -1), (range(l0 - 1, -1, -1), 1)):
        for l in order:
            if deadline.expired():
                return
            repack(st, l, only=l + step)
    for sweep in range(PASSES):
        changed = 0
        for l in (range(layers) if sweep % 2 == 0 else range(layers - 1, -1, -1)):
            if deadline.expired():
                return
            changed += repack(st, l)
        if progress is not None:
            progress(f"experts: affinity sweep {sweep + 1}/{PASSES}: {changed} layers repacked")
        if changed == 0:
            return


def improve_affinity(st: SweepState, deadline, progress=None) -> None:
    """Run _run_seed from the spectral seed and from the contiguous seed (time allowing, and only if the
    first found structure) on copies of the placements; keep the one with less cross-node traffic (the
    objective, with traffic_weight > 0)."""
    layers, nodes = st.load.shape[0], st.ns[0].shape[1]
    l0 = layers // 2
    best = None
    for name, seed in (("spectral", spectral_seed(st.trans, l0, nodes)),
                       ("contiguous", contiguous_seed(st.load.shape[1], nodes))):
        if best is not None and deadline.expired():
            break
        trial = SweepState(**{f: (list(getattr(st, f)) if isinstance(getattr(st, f), list) else getattr(st, f))
                              for f in SweepState.__dataclass_fields__ if f != "ns"})
        _run_seed(trial, seed, l0, deadline, progress)
        value = _objective(trial)
        if progress is not None:
            progress(f"experts: affinity from the {name} seed of layer {l0}: cross-node share "
                     f"{cross_share(trial.trans, trial.ns):.3f}")
        if best is None or value < best[0]:
            best = (value, trial)
        if not found(trial.trans, trial.ns):  # the first seed found no structure: the statistics have none
            break
    for f in ("slots", "shares", "times", "ns"):
        setattr(st, f, getattr(best[1], f))


def _objective(st: SweepState) -> float:
    cross = sum(boundary_cross(st.trans[l], st.ns[l], st.ns[l + 1]) for l in range(st.trans.shape[0]))
    return cross if st.traffic_weight == 0 else float(sum(st.times)) + st.traffic_weight * cross


def cross_share(trans: np.ndarray, ns: list) -> float:
    """Cross-node share of all transition tokens for node shares ns."""
    total = float(trans.sum())
    cross = sum(boundary_cross(trans[l], ns[l], ns[l + 1]) for l in range(trans.shape[0]))
    return cross / total if total > 0 else 0.0


def found(trans: np.ndarray, ns: list) -> bool:
    """Whether the placement's traffic is clearly below a random balanced assignment's."""
    nodes = ns[0].shape[1]
    return cross_share(trans, ns) < NO_AFFINITY_RATIO * (1.0 - 1.0 / nodes)


def _stay_bound(trans: np.ndarray, load_next: np.ndarray, cap: float) -> float:
    """Most transition tokens of one boundary that can stay on a node, by the rows of trans [E, E'].

    Expert e's tokens that stay on node n are sum_e' trans[e, e'] y[e', n] with y[e', n] in [0, 1] the
    share of e' served on node n and sum_e' load_next[e'] y[e', n] <= cap: at most K_e, the fractional
    knapsack of trans[e] with weights load_next and capacity cap (best ratio first). As e's node shares sum
    to 1, e keeps at most K_e of its tokens on-node, whatever the placement: sum_e K_e bounds the stay."""
    ratio = np.divide(trans, load_next[None, :], out=np.full(trans.shape, np.inf), where=load_next[None, :] > 0)
    order = np.argsort(-ratio, axis=1, kind="stable")
    value = np.take_along_axis(trans, order, axis=1)
    weight = load_next[order]
    before = np.cumsum(weight, axis=1) - weight  # weight taken before each item
    take = np.clip((cap - before) / np.where(weight > 0, weight, 1.0), 0.0, 1.0)
    take = np.where(weight > 0, take, 1.0)  # a zero-load successor fits anywhere
    return float((value * take).sum())


def traffic_lower_bound(trans: np.ndarray, load: np.ndarray, node_cap: np.ndarray) -> float:
    """A lower bound on the cross-node transition tokens of every placement in which each node of layer l
    serves at most node_cap[l] tokens (e.g. gpus_per_node x that layer's busiest-GPU tokens).

    Per boundary l: cross = total - stay, and stay is at most the smaller of _stay_bound by the rows
    (each expert of layer l against a node of layer l+1) and by the columns (each expert of layer l+1
    against a node of layer l). Piece-count and slot limits are ignored, so the bound is valid but loose."""
    total = 0.0
    for l in range(trans.shape[0]):
        pair = trans[l]
        stay = min(_stay_bound(pair, load[l + 1], float(node_cap[l + 1])),
                   _stay_bound(pair.T, load[l], float(node_cap[l])))
        total += max(0.0, float(pair.sum()) - stay)
    return total
