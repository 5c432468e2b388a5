"""The confidence fields every train/serve estimate and plan carries in `predicted`, and their re-derivation.

    predicted.interval      {"level": 0.8, "<metric>": {"low": .., "high": ..}, ...} for the headline metrics
    predicted.regime        the regime (regimes.Regime fields and `key`), the key actually matched, and the
                            rows supporting it: count, median error, 10th/90th percentile of predicted/measured
    predicted.extrapolated  [reasons]; empty when calibration rows support the estimate

Training uses the step-time residuals; serving uses the prefill and decode residuals together (one
latency distribution per regime). On several GPU types (heterogeneous clusters, several serving pools)
the least supported device sets the regime, and the mix itself is a reason.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from costmodels.hardware import ClusterSpec
from costmodels.model import ModelSpec
from costmodels.parallel import ParallelConfig, TrainingWorkload
from planner.confidence.distribution import (
    LEVEL,
    ErrorDistribution,
    probability_faster,
    rate_interval,
    time_interval,
    within_noise,
)
from planner.confidence.regimes import family_of, serve_regime, train_regime
from planner.confidence.residuals import ResidualTable, shipped_table
from planner.confidence.support import Support, assess

TRAIN_METRICS = ("step_time_s",)
SERVE_METRICS = ("prefill_s", "decode_step_s")
FIELDS = ("interval", "regime", "extrapolated")
RELATIVE_TOLERANCE = 1e-6

if TYPE_CHECKING:
    from planner.serve.request import ServeOptions, ServingWorkload


def _least_supported(supports: list[Support]) -> tuple[Support, list[str]]:
    """The support with the widest interval, and the union of reasons (plus the device mix, if any)."""
    worst = max(supports, key=lambda s: (s.distribution.half_width, s.regime.key))
    reasons = sorted({r for s in supports for r in s.reasons})
    families = sorted({s.regime.family for s in supports})
    if len(families) > 1:
        reasons.append(f"several GPU types ({', '.join(families)}): no calibration row mixes them")
    return worst, reasons


def _blocks(support: Support, reasons: list[str], interval: dict) -> dict:
    """The three fields; a metric whose prediction is not a finite number gets no interval."""
    finite = {k: v for k, v in interval.items() if all(math.isfinite(x) for x in v.values())}
    return {"interval": {"level": LEVEL, **finite}, "regime": support.to_json(), "extrapolated": reasons}


def _pair(bounds: tuple[float, float]) -> dict:
    return {"low": bounds[0], "high": bounds[1]}


def train_support(
    model: ModelSpec,
    cluster: ClusterSpec,
    workload: TrainingWorkload,
    config: ParallelConfig,
    table: ResidualTable | None = None,
) -> tuple[Support, list[str]]:
    """Support of one training configuration (the least supported device its stages run on)."""
    table = table or shipped_table()
    rows = table.of("train", TRAIN_METRICS)
    names = sorted(set(config.stage_pools)) if config.stage_pools else [cluster.primary.name]
    devices = sorted({cluster.pool(n).device.name for n in names})
    supports = []
    for device in devices:
        regime = train_regime(
            moe=model.moe is not None,
            dtype=workload.dtype,
            framework=workload.framework,
            zero=config.zero,
            dp_group=config.dp * config.cp,
            seq_len=workload.seq_len,
            family=family_of(device, table.families),
        )
        supports.append(
            assess(
                regime,
                rows,
                rows,
                size=config.dp * config.cp,
                length=workload.seq_len,
                skew=workload.moe_skew,
            )
        )
    return _least_supported(supports)


def train_confidence(
    model: ModelSpec,
    cluster: ClusterSpec,
    workload: TrainingWorkload,
    config: ParallelConfig,
    *,
    step_time_s: float,
    tokens_per_s_per_gpu: float,
    table: ResidualTable | None = None,
) -> dict:
    """interval / regime / extrapolated for a training estimate with this predicted step time."""
    support, reasons = train_support(model, cluster, workload, config, table)
    dist = support.distribution
    return _blocks(
        support,
        reasons,
        {
            "step_time_s": _pair(time_interval(step_time_s, dist)),
            "tokens_per_s_per_gpu": _pair(rate_interval(tokens_per_s_per_gpu, dist)),
        },
    )


def serve_support(
    model: ModelSpec,
    shapes: list[tuple[str, int]],
    *,
    prompt_len: int,
    engine: str,
    dtype: str,
    table: ResidualTable | None = None,
) -> tuple[Support, list[str]]:
    """Support of serving instances given as (device profile name, tp) pairs."""
    table = table or shipped_table()
    rows = table.of("serve", SERVE_METRICS)
    supports = []
    for device, tp in sorted(set(shapes)):
        regime = serve_regime(
            moe=model.moe is not None,
            dtype=dtype,
            engine=engine,
            tp=tp,
            prompt_len=prompt_len,
            family=family_of(device, table.families),
        )
        supports.append(assess(regime, rows, rows, size=tp, length=prompt_len))
    return _least_supported(supports)


def serve_estimate_confidence(
    model: ModelSpec,
    device: str,
    *,
    tp: int,
    isl: int,
    engine: str,
    dtype: str,
    predicted: dict,
    table: ResidualTable | None = None,
) -> dict:
    """interval / regime / extrapolated for `estimate serve` (prefill time, decode step, decode tokens/s)."""
    support, reasons = serve_support(model, [(device, tp)], prompt_len=isl, engine=engine, dtype=dtype, table=table)
    dist = support.distribution
    return _blocks(
        support,
        reasons,
        {
            "prefill_s": _pair(time_interval(predicted["prefill_s"], dist)),
            "decode_step_s": _pair(time_interval(predicted["decode_step_s"], dist)),
            "decode_tokens_per_s": _pair(rate_interval(predicted["decode_tokens_per_s"], dist)),
        },
    )


def serve_plan_confidence(
    model: ModelSpec,
    shapes: list[tuple[str, int]],
    *,
    prompt_len: int,
    engine: str,
    dtype: str,
    predicted: dict,
    table: ResidualTable | None = None,
) -> dict:
    """interval / regime / extrapolated for a serve plan (goodput per GPU, TTFT, TPOT)."""
    support, reasons = serve_support(model, shapes, prompt_len=prompt_len, engine=engine, dtype=dtype, table=table)
    dist = support.distribution
    return _blocks(
        support,
        reasons,
        {
            "goodput_tokens_per_s_per_gpu": _pair(rate_interval(predicted["goodput_tokens_per_s_per_gpu"], dist)),
            "ttft_s": _pair(time_interval(predicted["ttft_s"], dist)),
            "tpot_s": _pair(time_interval(predicted["tpot_s"], dist)),
        },
    )


def serve_plan_shapes(cluster, decision: dict) -> list[tuple[str, int]]:
    """(device profile, tp) of every instance group of a serve decision."""
    return [(cluster.pool(g["pool"]).device.name, g["tp"]) for g in decision["groups"]]


def longest_prompt(workload) -> int:
    """The longest prompt of a serving workload (its fixed length, or the largest of its length sample)."""
    return int(max(workload.length_sample()[0]))


def serve_plan_fields(
    model: ModelSpec,
    cluster: ClusterSpec,
    workload: ServingWorkload,
    options: ServeOptions,
    decision: dict,
    predicted: dict,
    table: ResidualTable | None = None,
) -> dict:
    """The confidence fields of a serve plan from its specs, decision and predicted figures."""
    return serve_plan_confidence(
        model,
        serve_plan_shapes(cluster, decision),
        prompt_len=longest_prompt(workload),
        engine=options.engine,
        dtype=options.dtype,
        predicted=predicted,
        table=table,
    )


def versus_plan(plan_time_s: float, plan: Support, alt_time_s: float, alt: Support) -> dict:
    """What an alternative carries: the probability that it is actually faster than the plan."""
    p = probability_faster(alt_time_s, alt.distribution, plan_time_s, plan.distribution)
    return {"probability_faster": p, "within_noise": within_noise(p)}


def goodput_versus(predicted: dict, alt_goodput: float) -> dict:
    """What a serve plan's alternative carries: the probability that its real goodput per GPU exceeds the plan's,
    both drawn from the plan's regime distribution (predicted.regime; goodput is an inverse latency)."""
    regime, plan_goodput = predicted["regime"], predicted["goodput_tokens_per_s_per_gpu"]
    dist = ErrorDistribution(
        rows=regime["rows"],
        mean=regime["bias_log"],
        half_width=regime["half_width_log"],
        median_error=regime["median_error"],
        p10=regime["ratio_p10"],
        p90=regime["ratio_p90"],
    )
    if alt_goodput <= 0 or plan_goodput <= 0:
        return {"probability_better": 0.0, "within_noise": False}
    p = probability_faster(1 / alt_goodput, dist, 1 / plan_goodput, dist)
    return {"probability_better": p, "within_noise": within_noise(p)}


def train_versus(
    model: ModelSpec,
    cluster: ClusterSpec,
    workload: TrainingWorkload,
    plan_config: ParallelConfig,
    plan_time_s: float,
    alt_config: ParallelConfig,
    alt_time_s: float,
) -> dict:
    """versus_plan for two training configurations of the same request."""
    plan_support = train_support(model, cluster, workload, plan_config)[0]
    return versus_plan(plan_time_s, plan_support, alt_time_s, train_support(model, cluster, workload, alt_config)[0])


def differences(stored, fresh, path: str) -> list[str]:
    """Leaf-by-leaf differences of two JSON values (numbers compared with RELATIVE_TOLERANCE)."""
    if isinstance(fresh, dict) and isinstance(stored, dict):
        out = []
        for key in sorted(set(stored) | set(fresh)):
            out += differences(stored.get(key), fresh.get(key), f"{path}.{key}")
        return out
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (stored, fresh))
    if numbers and math.isclose(stored, fresh, rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-12):
        return []
    if stored == fresh:
        return []
    return [f"{path}: plan says {stored!r}, recomputed {fresh!r}"]


def confidence_problems(stored: dict, fresh: dict, path: str = "predicted") -> list[str]:
    """Differences between the stored and re-derived confidence fields of one predicted block."""
    out = []
    for name in FIELDS:
        if name not in stored:
            out.append(f"{path}.{name}: missing")
        else:
            out += differences(stored[name], fresh[name], f"{path}.{name}")
    return out
