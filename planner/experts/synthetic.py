"""Seeded synthetic routing traces with Zipf-like load skew and layer-to-layer affinity.

Generative model (numpy Generator seeded with `seed`; same arguments -> same arrays):
  * popularity: in window w, layer l, expert e has weight rank^-skew, ranks a random permutation per
    layer; with drift D each later window re-draws the rank of a fraction D of the experts;
  * affinity: every layer splits its experts into C = `clusters` groups (a random partition per layer).
    Each token carries one topic c in 0..C-1 (uniform) for all layers; in every layer it draws
    m ~ Binomial(K, affinity) of its K experts from group c of that layer and the rest from the other
    experts, each part without replacement in proportion to the popularity weights (Gumbel top-k).
    Consecutive layers are thus linked: a token on an expert of group c in layer l lands on group c
    in layer l+1 with probability `affinity` per choice, so its expert in l+1 correlates with l.
  * affinity 0 gives independent layers; skew 0 gives uniform popularity.
"""

import numpy as np

from costmodels.errors import require
from costmodels.routing import RoutingStats, stats_from_ids
from planner.experts.families import FAMILIES, pick, successor_ids


def _check(*, layers: int, experts: int, top_k: int, skew: float, affinity: float, tokens: int, windows: int,
           drift: float) -> None:
    require(layers >= 1, "must be >= 1", field="layers")
    require(experts >= 1, "must be >= 1", field="experts")
    require(1 <= top_k <= experts, f"must be in 1..experts ({experts})", field="top_k")
    require(skew >= 0, "must be >= 0", field="skew")
    require(0 <= affinity <= 1, "must be in [0, 1]", field="affinity")
    require(tokens >= 1, "must be >= 1", field="tokens")
    require(windows >= 1, "must be >= 1", field="windows")
    require(0 <= drift <= 1, "must be in [0, 1]", field="drift")


def synth_ids(*, layers: int, experts: int, top_k: int, skew: float, affinity: float, seed: int, tokens: int,
              clusters: int = 8, drift: float = 0.0, windows: int = 1) -> np.ndarray:
    """[W][L][T][K] expert ids (T = tokens per window)."""
    _check(layers=layers, experts=experts, top_k=top_k, skew=skew, affinity=affinity, tokens=tokens,
           windows=windows, drift=drift)
    require(clusters >= 1, "must be >= 1", field="clusters")
    clusters = min(clusters, experts)
    rng = np.random.default_rng(seed)
    ranks = np.stack([rng.permutation(experts) for _ in range(layers)])  # [L, E]
    groups = np.stack([rng.permutation(experts) % clusters for _ in range(layers)])  # [L, E] group of e
    out = np.empty((windows, layers, tokens, top_k), dtype=np.int64)
    for w in range(windows):
        if w > 0 and drift > 0:
            for l in range(layers):
                moved = np.flatnonzero(rng.random(experts) < drift)
                ranks[l, moved] = ranks[l, moved[rng.permutation(moved.shape[0])]]
        topic = rng.integers(0, clusters, size=tokens)
        for l in range(layers):
            logw = -skew * np.log1p(ranks[l].astype(np.float64))
            inside = groups[l][None, :] == topic[:, None]  # [T, E]
            m = rng.binomial(top_k, affinity, size=tokens)  # drawn before the keys (stream order is part of the seed)
            keys = logw[None, :] + rng.gumbel(size=(tokens, experts))
            out[w, l] = pick(keys, inside, m, top_k)
    return out


def synth_stats(*, layers: int, experts: int, top_k: int, skew: float, affinity: float, seed: int,
                tokens: int = 4096, clusters: int = 8, drift: float = 0.0, windows: int = 1,
                family: str = "clustered", fanout: int = 4) -> RoutingStats:
    """RoutingStats aggregated from the family's ids (windows summed; window_load kept when windows > 1).

    family "clustered" is synth_ids (this module); the others are planner.experts.families."""
    require(family in FAMILIES, f"unknown family {family!r}; valid: {', '.join(FAMILIES)}", field="family")
    if family == "clustered":
        ids = synth_ids(layers=layers, experts=experts, top_k=top_k, skew=skew, affinity=affinity, seed=seed,
                        tokens=tokens, clusters=clusters, drift=drift, windows=windows)
    else:
        _check(layers=layers, experts=experts, top_k=top_k, skew=skew, affinity=affinity, tokens=tokens,
               windows=windows, drift=drift)
        ids = successor_ids(family=family, layers=layers, experts=experts, top_k=top_k, skew=skew,
                            affinity=affinity, seed=seed, tokens=tokens, fanout=fanout, drift=drift, windows=windows)
    parts = [stats_from_ids(ids[w], experts) for w in range(windows)]
    load = sum(p.expert_load for p in parts)
    trans = None if layers == 1 else sum(p.transitions for p in parts)
    window = np.stack([p.expert_load for p in parts]) if windows > 1 else None
    return RoutingStats(expert_load=load, transitions=trans, window_load=window)
