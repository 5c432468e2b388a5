"""Experts plan: per-GPU load per layer (plan vs the greedy replicate-and-pack baseline) and node traffic.

A GPU's load in a layer is sum_e load[l, e] * share[l, e, g] (tokens it serves), drawn relative to the
layer's mean so that 1.0 is perfect balance. Node traffic counts the layer-to-layer transition tokens
trans[l, e, e'] that go from the node serving e in layer l to the node serving e' in layer l + 1,
summed over layer boundaries; the off-diagonal cells are cross-node traffic.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from planner.plots.figure import empty, new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.image import AxesImage
    from matplotlib.ticker import MaxNLocator

    from costmodels.routing import RoutingStats

SIZE_IN = (12.0, 8.0)


def _stats(doc: dict) -> RoutingStats | None:
    """RoutingStats of the plan's inputs (inline, or the file they name), or None when unavailable."""
    from costmodels.routing import RoutingStats, load_stats

    stats = (doc.get("inputs") or {}).get("stats") or {}
    if "inline" in stats:
        inline = stats["inline"]
        return RoutingStats(expert_load=np.asarray(inline["expert_load"], dtype=float),
                            transitions=None if inline.get("transitions") is None
                            else np.asarray(inline["transitions"], dtype=float))
    if stats.get("path") and Path(stats["path"]).is_file():
        return load_stats(stats["path"])
    return None


def plan_shares(doc: dict, layers: int, experts: int, gpus: int) -> np.ndarray:
    """[L, E, G] token share of each expert on each GPU, from the decision."""
    share = np.zeros((layers, experts, gpus))
    for l, layer in enumerate(doc["decision"]["layers"]):
        for e, g, s in layer["token_share"]:
            share[l, int(e), int(g)] = s
    return share


def greedy_shares(doc: dict, stats: RoutingStats) -> np.ndarray:
    """[L, E, G] shares of the greedy replicate-and-pack baseline on the same request."""
    from planner.experts.baselines import greedy_replicate
    from planner.experts.request import ExpertRequest

    inputs = doc["inputs"]
    request = ExpertRequest(stats=stats, num_gpus=inputs["num_gpus"], gpus_per_node=inputs["gpus_per_node"],
                            slots_per_gpu=inputs["slots_per_gpu"], node_limit=inputs.get("node_limit"))
    return greedy_replicate(request).share


def gpu_load(stats: RoutingStats, share: np.ndarray) -> np.ndarray:
    """[L, G] tokens each GPU serves per layer."""
    return np.einsum("le,leg->lg", stats.expert_load, share)


def node_traffic(stats: RoutingStats, share: np.ndarray, gpus_per_node: int) -> np.ndarray | None:
    """[N, N] transition tokens from node a (layer l) to node b (layer l + 1), summed over boundaries."""
    if stats.transitions is None:
        return None
    gpus = share.shape[2]
    per_node = min(gpus_per_node, gpus)
    onehot = np.zeros((gpus, max(1, gpus // per_node)))
    onehot[np.arange(gpus), np.arange(gpus) // per_node] = 1.0
    node_share = share @ onehot  # [L, E, N]
    return sum(node_share[l].T @ stats.transitions[l] @ node_share[l + 1] for l in range(stats.transitions.shape[0]))


def _heatmap(ax: Axes, load: np.ndarray, title: str, vmax: float) -> AxesImage:
    ratio = load / load.mean(axis=1, keepdims=True)
    image = ax.imshow(ratio, aspect="auto", cmap="RdBu_r", vmin=2.0 - vmax, vmax=vmax, interpolation="nearest")
    ax.set_xlabel("GPU")
    ax.set_ylabel("MoE layer")
    for axis, count in ((ax.xaxis, ratio.shape[1]), (ax.yaxis, ratio.shape[0])):
        axis.set_major_locator(_integer_ticks(count))
    ax.set_title(f"{title}: busiest GPU {ratio.max():.2f}x the mean")
    return image


def _integer_ticks(count: int) -> MaxNLocator:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(nbins=min(count, 16), integer=True)


def _traffic(ax: Axes, matrix: np.ndarray | None, title: str, vmax: float) -> None:
    if matrix is None:
        empty(ax, title, "the statistics have no layer-to-layer transitions")
        return
    ax.imshow(matrix, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    nodes = matrix.shape[0]
    if nodes <= 16:
        for a in range(nodes):
            for b in range(nodes):
                ax.text(b, a, f"{matrix[a, b]:.3g}", ha="center", va="center", fontsize=7,
                        color="white" if matrix[a, b] > vmax / 2 else "black")
    cross = matrix.sum() - np.trace(matrix)
    ax.set_title(f"{title}: {cross:.4g} cross-node tokens")
    ax.set_xlabel("to node (layer l + 1)")
    ax.set_ylabel("from node (layer l)")
    ax.set_xticks(range(nodes))
    ax.set_yticks(range(nodes))


def draw(doc: dict) -> Figure:
    """Four panels: load heatmaps (plan, greedy) and node traffic matrices (plan, greedy)."""
    fig, axes = new_figure(*SIZE_IN, [["load_plan", "load_greedy"], ["traffic_plan", "traffic_greedy"]])
    stats = _stats(doc)
    if stats is None:
        for ax in axes.values():
            empty(ax, "experts", "the routing statistics are neither inline in the plan nor at their path")
        return fig
    inputs = doc["inputs"]
    plan = plan_shares(doc, stats.layers, stats.experts, inputs["num_gpus"])
    greedy = greedy_shares(doc, stats)
    loads = (gpu_load(stats, plan), gpu_load(stats, greedy))
    vmax = max(1.05, *(float((x / x.mean(axis=1, keepdims=True)).max()) for x in loads))
    image = _heatmap(axes["load_plan"], loads[0], "plan", vmax)
    _heatmap(axes["load_greedy"], loads[1], "greedy replicate", vmax)
    fig.colorbar(image, ax=[axes["load_plan"], axes["load_greedy"]], label="GPU load / layer mean")
    traffic = [node_traffic(stats, share, inputs["gpus_per_node"]) for share in (plan, greedy)]
    top = max((float(t.max()) for t in traffic if t is not None), default=1.0)
    _traffic(axes["traffic_plan"], traffic[0], "plan", top)
    _traffic(axes["traffic_greedy"], traffic[1], "greedy replicate", top)
    fig.suptitle(f"experts plan: {stats.layers} layers x {stats.experts} experts on {inputs['num_gpus']} GPUs, "
                 f"{inputs['slots_per_gpu']} slots per GPU")
    return fig
