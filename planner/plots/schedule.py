"""The 1F1B pipeline schedule drawn by the train plot: start and end of every forward and backward.

Stage s runs min(pp - s - 1, m) warm-up forwards, then alternates one forward and one backward, then drains
the remaining backwards (Narayanan et al. 2021). A forward of micro-batch j on stage s waits for the same
forward on stage s - 1; a backward waits for the same backward on stage s + 1. Durations come from the plan's
per-stage per-micro-batch time t_s, split forward:backward by FORWARD_SHARE: a backward computes about twice
the forward's FLOPs (input and weight gradients), and full recompute adds one more forward to it. For equal
stages the schedule lasts (m + pp - 1)·t, the costmodels.pipeline formula for vpp = 1.
"""

from dataclasses import dataclass

FORWARD_SHARE = {"none": 1 / 3, "selective": 1 / 3, "full": 1 / 4}
"""forward's share of fwd + bwd (+ recompute) time of one micro-batch, by recompute mode"""


@dataclass(frozen=True, slots=True)
class Op:
    """One forward ('F') or backward ('B') of one micro-batch on one stage."""

    stage: int
    microbatch: int
    kind: str
    start_s: float
    end_s: float


def _order(stage: int, pp: int, m: int) -> list[tuple[str, int]]:
    warmup = min(pp - stage - 1, m)
    ops = [("F", j) for j in range(warmup)]
    for j in range(m - warmup):
        ops += [("F", warmup + j), ("B", j)]
    return ops + [("B", j) for j in range(m - warmup, m)]


def one_f_one_b(stage_times_s: list[float], microbatches: int, recompute: str = "none") -> list[Op]:
    """Every op of one step, by stage order; times in seconds from the step's start."""
    pp, m = len(stage_times_s), microbatches
    share = FORWARD_SHARE.get(recompute, FORWARD_SHARE["none"])
    orders = [_order(s, pp, m) for s in range(pp)]
    cursor = [0] * pp
    free = [0.0] * pp
    done: dict[tuple[str, int, int], float] = {}
    ops: list[Op] = []
    while any(cursor[s] < len(orders[s]) for s in range(pp)):
        progressed = False
        for s in range(pp):
            if cursor[s] >= len(orders[s]):
                continue
            kind, j = orders[s][cursor[s]]
            dep = ("F", s - 1, j) if kind == "F" and s > 0 else ("B", s + 1, j) if kind == "B" and s < pp - 1 else None
            if kind == "B" and s == pp - 1:
                dep = ("F", s, j)
            if dep is not None and dep not in done:
                continue
            start = max(free[s], done.get(dep, 0.0) if dep else 0.0)
            length = stage_times_s[s] * (share if kind == "F" else 1 - share)
            ops.append(Op(stage=s, microbatch=j, kind=kind, start_s=start, end_s=start + length))
            free[s] = done[(kind, s, j)] = start + length
            cursor[s] += 1
            progressed = True
        if not progressed:
            raise RuntimeError("1F1B schedule deadlocked")  # impossible for a valid order; guards the loop
    return ops
