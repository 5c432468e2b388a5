"""Model YAML -> ModelSpec. Keys mirror ModelSpec's fields; `moe:` and `mla:` mirror MoESpec and MLASpec.

| key             | meaning                                             | required / default                |
|-----------------|-----------------------------------------------------|-----------------------------------|
| description     | free text (shown by profiles show)                  | no                                |
| layers          | transformer blocks                                  | yes                               |
| hidden          | model width                                         | yes                               |
| heads           | query heads                                         | yes                               |
| kv_heads        | key/value heads                                     | heads                             |
| head_dim        | per-head width                                      | hidden / heads (must divide)      |
| ffn             | dense MLP width (0 allowed when every layer is MoE) | yes                               |
| vocab           | vocabulary size                                     | yes                               |
| tied_embeddings | input embedding shared with LM head                 | false                             |
| gated_mlp       | SwiGLU-style three-matrix MLP                       | true                              |
| attention       | mha, gqa or mla                                     | see below                         |
| mla             | MLASpec fields (all required)                       | no                                |
| moe             | MoESpec fields (experts, top_k, expert_ffn required) | no                               |
| mtp_layers      | multi-token-prediction modules                      | 0                                 |
| max_position    | trained context length                              | 0 (unknown)                       |
| extra           | mapping; hf_model_type names the model family        | {}                                |

attention defaults to mla when an mla block is given, else mha when kv_heads == heads, else gqa.
mla: q_lora_rank, kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim, v_head_dim.
moe: experts, top_k, expert_ffn, shared_experts, shared_expert_ffn, first_dense_layers, layer_freq.
"""

import dataclasses

from costmodels.model import ATTENTION_KINDS, MLASpec, ModelSpec, MoESpec
from profiles.strict import Section

MODEL_KEYS = ("description", "layers", "hidden", "heads", "kv_heads", "head_dim", "ffn", "vocab", "tied_embeddings",
              "gated_mlp", "attention", "mla", "moe", "mtp_layers", "max_position", "extra")
MODEL_REQUIRED = ("layers", "hidden", "heads", "ffn", "vocab")
MLA_KEYS = tuple(f.name for f in dataclasses.fields(MLASpec))
MOE_KEYS = tuple(f.name for f in dataclasses.fields(MoESpec))
MOE_REQUIRED = ("experts", "top_k", "expert_ffn")


def model_from_mapping(data: dict, *, name: str, source: str) -> ModelSpec:
    """Build a ModelSpec from a parsed model YAML mapping."""
    s = Section(data, source=source, allowed=MODEL_KEYS, required=MODEL_REQUIRED)
    hidden, heads = s.integer("hidden"), s.integer("heads")
    kv_heads = s.integer("kv_heads", heads)
    if s.has("head_dim"):
        head_dim = s.integer("head_dim")
    elif heads > 0 and hidden % heads == 0:
        head_dim = hidden // heads
    else:
        raise s.error("head_dim", f"required when heads ({heads}) does not divide hidden ({hidden})")
    mla = None
    if s.has("mla"):
        m = Section(s.raw("mla"), source=source, prefix="mla", allowed=MLA_KEYS, required=MLA_KEYS)
        mla = MLASpec(**{key: m.integer(key) for key in MLA_KEYS})
    moe = None
    if s.has("moe"):
        m = Section(s.raw("moe"), source=source, prefix="moe", allowed=MOE_KEYS, required=MOE_REQUIRED)
        moe = MoESpec(**{key: m.integer(key) for key in MOE_KEYS if key in m.data})
    default_attention = "mla" if mla else ("mha" if kv_heads == heads else "gqa")
    extra = s.raw("extra", {})
    if not isinstance(extra, dict):
        raise s.error("extra", "must be a mapping")
    return ModelSpec(
        name=name,
        layers=s.integer("layers"),
        hidden=hidden,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        ffn=s.integer("ffn"),
        vocab=s.integer("vocab"),
        tied_embeddings=s.flag("tied_embeddings", False),
        gated_mlp=s.flag("gated_mlp", True),
        attention=s.choice("attention", ATTENTION_KINDS, default_attention),
        mla=mla,
        moe=moe,
        mtp_layers=s.integer("mtp_layers", 0),
        max_position=s.integer("max_position", 0),
        source=source,
        extra=dict(sorted(extra.items())),
    )
