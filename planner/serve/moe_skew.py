"""MoE routing skew per expert-parallel degree, read from routing statistics (`parplan trace stats` / `trace synth`).

The serving engines place experts statically in contiguous blocks: with E experts over ep ranks, rank r holds
experts r·E/ep .. (r+1)·E/ep - 1 (vLLM: vllm/model_executor/layers/fused_moe/layer.py determine_expert_map, default
expert_placement_strategy "linear"; SGLang: python/sglang/srt/eplb/expert_location.py
ExpertLocationMetadata.init_trivial, physical expert i = logical expert i, num_local_physical_experts per rank;
TensorRT-LLM: tensorrt_llm/_torch/modules/fused_moe/fused_moe_*.py initial_global_assignments, rank r's slots
r·E/ep + j). Each MoE layer waits on its busiest rank and the layers run in sequence, so the step-time-relevant skew
at degree ep is, per layer, the busiest rank's token-expert slots over the mean rank's, averaged over the layers:

    skew(ep) = (1/L) · Σ_l  ep · max_r Σ_{e in block r} load[l, e] / Σ_e load[l, e]

capped by costmodels.serving_precision.max_routing_skew (what top_k and the block size allow). The table holds one
value per degree dividing the expert count (the degrees the planner may search); the step model looks up its own
(costmodels.serving.skew_at).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from costmodels.errors import SpecError, require
from costmodels.model import ModelSpec
from costmodels.routing import RoutingStats, load_stats
from costmodels.serving import SkewByEp
from costmodels.serving_precision import max_routing_skew

FIELD = "moe-stats"
SKEW_DIGITS = 6
"""decimals the table keeps (far below the sampling noise of a trace), so a plan records exactly the skews it used"""
TOP_K_TOLERANCE = 1e-6
"""relative slack of the top-k checks (token counts summed in float64)"""


@dataclass(frozen=True, kw_only=True, slots=True)
class StatsSkew:
    """The routing skew a statistics file gives at each expert-parallel degree, and the file's identity."""

    by_ep: SkewByEp
    """(ep, skew) for every ep dividing the model's expert count, ascending"""
    digest: str
    """sha256 of the statistics (costmodels.routing.RoutingStats.digest)"""

    def at(self, ep: int) -> float:
        return dict(self.by_ep)[ep]


def placement_skew(load: np.ndarray, ep: int) -> float:
    """Mean over layers of the busiest rank's slots over the mean rank's, experts in contiguous blocks of
    E / ep per rank; `load` is [L][E] token-expert slots (every layer routes some)."""
    layers, experts = load.shape
    require(ep >= 1 and experts % ep == 0, f"ep ({ep}) must divide the {experts} experts", field="ep")
    per_rank = load.reshape(layers, ep, experts // ep).sum(axis=2)
    return float(np.mean(ep * per_rank.max(axis=1) / per_rank.sum(axis=1)))


def _check_matches(stats: RoutingStats, model: ModelSpec, source: str) -> None:
    """SpecError naming the file when its layers, experts or top-k do not fit the model."""
    require(model.is_moe, f"routing statistics need an MoE model; {model.name} is dense (omit --moe-stats)",
            field=FIELD)
    moe, load = model.moe_dims, stats.expert_load
    require(stats.experts == moe.experts, f"has {stats.experts} experts per layer, model {model.name} has "
            f"{moe.experts}", field="expert_load", source=source)
    require(stats.layers == model.moe_layers, f"has {stats.layers} layers, model {model.name} has "
            f"{model.moe_layers} MoE layers", field="expert_load", source=source)
    totals = load.sum(axis=1)
    empty = np.flatnonzero(totals <= 0)
    require(empty.size == 0, f"layer {int(empty[0]) if empty.size else 0} routes no tokens (no skew to read)",
            field="expert_load", source=source)
    if stats.transitions is not None:  # a top-k token adds k slots to a layer and k·k pairs to its transitions
        k = float(stats.transitions[0].sum() / totals[0])
        require(abs(k - moe.top_k) <= TOP_K_TOLERANCE * moe.top_k, f"transitions / expert_load give top-{k:g} "
                f"routing, model {model.name} routes top-{moe.top_k}", field="transitions", source=source)
    # each token picks top_k distinct experts: no expert receives more than the layer's tokens (total / top_k)
    over = load.max(axis=1) > totals / moe.top_k * (1 + TOP_K_TOLERANCE)
    if over.any():
        l = int(np.flatnonzero(over)[0])
        raise SpecError(f"layer {l}'s busiest expert receives {load[l].max():g} of {totals[l]:g} slots, more than "
                        f"one per token at the model's top-{moe.top_k} ({totals[l] / moe.top_k:g} tokens): the "
                        f"statistics come from a model with a smaller top-k", field="expert_load", source=source)


def stats_skew(stats: RoutingStats | str | Path, model: ModelSpec) -> StatsSkew:
    """The skew table of routing statistics (a RoutingStats or a JSON/NPZ statistics file) for `model`: SpecError
    (exit 2) naming the file for a missing or malformed file, a dense model, or statistics whose layers, experts or
    top-k do not match the model."""
    if isinstance(stats, str | Path):
        stats = load_stats(stats)
    require(isinstance(stats, RoutingStats), f"must be RoutingStats or a statistics file path, got "
            f"{type(stats).__name__}", field=FIELD)
    _check_matches(stats, model, stats.source or FIELD)
    experts = model.moe_dims.experts
    table = tuple((ep, round(min(placement_skew(stats.expert_load, ep), max_routing_skew(model, ep)), SKEW_DIGITS))
                  for ep in range(1, experts + 1) if experts % ep == 0)
    return StatsSkew(by_ep=table, digest=stats.digest())


def check_skew_table(pairs: object) -> SkewByEp:
    """(ep, skew) pairs as a sorted tuple of (int, float) (a plan's JSON gives lists); SpecError naming
    moe_skew_by_ep for a malformed table: an ep below 1 or twice, a skew below 1 or not finite."""
    field = "ServeOptions.moe_skew_by_ep"
    try:
        table = tuple(sorted((int(ep), float(skew)) for ep, skew in pairs))  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise SpecError(f"must be (ep, skew) pairs, got {pairs!r}", field=field) from None
    eps = [ep for ep, _ in table]
    require(len(set(eps)) == len(eps) and all(ep >= 1 for ep in eps), f"needs distinct degrees >= 1, got {eps}",
            field=field)
    require(all(np.isfinite(s) and s >= 1.0 for _, s in table), "skews must be finite and >= 1", field=field)
    return table


def check_table_fits(model: ModelSpec, table: SkewByEp) -> None:
    """SpecError unless a skew table covers every degree dividing the model's experts (those the planner may
    search) within what routing allows at each (max_routing_skew)."""
    if not table:
        return
    require(model.is_moe, f"routing skew needs an MoE model; {model.name} is dense (omit --moe-stats)", field=FIELD)
    experts = model.moe_dims.experts
    missing = [ep for ep in range(1, experts + 1) if experts % ep == 0 and ep not in dict(table)]
    require(not missing, f"the skew table has no value at ep {', '.join(map(str, missing))} ({model.name} has "
            f"{experts} experts)", field=FIELD)
    for ep, skew in table:
        most = max_routing_skew(model, ep)
        require(skew <= most * (1 + TOP_K_TOLERANCE), f"skew {skew:g} at ep {ep} exceeds the {most:g} routing "
                "allows", field=FIELD)


def skew_line(table: SkewByEp, digest: str, used: tuple[int, ...] = ()) -> str:
    """One explain line: where the skew came from and its value at each degree (`used`: the degrees a plan's
    instances run at, marked)."""
    values = ", ".join(f"ep {ep}: {skew:.3f}" + ("*" if ep in used else "") for ep, skew in table)
    return f"MoE skew from routing statistics {digest[:12]} ({values}" + ("; * = used)" if used else ")")
