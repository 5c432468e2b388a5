"""Figures: a fixed size per picture, PNG or SVG chosen by the file suffix, reproducible bytes.

matplotlib is an optional dependency (`pip install 'parplan[plots]'`); without it every plot says what to
install (exit 5) instead of failing on import.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from costmodels.errors import SolverUnavailableError, SpecError
from planner.commands.output import atomic_path

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100
FORMATS = (".png", ".svg")
COLORS = {"forward": "#4C72B0", "backward": "#DD8452", "idle": "#EEEEEE", "plan": "#4C72B0", "baseline": "#C44E52",
          "slo": "#C44E52", "ok": "#55A868", "muted": "#8C8C8C"}


def pyplot() -> ModuleType:
    """matplotlib.pyplot on the non-interactive Agg backend, with reproducible SVG ids."""
    try:
        import matplotlib
    except ImportError:
        raise SolverUnavailableError("plots need matplotlib: pip install 'parplan[plots]'") from None
    matplotlib.use("Agg", force=True)
    matplotlib.rcParams["svg.hashsalt"] = "parplan"
    matplotlib.rcParams["font.size"] = 9
    import matplotlib.pyplot as plt

    return plt


def check_suffix(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise SpecError(f"unknown image format {suffix or '(none)'!r}; valid: {', '.join(FORMATS)}", field="output")
    return suffix


def new_figure(width_in: float, height_in: float, mosaic: list[list[str]], **kwargs: Any) -> tuple[Figure, dict]:
    """(figure, {name: axes}) of exactly width x height inches at DPI, panels laid out as `mosaic`."""
    fig = pyplot().figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    return fig, fig.subplot_mosaic(mosaic, **kwargs)


def save(fig: Figure, path: str | Path, dpi: int = DPI) -> Path:
    """Write `fig` as PNG or SVG (by suffix) without timestamps, then close it."""
    path = Path(path)
    suffix = check_suffix(path)
    metadata = {"Date": None} if suffix == ".svg" else {"Software": None}
    try:
        with atomic_path(str(path)) as tmp:
            fig.savefig(tmp, dpi=dpi, metadata=metadata, format=suffix.lstrip("."))
    finally:
        pyplot().close(fig)
    return path


def note(ax: Axes, text: str) -> None:
    """A second, smaller line under an axes' x label: what the picture leaves out, or assumes."""
    ax.set_xlabel(f"{ax.get_xlabel()}\n{text}".strip(), linespacing=1.6)


def empty(ax: Axes, title: str, why: str) -> None:
    """An axes that says why it has nothing to show (a section the plan does not carry)."""
    ax.set_title(title)
    ax.text(0.5, 0.5, why, ha="center", va="center", wrap=True, color=COLORS["muted"], transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


GiB = 2**30
