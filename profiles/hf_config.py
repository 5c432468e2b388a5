"""Hugging Face `config.json` -> ModelSpec, for the architectures whose fields we know.

Field names follow the transformers configuration classes of each model_type. A config.json carries many
keys we do not need (dropout, rope scaling, token ids), so unknown keys are ignored here; a missing key
that we need, or a layer pattern ModelSpec cannot express, is a SpecError naming the field.

Layer patterns: transformers' Qwen MoE models put experts on layer i when (i + 1) % decoder_sparse_step == 0
and i is not in mlp_only_layers; DeepSeek puts them on i >= first_k_dense_replace with i % moe_layer_freq == 0.
ModelSpec says: layer i is MoE when i >= first_dense_layers and (i - first_dense_layers) % layer_freq == 0.
"""

from costmodels.errors import SpecError
from costmodels.model import MLASpec, ModelSpec, MoESpec

DENSE_TYPES = ("llama", "mistral", "qwen2", "qwen3")
SUPPORTED_MODEL_TYPES = ("deepseek_v2", "deepseek_v3", "gpt2", "gpt_oss", "llama", "mistral", "mixtral", "qwen2",
                         "qwen2_moe", "qwen3", "qwen3_moe")


class _Config:
    """Typed access to a config.json mapping; errors name the file and field."""

    def __init__(self, config: dict, source: str):
        self.config = config
        self.source = source

    def get(self, key: str, default=None, *, kind=int):
        value = self.config.get(key)
        if value is None:
            if default is None:
                raise SpecError(f"missing required field {key!r} for model_type "
                                f"{self.config.get('model_type')!r}", source=self.source, field=key)
            return default
        if kind is int and isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
            raise SpecError(f"must be {kind.__name__}, got {value!r}", source=self.source, field=key)
        return value


def model_from_hf_config(config: dict, *, name: str, source: str) -> ModelSpec:
    """Build a ModelSpec from a parsed Hugging Face config.json mapping."""
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise SpecError(f"unsupported model_type {model_type!r}; supported: {', '.join(SUPPORTED_MODEL_TYPES)}",
                        source=source, field="model_type")
    c = _Config(config, source)
    if model_type == "gpt2":
        return _gpt2(c, name=name, source=source)
    hidden, heads = c.get("hidden_size"), c.get("num_attention_heads")
    common = dict(
        name=name,
        layers=c.get("num_hidden_layers"),
        hidden=hidden,
        heads=heads,
        kv_heads=c.get("num_key_value_heads", heads),
        vocab=c.get("vocab_size"),
        tied_embeddings=c.get("tie_word_embeddings", False, kind=bool),
        gated_mlp=True,
        max_position=c.get("max_position_embeddings", 0),
        source=source,
        extra={"hf_model_type": model_type},
    )
    if model_type in ("deepseek_v2", "deepseek_v3"):
        return _deepseek(c, common)
    common["head_dim"] = c.get("head_dim", hidden // heads if hidden % heads == 0 else None)
    common["attention"] = "mha" if common["kv_heads"] == heads else "gqa"
    if model_type in DENSE_TYPES:
        return ModelSpec(ffn=c.get("intermediate_size"), **common)
    if model_type in ("mixtral", "gpt_oss"):
        # gpt_oss: every layer MoE; its alternating sliding-window attention is not modelled (kept in extra)
        ffn = c.get("intermediate_size")
        top_k = c.get("num_experts_per_tok", c.config.get("experts_per_token"))
        moe = MoESpec(experts=c.get("num_local_experts"), top_k=top_k, expert_ffn=ffn)
        if c.config.get("sliding_window"):
            common["extra"] = {**common["extra"], "sliding_window": c.get("sliding_window")}
        return ModelSpec(ffn=ffn, moe=moe, **common)
    return _qwen_moe(c, common, shared=(model_type == "qwen2_moe"))


def _gpt2(c: _Config, *, name: str, source: str) -> ModelSpec:
    """GPT-2/GPT-3 style: MHA, two-matrix GELU MLP of n_inner (default 4 * n_embd), tied embeddings."""
    hidden, heads = c.get("n_embd"), c.get("n_head")
    if hidden % heads:
        raise SpecError(f"n_head ({heads}) must divide n_embd ({hidden})", source=source, field="n_head")
    return ModelSpec(
        name=name, layers=c.get("n_layer"), hidden=hidden, heads=heads, kv_heads=heads, head_dim=hidden // heads,
        ffn=c.get("n_inner", 4 * hidden), vocab=c.get("vocab_size"),
        tied_embeddings=c.get("tie_word_embeddings", True, kind=bool), gated_mlp=False, attention="mha",
        max_position=c.get("n_positions", 0), source=source, extra={"hf_model_type": "gpt2"})


def _qwen_moe(c: _Config, common: dict, *, shared: bool) -> ModelSpec:
    """qwen2_moe (one gated shared expert) and qwen3_moe (no shared expert)."""
    layers = common["layers"]
    step = c.get("decoder_sparse_step", 1)
    only_mlp = c.config.get("mlp_only_layers") or []
    if not isinstance(only_mlp, list) or only_mlp != list(range(len(only_mlp))):
        raise SpecError("only a leading run of dense layers [0, 1, ..., k-1] is supported, got "
                        f"{only_mlp!r}", source=c.source, field="mlp_only_layers")
    if step < 1:
        raise SpecError(f"must be >= 1, got {step}", source=c.source, field="decoder_sparse_step")
    # first MoE layer: the first i >= len(only_mlp) with (i + 1) % step == 0
    first = len(only_mlp) + (-(len(only_mlp) + 1)) % step
    if first >= layers:
        raise SpecError("no layer would be MoE", source=c.source, field="decoder_sparse_step")
    shared_ffn = c.get("shared_expert_intermediate_size") if shared else 0
    moe = MoESpec(experts=c.get("num_experts"), top_k=c.get("num_experts_per_tok"),
                  expert_ffn=c.get("moe_intermediate_size"), shared_experts=1 if shared_ffn else 0,
                  shared_expert_ffn=shared_ffn, first_dense_layers=first, layer_freq=step)
    return ModelSpec(ffn=c.get("intermediate_size"), moe=moe, **common)


def _deepseek(c: _Config, common: dict) -> ModelSpec:
    """DeepSeek-V2/V3: MLA attention, dense-then-MoE layers, shared experts, multi-token prediction (V3)."""
    mla = MLASpec(q_lora_rank=c.get("q_lora_rank", 0), kv_lora_rank=c.get("kv_lora_rank"),
                  qk_nope_head_dim=c.get("qk_nope_head_dim"), qk_rope_head_dim=c.get("qk_rope_head_dim"),
                  v_head_dim=c.get("v_head_dim"))
    freq = c.get("moe_layer_freq", 1)
    if freq < 1:
        raise SpecError(f"must be >= 1, got {freq}", source=c.source, field="moe_layer_freq")
    first_k = c.get("first_k_dense_replace", 0)
    first = -(-first_k // freq) * freq  # first i >= first_k_dense_replace with i % moe_layer_freq == 0
    expert_ffn = c.get("moe_intermediate_size")
    shared = c.get("n_shared_experts", 0)
    moe = MoESpec(experts=c.get("n_routed_experts"), top_k=c.get("num_experts_per_tok"), expert_ffn=expert_ffn,
                  shared_experts=shared, shared_expert_ffn=expert_ffn if shared else 0, first_dense_layers=first,
                  layer_freq=freq)
    return ModelSpec(head_dim=mla.qk_nope_head_dim + mla.qk_rope_head_dim, ffn=c.get("intermediate_size"),
                     attention="mla", mla=mla, moe=moe, mtp_layers=c.get("num_nextn_predict_layers", 0), **common)
