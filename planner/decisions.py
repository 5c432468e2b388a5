"""The typed `decision` of each planner's plan, with one `to_dict`/`from_dict` per type and its JSON Schema.

    TrainDecision    degrees, micro-batching, ZeRO, recompute and the layer split (planner/train)
    ExpertsDecision  per MoE layer: the experts each GPU holds and the token share of each replica
    ServeDecision    serving mode, instance groups, and the main shape of each role
    ScatterDecision  SP style and the sequence-parallel groups with their ranks and sequences

`decision_type(kind)` names the type of a plan kind. `from_dict` rejects unknown and missing keys with a
SpecError naming the field (`decision.groups[2].ranks`), and `to_dict(from_dict(d)) == d` for every
decision a planner writes (tests/test_roundtrip.py). `schema_of(type)` (planner/typed.py) is the JSON
Schema a type implies; planner/schema/plan-v1.json must contain exactly that for each kind's decision.
"""

from dataclasses import dataclass, field

from costmodels.errors import SpecError
from costmodels.parallel import RECOMPUTE_MODES
from planner.typed import Typed, schema_of

__all__ = ["DECISIONS", "ExpertLayer", "ExpertsDecision", "ScatterDecision", "ScatterGroup", "ServeDecision",
           "ServeGroup", "ServeRole", "TrainDecision", "decision_type", "schema_of"]

_DEGREE = {"schema": {"minimum": 1}}


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
    recompute: str = field(metadata={"schema": {"enum": list(RECOMPUTE_MODES)}})
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
    prefill_token_budget: int | None = field(default=None, metadata={"omit_none": True, "schema": {"minimum": 1}})
    """prefill and intra_gpu groups, and offline (objective throughput) groups: tokens one prefill (or mixed) step
    carries (batched prefill; 1 = one prompt per step)"""


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
