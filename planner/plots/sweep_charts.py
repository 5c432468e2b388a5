"""The sweep report's charts: a headline metric against the axis that matters most for each planner.

train/estimate-train: MFU and tokens/s per GPU vs GPUs; serve: cost per million tokens vs the SLO swept;
experts: busiest-GPU load ratio; scatter: step time. The x axis is the first preferred axis the grid varies
(else its first numeric axis with several values); every other varied axis becomes one line per combination.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from planner.plots.figure import new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SIZE_IN = (6.0, 4.0)
PREFERRED_X = {"train": ("num_gpus",), "estimate-train": ("num_gpus",), "serve": ("tpot_ms", "ttft_ms", "rate"),
               "experts": ("num_gpus", "slots_per_gpu"), "scatter": ("num_gpus",), "estimate-serve": ("batch",)}
METRICS = {
    "train": (("predicted.mfu", "MFU"), ("predicted.tokens_per_s_per_gpu", "tokens/s per GPU")),
    "estimate-train": (("predicted.mfu", "MFU"), ("predicted.tokens_per_s_per_gpu", "tokens/s per GPU")),
    "serve": (("cost_per_mtok", "GPU-hours per million output tokens"),
              ("predicted.goodput_tokens_per_s_per_gpu", "goodput (tokens/s per GPU)")),
    "experts": (("predicted.max_load_ratio", "busiest GPU / mean load"), ("predicted.cross_node_tokens",
                                                                        "cross-node tokens")),
    "scatter": (("predicted.step_time_s", "step time (s)"),),
}


def derived(row: dict) -> dict:
    """Columns computed from a row: serving cost in GPU-hours per million output tokens (goodput counts output
    tokens per second per GPU)."""
    goodput = row.get("predicted.goodput_tokens_per_s_per_gpu")
    if not isinstance(goodput, (int, float)) or goodput <= 0:
        return {}
    return {"cost_per_mtok": 1e6 / goodput / 3600.0}


def _numeric(values: list) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def x_axis(planner: str, axes: dict) -> str | None:
    varied = [k for k, v in axes.items() if len(v) > 1 and _numeric(v)]
    for key in PREFERRED_X.get(planner, ()):
        if key in varied:
            return key
    return varied[0] if varied else None


def chart(rows: list[dict], axes: dict, x: str, metric: str, label: str) -> Figure | None:
    """A line per combination of the other varied axes: metric vs x (successful scenarios only)."""
    others = [k for k, v in axes.items() if len(v) > 1 and k != x]
    lines: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for row in rows:
        value = {**row, **derived(row)}.get(metric)
        if row.get("status") == "ok" and isinstance(value, (int, float)):
            name = ", ".join(f"{k}={row.get(k)}" for k in others) or label
            lines[name].append((row[x], value))
    if not lines:
        return None
    fig, axes_ = new_figure(*SIZE_IN, [["main"]])
    ax = axes_["main"]
    for name in sorted(lines):
        points = sorted(lines[name])
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
    ax.set_xlabel(x)
    ax.set_ylabel(label)
    ax.set_title(f"{label} vs {x}")
    if len(lines) > 1:
        ax.legend(fontsize=6, loc="best")
    return fig


def charts(planner: str, rows: list[dict], axes: dict) -> list[tuple[str, Figure]]:
    """(title, figure) for each headline metric the rows carry."""
    x = x_axis(planner, axes)
    if x is None:
        return []
    out = []
    for metric, label in METRICS.get(planner, ()):
        fig = chart(rows, axes, x, metric, label)
        if fig is not None:
            out.append((f"{label} vs {x}", fig))
    return out
