"""The typed `decision` of each planner's plan, with one `to_dict`/`from_dict` per type and its JSON Schema.

    TrainDecision    degrees, micro-batching, ZeRO, recompute and the layer split (planner/train)
    ExpertsDecision  per MoE layer: the experts each GPU holds and the token share of each replica
    ServeDecision    serving mode, instance groups, and the main shape of each role
    ScatterDecision  SP style and the sequence-parallel groups with their ranks and sequences

`decision_type(kind)` names the type of a plan kind. `from_dict` rejects unknown and missing keys with a
SpecError naming the field (`decision.groups[2].ranks`), and `to_dict(from_dict(d)) == d` for every
decision a planner writes (tests/test_roundtrip.py). `schema_of(type)` is the JSON Schema a type implies;
planner/schema/plan-v1.json must contain exactly that for each kind's decision (same test).
A field's `metadata` may carry `schema` (extra JSON Schema keywords, e.g. an enum) and `omit_none`
(the key is left out, not written as null, when the value is None).
"""

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

from costmodels.errors import SpecError

T = TypeVar("T")
_DEGREE = {"schema": {"minimum": 1}}


def _convert(hint: Any, value: Any, path: str) -> Any:
    """`value` (plain JSON) as `hint`: dataclasses, tuple[X, ...], fixed tuples, X | None, int/float/str/bool."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        for inner in options[:-1]:  # the first alternative that accepts the value
            try:
                return _convert(inner, value, path)
            except SpecError:
                continue
        return _convert(options[-1], value, path)
    if dataclasses.is_dataclass(hint):
        return _from_dict(hint, value, path)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise SpecError(f"must be a list, got {type(value).__name__}", field=path)
        items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        if len(items) != len(value):
            raise SpecError(f"must have {len(items)} items, got {len(value)}", field=path)
        return tuple(_convert(h, v, f"{path}[{i}]") for i, (h, v) in enumerate(zip(items, value, strict=True)))
    ok = isinstance(value, int | float) and not isinstance(value, bool) if hint is float else (
        isinstance(value, hint) and (hint is bool or not isinstance(value, bool)))
    if not ok:
        raise SpecError(f"must be {hint.__name__}, got {value!r}", field=path)
    return float(value) if hint is float else value


def _from_dict(cls: type[T], data: Any, path: str) -> T:
    if not isinstance(data, dict):
        raise SpecError(f"must be an object, got {type(data).__name__}", field=path)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise SpecError(f"unknown keys {unknown}; valid: {', '.join(fields)}", field=path)
    hints = typing.get_type_hints(cls)
    values = {}
    for name, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if name not in data:
            if required:
                raise SpecError("is required", field=f"{path}.{name}")
            continue
        values[name] = _convert(hints[name], data[name], f"{path}.{name}")
    return cls(**values)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if item is None and f.metadata.get("omit_none"):
                continue
            out[f.name] = _plain(item)
        return out
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


class Typed:
    """Mixin: one `to_dict`/`from_dict` pair for a frozen decision dataclass."""

    def to_dict(self) -> dict[str, Any]:
        plain: dict[str, Any] = _plain(self)
        return plain

    @classmethod
    def from_dict(cls: type[T], data: Any, path: str = "decision") -> T:
        return _from_dict(cls, data, path)


@dataclass(frozen=True, kw_only=True, slots=True)
class TrainDecision(Typed):
    framework: str = field(metadata={"schema": {
        "enum": ["megatron", "torchtitan", "deepspeed"],
        "description": "the training framework the plan is for (what its ZeRO stage means)"}})
    tp: int = field(metadata=_DEGREE)
    pp: int = field(metadata=_DEGREE)
    dp: int = field(metadata=_DEGREE)
    cp: int = field(metadata=_DEGREE)
    ep: int = field(metadata=_DEGREE)
    etp: int = field(metadata=_DEGREE)
    edp: int = field(metadata=_DEGREE)
    vpp: int = field(metadata=_DEGREE)
    mbs: int = field(metadata=_DEGREE)
    microbatches: int = field(metadata=_DEGREE)
    zero: int = field(metadata={"schema": {"enum": [0, 1, 2, 3]}})
    recompute: str = field(metadata={"schema": {"enum": ["none", "selective", "full"]}})
    sequence_parallel: bool
    stage_layers: tuple[int | tuple[int, ...], ...] = field(metadata={"schema": {
        "minItems": 1, "description": "layers per pipeline stage (or per virtual stage: a list per stage)",
        "items": {"anyOf": [{"type": "integer", "minimum": 0},
                            {"type": "array", "items": {"type": "integer", "minimum": 0}}]}}})
    stage_pools: tuple[str, ...] | None = field(metadata={"schema": {
        "description": "the GPU pool of each stage (heterogeneous clusters), else null"}})


@dataclass(frozen=True, kw_only=True, slots=True)
class ExpertLayer(Typed):
    gpu_experts: tuple[tuple[int, ...], ...]
    """per GPU, the logical experts it holds (sorted)"""
    token_share: tuple[tuple[int, int, float], ...]
    """[expert, gpu, share of the expert's tokens served there]"""


@dataclass(frozen=True, kw_only=True, slots=True)
class ExpertsDecision(Typed):
    layers: tuple[ExpertLayer, ...]
    num_gpus: int = field(metadata=_DEGREE)
    gpus_per_node: int = field(metadata=_DEGREE)
    slots_per_gpu: int = field(metadata=_DEGREE)


@dataclass(frozen=True, kw_only=True, slots=True)
class ServeGroup(Typed):
    role: str = field(metadata={"schema": {"enum": ["prefill", "decode", "colocated", "intra_gpu"]}})
    pool: str
    dest_pool: str
    tp: int = field(metadata=_DEGREE)
    pp: int = field(metadata=_DEGREE)
    ep: int = field(metadata=_DEGREE)
    dp: int = field(metadata=_DEGREE)
    gpus: int = field(metadata=_DEGREE)
    instances: int = field(metadata=_DEGREE)
    capacity_rps: float
    load_rps: float
    max_batch: int
    chunk_tokens: int
    prefill_share: float
    ttft_floor_s: float
    tpot_s: float


@dataclass(frozen=True, kw_only=True, slots=True)
class ServeRole(Typed):
    tp: int = field(metadata=_DEGREE)
    pp: int = field(metadata=_DEGREE)
    ep: int = field(metadata=_DEGREE)
    dp: int = field(metadata=_DEGREE)
    pool: str
    dest_pool: str
    instances: int = field(metadata=_DEGREE)
    instances_total: int = field(metadata=_DEGREE)
    max_batch: int
    chunk_tokens: int
    prefill_share: float


@dataclass(frozen=True, kw_only=True, slots=True)
class ServeDecision(Typed):
    mode: str = field(metadata={"schema": {"enum": ["disaggregated", "colocated", "intra_gpu"]}})
    groups: tuple[ServeGroup, ...]
    prefill: ServeRole | None
    decode: ServeRole | None
    colocated: ServeRole | None
    intra_gpu: ServeRole | None


@dataclass(frozen=True, kw_only=True, slots=True)
class ScatterGroup(Typed):
    degree: int = field(metadata=_DEGREE)
    gpus: int = field(metadata=_DEGREE)
    ranks: tuple[int, ...]
    spans_nodes: bool
    sequences: tuple[int, ...]
    time_s: float
    micro_batch: tuple[int, ...] | None = field(default=None, metadata={"omit_none": True})
    """only when the group's sequences do not fit in memory together: the micro-batch of each sequence"""


@dataclass(frozen=True, kw_only=True, slots=True)
class ScatterDecision(Typed):
    sp_style: str
    tp: int = field(metadata=_DEGREE)
    zero: int = field(metadata={"schema": {"enum": [0, 1, 2, 3]}})
    degree_multiset: tuple[int, ...]
    groups: tuple[ScatterGroup, ...]


DECISIONS: dict[str, type[Typed]] = {"train": TrainDecision, "experts": ExpertsDecision, "serve": ServeDecision,
                                     "scatter": ScatterDecision}
"""plan kind -> the type of its decision"""


def decision_type(kind: str) -> type[Typed]:
    if kind not in DECISIONS:
        raise SpecError(f"no typed decision for kind {kind!r}; valid: {', '.join(DECISIONS)}", field="kind")
    return DECISIONS[kind]


def _schema_of_hint(hint: Any) -> dict[str, Any]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_schema_of_hint(a) if a is not type(None) else {"type": "null"} for a in args]}
    if dataclasses.is_dataclass(hint):
        return schema_of(hint)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": _schema_of_hint(args[0])}
        return {"type": "array", "prefixItems": [_schema_of_hint(a) for a in args], "minItems": len(args),
                "maxItems": len(args)}
    return {"type": {int: "integer", float: "number", str: "string", bool: "boolean"}[hint]}


def schema_of(cls: type) -> dict[str, Any]:
    """The JSON Schema of a decision type: every field described, required ones required, nothing else allowed."""
    hints = typing.get_type_hints(cls)
    props: dict[str, Any] = {}
    required = []
    for f in dataclasses.fields(cls):
        prop = _schema_of_hint(hints[f.name])
        extra = f.metadata.get("schema", {})
        if "items" in extra:
            prop = {**prop, "items": {**prop["items"], **extra["items"]}}
        prop.update({k: v for k, v in extra.items() if k != "items"})
        props[f.name] = prop
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
    return {"type": "object", "required": required, "properties": props, "additionalProperties": False}
