"""Train plan: pipeline schedule Gantt per micro-batch, memory per stage stacked by part, step-time breakdown."""

from __future__ import annotations

from typing import TYPE_CHECKING

from planner.plots.figure import COLORS, GiB, empty, new_figure, note
from planner.plots.schedule import interleavable, pipeline_schedule

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

SIZE_IN = (12.0, 8.0)
MAX_LABELLED_MICROBATCHES = 16
PART_COLORS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C", "#CCB974",
               "#64B5CD", "#1F77B4", "#FF7F0E", "#2CA02C")


def microbatches(doc: dict) -> int | None:
    """Micro-batches per step: the decision's, else global batch / (mbs x dp) from the inputs (estimates)."""
    decision, predicted = doc.get("decision", {}), doc.get("predicted", {})
    m = decision.get("microbatches") or predicted.get("microbatches")
    if m:
        return int(m)
    gbs = ((doc.get("inputs") or {}).get("workload") or {}).get("global_batch")
    mbs, dp = decision.get("mbs"), decision.get("dp")
    return gbs // (mbs * dp) if gbs and mbs and dp else None


def gantt(ax: Axes, doc: dict) -> None:
    decision, predicted = doc.get("decision", {}), doc.get("predicted", {})
    times, m = predicted.get("stage_time_s"), microbatches(doc)
    if not times or not m:
        empty(ax, "Pipeline schedule", "the plan has no per-stage times or micro-batch count")
        return
    vpp = int(decision.get("vpp") or 1)
    ops = pipeline_schedule(list(times), m, str(decision.get("recompute", "none")), vpp)
    end = max(o.end_s for o in ops)
    for s in range(len(times)):
        ax.broken_barh([(0.0, end)], (s - 0.4, 0.8), facecolors=COLORS["idle"])
    for op in ops:
        ax.broken_barh([(op.start_s, op.end_s - op.start_s)], (op.stage - 0.4, 0.8), edgecolor="white", linewidth=0.4,
                       facecolors=COLORS["forward"] if op.kind == "F" else COLORS["backward"],
                       alpha=1.0 - 0.4 * op.chunk / max(vpp - 1, 1))  # later model chunks lighter
        if m <= MAX_LABELLED_MICROBATCHES:
            ax.text((op.start_s + op.end_s) / 2, op.stage, str(op.microbatch + 1), ha="center", va="center",
                    fontsize=7, color="white")
    layers = decision.get("stage_layers") or [None] * len(times)
    ax.set_yticks(range(len(times)), [f"stage {s}" + (f"\n{n} layers" if n else "") for s, n in enumerate(layers)])
    ax.invert_yaxis()
    ax.set_xlim(0, end)
    ax.set_xlabel("time in the step (s)")
    handles = [ax.bar(0, 0, color=COLORS[k], label=label) for k, label in
               (("forward", "forward"), ("backward", "backward"), ("idle", "idle (bubble)"))]
    ax.legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, ncols=3, frameon=False)
    shape = ", ".join(f"{k}={decision[k]}" for k in ("tp", "pp", "dp", "cp", "ep", "mbs") if k in decision)
    interleaved = interleavable(len(times), m, vpp)
    name = f"interleaved 1F1B, {vpp} chunks per stage" if interleaved else "1F1B"
    ax.set_title(f"{name} schedule, {m} micro-batches", loc="left")
    note(ax, f"{shape}; forward:backward drawn from the FLOP ratio (1:2, plus the recompute mode's forward share)"
         + (f"; vpp={vpp} drawn without interleaving (micro-batches not a multiple of pp)"
            if vpp > 1 and not interleaved else ""))


def memory(ax: Axes, doc: dict) -> None:
    predicted = doc.get("predicted", {})
    totals = predicted.get("stage_memory_bytes")
    breakdown = predicted.get("breakdown", {})
    parts, peak = breakdown.get("memory_bytes") or {}, breakdown.get("peak_memory_stage")
    if not totals:
        empty(ax, "Memory per GPU by stage", "the plan has no per-stage memory")
        return
    stages = range(len(totals))
    names = sorted(k for k, v in parts.items() if v)
    for s in stages:
        if s == peak and names:
            bottom = 0.0
            for i, name in enumerate(names):
                ax.bar(s, parts[name] / GiB, bottom=bottom, color=PART_COLORS[i % len(PART_COLORS)],
                       label=name if s == peak else None)
                bottom += parts[name] / GiB
        else:
            ax.bar(s, totals[s] / GiB, color="white", edgecolor=COLORS["muted"], hatch="//")
    hbm = _hbm_gib(doc)
    if hbm:
        ax.axhline(hbm, color=COLORS["slo"], linestyle="--", linewidth=1, label=f"HBM {hbm:.0f} GiB")
    ax.set_xticks(list(stages), [f"stage {s}" for s in stages])
    ax.set_xlabel("pipeline stage")
    ax.set_ylabel("GiB per GPU")
    ax.set_title("Memory per GPU by stage")
    ax.legend(fontsize=7, loc="lower right")
    if len(totals) > 1:
        note(ax, "parts for the peak stage (the plan breaks down only that one); hatched: totals")


def _hbm_gib(doc: dict) -> float | None:
    pools = (doc.get("inputs", {}).get("cluster") or {}).get("pools") or []
    values = [p.get("device", {}).get("hbm_bytes") for p in pools if isinstance(p, dict)]
    values = [v for v in values if v]
    return min(values) / GiB if values else None


def step_breakdown(ax: Axes, doc: dict) -> None:
    predicted = doc.get("predicted", {})
    parts = (predicted.get("breakdown") or {}).get("time_s") or {}
    parts = {k: v for k, v in parts.items() if isinstance(v, (int, float)) and v > 0}
    if not parts:
        empty(ax, "Step time", "the plan has no step-time breakdown")
        return
    names = sorted(parts, key=lambda k: (-parts[k], k))
    ax.barh(names, [parts[k] for k in names], color=[PART_COLORS[i % len(PART_COLORS)] for i in range(len(names))])
    ax.invert_yaxis()
    total = predicted.get("step_time_s")
    for i, k in enumerate(names):
        ax.text(parts[k], i, f" {parts[k]:.3g} s", va="center", fontsize=7)
    ax.set_xlabel("seconds per step")
    interval = (predicted.get("interval") or {}).get("step_time_s") or {}
    band = f"; {interval['low']:.3g}-{interval['high']:.3g} s interval" if {"low", "high"} <= set(interval) else ""
    ax.set_title(f"Step time {total:.3g} s{band}" if total else "Step time")
    ax.set_xlim(0, max(parts.values()) * 1.25)


def draw(doc: dict) -> Figure:
    """The train figure (Gantt on top, memory and step-time breakdown below)."""
    fig, axes = new_figure(*SIZE_IN, [["gantt", "gantt"], ["memory", "time"]], height_ratios=(1.1, 1.0))
    gantt(axes["gantt"], doc)
    memory(axes["memory"], doc)
    step_breakdown(axes["time"], doc)
    model = ((doc.get("inputs") or {}).get("model") or {}).get("name", "")
    cluster = ((doc.get("inputs") or {}).get("cluster") or {}).get("name", "")
    what = "train estimate" if doc.get("kind") == "estimate" else "train plan"
    fig.suptitle(f"{what}: {model} on {cluster}".strip())
    return fig
