"""TrainRequest: what the training planner is asked, and TrainOptions: which strategies it may consider.

Vocabulary (STYLE.md): tp pp dp cp ep etp edp vpp are degrees; a *stage* is a pipeline stage. The
*fast domain* of a pool is one node (NVLink / Infinity Fabric); TP and EP groups stay inside it unless
the options allow otherwise.
"""

from dataclasses import asdict, dataclass

from costmodels.errors import SpecError, require
from costmodels.hardware import ClusterSpec
from costmodels.model import ModelSpec
from costmodels.parallel import RECOMPUTE_MODES, ZERO_STAGES, TrainingWorkload
from planner.train.estimate import cluster_from_dict, model_from_dict
from planner.typed import Typed


@dataclass(frozen=True, kw_only=True, slots=True)
class TrainOptions:
    """The outer search space. Defaults cover what Megatron-LM / torchtitan can run."""

    zero_stages: tuple[int, ...] = ZERO_STAGES
    """ZeRO stages to consider (0 DDP, 1 optimizer states, 2 + gradients, 3 + parameters)"""
    recompute_modes: tuple[str, ...] = RECOMPUTE_MODES
    """activation recomputation modes to consider"""
    sequence_parallel: tuple[bool, ...] = (True, False)
    """sequence-parallel settings to consider when tp > 1"""
    max_vpp: int = 8
    """largest virtual pipeline size (interleaved 1F1B chunks per device)"""
    max_mbs: int = 16
    """largest micro-batch size in sequences"""
    max_cp: int = 0
    """largest context-parallel degree (0 = up to the sequence length / 1024 tokens per rank)"""
    allow_cross_node_tp: bool = False
    """let TP (and ETP) groups span nodes"""
    allow_cross_node_ep: bool = False
    """let EP x ETP groups span nodes"""
    uneven_split: bool = True
    """allow different layer counts per stage (the split ILP); False = uniform splits only"""
    alternatives: int = 5
    """how many runner-up strategies the plan lists"""
    objective: str = "expected"
    """'expected': fastest predicted step time; 'robust': fastest 90th-percentile step time from the
    calibration residuals of each strategy's regime (planner/confidence/robust.py)"""

    def __post_init__(self):
        require(len(self.zero_stages) >= 1 and all(z in ZERO_STAGES for z in self.zero_stages),
                f"each must be one of {ZERO_STAGES}", field="options.zero_stages")
        require(len(self.recompute_modes) >= 1 and all(r in RECOMPUTE_MODES for r in self.recompute_modes),
                f"each must be one of {', '.join(RECOMPUTE_MODES)}", field="options.recompute_modes")
        require(len(self.sequence_parallel) >= 1 and all(isinstance(b, bool) for b in self.sequence_parallel),
                "must be a non-empty tuple of booleans", field="options.sequence_parallel")
        require(self.max_vpp >= 1, f"must be >= 1, got {self.max_vpp}", field="options.max_vpp")
        require(self.max_mbs >= 1, f"must be >= 1, got {self.max_mbs}", field="options.max_mbs")
        require(self.max_cp >= 0, f"must be >= 0, got {self.max_cp}", field="options.max_cp")
        require(0 <= self.alternatives <= 50, f"must be in 0..50, got {self.alternatives}",
                field="options.alternatives")
        require(self.objective in ("expected", "robust"), f"unknown objective {self.objective!r}; valid: expected, "
                "robust", field="options.objective")

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, kw_only=True, slots=True)
class TrainRequest(Typed):
    """One planning question: train `model` on `cluster` with `workload`, choosing from `options`."""

    model: ModelSpec
    """the model"""
    cluster: ClusterSpec
    """the GPUs (one pool, or several for a heterogeneous cluster)"""
    workload: TrainingWorkload
    """global batch, sequence length, dtype"""
    options: TrainOptions = TrainOptions()
    """the search space"""

    def __post_init__(self):
        require(isinstance(self.model, ModelSpec), "must be a ModelSpec", field="model")
        require(isinstance(self.cluster, ClusterSpec), "must be a ClusterSpec", field="cluster")
        require(isinstance(self.workload, TrainingWorkload), "must be a TrainingWorkload", field="workload")
        require(isinstance(self.options, TrainOptions), "must be a TrainOptions", field="options")

    def inputs_json(self) -> dict:
        """The resolved inputs stored in the plan (enough to recompute it)."""
        return {"target": "train", "model": asdict(self.model), "cluster": asdict(self.cluster),
                "workload": asdict(self.workload), "options": self.options.to_json()}


def request_from_inputs(inputs: dict) -> TrainRequest:
    """Rebuild the request a plan was made from (its `inputs` section)."""
    try:
        opts = {k: tuple(v) if isinstance(v, list) else v for k, v in inputs["options"].items()}
        return TrainRequest(model=model_from_dict(inputs["model"]), cluster=cluster_from_dict(inputs["cluster"]),
                            workload=TrainingWorkload(**inputs["workload"]), options=TrainOptions(**opts))
    except (KeyError, TypeError) as exc:
        raise SpecError(f"plan inputs cannot be read back: {exc}", field="inputs") from None
