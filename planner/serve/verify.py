"""Accepting a served rate from several independent simulator replays (the acceptance rule).

A deployment is replayed S times (seeds seed, seed+1, ..., seed+S-1: independent arrival and length streams)
with N requests each. Each replay gives an attainment a_i (fraction of its requests meeting both SLOs);
replays, not requests, are the independent samples, because requests inside one replay share queues.
    mean  ā = Σ a_i / S,   s = max(sample standard deviation of a_i, √(ā(1 − ā)/N))
    one-sided 95 % lower bound  L = ā − t_{0.95, S−1} · s / √S     (Student t; the binomial floor on s keeps
                                                                     S identical replays from claiming certainty)
The rate is accepted when L ≥ the attainment target. The plan reports ā, [L, ā + t·s/√S] and every a_i.
A wall-clock budget (planner.serve.budget) may stop the replays early: the statistics then cover the S' < S
replays that ran (a wider interval), and none at all means no result.
"""

import math
from collections.abc import Callable

T95 = {1: 6.314, 2: 2.920, 3: 2.353, 4: 2.132, 5: 2.015, 6: 1.943, 7: 1.895, 8: 1.860, 9: 1.833, 10: 1.812}
"""one-sided 95 % Student t quantiles by degrees of freedom"""


def replicate(run: Callable[[int], dict], *, seed: int, seeds: int, requests: int,
              allows: Callable[[], bool] | None = None) -> dict | None:
    """Run `run(seed_i)` for S seeds (each only while `allows()` says so); the first replay's figures plus the
    attainment statistics above, or None when no replay ran."""
    results = []
    for i in range(seeds):
        if allows is not None and not allows():
            break
        results.append(run(seed + i))
    if not results:
        return None
    values = [r["attainment"] for r in results]
    mean = sum(values) / len(values)
    spread = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    sd = max(spread, math.sqrt(max(mean * (1 - mean), 0.0) / requests))
    half = T95[max(1, min(len(values) - 1, max(T95)))] * sd / math.sqrt(len(values))
    out = dict(results[0])
    out.update({"attainment": mean, "attainment_seeds": values, "attainment_interval": [mean - half, mean + half],
                "replays": len(values), "acceptance": "one-sided 95% t lower bound over replays >= target"})
    return out


def accepted(sim: dict, target: float) -> bool:
    """The acceptance rule: the interval's lower end clears the target."""
    return sim["attainment_interval"][0] >= target
