"""A MoE layer's per-tensor FP8 input quantised by a kernel of its own (moe_input_quant: TensorRT-LLM's
CutlassFusedMoE on Hopper and B200, quantize_input -> static_quantize_e4m3_per_tensor over every token entering the
layer): priced once per layer by the engine's fitted static quantise kernel (serving_gemm.moe_input_quant_s =
fp8_quant_s(tokens, hidden)), in the fit's predictor of the measured rows and in serving alike."""

import dataclasses
import json

import pytest
from bench_modules import fit_tables
from click.testing import CliRunner

import profiles
from cli import main
from costmodels import serving_gemm
from costmodels.errors import SpecError
from costmodels.serving import InstanceShape, prefill_time
from costmodels.serving_constants import KernelConstants
from costmodels.serving_kernels import EngineKernels, engine_calibration
from planner.serve.estimate import estimate_serving

MODEL = "qwen3-30b-a3b"


def _kernels(engine: str, device: str = "b200", **changes: float) -> EngineKernels:
    dev = profiles.load_device(device)
    k = KernelConstants.of_engine(engine_calibration(dev, engine))
    return EngineKernels(dev, dataclasses.replace(k, **changes))


def test_input_quant_is_the_static_quantise_kernel_over_the_whole_input():
    on, off = _kernels("trtllm", moe_input_quant=1.0), _kernels("trtllm", moe_input_quant=0.0)
    for tokens, hidden in ((1.0, 2048.0), (512.0, 4096.0), (16384.0, 6144.0)):
        want = serving_gemm.fp8_quant_s(on.device, on.k, tokens, hidden)
        assert serving_gemm.moe_input_quant_s(on.device, on.k, tokens, hidden) == want > 0
        assert serving_gemm.moe_input_quant_s(off.device, off.k, tokens, hidden) == 0.0
    assert serving_gemm.moe_input_quant_s(on.device, on.k, 0.0, 2048.0) == 0.0
    with pytest.raises(SpecError, match="moe_input_quant"):
        dataclasses.replace(engine_calibration(profiles.load_device("b200"), "trtllm"), moe_input_quant=0.5)


def test_rule_and_profiles():
    """The rule is TensorRT-LLM's on every device it is fitted on (read from its source, not fitted); the profiles
    carry it, B200 serves per-tensor FP8 experts with it; the other engines leave it off."""
    fit, _ = fit_tables("b200", "trtllm")
    rules = {key: rule["moe_input_quant"] for key, rule in fit.ENGINE_DEVICE_CONSTANTS.items()
             if "moe_input_quant" in rule}
    assert rules == {("trtllm", "h100-sxm"): 1.0, ("trtllm", "h200"): 1.0, ("trtllm", "b200"): 1.0}
    assert engine_calibration(profiles.load_device("b200"), "trtllm").moe_fp8_fitted
    for device in ("h100-sxm", "h200", "b200"):
        assert {c.engine: c.moe_input_quant for c in profiles.load_device(device).serving_engines} == {
            "sglang": 0.0, "trtllm": 1.0, "vllm": 0.0}


def test_vllm_hopper_tuned_experts_pay_it_on_tensorrt_llm_constants():
    """vLLM's per-tensor FP8 experts on Hopper run FlashInfer's CUTLASS MoE, timed on TensorRT-LLM's constants
    (ek.tuned_moe), and quantise their input in a kernel of their own (no_dp_ep._quantize_input): a vLLM prefill step
    pays TensorRT-LLM's quantise kernel over the step's tokens x hidden once per MoE layer, by that selector."""
    dev, model = profiles.load_device("h100-sxm"), profiles.load_model(MODEL)
    ek = EngineKernels(dev, KernelConstants.of_engine(engine_calibration(dev, "vllm")))
    assert ek.k.moe_input_quant == 0.0 and ek.tuned_moe is not None and ek.tuned_moe.k.moe_input_quant == 1.0
    off = dataclasses.replace(dev, serving_engines=tuple(
        dataclasses.replace(c, moe_input_quant=0.0) if c.engine == "trtllm" else c for c in dev.serving_engines))
    shape, tokens = InstanceShape(tp=1), 4096.0
    times = [prefill_time(model, d, shape, batch=1, prompt_len=tokens, engine="vllm", dtype="fp8")["time_s"]
             for d in (dev, off)]
    want = model.layers * serving_gemm.fp8_quant_s(ek.tuned_moe.device, ek.tuned_moe.k, tokens, model.hidden)
    assert times[0] - times[1] == pytest.approx(want, rel=1e-6) and want > 0


def test_fit_predictor_adds_it_once_per_layer_at_every_ep():
    """On a measured per-tensor FP8 row the selector adds exactly one quantise kernel over the table's tokens x hidden,
    the same at EP 1 and EP 16 (every GPU quantises the whole input); BF16 rows never."""
    fit, _ = fit_tables("b200", "trtllm")
    on, off = _kernels("trtllm", moe_input_quant=1.0), _kernels("trtllm", moe_input_quant=0.0)
    for ep in (1, 16):
        row = (4096, 2048, 768, 8, 128, 1, ep, "fp8", 0.0)
        added = fit.predict_moe(on, row, engine="trtllm") - fit.predict_moe(off, row, engine="trtllm")
        assert added == pytest.approx(serving_gemm.fp8_quant_s(on.device, on.k, 4096, 2048))
        bf16 = (4096, 2048, 768, 8, 128, 1, ep, "bf16", 0.0)
        assert fit.predict_moe(on, bf16, engine="trtllm") == fit.predict_moe(off, bf16, engine="trtllm")


def test_per_tensor_fp8_moe_served_on_b200_by_trtllm_end_to_end():
    """TensorRT-LLM's per-tensor FP8 MoE meets the bar on B200: served (CLI == API), a finite step below the BF16
    one, and the input quantise kernel is in it (the same profile with the selector off runs faster)."""
    args = ["estimate", "serve", "--model", MODEL, "--gpu", "b200", "--engine", "trtllm", "--tp", "1", "--batch", "64",
            "--isl", "2048", "--osl", "64", "-o", "-"]
    r = CliRunner().invoke(main, [*args, "--dtype", "fp8"])
    assert r.exit_code == 0, r.output
    dev, model = profiles.load_device("b200"), profiles.load_model(MODEL)
    api = estimate_serving(model, dev, tp=1, batch=64, isl=2048, osl=64, engine="trtllm", dtype="fp8")
    assert json.loads(api.dumps()) == json.loads(r.output)
    bf16 = CliRunner().invoke(main, args)
    assert bf16.exit_code == 0, bf16.output
    p, b = json.loads(r.output)["predicted"], json.loads(bf16.output)["predicted"]
    assert 0 < p["prefill_s"] < b["prefill_s"] and 0 < p["decode_step_s"] < b["decode_step_s"]
    off = dataclasses.replace(dev, serving_engines=tuple(
        dataclasses.replace(c, moe_input_quant=0.0) if c.engine == "trtllm" else c for c in dev.serving_engines))
    without = json.loads(estimate_serving(model, off, tp=1, batch=64, isl=2048, osl=64, engine="trtllm",
                                          dtype="fp8").dumps())["predicted"]
    assert without["prefill_s"] < p["prefill_s"] and without["decode_step_s"] < p["decode_step_s"]
