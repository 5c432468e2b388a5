"""Which FP8 GEMM inputs each engine quantises inside the producing kernel, per model family
(costmodels/serving_fusions.py), and the standalone quantise kernels the serving model charges for the rest,
checked by hand on Qwen3-32B and Llama-3.1-70B at TP 1 and TP 8."""

import pytest

import profiles
from costmodels.model import ModelSpec
from costmodels.serving import ENGINES, InstanceShape, engine_kernels, prefill_time
from costmodels.serving_fusions import (
    ALLREDUCE_NORM,
    FAMILY_FUSED_QUANT,
    MEASURED_FUSED_QUANT,
    family_fused_quant,
    fused_quant_sources,
    model_family,
)
from costmodels.serving_gemm import gemm_fp8_s, input_quant_s
from costmodels.serving_shapes import QUANT_SOURCES


def _charged(engine: str, model: ModelSpec, tp: int) -> set[str]:
    """The dense GEMM input sources that get a quantise kernel of their own."""
    fused = fused_quant_sources(family_fused_quant(engine, MEASURED_FUSED_QUANT[engine], model), model, tp)
    return {"norm", "attention", "activation"} - fused


def test_family_entries_are_known_sources_and_shipped_families():
    families = {model_family(profiles.load_model(n)) for n in profiles.list_profiles()["models"]}
    for engine, table in FAMILY_FUSED_QUANT.items():
        assert engine in MEASURED_FUSED_QUANT
        for family, fused in table.items():
            assert family in families, family  # a model_type some profile carries (no typo)
            assert fused <= {*QUANT_SOURCES, ALLREDUCE_NORM}, (engine, family)


def test_trtllm_fusions_by_family_and_tp():
    """Llama's model file runs the RMSNorms inside the all-reduce with FP8 output (TP > 1, hidden > 4096); Qwen3's
    runs plain RMSNorms, so its QKV and gate+up inputs are quantised on their own at every TP; attention output and
    activation are fused for both."""
    llama, qwen3 = profiles.load_model("llama3.1-70b"), profiles.load_model("qwen3-32b")
    assert model_family(llama) == "llama" and model_family(qwen3) == "qwen3"
    assert _charged("trtllm", llama, 1) == {"norm"}
    assert _charged("trtllm", llama, 8) == set()
    assert _charged("trtllm", qwen3, 1) == {"norm"}
    assert _charged("trtllm", qwen3, 8) == {"norm"}
    assert _charged("trtllm", profiles.load_model("llama3.1-8b"), 8) == {"norm"}  # hidden 4096: no fusion
    # MLA writes BF16: DeepSeek-V3's output projection input is quantised on its own
    assert _charged("trtllm", profiles.load_model("deepseek-v3"), 8) == {"norm", "attention"}
    assert _charged("trtllm", profiles.load_model("mixtral-8x7b"), 8) == {"norm", "activation"}


def test_engines_without_family_entries_use_their_default():
    unknown = profiles.load_model("llama3.1-70b")
    bare = ModelSpec(name="bare", layers=unknown.layers, hidden=unknown.hidden, heads=unknown.heads,
                     kv_heads=unknown.kv_heads, head_dim=unknown.head_dim, ffn=unknown.ffn, vocab=unknown.vocab)
    assert model_family(bare) == ""
    assert family_fused_quant("trtllm", MEASURED_FUSED_QUANT["trtllm"], bare) == MEASURED_FUSED_QUANT["trtllm"]
    assert _charged("trtllm", bare, 8) == {"norm"}  # the all-reduce norm fusion is per model file
    for name in ("llama3.1-70b", "qwen3-32b"):
        model = profiles.load_model(name)
        assert _charged("vllm", model, 8) == {"attention"}
        assert _charged("sglang", model, 8) == {"norm", "attention", "activation"}
    assert family_fused_quant("legacy", ENGINES["legacy"].fused_quant, unknown) == frozenset()


@pytest.mark.parametrize(("name", "tp", "charged_k"), [
    # (model, TP, the k of each GEMM whose input gets its own quantise kernel) -- by hand from the shapes:
    ("llama3.1-70b", 1, (8192, 8192)),   # QKV and gate+up read the 8192-wide norm output
    ("llama3.1-70b", 8, ()),             # all four fused (norms inside the all-reduce)
    ("qwen3-32b", 1, (5120, 5120)),      # QKV and gate+up
    ("qwen3-32b", 8, (5120, 5120)),      # still QKV and gate+up: Qwen3 has no all-reduce norm fusion
])
def test_trtllm_prefill_gemms_charge_these_quantisations(name, tp, charged_k):
    """TensorRT-LLM FP8 prefill of 2048 tokens on H200: the step's GEMM time is layers x (the FP8 GEMM kernels of
    QKV, output, gate+up, down + one input quantisation per charged input)."""
    model, dev = profiles.load_model(name), profiles.load_device("h200")
    ek = engine_kernels(dev, ENGINES["trtllm"])
    tokens = 2048
    a, g, d = model.heads // tp, max(1, model.kv_heads // tp), model.head_dim
    f, h = model.ffn // tp, model.hidden
    kernels = [((a + 2 * g) * d, h), (h, a * d), (2 * f, h), (h, f)]
    block = sum(gemm_fp8_s(ek.device, ek.k, tokens, n, k) for n, k in kernels)
    block += sum(input_quant_s(ek.device, ek.k, tokens, k) for k in charged_k)
    got = prefill_time(model, dev, InstanceShape(tp=tp), batch=1, prompt_len=tokens, engine="trtllm", dtype="fp8",
                       kv_dtype="bf16")
    assert got["gemm_s"] == pytest.approx(model.layers * block)
