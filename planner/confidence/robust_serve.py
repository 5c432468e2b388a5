"""The robust serve plan (`plan serve --robust`): SLOs that hold at the 90th-percentile slow latency.

A serving estimate's measured latency is at most predicted·g with 90 % confidence, g = exp(-m + k) of its
regime (distribution.py). Planning against SLOs divided by g therefore keeps the real TTFT and TPOT inside
the user's SLOs even when the cost model is as optimistic as its calibration residuals allow. One g serves the
whole plan: the largest over the cluster's pools and every tensor-parallel degree an instance may use (the
least supported candidate sets it), and never below 1 (a model that over-predicts does not loosen an SLO).
The plan records the user's SLOs and g in `predicted.robust`; its inputs hold the tightened SLOs it was
planned and simulated against, so `validate` recomputes it unchanged.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

from costmodels.hardware import ClusterSpec
from costmodels.model import ModelSpec
from planner.confidence.attach import longest_prompt, serve_support
from planner.confidence.distribution import pessimistic_time

RELATIVE_TOLERANCE = 1e-6

if TYPE_CHECKING:
    from planner.serve.request import ServeOptions, ServingWorkload


def latency_factor(model: ModelSpec, cluster: ClusterSpec, workload: ServingWorkload, options: ServeOptions) -> float:
    """g: the largest 90th-percentile latency factor of any instance shape the planner may use (>= 1)."""
    prompt = longest_prompt(workload)
    factors = [1.0]
    for pool in cluster.pools:
        tp = 1
        while tp <= pool.devices_per_node:
            support, _ = serve_support(
                model, [(pool.device.name, tp)], prompt_len=prompt, engine=options.engine, dtype=options.dtype
            )
            factors.append(pessimistic_time(1.0, support.distribution))
            tp *= 2
    return max(factors)


def robust_workload(model: ModelSpec, cluster: ClusterSpec, workload: ServingWorkload, options: ServeOptions) -> tuple:
    """(the workload with SLOs divided by g, the `predicted.robust` note)."""
    g = latency_factor(model, cluster, workload, options)
    note = {
        "objective": "robust",
        "latency_factor": g,
        "ttft_slo_s": workload.ttft_s,
        "tpot_slo_s": workload.tpot_s,
        "rule": "planned against the SLOs divided by the 90th-percentile latency factor of the least supported "
        "instance shape",
    }
    return dataclasses.replace(workload, ttft_s=workload.ttft_s / g, tpot_s=workload.tpot_s / g), note


def robust_problems(
    model: ModelSpec, cluster: ClusterSpec, workload: ServingWorkload, options: ServeOptions, note: dict
) -> list[str]:
    """What validate checks in a robust serve plan: g re-derived, and the planned SLOs = the user's / g."""
    g = latency_factor(model, cluster, workload, options)
    problems = []
    if not math.isclose(note.get("latency_factor", 0.0), g, rel_tol=RELATIVE_TOLERANCE):
        problems.append(f"predicted.robust.latency_factor: plan says {note.get('latency_factor')!r}, recomputed {g!r}")
    for name, planned in (("ttft", workload.ttft_s), ("tpot", workload.tpot_s)):
        user = note.get(f"{name}_slo_s", 0.0)
        if not math.isclose(planned * g, user, rel_tol=RELATIVE_TOLERANCE):
            problems.append(f"inputs.workload.{name}_s: {planned!r} is not the user's {user!r} / {g:.6g}")
    return problems
