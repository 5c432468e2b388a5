"""Where each group of a degree multiset sits: units (SP ranks) per group, and whether it spans nodes.

Rule (deterministic, topology-aware): groups larger than a node take whole nodes, from node 0 up, largest
first; then groups of at most a node are packed first-fit-decreasing into the nodes' free units, each as a
contiguous block inside one node. A group that fits in no node's free space (possible only with degrees
that do not divide the node size) takes the lowest free units and is marked as spanning nodes.
Groups are returned in rank order (by their first unit).
"""

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True, slots=True)
class GroupSlot:
    """One group's place."""

    degree: int
    """SP degree (units)"""
    units: tuple[int, ...]
    """unit indices; unit u holds GPUs u·tp .. u·tp+tp-1"""
    spans_nodes: bool
    """True when the units are not all in one node"""


def place(degrees: list[int], node_units: int, total_units: int) -> list[GroupSlot]:
    """Place a multiset of degrees (summing to at most total_units) on nodes of node_units units."""
    nodes = max(total_units // node_units, 1)
    free = [list(range(n * node_units, min((n + 1) * node_units, total_units))) for n in range(nodes)]
    slots: list[GroupSlot] = []
    order = sorted(degrees, reverse=True)
    next_node = 0
    small = []
    for d in order:
        if d > node_units:
            whole = -(-d // node_units)
            units = [u for n in range(next_node, next_node + whole) for u in free[n]][:d]
            for n in range(next_node, next_node + whole):
                free[n] = [u for u in free[n] if u not in set(units)]
            next_node += whole
            slots.append(GroupSlot(degree=d, units=tuple(units), spans_nodes=True))
        else:
            small.append(d)
    spill = []
    for d in small:
        for n in range(nodes):
            if len(free[n]) >= d:
                units, free[n] = free[n][:d], free[n][d:]
                slots.append(GroupSlot(degree=d, units=tuple(units), spans_nodes=False))
                break
        else:
            spill.append(d)
    for d in spill:
        pool = sorted(u for n in range(nodes) for u in free[n])
        units = pool[:d]
        taken = set(units)
        free = [[u for u in f if u not in taken] for f in free]
        span = len({u // node_units for u in units}) > 1
        slots.append(GroupSlot(degree=d, units=tuple(units), spans_nodes=span))
    return sorted(slots, key=lambda g: g.units[0])
