"""Pictures of plans (matplotlib, PNG or SVG): one figure per plan kind, and the sweep's HTML report.

    from planner.plots import plot_plan
    plot_plan(plan.doc, "plan.png")
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from costmodels.errors import SpecError
from planner.plots.figure import DPI, check_suffix, save

if TYPE_CHECKING:
    from matplotlib.figure import Figure

KINDS = ("train", "experts", "serve", "scatter")


def figure_for(doc: dict) -> Figure:
    """The matplotlib figure of one plan document (by its kind)."""
    kind = doc.get("kind")
    if kind == "estimate":  # an estimate draws like the plan of its target
        kind = (doc.get("inputs") or {}).get("target")
    if kind == "train":
        from planner.plots.train import draw
    elif kind == "experts":
        from planner.plots.experts import draw
    elif kind == "serve":
        from planner.plots.serve import draw
    elif kind == "scatter":
        from planner.plots.scatter import draw
    else:
        raise SpecError(f"no picture for plans of kind {kind!r}; plotted kinds: {', '.join(KINDS)}", field="kind")
    return draw(doc)


def plot_plan(doc: dict, path: str | Path, dpi: int = DPI) -> Path:
    """Draw a plan document to `path` (.png or .svg); PNGs have `dpi` pixels per inch."""
    check_suffix(path)
    return save(figure_for(doc), path, dpi)


__all__ = ["KINDS", "figure_for", "plot_plan"]
