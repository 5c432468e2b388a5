"""Routing-structure families for synthetic traces (`parplan trace synth --family ...`).

Every family draws per-token top-K expert ids per layer (numpy Generator seeded with `seed`; same arguments
-> same arrays). Popularity: expert e of layer l has weight rank^-skew (ranks a random permutation per layer;
`powerlaw` adds 1 to the exponent, so a few hot experts carry most tokens). Structure, with strength
`affinity` (each of a token's K choices in layer l+1 comes from its successor set with probability
`affinity`, from the other experts otherwise, each part by popularity without replacement):

  clustered  token types: every layer splits its experts into C groups, a token keeps one type in all
             layers and picks from its type's group (synthetic.synth_ids)
  sliding    a token keeps one window of W = F x K consecutive experts (start uniform) in every layer and
             picks inside it: the experts near e in layer l send their tokens to the experts near e in
             layer l+1, the structure a contiguous placement already follows
  permuted   the same windows in a hidden order per layer (a random permutation of the expert ids): an
             expert's successors are a handful of experts in no order visible in the ids
  powerlaw   permuted successors over heavier-tailed popularity (hot experts)
  drifting   permuted successors whose hidden order drifts: each later window re-draws the positions of
             a fraction `drift` (default 0.3) of every layer's experts
  none       no structure: layers independent (affinity ignored)
F = `fanout` (window width W = F x K experts).
"""

import numpy as np

from costmodels.errors import require

FAMILIES = ("clustered", "sliding", "permuted", "powerlaw", "drifting", "none")
DRIFT_DEFAULT = 0.3


def _top_sorted(keys: np.ndarray, k: int) -> np.ndarray:
    """[T, k] column indices of the k largest keys of each row, largest first."""
    if k < keys.shape[1]:
        top = np.argpartition(-keys, k - 1, axis=1)[:, :k]
    else:
        top = np.tile(np.arange(k), (keys.shape[0], 1))
    order = np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def pick(keys: np.ndarray, inside: np.ndarray, m: np.ndarray, k: int) -> np.ndarray:
    """[T, k] ids: the m[t] best keys inside the mask, then the best k - m[t] outside (m clipped to fit)."""
    size_in = inside.sum(axis=1)
    m = np.maximum(np.minimum(m, size_in), k - (keys.shape[1] - size_in))
    best_in = _top_sorted(np.where(inside, keys, -np.inf), k)
    best_out = _top_sorted(np.where(inside, -np.inf, keys), k)
    j = np.arange(k)[None, :]
    pick_in = np.take_along_axis(best_in, np.minimum(j, k - 1), axis=1)
    pick_out = np.take_along_axis(best_out, np.clip(j - m[:, None], 0, k - 1), axis=1)
    return np.where(j < m[:, None], pick_in, pick_out)


def _positions(rng: np.random.Generator, family: str, layers: int, experts: int) -> np.ndarray:
    """[L, E] hidden position of every expert (identity for sliding)."""
    if family == "sliding":
        return np.tile(np.arange(experts), (layers, 1))
    return np.stack([rng.permutation(experts) for _ in range(layers)])


def successor_ids(*, family: str, layers: int, experts: int, top_k: int, skew: float, affinity: float, seed: int,
                  tokens: int, fanout: int = 4, drift: float = 0.0, windows: int = 1) -> np.ndarray:
    """[W][L][T][K] expert ids of a successor family (module docstring)."""
    require(family in FAMILIES and family != "clustered",
            f"unknown successor family {family!r}; valid: {', '.join(FAMILIES[1:])}", field="family")
    require(fanout >= 1 and fanout * top_k <= experts, f"fanout x top_k must be in 1..experts ({experts})",
            field="fanout")
    rng = np.random.default_rng(seed)
    exponent = skew + (1.0 if family == "powerlaw" else 0.0)
    ranks = np.stack([rng.permutation(experts) for _ in range(layers)])
    logw = -exponent * np.log1p(ranks.astype(np.float64))  # [L, E]
    pos = _positions(rng, family, layers, experts)
    strength = 0.0 if family == "none" else affinity
    if family == "drifting" and drift == 0:
        drift = DRIFT_DEFAULT
    width = fanout * top_k
    out = np.empty((windows, layers, tokens, top_k), dtype=np.int64)
    for w in range(windows):
        if w > 0 and family == "drifting":
            for l in range(layers):
                moved = np.flatnonzero(rng.random(experts) < drift)
                pos[l, moved] = pos[l, moved[rng.permutation(moved.shape[0])]]
        start = rng.integers(0, experts, size=tokens)  # each token's window start, kept through the layers
        for l in range(layers):
            inside = (pos[l][None, :] - start[:, None]) % experts < width  # [T, E]
            m = rng.binomial(top_k, strength, size=tokens)
            keys = logw[l][None, :] + rng.gumbel(size=(tokens, experts))
            out[w, l] = pick(keys, inside, m, top_k)
    return out
