"""ExpertRequest: the resolved inputs of one expert-placement run, validated, plus derived arrays.

Vocabulary: a *slot* holds one expert replica; GPU g of an EP group of G GPUs sits on node g // gpus_per_node;
a layer's placement is `slots[g]` (the S logical expert ids on GPU g, -1 = empty) and `share[e, g]` (the
fraction of expert e's tokens served by its replica on g).
"""

from dataclasses import dataclass

import numpy as np

from costmodels.errors import SpecError, require
from costmodels.expert_time import TOKEN_COST, ExpertCost, expert_cost
from costmodels.hardware import DeviceSpec
from costmodels.model import ModelSpec
from costmodels.routing import RoutingStats

METHODS = ("auto", "exact", "heuristic")
"""per-layer load methods (planner.experts.layer)"""


@dataclass(frozen=True, kw_only=True, slots=True)
class ExpertRequest:
    """What to place and where."""

    stats: RoutingStats
    """per-layer expert loads and transitions"""
    num_gpus: int
    """GPUs in the expert-parallel group"""
    gpus_per_node: int = 8
    """GPUs per node (the EP group fills whole nodes)"""
    slots_per_gpu: int
    """expert replicas one GPU can hold per layer"""
    model: ModelSpec | None = None
    """MoE model (with device: the objective is time in seconds; without: tokens)"""
    device: DeviceSpec | None = None
    """GPU type, required with model"""
    gpu_speed: tuple[float, ...] | None = None
    """per-GPU compute speed factors (None = all 1.0)"""
    previous: np.ndarray | None = None
    """[L][G][S] placement now deployed (-1 = empty slot), for the migration budget"""
    max_moves: int | None = None
    """at most this many replicas may be copied to a GPU that did not hold them (needs previous)"""
    node_limit: int | None = None
    """an expert's replicas may span at most this many nodes (node-limited routing)"""
    traffic_weight: float = 0.0
    """objective units per cross-node transition token (0: cross-node traffic is a tie-breaker)"""
    method: str = "auto"
    """per-layer load method: auto | exact | heuristic (planner.experts.layer)"""

    def __post_init__(self):
        layers, experts = self.stats.layers, self.stats.experts
        require(self.num_gpus >= 1, f"must be >= 1, got {self.num_gpus}", field="num_gpus")
        require(self.gpus_per_node >= 1, f"must be >= 1, got {self.gpus_per_node}", field="gpus_per_node")
        require(self.num_gpus <= self.gpus_per_node or self.num_gpus % self.gpus_per_node == 0,
                f"{self.num_gpus} GPUs do not fill whole nodes of {self.gpus_per_node}", field="num_gpus")
        require(self.slots_per_gpu >= 1, f"must be >= 1, got {self.slots_per_gpu}", field="slots_per_gpu")
        require(self.slots_per_gpu <= experts,
                f"{self.slots_per_gpu} slots per GPU exceed the {experts} experts (one replica of an expert per GPU)",
                field="slots_per_gpu")
        require(experts <= self.num_gpus * self.slots_per_gpu,
                f"{experts} experts need more than the {self.num_gpus} x {self.slots_per_gpu} = "
                f"{self.num_gpus * self.slots_per_gpu} slots", field="expert_load")
        require((self.model is None) == (self.device is None), "give both a model and a GPU, or neither",
                field="model" if self.device is not None else "gpu")
        if self.model is not None:
            require(self.model.moe is not None, f"model {self.model.name!r} has no routed experts", field="model")
            require(self.model.moe.experts == experts,
                    f"statistics have {experts} experts per layer, model {self.model.name!r} has "
                    f"{self.model.moe.experts}",
                    field="expert_load")
            require(self.model.moe_layers == layers,
                    f"statistics have {layers} layers, model {self.model.name!r} has {self.model.moe_layers} "
                    "MoE layers",
                    field="expert_load")
        if self.gpu_speed is not None:
            require(len(self.gpu_speed) == self.num_gpus, f"needs {self.num_gpus} values, got {len(self.gpu_speed)}",
                    field="gpu_speed")
            require(all(s > 0 and np.isfinite(s) for s in self.gpu_speed), "speed factors must be > 0",
                    field="gpu_speed")
        if self.previous is not None:
            prev = np.asarray(self.previous)
            want = (layers, self.num_gpus, self.slots_per_gpu)
            require(prev.shape == want, f"previous placement has shape {list(prev.shape)}, expected {list(want)}",
                    field="previous")
            require(bool(np.all((prev >= -1) & (prev < experts))), "previous holds unknown expert ids",
                    field="previous")
        require(self.max_moves is None or self.previous is not None, "a migration budget needs a previous plan",
                field="max_moves")
        require(self.max_moves is None or self.max_moves >= 0, "must be >= 0", field="max_moves")
        require(self.node_limit is None or self.node_limit >= 1, "must be >= 1", field="node_limit")
        require(self.traffic_weight >= 0 and np.isfinite(self.traffic_weight), "must be >= 0", field="traffic_weight")
        require(self.method in METHODS, f"unknown method {self.method!r}; valid: {', '.join(METHODS)}", field="method")
        require(self.method != "exact" or self.node_limit is None,
                "the exact method does not model node_limit; use method auto or heuristic", field="method")

    @property
    def layers(self) -> int:
        return self.stats.layers

    @property
    def experts(self) -> int:
        return self.stats.experts

    @property
    def nodes(self) -> int:
        return max(1, self.num_gpus // self.gpus_per_node)

    def node_of_gpu(self) -> np.ndarray:
        """[G] node index of each GPU."""
        per_node = min(self.gpus_per_node, self.num_gpus)
        return np.arange(self.num_gpus) // per_node

    def speeds(self) -> np.ndarray:
        return np.ones(self.num_gpus) if self.gpu_speed is None else np.asarray(self.gpu_speed, dtype=np.float64)

    def cost(self) -> ExpertCost:
        if self.model is None:
            return TOKEN_COST
        return expert_cost(self.model, self.device, num_gpus=self.num_gpus, gpus_per_node=self.gpus_per_node)

    def cost_arrays(self) -> tuple[float, np.ndarray]:
        """(fixed time c0, [G] marginal time per token-expert pair): a GPU's layer time is c0 + kappa_g * pairs."""
        cost = self.cost()
        return cost.fixed_s, np.array([cost.per_pair_s(s) for s in self.speeds()])

    def max_replicas(self) -> int:
        """Replicas one expert may have: one per GPU, within node_limit nodes."""
        per_node = min(self.gpus_per_node, self.num_gpus)
        if self.node_limit is None:
            return self.num_gpus
        return min(self.num_gpus, self.node_limit * per_node)


def previous_from_plan(doc: dict, source: str = "previous") -> np.ndarray:
    """[L][G][S] slots of an experts plan document (-1 pads GPUs with fewer experts)."""
    if doc.get("kind") != "experts":
        raise SpecError(f"is a {doc.get('kind')!r} plan, expected an experts plan", field="kind", source=source)
    try:
        layers = [layer["gpu_experts"] for layer in doc["decision"]["layers"]]
        width = max(len(g) for layer in layers for g in layer)
        out = np.full((len(layers), len(layers[0]), width), -1, dtype=np.int64)
        for l, layer in enumerate(layers):
            for g, ids in enumerate(layer):
                out[l, g, :len(ids)] = ids
    except (KeyError, TypeError, ValueError, IndexError):
        raise SpecError("malformed decision.layers[].gpu_experts", field="decision.layers", source=source) from None
    return out
