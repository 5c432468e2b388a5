"""Migration budget: move at most K replicas relative to the placement now deployed.

A *move* is one replica that a GPU must load because it did not hold that expert in that layer before:
  moves = sum_l sum_g |experts(new, l, g) \\ experts(previous, l, g)|.
Method: (1) relabel each new layer's GPUs inside every node (only among GPUs of equal speed, which are
interchangeable) to overlap the previous layer most (greedy, largest overlap first); (2) for every layer
choose either the previous placement (0 moves, tokens re-split exactly by the LP) or the relabelled new
one; layers are adopted in decreasing order of time saved per move while the budget lasts.
"""

import numpy as np


def moves(new: np.ndarray, old: np.ndarray) -> int:
    """Replicas in `new` [G, S] that their GPU does not hold in `old`."""
    total = 0
    for g in range(new.shape[0]):
        before = set(int(e) for e in old[g] if e >= 0)
        total += sum(1 for e in new[g] if e >= 0 and int(e) not in before)
    return total


def relabel(new: np.ndarray, old: np.ndarray, node_of: np.ndarray, speed: np.ndarray) -> np.ndarray:
    """`new` [G, S] with GPUs permuted within (node, speed) classes to overlap `old` most."""
    out = new.copy()
    classes = sorted(set(zip(node_of.tolist(), speed.tolist(), strict=True)))
    for node, spd in classes:
        members = [g for g in range(new.shape[0]) if node_of[g] == node and speed[g] == spd]
        sets_new = {g: set(int(e) for e in new[g] if e >= 0) for g in members}
        sets_old = {g: set(int(e) for e in old[g] if e >= 0) for g in members}
        pairs = sorted(((len(sets_new[a] & sets_old[b]), a, b) for a in members for b in members),
                       key=lambda p: (-p[0], p[1], p[2]))
        used_a, used_b = set(), set()
        for _, a, b in pairs:
            if a in used_a or b in used_b:
                continue
            used_a.add(a)
            used_b.add(b)
            out[b] = new[a]
    return out


def choose_layers(gain: list[float], cost: list[int], budget: int) -> set[int]:
    """Layers to adopt: best gain per move first, while the budget lasts (zero-move gains always)."""
    order = sorted(range(len(gain)), key=lambda l: (-(gain[l] / max(cost[l], 1e-9)), l))
    chosen, spent = set(), 0
    for l in order:
        if gain[l] <= 0:
            continue
        if spent + cost[l] <= budget:
            chosen.add(l)
            spent += cost[l]
    return chosen
