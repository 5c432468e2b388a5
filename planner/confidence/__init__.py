"""How sure a plan is: regimes, calibration residuals, prediction intervals, extrapolation flags, robust choice.

    train_confidence(model, cluster, workload, config, step_time_s=, tokens_per_s_per_gpu=) -> dict
    serve_estimate_confidence(...), serve_plan_confidence(...) -> dict
        the `interval`, `regime` and `extrapolated` fields of a predicted block
    train_support / serve_support -> (Support, reasons): the distribution behind them
    versus_plan(...) -> {"probability_faster", "within_noise"} for an alternative
    robust.py / robust_serve.py: the robust objectives of plan train and plan serve
    confidence_problems(stored, fresh) -> list[str]: what `validate` reports
    confidence_lines(predicted) -> list[str]: what `explain` prints

See distribution.py for the statistics, support.py for the backoff and extrapolation rules, and
benchmarks/confidence_bench.py for how residuals.json is generated (leave-one-out errors).
"""

from planner.confidence.attach import (
    FIELDS,
    confidence_problems,
    serve_estimate_confidence,
    serve_plan_confidence,
    serve_plan_fields,
    serve_support,
    train_confidence,
    train_support,
    train_versus,
    versus_plan,
)
from planner.confidence.distribution import LEVEL, MIN_ROWS, NOISE_PROBABILITY
from planner.confidence.explain import alternative_note, confidence_lines

__all__ = [
    "FIELDS",
    "LEVEL",
    "MIN_ROWS",
    "NOISE_PROBABILITY",
    "alternative_note",
    "confidence_lines",
    "confidence_problems",
    "serve_estimate_confidence",
    "serve_plan_confidence",
    "serve_plan_fields",
    "serve_support",
    "train_confidence",
    "train_support",
    "train_versus",
    "versus_plan",
]
