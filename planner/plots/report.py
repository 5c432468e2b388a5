"""The sweep report: one self-contained HTML page (inline CSS, JS and base64 PNGs, nothing fetched).

It holds the headline charts (planner/plots/sweep_charts.py), the picture of the best scenario's plan, and a
table of every row that sorts by any column when its header is clicked (numbers numerically).
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

from planner.commands.output import atomic_path
from planner.plots.figure import DPI, pyplot
from planner.plots.sweep_charts import METRICS, charts, derived

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from planner.sweep import SweepResult

MAX_CELL = 80
"""characters shown per table cell (errors and lists are cut, the full text is in the CSV)"""
HIDDEN = ("digest", "plan_file")

SORT_JS = """
document.querySelectorAll("table.sortable th").forEach(function (th, col) {
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0];
    var asc = th.getAttribute("data-order") !== "asc";
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("data-order"); });
    th.setAttribute("data-order", asc ? "asc" : "desc");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].getAttribute("data-v"), y = b.cells[col].getAttribute("data-v");
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""
CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
.charts img { max-width: 48%; margin: 0.5%; border: 1px solid #ddd; } img.plan { max-width: 100%; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; cursor: pointer; position: sticky; top: 0; }
th[data-order=asc]::after { content: " \\25B2"; } th[data-order=desc]::after { content: " \\25BC"; }
tr.error td { background: #fde8e8; } tr.infeasible td { background: #fff6dd; }
"""


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    finally:
        pyplot().close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _cell(value: object) -> tuple[str, str]:
    """(sort key, shown text) of one table cell."""
    if value is None:
        return "", ""
    if isinstance(value, float):
        return repr(value), f"{value:.4g}"
    text = str(value)
    return text, text if len(text) <= MAX_CELL else text[:MAX_CELL - 1] + "\u2026"


def _table(rows: list[dict], columns: list[str]) -> str:
    shown = [c for c in columns if c not in HIDDEN]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in shown)
    body = []
    for row in rows:
        cells = []
        for c in shown:
            key, text = _cell(row.get(c))
            cells.append(f'<td data-v="{html.escape(key, quote=True)}">{html.escape(text)}</td>')
        body.append(f'<tr class="{html.escape(str(row.get("status", "")))}">{"".join(cells)}</tr>')
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _best(planner: str, rows: list[dict]) -> dict | None:
    """The successful row with the best first headline metric (lowest for ratios, costs and times)."""
    metrics = METRICS.get(planner)
    if not metrics:
        return None
    metric = metrics[0][0]
    lower = any(w in metric for w in ("ratio", "cost", "time"))
    scored = [r for r in rows if r.get("status") == "ok" and isinstance({**r, **derived(r)}.get(metric), (int, float))]
    if not scored:
        return None
    return sorted(scored, key=lambda r: {**r, **derived(r)}[metric] * (1 if lower else -1))[0]


def _best_figure(result: SweepResult, planner: str) -> str:
    from planner.plots import KINDS, figure_for

    best = _best(planner, result.rows)
    if best is None or not best.get("plan_file"):
        return ""
    doc = json.loads((Path(result.plans_dir) / best["plan_file"]).read_text(encoding="utf-8"))
    target = doc.get("kind") if doc.get("kind") != "estimate" else (doc.get("inputs") or {}).get("target")
    if target not in KINDS:
        return ""
    settings = ", ".join(f"{k}={best[k]}" for k in result.grid_keys)
    return (f"<h2>Best scenario</h2><p>{html.escape(settings)} (plan {html.escape(best['plan_file'])})</p>"
            f'<img class="plan" alt="best plan" src="data:image/png;base64,{_png(figure_for(doc))}">')


def write_report(result: SweepResult, path: str | Path) -> Path:
    """Write the HTML report of a finished sweep (`planner.sweep.SweepResult`)."""
    pyplot()  # fail early, with the install hint, when matplotlib is missing
    planner = result.planner
    images = "".join(f'<img alt="{html.escape(t)}" title="{html.escape(t)}" src="data:image/png;base64,{_png(f)}">'
                     for t, f in charts(planner, result.rows, result.axes))
    counts: dict[str, int] = {}
    for row in result.rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>parplan sweep: {planner}</title>'
            f"<style>{CSS}</style></head><body>"
            f"<h1>parplan sweep: {html.escape(planner)}</h1><p>{len(result.rows)} scenarios: {summary}. "
            "Click a column header to sort.</p>"
            f'<div class="charts">{images}</div>{_best_figure(result, planner)}'
            f"<h2>Scenarios</h2>{_table(result.rows, result.columns)}<script>{SORT_JS}</script></body></html>\n")
    path = Path(path)
    with atomic_path(str(path)) as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    return path
