"""The robust objective of `plan train --objective robust`: the fastest 90th-percentile (pessimistic) step time.

The pessimistic step time of a configuration is its predicted step time times its regime's factor
g = exp(-m + k) (the upper end of the 80 % interval; distribution.py). The training search ranks by the
expected step time with exact pruning; the robust choice re-ranks the POOL best expected configurations by
t·g. It is proven optimal over the whole space when the POOL-th expected time times the smallest factor any
configuration of the request can have (g_min over its ZeRO stages and data-parallel group sizes) is not below
the robust winner's value: no configuration left out can then beat it.
"""

from costmodels.hardware import ClusterSpec
from costmodels.model import ModelSpec
from costmodels.parallel import ParallelConfig, TrainingWorkload
from planner.confidence.attach import train_support
from planner.confidence.distribution import pessimistic_time

POOL = 64
"""expected-best configurations the robust objective re-ranks"""


def pessimistic(
    model: ModelSpec, cluster: ClusterSpec, workload: TrainingWorkload, config: ParallelConfig, step_time_s: float
) -> float:
    """The 90th-percentile step time of one configuration."""
    return pessimistic_time(step_time_s, train_support(model, cluster, workload, config)[0].distribution)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def smallest_factor(
    model: ModelSpec, cluster: ClusterSpec, workload: TrainingWorkload, zero_stages: tuple[int, ...]
) -> float:
    """g_min: the smallest pessimistic factor of any configuration (ZeRO stage x data-parallel group size)."""
    from costmodels.parallel import ParallelConfig

    factors = []
    for pool in cluster.pools:
        for zero in zero_stages:
            for dp in _divisors(cluster.num_devices):
                config = ParallelConfig(dp=dp, zero=zero, stage_pools=(pool.name,))
                factors.append(pessimistic(model, cluster, workload, config, 1.0))
    return min(factors)


def robust_rank(
    model: ModelSpec, cluster: ClusterSpec, workload: TrainingWorkload, ranked: list, zero_stages: tuple[int, ...]
) -> tuple[list, dict]:
    """Candidates (with .step_time_s, .order, .config) re-ranked by pessimistic step time, and the solver note."""
    scored = sorted(
        ((pessimistic(model, cluster, workload, c.config, c.step_time_s), c.step_time_s, c.order, c) for c in ranked),
        key=lambda e: e[:3],
    )
    if not scored:
        return [], {}
    best = scored[0][0]
    last_expected = max(c.step_time_s for c in ranked)
    floor = smallest_factor(model, cluster, workload, zero_stages)
    proven = len(ranked) < POOL or last_expected * floor >= best * (1 - 1e-12)
    note = {
        "objective": "robust",
        "pool": len(ranked),
        "pessimistic_step_time_s": best,
        "smallest_factor": floor,
        "proven": proven,
        "rule": f"re-ranked the {len(ranked)} best expected strategies by their 90th-percentile step time; "
        + (
            "no strategy left out can beat the winner"
            if proven
            else "NOT proven: a strategy outside the pool might be more robust"
        ),
    }
    return [e[3] for e in scored], note


def robust_why_lost(plan_p90_s: float, alt_p90_s: float, plan_s: float, alt_s: float) -> str:
    """'+3.0% 90th-percentile step time (-1.2% expected)'."""
    delta = alt_p90_s / plan_p90_s - 1
    expected = alt_s / plan_s - 1
    if abs(delta) < 1e-9:
        return "same 90th-percentile step time; ranked after the plan by expected step time and the tie-break"
    return f"+{delta * 100:.1f}% 90th-percentile step time ({expected * 100:+.1f}% expected)"


def robust_alternative(
    model: ModelSpec,
    cluster: ClusterSpec,
    workload: TrainingWorkload,
    plan_config: ParallelConfig,
    plan_s: float,
    alt_config: ParallelConfig,
    alt_s: float,
) -> dict:
    """What a robust plan's alternative carries: its 90th-percentile step time and why it lost on it."""
    plan_p90 = pessimistic(model, cluster, workload, plan_config, plan_s)
    alt_p90 = pessimistic(model, cluster, workload, alt_config, alt_s)
    return {"pessimistic_step_time_s": alt_p90, "why_lost": robust_why_lost(plan_p90, alt_p90, plan_s, alt_s)}


def no_better(plan_p90_s: float, alt_p90_s: float) -> bool:
    """What `check` verifies for a robust plan: no alternative has a smaller pessimistic step time."""
    return alt_p90_s >= plan_p90_s * (1 - 1e-9)
