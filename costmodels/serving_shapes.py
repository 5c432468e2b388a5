"""The (n, k) weight shapes of the GEMMs one transformer block issues in a serving engine, per GPU.

A GEMM (m x k) @ (k x n) multiplies the step's m token rows by a weight of k input and n output features.
With h = hidden, a = heads, g = kv_heads, d = head_dim, f = MLP width, t = tensor-parallel ranks (the geometry
of costmodels/geometry.py, split the way vLLM, SGLang and TensorRT-LLM shard their linear layers):
  attention (MHA/GQA)  QKV (column parallel, one fused GEMM): n = (a/t + 2·max(1, g/t))·d, k = h (KV heads are
                       replicated when t > g); output (row parallel): n = h, k = a·d/t
  attention (MLA)      the down projections are replicated (vLLM's fused_qkv_a_proj: one GEMM of
                       n = r_q + d_c + d_r, k = h; r_q = 0: a column-parallel q GEMM n = a·(d_n + d_r)/t, k = h and
                       the KV down GEMM n = d_c + d_r, k = h); q up: n = a·(d_n + d_r)/t, k = r_q; KV up:
                       n = a·(d_n + d_v)/t, k = d_c; output: n = h, k = a·d_v/t (the prefill form: decode kernels
                       that absorb the KV up projection into attention run it as batched per-head GEMMs instead)
  MLP                  gate+up (column parallel, one merged GEMM): n = 2·f/t (non-gated: f/t), k = h;
                       down (row parallel): n = h, k = f/t
Shared experts run as one MLP of width S·f_s; routed experts as grouped GEMMs of the MLP shapes at the expert
tensor-parallel degree. Each shape names the kernel that produces its BF16 input (QUANT_SOURCES), which is where an
engine can fuse the FP8 input quantisation. quant_block_problem says whether an FP8-block checkpoint's
weights can be split into these shapes.
"""

from typing import TYPE_CHECKING

from costmodels.model import ModelSpec

if TYPE_CHECKING:
    from costmodels.serving import InstanceShape

QUANT_SOURCES = ("norm", "attention", "activation", "moe")
"""kernels that produce a GEMM's input: RMSNorm (QKV, gate+up, MLA up projections), attention (output projection),
the SiLU-mul / GELU activation (down projection), and the fused MoE layer (its grouped GEMMs' own inputs)"""
Shape = tuple[float, float, str]
"""(n, k, source): output and input features of one GEMM's weight on one GPU, and the kernel producing its input"""


def attention_gemms(model: ModelSpec, tp: int) -> list[Shape]:
    """QKV (or MLA down/up) projections and the output projection of one block on one of tp ranks."""
    h, a = float(model.hidden), model.heads / tp
    if model.attention != "mla":
        d = model.head_dim
        return [((a + 2 * max(1.0, model.kv_heads / tp)) * d, h, "norm"), (h, a * d, "attention")]
    m = model.mla_dims
    qk = m.qk_nope_head_dim + m.qk_rope_head_dim
    kv_down = m.kv_lora_rank + m.qk_rope_head_dim
    if m.q_lora_rank:
        down = [(float(m.q_lora_rank + kv_down), h, "norm"), (a * qk, float(m.q_lora_rank), "norm")]
    else:
        down = [(a * qk, h, "norm"), (float(kv_down), h, "norm")]
    return [*down, (a * (m.qk_nope_head_dim + m.v_head_dim), float(m.kv_lora_rank), "norm"),
            (h, a * m.v_head_dim, "attention")]


def mlp_gemms(model: ModelSpec, width: float, tp: int) -> list[Shape]:
    """Gate+up (merged) and down projections of an MLP of intermediate `width` split over tp ranks."""
    h, f = float(model.hidden), width / tp
    return [((2.0 if model.gated_mlp else 1.0) * f, h, "norm"), (h, f, "activation")]


def quant_block_problem(model: ModelSpec, shape: "InstanceShape", block: int) -> str:
    """Why an FP8-block checkpoint (block x block scales) cannot be split this way ("" when it can): every
    tensor-split weight dimension (dense FFN / tp, expert FFN / expert-TP) must be a multiple of the block."""
    if block <= 0:
        return ""
    splits = []
    if model.layers - model.moe_layers:
        splits.append(("ffn", model.ffn, shape.tp))
    if model.moe is not None:
        splits.append(("moe.expert_ffn", model.moe_dims.expert_ffn, shape.tp * shape.dp // shape.ep))
    for name, width, ways in splits:
        if ways > 1 and (width % ways or (width // ways) % block):
            return (f"{name} {width} split {ways} ways gives {width / ways:g} columns, not a multiple of the "
                    f"{block}-wide FP8 quantization block; the checkpoint cannot be loaded at this split")
    return ""
