"""An independent brute-force oracle for the scatter planner (issue 17).

It shares nothing with planner.scatter: only the public cost functions of costmodels.sequence are called
(sequence_times_s, activation_bytes_per_gpu, memory_left_bytes, default_zero, degree_valid). The problem is
re-derived from its statement (DESIGN.md, "scatter"; planner/scatter/request.py docstring):
- units: U = N / tp SP ranks, node_units = GPUs per node / tp per node;
- a group's degree d is valid for the SP style, d <= U, a power of two under "pow2", and a group larger than a
  node takes whole nodes (d a multiple of node_units);
- a multiset of degrees sums to U; groups larger than a node span nodes; the others sit inside one node when
  a packing of them into the nodes' free units allows it, else span nodes (every packing is tried, so the
  oracle never depends on a particular layout rule);
- a sequence may run on a group when its activations fit the memory left per GPU; a group's time is the sum
  of its sequences' times on (degree, spans nodes); the step time is the slowest group's.
The optimum is found by exhaustive search over multisets, node packings and assignments (branch and bound
on the incumbent, identical groups tried once per load), so keep batches to a handful of sequences.
"""

import itertools
import math

import numpy as np

from costmodels import sequence as seqcost


def _degrees(model, style: str, units: int, node_units: int, tp: int, pow2: bool) -> list[int]:
    out = []
    for d in range(1, units + 1):
        if not seqcost.degree_valid(model, style, d, tp):
            continue
        if pow2 and d & (d - 1):
            continue
        if d > node_units and d % node_units:
            continue
        out.append(d)
    return out


def _multisets(total: int, degrees: list[int]):
    """Every multiset of `degrees` summing to `total` (as sorted lists)."""
    if total == 0:
        yield []
        return
    if not degrees:
        return
    d = degrees[-1]
    for c in range(total // d, -1, -1):
        for rest in _multisets(total - c * d, degrees[:-1]):
            yield rest + [d] * c


def _packs(sizes: list[int], nodes: int, cap: int) -> bool:
    """Whether groups of `sizes` fit into `nodes` bins of `cap` units each (exhaustive)."""
    if sum(sizes) > nodes * cap:
        return False

    def place(i: int, free: list[int]) -> bool:
        if i == len(sizes):
            return True
        tried = set()
        for b in range(nodes):
            if free[b] >= sizes[i] and free[b] not in tried:
                tried.add(free[b])
                free[b] -= sizes[i]
                if place(i + 1, free):
                    return True
                free[b] += sizes[i]
        return False

    return place(0, [cap] * nodes)


def _spanning_choices(multiset: list[int], node_units: int, nodes: int):
    """For each feasible layout: a tuple of (degree, spans) per group. Groups of at most a node may stay inside
    one node when the in-node ones can be packed into the nodes left free by the whole-node groups."""
    big = [d for d in multiset if d > node_units]
    small = [d for d in multiset if d <= node_units]
    free_nodes = nodes - sum(d // node_units for d in big)
    if free_nodes < 0:
        return
    seen = set()
    for inside in itertools.product((True, False), repeat=len(small)):
        in_node = sorted((d for d, keep in zip(small, inside, strict=True) if keep), reverse=True)
        spanning = sorted(d for d, keep in zip(small, inside, strict=True) if not keep)
        key = (tuple(in_node), tuple(spanning))
        if key in seen or (spanning and nodes == 1) or not _packs(in_node, free_nodes, node_units):
            continue
        seen.add(key)
        yield tuple([(d, True) for d in big] + [(d, False) for d in in_node] + [(d, True) for d in spanning])


def _best_assignment(times: list[list[float]], cutoff: float) -> float:
    """min over assignments of max group load; `times[g][i]` (inf: cannot run); inf when nothing beats cutoff."""
    n = len(times[0]) if times else 0
    order = sorted(range(n), key=lambda i: -min(t[i] for t in times))
    loads = [0.0] * len(times)
    best = [cutoff]

    def dfs(k: int, worst: float) -> None:
        if k == n:
            best[0] = min(best[0], worst)
            return
        i = order[k]
        tried = set()
        for g, row in enumerate(times):
            key = (tuple(row), loads[g])
            if key in tried:
                continue
            tried.add(key)
            new = loads[g] + row[i]
            if new >= best[0]:
                continue
            loads[g] = new
            dfs(k + 1, max(worst, new))
            loads[g] -= row[i]

    dfs(0, 0.0)
    return best[0]


def optimum(lengths, *, model, cluster, style: str = "ulysses", degrees: str = "any", tp: int = 1,
            multiset: list[int] | None = None) -> float:
    """The optimal step time (s) over every multiset (only `multiset` when given), layout and assignment; inf
    when some sequence fits no group."""
    pool = cluster.primary
    device, per_node = pool.device, pool.devices_per_node
    units, node_units = cluster.num_devices // tp, per_node // tp
    nodes = max(units // node_units, 1)
    zero = seqcost.default_zero(model, device, tp=tp, dp=units)
    left = seqcost.memory_left_bytes(model, device, tp=tp, zero=zero, dp=units)
    arr = np.asarray(lengths, dtype=float)
    kw = dict(style=style, tp=tp, gpus_per_node=per_node, intra_bytes_per_s=pool.intra_node_bytes_per_s,
              inter_bytes_per_s=pool.inter_node_bytes_per_s)
    cost: dict[tuple[int, bool], list[float]] = {}

    def row(d: int, spans: bool) -> list[float]:
        if (d, spans) not in cost:
            fits = seqcost.activation_bytes_per_gpu(model, arr, degree=d, tp=tp) <= left
            t = seqcost.sequence_times_s(model, device, arr, degree=d, inter_node=spans and nodes > 1, **kw)
            cost[(d, spans)] = np.where(fits, t, np.inf).tolist()
        return cost[(d, spans)]

    best = math.inf
    candidates = [sorted(multiset)] if multiset is not None else \
        _multisets(units, _degrees(model, style, units, node_units, tp, degrees == "pow2"))
    for degs in candidates:
        for layout in _spanning_choices(degs, node_units, nodes):
            best = min(best, _best_assignment([row(d, spans) for d, spans in layout], best))
    return best
