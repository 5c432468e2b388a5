"""ModelSpec: the architecture facts every cost model needs (no parallelism, no hardware).

Vocabulary: `layers` are transformer blocks; a layer is *MoE* when its MLP is a routed-expert block.
Dense-then-MoE models (DeepSeek-V3) set `moe.first_dense_layers`; `moe.layer_freq` = k puts an MoE
block on every k-th layer after those (1 = all of them).
"""

from dataclasses import dataclass, field
from typing import Any

from costmodels.errors import SpecError, require

ATTENTION_KINDS = ("mha", "gqa", "mla")


@dataclass(frozen=True, kw_only=True, slots=True)
class MLASpec:
    """Multi-head latent attention dimensions (DeepSeek-V2/V3, arXiv 2405.04434)."""

    q_lora_rank: int
    """rank of the query down-projection (0 = no query compression)"""
    kv_lora_rank: int
    """d_c, the compressed KV latent width that is cached"""
    qk_nope_head_dim: int
    """per-head query/key width without rotary embedding"""
    qk_rope_head_dim: int
    """d_h^R, the decoupled rotary key width (cached, shared by heads)"""
    v_head_dim: int
    """per-head value width"""

    def __post_init__(self) -> None:
        for name in ("q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"):
            require(getattr(self, name) >= 0, "must be >= 0", field=f"mla.{name}")
        require(self.kv_lora_rank > 0, "must be > 0", field="mla.kv_lora_rank")


@dataclass(frozen=True, kw_only=True, slots=True)
class MoESpec:
    """Routed-expert MLP blocks."""

    experts: int
    """routed experts per MoE layer"""
    top_k: int
    """experts each token is routed to"""
    expert_ffn: int
    """intermediate width of one routed expert"""
    shared_experts: int = 0
    """always-active shared experts per MoE layer"""
    shared_expert_ffn: int = 0
    """intermediate width of one shared expert (0 = same as expert_ffn)"""
    first_dense_layers: int = 0
    """the first k layers are dense (ModelSpec.ffn), the rest follow layer_freq"""
    layer_freq: int = 1
    """every layer_freq-th layer after the dense ones is MoE (1 = all)"""

    def __post_init__(self) -> None:
        require(self.experts >= 1, "must be >= 1", field="moe.experts")
        require(1 <= self.top_k <= self.experts, f"must be in 1..experts ({self.experts})", field="moe.top_k")
        require(self.expert_ffn >= 1, "must be >= 1", field="moe.expert_ffn")
        require(self.shared_experts >= 0, "must be >= 0", field="moe.shared_experts")
        require(self.shared_expert_ffn >= 0, "must be >= 0", field="moe.shared_expert_ffn")
        require(self.first_dense_layers >= 0, "must be >= 0", field="moe.first_dense_layers")
        require(self.layer_freq >= 1, "must be >= 1", field="moe.layer_freq")


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelSpec:
    """A decoder-only transformer."""

    name: str
    """profile name or the source file's stem"""
    layers: int
    """transformer blocks"""
    hidden: int
    """model width h"""
    heads: int
    """query heads a"""
    kv_heads: int
    """key/value heads (== heads for MHA)"""
    head_dim: int
    """per-head width (usually hidden / heads)"""
    ffn: int
    """dense MLP intermediate width f (dense layers; 0 only if every layer is MoE)"""
    vocab: int
    """vocabulary size V"""
    tied_embeddings: bool = False
    """input embedding and LM head share weights"""
    gated_mlp: bool = True
    """SwiGLU-style MLP with three matrices (False: two matrices, e.g. GELU 4h in GPT-3)"""
    attention: str = "gqa"
    """one of mha, gqa, mla"""
    mla: MLASpec | None = None
    """latent-attention dimensions, required when attention == 'mla'"""
    moe: MoESpec | None = None
    """routed-expert blocks; None for dense models"""
    mtp_layers: int = 0
    """multi-token-prediction modules after the last layer (DeepSeek-V3: 1), placed on the last stage"""
    max_position: int = 0
    """maximum sequence length the model was trained for (0 = unknown)"""
    source: str = ""
    """where this spec came from (profile file, config.json path)"""
    extra: dict[str, Any] = field(default_factory=dict)
    """mapping from the profile/config.json; `hf_model_type` (the HF config's model_type) names the model family, which
    selects per-family engine behaviour (costmodels/serving_fusions.py) and executor support (planner/exports)"""

    def __post_init__(self) -> None:
        for name in ("layers", "hidden", "heads", "kv_heads", "head_dim", "vocab"):
            require(getattr(self, name) >= 1, "must be a positive integer", field=name, source=self.source or None)
        require(self.ffn >= 0, "must be >= 0", field="ffn", source=self.source or None)
        require(self.heads % self.kv_heads == 0,
                f"heads ({self.heads}) must be a multiple of kv_heads ({self.kv_heads})",
                field="kv_heads", source=self.source or None)
        require(self.attention in ATTENTION_KINDS, f"must be one of {', '.join(ATTENTION_KINDS)}",
                field="attention", source=self.source or None)
        require((self.attention == "mla") == (self.mla is not None), "mla dimensions are given iff attention is 'mla'",
                field="mla", source=self.source or None)
        require(self.mtp_layers >= 0, "must be >= 0", field="mtp_layers", source=self.source or None)
        if self.moe is None or self.moe.first_dense_layers > 0 or self.moe.layer_freq > 1:
            require(self.ffn >= 1, "dense layers need ffn >= 1", field="ffn", source=self.source or None)

    @property
    def is_moe(self) -> bool:
        return self.moe is not None

    @property
    def mla_dims(self) -> MLASpec:
        """The MLA dimensions of an attention == 'mla' model (SpecError for any other)."""
        if self.mla is None:
            raise SpecError(f"model {self.name!r} has no MLA dimensions (attention {self.attention!r})", field="mla")
        return self.mla

    @property
    def moe_dims(self) -> MoESpec:
        """The routed-expert block of an MoE model (SpecError for a dense one)."""
        if self.moe is None:
            raise SpecError(f"model {self.name!r} has no routed experts", field="moe")
        return self.moe

    def layer_is_moe(self, index: int) -> bool:
        """True when block `index` (0-based) has a routed-expert MLP."""
        if self.moe is None or index < self.moe.first_dense_layers:
            return False
        return (index - self.moe.first_dense_layers) % self.moe.layer_freq == 0

    @property
    def moe_layers(self) -> int:
        return sum(self.layer_is_moe(i) for i in range(self.layers))

    @property
    def dense_layers(self) -> int:
        return self.layers - self.moe_layers
