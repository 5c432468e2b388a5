"""The activation kernel of FlashInfer's TensorRT-LLM-gen fused MoE with block-scaled (DeepSeek) FP8 experts (SGLang's
FP8 experts on B200): t_act · (the layer's routed slots, all GPUs') · (expert width per GPU), once per MoE layer
(costmodels/serving_moe_flashinfer.trtllm_gen_activation_s), in serving's step time and in the fit's predictor of
SGLang's measured B200 FP8 rows; fitted for SGLang on B200 only."""

import dataclasses

import pytest
from bench_modules import bench_modules
from kernel_constants import kernel_constants

import profiles
from costmodels.serving import InstanceShape, decode_step_time, prefill_time
from costmodels.serving_constants import KernelConstants
from costmodels.serving_kernels import EngineKernels, engine_calibration
from costmodels.serving_moe_flashinfer import trtllm_gen_activation_s

MODEL = "qwen3-30b-a3b"


def _b200_with(act: float):
    # SGLang's B200 FP8 MoE as if it met the accuracy bar (moe_fp8_fitted), with the activation kernel's constant
    b200 = profiles.load_device("b200")
    return dataclasses.replace(b200, serving_engines=tuple(
        dataclasses.replace(c, moe_gen_act_s=act, moe_fp8_fitted=True) if c.engine == "sglang" else c
        for c in b200.serving_engines))


def test_activation_kernel_by_hand():
    # 2 ps x (512 tokens x top-8 = 4096 routed slots) x 768-wide experts = 6.291456 µs; 0 with the constant 0
    k = kernel_constants(moe_gen_act_s=2e-12)
    assert trtllm_gen_activation_s(k, 4096.0, 768.0) == pytest.approx(2e-12 * 4096 * 768, rel=1e-12)
    assert trtllm_gen_activation_s(kernel_constants(), 4096.0, 768.0) == 0.0


@pytest.mark.parametrize("shape", [InstanceShape(tp=2), InstanceShape(tp=2, ep=2), InstanceShape(tp=4, ep=4)])
def test_activation_kernel_in_the_step_time(shape: InstanceShape):
    # once per MoE layer over every token entering it times top_k (all GPUs' slots, whatever the EP) and the expert
    # width per GPU (expert_ffn / expert TP, expert TP = tp·dp/ep); FP8 experts only, BF16 steps unchanged
    qwen = profiles.load_model(MODEL)
    base, more = _b200_with(0.0), _b200_with(2e-12)
    kw = dict(batch=4, prompt_len=1024, engine="sglang")
    etp = shape.tp * shape.dp // shape.ep
    added = 2e-12 * 4 * 1024 * qwen.moe_dims.top_k * qwen.moe_dims.expert_ffn / etp * qwen.moe_layers
    diff = prefill_time(qwen, more, shape, dtype="fp8", **kw)["gemm_s"] - prefill_time(qwen, base, shape, dtype="fp8",
                                                                                        **kw)["gemm_s"]
    assert diff == pytest.approx(added, rel=1e-6)
    assert prefill_time(qwen, more, shape, **kw)["gemm_s"] == prefill_time(qwen, base, shape, **kw)["gemm_s"]
    dk = dict(batch=16, context_len=1024, engine="sglang", dtype="fp8")
    assert decode_step_time(qwen, more, shape, **dk)["time_s"] > decode_step_time(qwen, base, shape, **dk)["time_s"]


def test_fitted_only_for_sglang_on_b200_off_its_bounds():
    # SGLang's B200 FP8 experts are block-scaled (its table has only fp8_block rows): fitted there, ~3.8 ps per
    # slot-width element, the EP 32-256 asymptote of its table (3.4-5.3 ps); every other engine and device has none
    for gpu in ("h100-sxm", "h200", "b200"):
        for cal in profiles.load_device(gpu).serving_engines:
            if (gpu, cal.engine) == ("b200", "sglang"):
                assert 2e-12 < cal.moe_gen_act_s < 6e-12
            else:
                assert cal.moe_gen_act_s == 0.0


def test_fit_predictor_adds_it_to_sglangs_fp8_rows_only():
    (ops,) = bench_modules("serve_engine_ops", needs="the fit's MoE predictor")
    b200 = profiles.load_device("b200")
    k = KernelConstants.of_engine(engine_calibration(b200, "sglang"))
    on = EngineKernels(b200, dataclasses.replace(k, moe_gen_act_s=2e-12))
    off = EngineKernels(b200, dataclasses.replace(k, moe_gen_act_s=0.0))
    fp8 = (256, 2048, 768, 8, 128, 2, 4, "fp8", 0.0)  # tokens, hidden, inter, top_k, experts, moe_tp, ep, dtype
    want = 2e-12 * 256 * 8 * 768 / 2
    assert ops.predict_moe(on, fp8, engine="sglang") - ops.predict_moe(off, fp8, engine="sglang") == pytest.approx(want)
    bf16 = (*fp8[:7], "bf16", 0.0)
    assert ops.predict_moe(on, bf16, engine="sglang") == ops.predict_moe(off, bf16, engine="sglang")
