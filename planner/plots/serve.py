"""Serve plan: goodput per GPU against TPOT and TTFT (Pareto front, chosen point, baselines, SLO), and the
simulated TTFT/TPOT percentiles against the SLO.

Points are every configuration the plan carries with goodput and latency: the chosen one (`predicted`), the
baselines, alternatives, and the `pareto` (TPOT) and `pareto_ttft` fronts where the plan has them (their points
carry their predicted TTFT/TPOT). The front is the set no other point
beats on both goodput (higher) and latency (lower).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from planner.plots.figure import COLORS, empty, new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

SIZE_IN = (12.0, 8.0)
GOODPUT = "goodput_tokens_per_s_per_gpu"
QUANTILES = ("p50", "p90", "p99")


def _points(doc: dict) -> list[dict]:
    """[{name, goodput, tpot_s, ttft_s, chosen}] of everything with a goodput figure."""
    out = []

    def add(name: str, item: dict, chosen: bool = False) -> None:
        if isinstance(item, dict) and isinstance(item.get(GOODPUT), (int, float)):
            out.append({"name": name, "goodput": item[GOODPUT], "tpot_s": item.get("tpot_s"),
                        "ttft_s": item.get("ttft_s"), "chosen": chosen})

    add(f"plan ({(doc.get('decision') or {}).get('mode', '')})", doc.get("predicted") or {}, chosen=True)
    for name, item in sorted((doc.get("baselines") or {}).items()):
        add(name, item)
    for i, item in enumerate(doc.get("alternatives") or []):
        add(f"alt {i + 1} ({item.get('mode', '')})" if isinstance(item, dict) else f"alt {i + 1}", item)
    pareto = doc.get("pareto") or (doc.get("predicted") or {}).get("pareto") or []
    for i, item in enumerate(pareto if isinstance(pareto, list) else []):
        add(f"pareto {i + 1}", item)
    pareto_ttft = (doc.get("predicted") or {}).get("pareto_ttft") or []
    for i, item in enumerate(pareto_ttft if isinstance(pareto_ttft, list) else []):
        add(f"pareto TTFT {i + 1}", item)
    return out


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(latency, goodput) points no other point beats on both, by increasing latency."""
    front: list[tuple[float, float]] = []
    for latency, goodput in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or goodput > front[-1][1]:
            front.append((latency, goodput))
    return front


def _front_panel(ax: Axes, points: list[dict], key: str, slo_s: float | None, label: str) -> None:
    placed = [p for p in points if isinstance(p.get(key), (int, float))]
    if not placed:
        empty(ax, f"Goodput vs {label}", f"no configuration in the plan reports {key}")
        return
    front = pareto_front([(p[key] * 1e3, p["goodput"]) for p in placed])
    ax.step([x for x, _ in front], [y for _, y in front], where="post", color=COLORS["muted"], label="Pareto front")
    for p in placed:
        chosen = p["chosen"]
        ax.scatter(p[key] * 1e3, p["goodput"], marker="*" if chosen else "o", s=180 if chosen else 40,
                   color=COLORS["plan"] if chosen else COLORS["baseline"], zorder=3)
        ax.annotate(p["name"], (p[key] * 1e3, p["goodput"]), textcoords="offset points", xytext=(6, 4), fontsize=7)
    if slo_s:
        ax.axvline(slo_s * 1e3, color=COLORS["slo"], linestyle="--", linewidth=1, label=f"SLO {slo_s * 1e3:g} ms")
    ax.set_xlabel(f"{label} (ms)")
    ax.set_ylabel("goodput (tokens/s per GPU)")
    ax.set_title(f"Goodput vs {label} (star: chosen)")
    ax.margins(x=0.2, y=0.1)
    ax.legend(fontsize=7, loc="upper left")


def _simulated_panel(ax: Axes, doc: dict, key: str, slo_s: float | None, label: str) -> None:
    sim = (doc.get("simulated") or {}).get(key) or {}
    values = [(q, sim[q]) for q in QUANTILES if isinstance(sim.get(q), (int, float))]
    if not values:
        empty(ax, f"Simulated {label}", "the plan has no simulated percentiles")
        return
    ax.barh([q for q, _ in values], [v * 1e3 for _, v in values],
            color=[COLORS["ok"] if not slo_s or v <= slo_s else COLORS["baseline"] for _, v in values])
    for i, (_, v) in enumerate(values):
        ax.text(v * 1e3, i, f" {v * 1e3:.3g} ms", va="center", fontsize=7)
    if slo_s:
        ax.axvline(slo_s * 1e3, color=COLORS["slo"], linestyle="--", linewidth=1, label=f"SLO {slo_s * 1e3:g} ms")
        ax.legend(fontsize=7, loc="lower right")
    top = max([v for _, v in values] + [slo_s or 0.0]) * 1e3
    ax.set_xlim(0, top * 1.25)
    ax.set_xlabel(f"{label} (ms)")
    attainment = (doc.get("simulated") or {}).get("attainment")
    extra = f", SLO attainment {attainment:.1%}" if isinstance(attainment, (int, float)) else ""
    ax.set_title(f"Simulated {label} percentiles{extra}")


def draw(doc: dict) -> Figure:
    """Four panels: goodput vs TPOT and vs TTFT with the Pareto front, simulated TPOT and TTFT vs SLO."""
    fig, axes = new_figure(*SIZE_IN, [["tpot", "ttft"], ["sim_tpot", "sim_ttft"]])
    workload = (doc.get("inputs") or {}).get("workload") or {}
    points = _points(doc)
    _front_panel(axes["tpot"], points, "tpot_s", workload.get("tpot_s"), "TPOT")
    _front_panel(axes["ttft"], points, "ttft_s", workload.get("ttft_s"), "TTFT")
    _simulated_panel(axes["sim_tpot"], doc, "tpot_s", workload.get("tpot_s"), "TPOT")
    _simulated_panel(axes["sim_ttft"], doc, "ttft_s", workload.get("ttft_s"), "TTFT")
    model = ((doc.get("inputs") or {}).get("model") or {}).get("name", "")
    fig.suptitle(f"serve plan: {model}, {workload.get('input_len', '?')} in / {workload.get('output_len', '?')} out "
                 f"tokens, SLO at p{workload.get('percentile', '?'):g}" if workload else "serve plan")
    return fig
