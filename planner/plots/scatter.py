"""Scatter plan: one bar per sequence-parallel group (its predicted time), split into its sequences.

A group's bar is its predicted time; the segments inside it are its sequences with widths in proportion to
their token counts (the plan records group times, not per-sequence times), labelled with their lengths.
The step ends with the slowest group; the lower bound and the best static SP degree are marked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from planner.plots.figure import COLORS, empty, new_figure, note

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SIZE_IN = (12.0, 6.0)
SEGMENT_COLORS = ("#4C72B0", "#6F93C8", "#93B1DA", "#B7CEEB")
MIN_LABEL_FRACTION = 0.06
"""segments narrower than this share of the axis get no length label"""


def _ranks(ranks: list[int]) -> str:
    if ranks and ranks == list(range(ranks[0], ranks[0] + len(ranks))):
        return f"{ranks[0]}-{ranks[-1]}" if len(ranks) > 1 else str(ranks[0])
    return ",".join(str(r) for r in ranks[:6]) + ("..." if len(ranks) > 6 else "")


def draw(doc: dict) -> Figure:
    """Group bars with their sequences, the step time, the bound and the static baseline."""
    fig, axes = new_figure(*SIZE_IN, [["groups"]])
    ax = axes["groups"]
    groups = (doc.get("decision") or {}).get("groups") or []
    lengths = (((doc.get("inputs") or {}).get("request") or {}).get("lengths")) or []
    if not groups:
        empty(ax, "Sequence-parallel groups", "the plan has no groups")
        return fig
    step = max(g.get("time_s", 0.0) for g in groups)
    for row, group in enumerate(groups):
        seqs = [i for i in group.get("sequences", []) if 0 <= i < len(lengths)]
        tokens = sum(lengths[i] for i in seqs) or 1
        left = 0.0
        for k, i in enumerate(sorted(seqs, key=lambda i: (-lengths[i], i))):
            width = group.get("time_s", 0.0) * lengths[i] / tokens
            ax.barh(row, width, left=left, color=SEGMENT_COLORS[k % len(SEGMENT_COLORS)], edgecolor="white")
            if width >= MIN_LABEL_FRACTION * step:
                ax.text(left + width / 2, row, str(lengths[i]), ha="center", va="center", fontsize=7, color="white")
            left += width
    ax.set_yticks(range(len(groups)), [f"SP={g.get('degree')} ranks {_ranks(g.get('ranks') or [])}"
                                       + (" (spans nodes)" if g.get("spans_nodes") else "") for g in groups])
    ax.invert_yaxis()
    solver, baseline = doc.get("solver") or {}, ((doc.get("baselines") or {}).get("static_best") or {})
    ax.axvline(step, color=COLORS["plan"], linewidth=1, label=f"step {step * 1e3:.4g} ms")
    if isinstance(solver.get("bound"), (int, float)):
        ax.axvline(solver["bound"], color=COLORS["ok"], linestyle=":",
                   label=f"lower bound {solver['bound'] * 1e3:.4g} ms")
    if isinstance(baseline.get("step_time_s"), (int, float)):
        ax.axvline(baseline["step_time_s"], color=COLORS["baseline"], linestyle="--",
                   label=f"static SP={baseline.get('degree')}: {baseline['step_time_s'] * 1e3:.4g} ms")
    ax.set_xlabel("time (s)")
    ax.set_xlim(0, max(step, baseline.get("step_time_s") or 0.0) * 1.05)
    ax.legend(fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=3, frameon=False)
    predicted = doc.get("predicted") or {}
    ax.set_title(f"{len(groups)} groups, {len(lengths)} sequences, {predicted.get('tokens', sum(lengths))} tokens",
                 loc="left")
    note(ax, "segments: a group's sequences, widths in proportion to tokens, labelled with their lengths")
    fig.suptitle("scatter plan: sequence-parallel groups and their sequences")
    return fig
