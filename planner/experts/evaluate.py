"""One evaluator for the plan and every baseline: busiest GPU per layer, load ratio, cross-node traffic.

  gpu_pairs[l, g]  = sum_e load[l, e] * share[l, e, g]           (token-expert pairs on GPU g)
  gpu_time[l, g]   = c0 + kappa_g * gpu_pairs[l, g]
  max_load_ratio   = sum_l max_g gpu_pairs / sum_l mean_g gpu_pairs
  node_share[l,e,n]= sum_{g on node n} share[l, e, g]
  cross_node_tokens= sum_l sum_{e,e'} transitions[l, e, e'] * (1 - sum_n node_share[l,e,n] node_share[l+1,e',n])
                     (expected transition tokens whose two experts are served on different nodes)
  objective        = sum_l max_g gpu_time[l, g] + traffic_weight * cross_node_tokens
"""

from dataclasses import dataclass

import numpy as np

from costmodels.routing import RoutingStats


@dataclass(frozen=True, kw_only=True, slots=True)
class Layout:
    """A full placement: slots [L, G, S] (-1 empty) and shares [L, E, G]."""

    slots: np.ndarray
    """logical expert id per (layer, GPU, slot), -1 = empty"""
    share: np.ndarray
    """fraction of expert e's tokens served by GPU g, per layer"""


def node_shares(share: np.ndarray, node_of: np.ndarray, nodes: int) -> np.ndarray:
    """[..., E, N] fraction of each expert's tokens served on each node."""
    onehot = np.zeros((node_of.shape[0], nodes))
    onehot[np.arange(node_of.shape[0]), node_of] = 1.0
    return share @ onehot


def boundary_cross(trans: np.ndarray, left: np.ndarray, right: np.ndarray) -> float:
    """Cross-node transition tokens between two consecutive layers with node shares left, right [E, N]."""
    return float(trans.sum() - np.trace(left.T @ trans @ right))  # = sum trans * (1 - left @ right.T)


def evaluate(stats: RoutingStats, layout: Layout, *, c0: float, kappa: np.ndarray, node_of: np.ndarray,
             traffic_weight: float, timed: bool) -> dict:
    """Metrics of one layout (the same fields in `predicted` and every `baselines.<name>`)."""
    load = stats.expert_load
    pairs = np.einsum("le,leg->lg", load, layout.share)
    times = c0 + kappa[None, :] * pairs
    layer_max = pairs.max(axis=1)
    mean_total = float(pairs.mean(axis=1).sum())
    out = {
        "layer_max_gpu_tokens": layer_max.tolist(),
        "max_load_ratio": float(layer_max.sum() / mean_total) if mean_total > 0 else 1.0,
        "busiest_gpu_tokens_total": float(layer_max.sum()),
    }
    cross = None
    if stats.transitions is not None:
        ns = node_shares(layout.share, node_of, int(node_of.max()) + 1)
        cross = sum(boundary_cross(stats.transitions[l], ns[l], ns[l + 1]) for l in range(stats.layers - 1))
    out["cross_node_tokens"] = cross
    layer_time = times.max(axis=1)
    if timed:
        out["moe_time_s"] = float(layer_time.sum())
    out["objective"] = float(layer_time.sum()) + traffic_weight * (cross or 0.0)
    if stats.window_load is not None:
        win_pairs = np.einsum("wle,leg->wlg", stats.window_load, layout.share)
        win_max = win_pairs.max(axis=2).sum(axis=1)
        win_mean = win_pairs.mean(axis=2).sum(axis=1)
        out["window_max_load_ratio"] = [float(m / s) if s > 0 else 1.0 for m, s in zip(win_max, win_mean, strict=True)]
    return out

