"""RoutingStats: how many tokens each routed expert receives, per MoE layer, and how tokens move
between the experts of consecutive layers.

File formats (both strict: an unknown key, a wrong shape or a negative count is a SpecError that
names the field):

Statistics (`parplan plan experts --stats`), JSON or NPZ with the same names:
  expert_load   [L][E]        tokens routed to expert e of MoE layer l (a token routed top-k
                              counts once for each of its k experts)
  transitions   [L-1][E][E]   optional; tokens routed to e in layer l AND to e' in layer l+1
                              (a top-k token adds k*k pairs)
  window_load   [W][L][E]     optional; expert_load of W consecutive time windows (their sum
                              must equal expert_load)

Trace (`parplan trace stats TRACE`), JSON or NPZ:
  expert_ids    [L][T][K]     integer expert id of each of the K routing choices of token t in
                              MoE layer l (the K ids of one token in one layer are distinct)
  num_experts   E             optional; experts per layer (default: largest id + 1)
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from costmodels.errors import SpecError, require

STATS_KEYS = ("expert_load", "transitions", "window_load")
TRACE_KEYS = ("expert_ids", "num_experts")


def _array(value: Any, field: str, ndim: int, source: str | None) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise SpecError(f"must be a {ndim}-dimensional array of numbers (ragged or non-numeric)",
                        field=field, source=source) from None
    require(arr.ndim == ndim, f"must have {ndim} dimensions, got shape {list(arr.shape)}", field=field, source=source)
    require(bool(np.all(np.isfinite(arr))), "must hold finite numbers", field=field, source=source)
    require(bool(np.all(arr >= 0)), f"must be >= 0, found {float(arr.min())}", field=field, source=source)
    return arr


@dataclass(frozen=True, kw_only=True, slots=True)
class RoutingStats:
    """Per-layer expert loads and optional layer-to-layer transitions (token counts, >= 0)."""

    expert_load: np.ndarray
    """[L][E] tokens routed to each expert of each MoE layer"""
    transitions: np.ndarray | None = None
    """[L-1][E][E] tokens routed to e in layer l and e' in layer l+1 (None = unknown)"""
    window_load: np.ndarray | None = None
    """[W][L][E] expert_load per time window (None = one window)"""
    source: str = ""
    """file the statistics were read from ('' = built in memory)"""

    def __post_init__(self) -> None:
        src = self.source or None
        load = _array(self.expert_load, "expert_load", 2, src)
        require(load.shape[0] >= 1 and load.shape[1] >= 1, f"needs >= 1 layer and >= 1 expert, got {list(load.shape)}",
                field="expert_load", source=src)
        object.__setattr__(self, "expert_load", load)
        layers, experts = load.shape
        if self.transitions is not None:
            trans = _array(self.transitions, "transitions", 3, src)
            want = (layers - 1, experts, experts)
            require(trans.shape == want, f"must have shape {list(want)} (L-1, E, E), got {list(trans.shape)}",
                    field="transitions", source=src)
            object.__setattr__(self, "transitions", trans)
        if self.window_load is not None:
            win = _array(self.window_load, "window_load", 3, src)
            require(win.shape[1:] == load.shape and win.shape[0] >= 1,
                    f"must have shape [W, {layers}, {experts}], got {list(win.shape)}", field="window_load", source=src)
            require(bool(np.allclose(win.sum(axis=0), load, rtol=1e-6, atol=1e-6)),
                    "windows must sum to expert_load", field="window_load", source=src)
            object.__setattr__(self, "window_load", win)

    @property
    def layers(self) -> int:
        return int(self.expert_load.shape[0])

    @property
    def experts(self) -> int:
        return int(self.expert_load.shape[1])

    def to_json(self) -> dict[str, Any]:
        """The statistics as plain lists (the JSON file format)."""
        doc = {"expert_load": self.expert_load.tolist()}
        if self.transitions is not None:
            doc["transitions"] = self.transitions.tolist()
        if self.window_load is not None:
            doc["window_load"] = self.window_load.tolist()
        return doc

    def digest(self) -> str:
        """sha256 over the float64 bytes of each array (stable across JSON/NPZ round trips)."""
        h = hashlib.sha256()
        for name in STATS_KEYS:
            arr = getattr(self, name)
            h.update(name.encode())
            if arr is not None:
                h.update(str(arr.shape).encode())
                h.update(np.ascontiguousarray(arr, dtype="<f8").tobytes())
        return h.hexdigest()

    def write(self, path: str | Path) -> None:
        """Write JSON (suffix .json) or NPZ (suffix .npz)."""
        path = Path(path)
        if path.suffix == ".npz":
            arrays = {k: getattr(self, k) for k in STATS_KEYS if getattr(self, k) is not None}
            with path.open("wb") as fh:
                np.savez_compressed(fh, **arrays)
        else:
            path.write_text(json.dumps(self.to_json(), separators=(",", ":")) + "\n")


def _read_mapping(path: Path, allowed: tuple[str, ...]) -> dict[str, Any]:
    src = str(path)
    if not path.is_file():
        raise SpecError("no such file", source=src)
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as npz:
                doc = {k: npz[k] for k in npz.files}
        except (OSError, ValueError) as exc:
            raise SpecError(f"not a readable NPZ file: {exc}", source=src) from None
    else:
        try:
            doc = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise SpecError(f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", source=src) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(f"cannot read: {exc}", source=src) from None
        if not isinstance(doc, dict):
            raise SpecError("must be a JSON object", source=src)
    unknown = sorted(set(doc) - set(allowed))
    if unknown:
        raise SpecError(f"unknown key {unknown[0]!r}; valid keys: {', '.join(allowed)}", field=unknown[0], source=src)
    return doc


def load_stats(path: str | Path) -> RoutingStats:
    """Read routing statistics from a JSON or NPZ file (see the module docstring)."""
    path = Path(path)
    doc = _read_mapping(path, STATS_KEYS)
    if "expert_load" not in doc:
        raise SpecError("missing required key", field="expert_load", source=str(path))
    return RoutingStats(expert_load=doc["expert_load"], transitions=doc.get("transitions"),
                        window_load=doc.get("window_load"), source=str(path))


def stats_from_ids(expert_ids: Any, num_experts: int | None = None, *, source: str = "") -> RoutingStats:
    """Aggregate a per-token top-k trace [L][T][K] of expert ids into RoutingStats."""
    src = source or None
    try:
        ids = np.asarray(expert_ids)
    except (TypeError, ValueError):
        raise SpecError("must be an [L][T][K] integer array (ragged?)", field="expert_ids", source=src) from None
    require(ids.ndim == 3 and min(ids.shape) >= 1,
            f"must have shape [L, T, K] with all sizes >= 1, got {list(ids.shape)}",
            field="expert_ids", source=src)
    require(ids.dtype.kind in "iu" or (ids.dtype.kind == "f" and bool(np.all(ids == np.round(ids)))),
            "must hold integer expert ids", field="expert_ids", source=src)
    ids = ids.astype(np.int64)
    require(int(ids.min()) >= 0, f"expert ids must be >= 0, found {int(ids.min())}", field="expert_ids", source=src)
    experts = int(ids.max()) + 1 if num_experts is None else int(num_experts)
    require(experts >= int(ids.max()) + 1, f"num_experts ({experts}) must exceed the largest id ({int(ids.max())})",
            field="num_experts", source=src)
    layers, tokens, k = ids.shape
    load = np.zeros((layers, experts))
    trans = np.zeros((layers - 1, experts, experts)) if layers > 1 else None
    ordered = np.sort(ids, axis=2)
    require(bool(np.all(ordered[:, :, 1:] != ordered[:, :, :-1])),
            "the K ids of one token in one layer must be distinct",
            field="expert_ids", source=src)
    for l in range(layers):
        load[l] = np.bincount(ids[l].ravel(), minlength=experts)
        if trans is not None and l > 0:  # token t adds one to (e, e') for each of its K x K pairs
            pairs = ids[l - 1][:, :, None] * experts + ids[l][:, None, :]
            trans[l - 1] = np.bincount(pairs.ravel(), minlength=experts * experts).reshape(experts, experts)
    return RoutingStats(expert_load=load, transitions=trans, source=source)


def load_trace(path: str | Path) -> RoutingStats:
    """Read a per-token top-k trace (JSON or NPZ, see the module docstring) and aggregate it."""
    path = Path(path)
    doc = _read_mapping(path, TRACE_KEYS)
    if "expert_ids" not in doc:
        raise SpecError("missing required key", field="expert_ids", source=str(path))
    num = doc.get("num_experts")
    if num is not None:
        num = np.asarray(num)
        require(num.ndim == 0 and num.dtype.kind in "iu" and int(num) >= 1, "must be a positive integer",
                field="num_experts", source=str(path))
    stats = stats_from_ids(doc["expert_ids"], None if num is None else int(num), source=str(path))
    return RoutingStats(expert_load=stats.expert_load, transitions=stats.transitions, source="")
