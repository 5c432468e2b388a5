"""The pipeline schedule drawn by the train plot: start and end of every forward and backward chunk.

1F1B (vpp = 1): stage s runs min(pp - s - 1, m) warm-up forwards, then alternates one forward and one
backward, then drains the remaining backwards (Narayanan et al. 2021). Interleaved 1F1B (vpp = v > 1,
Megatron's schedule, m a multiple of pp): each stage holds v model chunks; micro-batches go through the
chunks in groups of pp; stage s runs 2(pp - s - 1) + (v - 1)·pp warm-up chunk forwards (capped at m·v).

A forward of (micro-batch j, chunk c) on stage s waits for the same forward on stage s - 1 (on the last
stage for chunk c - 1 when s = 0); a backward waits for the same backward on stage s + 1 (on the first
stage for chunk c + 1 when s is the last stage). Durations come from the plan's per-stage per-micro-batch
time t_s, divided among the v chunks and split forward:backward by FORWARD_SHARE: a backward computes about
twice the forward's FLOPs (input and weight gradients), and recompute adds the share of a forward it repeats
(full: one more forward, selective-layer: half of one).
For equal stages the schedule lasts m·t + (pp - 1)·t / v, the costmodels.pipeline formula.
"""

from dataclasses import dataclass

from costmodels.flops import recompute_share
from costmodels.parallel import RECOMPUTE_MODES

FORWARD_SHARE = {mode: 1 / (3 + recompute_share(mode).gemm) for mode in RECOMPUTE_MODES}
"""forward's share of fwd + bwd (+ recompute) time of one micro-batch, by recompute mode: 1/3, 1/3 (selective
repeats the attention core only), 2/7 (selective-layer repeats half a forward), 1/4 (full)"""


@dataclass(frozen=True, slots=True)
class Op:
    """One forward ('F') or backward ('B') of one micro-batch's model chunk on one stage."""

    stage: int
    microbatch: int
    chunk: int
    kind: str
    start_s: float
    end_s: float


def interleavable(pp: int, microbatches: int, vpp: int) -> bool:
    """Whether the interleaved schedule applies (Megatron needs m to be a multiple of pp)."""
    return vpp > 1 and pp > 1 and microbatches % pp == 0


def _order(stage: int, pp: int, m: int, v: int) -> list[tuple[str, int, int]]:
    def forward(k: int) -> tuple[str, int, int]:
        return "F", (k // (pp * v)) * pp + k % pp, (k // pp) % v

    def backward(k: int) -> tuple[str, int, int]:
        return "B", (k // (pp * v)) * pp + k % pp, v - 1 - (k // pp) % v

    total = m * v
    warmup = min(pp - stage - 1 if v == 1 else 2 * (pp - stage - 1) + (v - 1) * pp, total)
    ops = [forward(k) for k in range(warmup)]
    for k in range(total - warmup):
        ops += [forward(warmup + k), backward(k)]
    return ops + [backward(k) for k in range(total - warmup, total)]


def _dependency(kind: str, s: int, j: int, c: int, pp: int, v: int) -> tuple[str, int, int, int] | None:
    if kind == "F":
        if s > 0:
            return "F", s - 1, j, c
        return ("F", pp - 1, j, c - 1) if c > 0 else None
    if s < pp - 1:
        return "B", s + 1, j, c
    return ("B", 0, j, c + 1) if c < v - 1 else ("F", s, j, c)


def pipeline_schedule(stage_times_s: list[float], microbatches: int, recompute: str = "none",
                      vpp: int = 1) -> list[Op]:
    """Every op of one step, in the order each stage runs them; times in seconds from the step's start.
    vpp > 1 draws the interleaved schedule when `interleavable`, else plain 1F1B."""
    pp, m = len(stage_times_s), microbatches
    v = vpp if interleavable(pp, m, vpp) else 1
    share = FORWARD_SHARE.get(recompute, FORWARD_SHARE["none"])
    orders = [_order(s, pp, m, v) for s in range(pp)]
    cursor, free = [0] * pp, [0.0] * pp
    done: dict[tuple[str, int, int, int], float] = {}
    ops: list[Op] = []
    while any(cursor[s] < len(orders[s]) for s in range(pp)):
        progressed = False
        for s in range(pp):
            if cursor[s] >= len(orders[s]):
                continue
            kind, j, c = orders[s][cursor[s]]
            dep = _dependency(kind, s, j, c, pp, v)
            if dep is not None and dep not in done:
                continue
            start = max(free[s], done[dep] if dep else 0.0)
            length = stage_times_s[s] / v * (share if kind == "F" else 1 - share)
            ops.append(Op(stage=s, microbatch=j, chunk=c, kind=kind, start_s=start, end_s=start + length))
            free[s] = done[(kind, s, j, c)] = start + length
            cursor[s] += 1
            progressed = True
        if not progressed:
            raise RuntimeError("pipeline schedule deadlocked")  # impossible for these orders; guards the loop
    return ops
