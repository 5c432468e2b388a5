"""Pipeline schedule time and in-flight micro-batches (1F1B and interleaved 1F1B).

Let t_i be the time of ONE micro-batch (forward + backward, all its layers and chunks) on stage i,
m the micro-batches per step and v the virtual chunks per device. One 1F1B step lasts

    T = sum_i t_i + (m - 1) · max_i t_i                                   (v = 1)

The slowest stage runs m micro-batches back to back (m · max t); the others add the fill and drain
time before and after it (sum t - max t). For equal stages this is (m + p - 1)·t, i.e. the bubble
ratio (p-1)/m of Narayanan et al. 2021; for unequal stages it charges the imbalance. Interleaving
with v chunks shortens fill and drain v-fold (bubble (p-1)/(v·m)):

    T = m · max_i t_i + (sum_i t_i - max_i t_i) / v

The training planner minimises exactly this expression (an epigraph variable for max t), so keep it
a function of per-stage per-micro-batch times only.
"""

from collections.abc import Iterable


def pipeline_step_time(stage_times_s: Iterable[float], microbatches: int, vpp: int = 1) -> float:
    """Seconds of one pipelined step from per-stage per-micro-batch times."""
    if microbatches < 1 or vpp < 1:
        raise ValueError("microbatches and vpp must be >= 1")
    times = list(stage_times_s)
    if not times:
        return 0.0
    slowest = max(times)
    return float(microbatches * slowest + (sum(times) - slowest) / vpp)


def pipeline_bubble_time(stage_times_s: Iterable[float], microbatches: int, vpp: int = 1) -> float:
    """The part of pipeline_step_time that is not the slowest stage working: fill, drain and imbalance."""
    times = list(stage_times_s)
    return pipeline_step_time(times, microbatches, vpp) - microbatches * max(times, default=0.0)


def in_flight_microbatches(stage: int, pp: int, microbatches: int, vpp: int = 1) -> float:
    """Micro-batches whose activations stage `stage` (0-based) holds at its peak, in units of the whole
    stage's layers.

    1F1B: stage i runs pp - i - 1 warm-up forwards before its first backward, so it holds
    min(pp - i, m). Interleaved (Megatron): rank i runs 2·(pp - i - 1) + (v - 1)·pp warm-up chunk
    forwards, each chunk 1/v of the stage's layers: (2(pp-i-1) + (v-1)pp + 1)/v, capped at m. For
    stage 0 that is pp·(1 + (pp-1)/(pp·v)), the factor of Korthikanti et al. 2022.
    """
    if vpp <= 1:
        return float(min(pp - stage, microbatches))
    chunks = 2 * (pp - stage - 1) + (vpp - 1) * pp + 1
    return min(chunks / vpp, float(microbatches))


def virtual_stage_layers(stage_layers: tuple[int, ...] | list[int], vpp: int) -> list[list[int]]:
    """Decoder layers of each virtual stage, per pipeline rank: rank s runs virtual stages v*pp + s
    (v = 0..vpp-1, Megatron's interleaved order) and spreads its layers over them larger-first, so the
    last virtual stage, which also holds the loss (and MTP), is the smallest. Every stage needs >= vpp layers."""
    if vpp < 1 or any(n < vpp for n in stage_layers):
        raise ValueError(f"every stage needs at least vpp={vpp} layers, got {list(stage_layers)}")
    out = []
    for n in stage_layers:
        base, extra = divmod(n, vpp)
        out.append([base + (1 if v < extra else 0) for v in range(vpp)])
    return out
