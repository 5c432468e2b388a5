"""The (n, k) of every GEMM a serving step issues (costmodels/serving_shapes.py), by hand, and the serving model's
use of them (costmodels/serving.py _dense_gemms / _routed_experts) with each engine's fused FP8 quantisation."""

import pytest

import profiles
from costmodels.serving import ENGINES, InstanceShape, engine_kernels, prefill_time
from costmodels.serving_fusions import (
    ALLREDUCE_NORM,
    FAMILY_FUSED_QUANT,
    MEASURED_FUSED_QUANT,
    family_fused_quant,
    fused_quant_sources,
)
from costmodels.serving_gemm import input_quant_s
from costmodels.serving_kernels import gemm_s, grouped_gemm_s
from costmodels.serving_moe_configs import config_block_rows
from costmodels.serving_shapes import QUANT_SOURCES, attention_gemms, mlp_gemms


def test_llama_block_shapes_by_hand():
    m = profiles.load_model("llama3.1-70b")  # h 8192, 64 heads, 8 KV heads, head 128, ffn 28672
    assert attention_gemms(m, 2) == [((32 + 8) * 128, 8192, "norm"), (8192, 32 * 128, "attention")]
    # TP 16 > 8 KV heads: each rank keeps one (replicated) KV head
    assert attention_gemms(m, 16)[0] == ((4 + 2) * 128, 8192, "norm")
    # merged gate+up (column parallel), down projection reads the ffn/tp slice (row parallel)
    assert mlp_gemms(m, m.ffn, 4) == [(2 * 7168, 8192, "norm"), (8192, 7168, "activation")]


def test_mla_block_shapes_by_hand():
    m = profiles.load_model("deepseek-v3")  # h 7168, 128 heads, r_q 1536, d_c 512, d_r 64, d_n 128, d_v 128
    assert attention_gemms(m, 8) == [
        (1536 + 512 + 64, 7168, "norm"),    # fused q/kv down projection, replicated
        (16 * (128 + 64), 1536, "norm"),    # q up
        (16 * (128 + 128), 512, "norm"),    # kv up
        (7168, 16 * 128, "attention"),      # output
    ]


def test_non_gated_mlp_shapes():
    m = profiles.load_model("gpt3-175b")
    assert mlp_gemms(m, m.ffn, 8) == [(m.ffn / 8, m.hidden, "norm"), (m.hidden, m.ffn / 8, "activation")]


def test_fused_quant_sources_are_known():
    for engine, fused in MEASURED_FUSED_QUANT.items():
        assert fused <= {*QUANT_SOURCES, ALLREDUCE_NORM}, engine
        assert ENGINES[engine].fused_quant == fused
    assert ENGINES["legacy"].fused_quant == frozenset()


def test_trtllm_fuses_the_norm_quantisation_only_into_an_all_reduce():
    """TensorRT-LLM quantises the RMSNorm output inside the TP all-reduce kernel: not at TP 1 (no all-reduce), not for
    hidden <= 4096 (fusion disabled there)."""
    fused = FAMILY_FUSED_QUANT["trtllm"]["llama"]
    big, small = profiles.load_model("llama3.1-70b"), profiles.load_model("llama3.1-8b")
    assert "norm" in fused_quant_sources(fused, big, 2)
    assert "norm" not in fused_quant_sources(fused, big, 1)
    assert "norm" not in fused_quant_sources(fused, small, 2)
    assert fused_quant_sources(MEASURED_FUSED_QUANT["vllm"], big, 1) == MEASURED_FUSED_QUANT["vllm"]


@pytest.mark.parametrize("engine", ["vllm", "sglang", "trtllm"])
@pytest.mark.parametrize("dtype", ["bf16", "fp8"])
def test_prefill_gemms_are_the_block_shapes(engine, dtype):
    """The prefill step's GEMM time is layers x the block's GEMMs at their (n, k), FP8 inputs quantised by their
    own kernel unless the engine fuses that source."""
    model = profiles.load_model("llama3.1-70b")
    dev = profiles.load_device("h100-sxm")
    ek = engine_kernels(dev, ENGINES[engine])
    tokens, tp = 2048, 4
    fused = fused_quant_sources(family_fused_quant(engine, MEASURED_FUSED_QUANT[engine], model), model, tp)
    shapes = attention_gemms(model, tp) + mlp_gemms(model, model.ffn, tp)
    block = sum(gemm_s(ek, tokens, n, k, dtype) - (input_quant_s(ek.device, ek.k, tokens, k)
                                                     if dtype == "fp8" and src in fused else 0.0)
                for n, k, src in shapes)
    got = prefill_time(model, dev, InstanceShape(tp=tp), batch=1, prompt_len=tokens, engine=engine, dtype=dtype,
                       kv_dtype="bf16")
    assert got["gemm_s"] == pytest.approx(model.layers * block)


def test_routed_experts_down_projection_reads_the_expert_slice():
    """Qwen3-30B-A3B (48 layers, 128 experts of width 768, top-8, h 2048) at TP 2, EP 2: each GPU holds 64 experts
    split 1 way; the grouped down GEMM has k = 768, n = 2048."""
    model = profiles.load_model("qwen3-30b-a3b")
    dev = profiles.load_device("h200")
    ek = engine_kernels(dev, ENGINES["vllm"])
    moe = model.moe_dims
    tokens = 1024
    slots = tokens * moe.top_k / 2
    # vLLM 0.24.0 ships no tuned config for 64 experts of width 768 on H200: its default config's row blocks; its
    # Triton path walks all tokens x top-k slots of the layer
    rows = config_block_rows("vllm", "h200", tokens, moe.experts / 2, moe.expert_ffn, "bf16")
    assert rows == 128.0
    walked = tokens * moe.top_k
    experts = (grouped_gemm_s(ek, slots, moe.experts / 2, 2 * moe.expert_ffn, model.hidden, "bf16", False, rows,
                              walked)
               + grouped_gemm_s(ek, slots, moe.experts / 2, model.hidden, moe.expert_ffn, "bf16", False, rows, walked))
    dense = sum(gemm_s(ek, tokens, n, k, "bf16") for n, k, _ in attention_gemms(model, 2))
    router = gemm_s(ek, tokens, moe.experts, model.hidden, "bf16")
    got = prefill_time(model, dev, InstanceShape(tp=2, ep=2), batch=1, prompt_len=tokens, engine="vllm")
    assert got["gemm_s"] == pytest.approx(model.layers * (experts + dense + router))
