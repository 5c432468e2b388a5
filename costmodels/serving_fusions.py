"""Which FP8 (per-tensor) GEMM inputs a serving engine quantises inside the kernel producing them, per model family.

An FP8 GEMM reads an FP8 input. Where the kernel producing that input (RMSNorm, attention, the SiLU-mul activation,
the fused MoE layer: serving_shapes.QUANT_SOURCES) writes FP8 itself, the quantisation costs nothing extra;
every other FP8 GEMM input is quantised by a kernel of its own, priced by costmodels/serving_gemm.py fp8_quant_s
(the static-scale quantise kernel of a per-tensor FP8 checkpoint). What an engine fuses is read from its sources:
MEASURED_FUSED_QUANT per engine, FAMILY_FUSED_QUANT where an engine's model file for a family differs (TensorRT-LLM:
each model file decides whether its RMSNorms run inside the all-reduce with FP8 output).
"""

from costmodels.model import ModelSpec

ALLREDUCE_NORM = "allreduce_norm"
"""fused_quant entry: the RMSNorm (and its FP8 quantisation) runs inside the TP all-reduce kernel before it, so the
"norm" inputs are fused only where there is an all-reduce (tp > 1) and the engine enables that fusion
(hidden > ALLREDUCE_NORM_MIN_HIDDEN)"""
ALLREDUCE_NORM_MIN_HIDDEN = 4096
"""TensorRT-LLM enables the all-reduce + RMSNorm fusion only above this hidden size (modeling_llama.py)"""
MEASURED_FUSED_QUANT = {
    # FP8 (per-tensor) GEMM inputs each measured engine quantises inside the producing kernel, by source
    # (serving_shapes.QUANT_SOURCES), for a model family FAMILY_FUSED_QUANT does not name; "moe": the fused MoE layer
    # quantises its own inputs (the fitted MoE constants include that). Every other FP8 GEMM input is quantised by a
    # kernel of its own (a static-scale quantise kernel: serving_gemm.fp8_quant_s).
    # vllm: torch.compile (-O2 default) lets Inductor generate RMSNorm+quant and SiLU-mul+quant kernels (the
    #   fuse_norm_quant / fuse_act_quant passes only step in for custom-op kernels); the attention output is quantised
    #   separately (fuse_attn_quant is off at every level) -- vllm docs/design/fusions.md; model-independent (graph
    #   passes over every model's FX graph)
    "vllm": frozenset({"norm", "activation", "moe"}),
    # sglang: no torch.compile by default; apply_fp8_linear quantises its BF16 input itself (static_quant_fp8 /
    #   scaled_fp8_quant, then the CUTLASS scaled GEMM) -- python/sglang/srt/layers/quantization/fp8_utils.py;
    #   model-independent (every model's linear layers)
    "sglang": frozenset({"moe"}),
    # trtllm (PyTorch backend), the fusions of its shared modules: the attention kernel writes the FP8 o_proj input
    #   (out_scale = o_proj.inv_input_scale when o_proj has FP8 QDQ, tensorrt_llm/_torch/modules/attention.py
    #   Attention; requested whatever the KV dtype: which kernel writes it with a BF16 KV cache not checked),
    #   GatedMLP._apply_activation emits the FP8 down_proj input (swiglu with quant_scale = down_proj.input_scale,
    #   modules/gated_mlp.py); the norm quantisation inside the all-reduce is model code (FAMILY_FUSED_QUANT)
    "trtllm": frozenset({"attention", "activation", "moe"}),
}
FAMILY_FUSED_QUANT: dict[str, dict[str, frozenset[str]]] = {
    # engine -> model family (ModelSpec.extra["hf_model_type"], the HF config's model_type) -> the FP8 GEMM inputs
    # the engine quantises in the producing kernel for that family (replaces MEASURED_FUSED_QUANT[engine]).
    # TensorRT-LLM 1.3 PyTorch backend, read in tensorrt_llm/_torch/models/<file> (and modules/):
    "trtllm": {
        # modeling_llama.py LlamaDecoderLayer: PRE_/POST_MLP_FUSION = has_tp and not attention DP and hidden > 4096
        #   run both RMSNorms inside the all-reduce with RESIDUAL_RMS_NORM_QUANT_FP8 (scale: gate_up_proj / the next
        #   layer's qkv_proj input_scale), whatever the all-reduce strategy (distributed/ops.py AllReduce: NCCL, UB
        #   and LOWPRECISION run the fused op as consecutive kernels, the norm kernel still writing FP8); Attention
        #   and GatedMLP as the default
        "llama": frozenset({ALLREDUCE_NORM, "attention", "activation", "moe"}),
        # modeling_qwen3.py Qwen3DecoderLayer: plain RMSNorm modules (BF16 out) and an un-fused all-reduce
        #   (AllReduceParams(enable_allreduce=...) only): QKV and gate+up inputs get their own quantise kernel;
        #   QKNormRoPEAttention (an Attention) and GatedMLP fuse as the default
        "qwen3": frozenset({"attention", "activation"}),
        # modeling_qwen3_moe.py Qwen3MoEDecoderLayer: PRE_/POST_MOE_FUSION use AllReduceFusionOp.RESIDUAL_RMS_NORM
        #   (BF16 out, no quantisation): QKV inputs quantised on their own; Attention as the default
        "qwen3_moe": frozenset({"attention", "moe"}),
        # modeling_qwen_moe.py QwenMoeDecoderLayer: plain RMSNorm modules; Attention, the shared expert's GatedMLP
        "qwen2_moe": frozenset({"attention", "activation", "moe"}),
        # modeling_mixtral.py MixtralDecoderLayer: plain RMSNorm modules, no all-reduce fusion; Attention
        "mixtral": frozenset({"attention", "moe"}),
        # modeling_deepseekv3.py: the all-reduce fusions use RESIDUAL_RMS_NORM for FP8 (quantising only for NVFP4);
        #   MLA writes its output in BF16 (modules/attention.py MLA: "out_scale = None  # Although we use FP8 MLA
        #   ..., the output is still in BF16"): o_proj input quantised on its own; dense layers' GatedMLP fuses
        "deepseek_v3": frozenset({"activation", "moe"}),
    },
}
"""Families not named for an engine take MEASURED_FUSED_QUANT[engine] (vLLM's and SGLang's fusions do not depend on
the model file; TensorRT-LLM's unnamed families: the shared modules' fusions, not checked per file)"""


def model_family(model: ModelSpec) -> str:
    """The model's family: its HF model_type (profiles' `extra.hf_model_type`, set from config.json); "" unknown."""
    return str(model.extra.get("hf_model_type", ""))


def fused_quant_sources(fused: frozenset[str], model: ModelSpec, tp: int) -> frozenset[str]:
    """The GEMM input sources (serving_shapes.QUANT_SOURCES) whose FP8 quantisation runs inside the producing kernel
    for an engine's `fused_quant` set on `model` at TP `tp`."""
    if ALLREDUCE_NORM in fused and tp > 1 and model.hidden > ALLREDUCE_NORM_MIN_HIDDEN:
        return fused | {"norm"}
    return fused


def family_fused_quant(engine: str, default: frozenset[str], model: ModelSpec) -> frozenset[str]:
    """The fused set of `engine` for `model`'s family: FAMILY_FUSED_QUANT where it names the family, else `default`
    (the engine's MEASURED_FUSED_QUANT entry; empty for the legacy and modern engines)."""
    return FAMILY_FUSED_QUANT.get(engine, {}).get(model_family(model), default)

