"""vLLM's FP8 experts of 128x128 block-scaled checkpoints, by expert-parallel size (vLLM 0.24.0 on Hopper: its
Triton fused MoE at EP 1, FlashInfer's CUTLASS MoE, TensorRT-LLM's kernel autotuned at startup, at EP > 1):
serving_kernels.block_fp8_kernels / grouped_gemm_s and serving_moe_configs' block-FP8 tile configs, checked by
hand; per-tensor FP8, SGLang and TensorRT-LLM unchanged."""

import dataclasses
import json

import pytest
from click.testing import CliRunner
from kernel_constants import kernel_constants

import profiles
from cli import main
from costmodels import serving_gemm
from costmodels.errors import SpecError
from costmodels.serving import InstanceShape, prefill_time
from costmodels.serving_constants import KernelConstants
from costmodels.serving_kernels import (
    EngineKernels,
    block_fp8_constants,
    block_fp8_kernels,
    block_quant_s,
    engine_calibration,
    gen_activation_s,
    grouped_gemm_s,
)
from costmodels.serving_moe_configs import config_block_rows, default_block_rows, expert_dtype, tuned_config
from profiles.hardware import engines_from_mapping

VLLM = dict(moe_fp8_tile_s=1e-6, moe_fp8_efficiency=0.25, moe_blockfp8_efficiency=0.5, moe_blockfp8_block_rows=32.0,
            moe_blockfp8_floor_s=2e-5, moe_blockfp8_hbm_efficiency=1.0, moe_blockfp8_slot_bytes=4.0,
            moe_blockfp8_default_efficiency=0.5, moe_block_weight_reads=0.5)
"""vLLM-like constants: FlashInfer's CUTLASS FP8 experts (moe_fp8_tile_s > 0: ek.tuned_moe is TensorRT-LLM's) and
a fitted Triton block-FP8 kernel"""


def _vllm(gpu: str = "h100-sxm", **over: float) -> EngineKernels:
    return EngineKernels(profiles.load_device(gpu), kernel_constants(**{**VLLM, **over}))


def test_ep1_runs_vllms_triton_kernel_ep2_the_autotuned_cutlass_one():
    ek = _vllm()
    trt = ek.tuned_moe
    assert trt is not None and trt.k == KernelConstants.of_engine(engine_calibration(ek.device, "trtllm"))
    own = block_fp8_kernels(ek, 1)
    assert own is not None and own[0] is ek.device and own[2]
    assert (own[1].moe_fp8_efficiency, own[1].moe_fp8_block_rows, own[1].moe_fp8_default_efficiency) == (0.5, 32.0, 0.5)
    for ep in (2, 4, 8):
        cutlass = block_fp8_kernels(ek, ep)
        assert cutlass is not None and not cutlass[2]
        assert cutlass[0] is trt.device and cutlass[1] == block_fp8_constants(trt.k)
    # no Triton block constants fitted: EP 1 falls back to the CUTLASS kernel's
    unfitted = block_fp8_kernels(_vllm(moe_blockfp8_efficiency=0.0), 1)
    assert unfitted is not None and not unfitted[2] and unfitted[1] == block_fp8_constants(trt.k)


def test_triton_block_grouped_gemm_by_hand():
    # 100 slots on one expert of (7168 x 4096) FP8 weights, vLLM's default block-FP8 config for > 64 tokens:
    # 64-row blocks -> 128 rows computed, the weights streamed 1 + 0.5 x (2 - 1) = 1.5 times
    ek = _vllm()
    dev = ek.device
    n, kk = 4096.0, 7168.0
    compute_s = (2.0 * 128 * n * kk + 2e9) / (dev.peak_flops_per_s("fp8") * 0.7 * 0.5 * 0.5)   # curve x e_blk x e_def
    memory_s = 4e-6 + (1.5 * kk * n + 4.0 * (100 * kk + 100 * 2.0 * n)) / dev.hbm_bytes_per_s
    assert compute_s > memory_s
    got = grouped_gemm_s(ek, 100.0, 1.0, n, kk, "fp8", True, 64.0, block_scaled=True, ep=1)
    assert got == pytest.approx(2e-5 + compute_s, rel=1e-9)
    # a tuned config (default_rows 0): the fitted 32-row blocks, 4 of them -> weights 1 + 0.5 x 3 = 2.5 times
    tuned_memory = 4e-6 + (2.5 * kk * n + 4.0 * (100 * kk + 100 * 2.0 * n)) / dev.hbm_bytes_per_s
    tuned_compute = (2.0 * 128 * n * kk + 2e9) / (dev.peak_flops_per_s("fp8") * 0.7 * 0.5)
    assert tuned_memory > tuned_compute
    assert grouped_gemm_s(ek, 100.0, 1.0, n, kk, "fp8", True, 0.0, block_scaled=True) == pytest.approx(
        2e-5 + tuned_memory, rel=1e-9)
    # EP 2: TensorRT-LLM's block-scaled constants on their own fitted rows (the default config does not apply)
    trt = ek.tuned_moe
    assert trt is not None
    assert grouped_gemm_s(ek, 100.0, 1.0, n, kk, "fp8", True, 64.0, block_scaled=True, ep=2) == pytest.approx(
        serving_gemm.grouped_gemm_s(trt.device, block_fp8_constants(trt.k), 100.0, 1.0, n, kk, "fp8"), rel=1e-12)


def test_per_tensor_fp8_ignores_ep():
    ek = _vllm()
    for slots in (1.0, 100.0, 4096.0):
        per_tensor = grouped_gemm_s(ek, slots, 8, 4096, 7168, "fp8", True)
        assert all(grouped_gemm_s(ek, slots, 8, 4096, 7168, "fp8", True, ep=ep) == per_tensor for ep in (1, 2, 8))


@pytest.mark.parametrize("gpu", ["h100-sxm", "h200"])
def test_sglang_and_trtllm_unchanged_by_ep(gpu):
    dev = profiles.load_device(gpu)
    kern = {c.engine: EngineKernels(dev, KernelConstants.of_engine(c)) for c in dev.serving_engines}
    trt = block_fp8_kernels(kern["trtllm"], 1)
    assert trt is not None and trt[2] and block_fp8_kernels(kern["trtllm"], 8) == trt
    assert block_fp8_kernels(kern["sglang"], 1) is None and block_fp8_kernels(kern["sglang"], 8) is None
    for engine in ("trtllm", "sglang"):
        one = grouped_gemm_s(kern[engine], 512, 32, 1536, 2048, "fp8", True, block_scaled=True, ep=1)
        assert grouped_gemm_s(kern[engine], 512, 32, 1536, 2048, "fp8", True, block_scaled=True, ep=4) == one


@pytest.mark.parametrize("gpu", ["h100-sxm", "h200"])
def test_profiles_carry_vllms_fitted_triton_block_constants(gpu):
    dev = profiles.load_device(gpu)
    vllm = engine_calibration(dev, "vllm")
    assert 0.05 <= vllm.moe_blockfp8_efficiency <= 1.0 and vllm.moe_blockfp8_floor_s > 0
    ek = EngineKernels(dev, KernelConstants.of_engine(vllm))
    own, cutlass = block_fp8_kernels(ek, 1), block_fp8_kernels(ek, 2)
    trt = block_fp8_kernels(EngineKernels(dev, KernelConstants.of_engine(engine_calibration(dev, "trtllm"))), 2)
    assert own is not None and own[2] and own[1].moe_fp8_efficiency == vllm.moe_blockfp8_efficiency
    assert cutlass is not None and trt is not None and cutlass[1] == trt[1]


def test_block_fp8_tile_configs():
    # vLLM 0.24.0 ships E=256,N=256 block-FP8 configs for H200, not for H100 (benchmarks/moe_tuned_configs.py)
    assert tuned_config("vllm", "h200", 256, 256, "fp8_block") and not tuned_config("vllm", "h100-sxm", 256, 256,
                                                                                      "fp8_block")
    assert config_block_rows("vllm", "h200", 64, 256, 256, "fp8", True) == 0.0
    assert config_block_rows("vllm", "h100-sxm", 64, 256, 256, "fp8", True) == 16.0      # M <= 64: BLOCK_SIZE_M 16
    assert config_block_rows("vllm", "h100-sxm", 65, 256, 256, "fp8", True) == 64.0
    assert default_block_rows("vllm", 65, 256, "fp8_block") == 64.0
    assert default_block_rows("vllm", 65, 256, "bf16") == 32.0
    # per-tensor FP8 (FlashInfer, tiles at run time) and SGLang's block-scaled configs as before
    assert config_block_rows("vllm", "h100-sxm", 64, 256, 256, "fp8") == 0.0
    for tokens in (16, 300):
        assert config_block_rows("sglang", "h200", tokens, 160, 640, "fp8", True) == config_block_rows(
            "sglang", "h200", tokens, 160, 640, "fp8")
        assert config_block_rows("sglang", "h100-sxm", tokens, 8, 640, "fp8", True) == 64.0
    assert (expert_dtype("fp8", True), expert_dtype("fp8", False), expert_dtype("bf16", True)) == (
        "fp8_block", "fp8", "bf16")


def test_step_time_by_ep_and_cli():
    qwen = profiles.load_model("qwen3-30b-a3b")
    h100 = profiles.load_device("h100-sxm")
    kw = dict(batch=4, prompt_len=2048, engine="vllm", dtype="fp8")
    for shape in (InstanceShape(tp=2), InstanceShape(tp=2, ep=2)):
        block = prefill_time(qwen, h100, shape, quant_block=128, **kw)
        assert block["gemm_s"] != prefill_time(qwen, h100, shape, **kw)["gemm_s"]
    args = ["estimate", "serve", "--model", "qwen3-30b-a3b", "--gpu", "h100-sxm", "--tp", "2", "--batch", "8",
            "--isl", "1024", "--osl", "128", "--dtype", "fp8", "--engine", "vllm", "--quant-block", "128", "-o", "-"]
    runner = CliRunner()
    ep1, ep2 = runner.invoke(main, [*args, "--ep", "1"]), runner.invoke(main, [*args, "--ep", "2"])
    assert ep1.exit_code == 0 and ep2.exit_code == 0, ep1.output + ep2.output
    assert json.loads(ep1.output)["predicted"]["prefill_s"] != json.loads(ep2.output)["predicted"]["prefill_s"]


def test_block_k_overhead_reaches_only_the_block_scaled_kernel():
    # a non-zero moe_blockfp8_k_overhead leaves a per-tensor FP8 grouped GEMM as it is and adds k_0 = 512 more k
    # elements per row to the block-scaled one at the kernel's full rate: 2·1024·4096·512 FLOPs at the FP8 peak x
    # curve maximum 0.7 x e_block 0.5 (1024 slots on one expert: 1024 rows computed, compute-bound)
    base = dict(moe_fp8_efficiency=0.5, moe_fp8_block_rows=128.0, moe_blockfp8_efficiency=0.5,
                moe_blockfp8_block_rows=128.0, moe_fp8_hbm_efficiency=1.0, moe_blockfp8_hbm_efficiency=1.0)
    plain, slow = kernel_constants(**base), kernel_constants(**base, moe_blockfp8_k_overhead=512.0)
    dev = EngineKernels(profiles.load_device("h100-sxm"), plain).device  # FP8 curve maximum 0.7
    assert plain.moe_fp8_k_overhead == 0.0 and slow.moe_fp8_k_overhead == 0.0
    for slots, experts in ((1024.0, 1.0), (64.0, 16.0), (8192.0, 8.0)):
        assert serving_gemm.grouped_gemm_s(dev, slow, slots, experts, 4096.0, 7168.0, "fp8") == \
            serving_gemm.grouped_gemm_s(dev, plain, slots, experts, 4096.0, 7168.0, "fp8")
        for ek in (EngineKernels(dev, plain), EngineKernels(dev, slow)):  # the engine API, per-tensor scales
            assert grouped_gemm_s(ek, slots, experts, 4096, 7168, "fp8", True) == serving_gemm.grouped_gemm_s(
                dev, plain, slots, experts, 4096.0, 7168.0, "fp8")
    block, slow_block = block_fp8_constants(plain), block_fp8_constants(slow)
    assert block is not None and slow_block is not None and slow_block.moe_fp8_k_overhead == 512.0
    want = 2.0 * 1024 * 4096 * 512 / (dev.peak_flops_per_s("fp8") * 0.7 * 0.5)
    delta = (serving_gemm.grouped_gemm_s(dev, slow_block, 1024.0, 1.0, 4096.0, 7168.0, "fp8")
             - serving_gemm.grouped_gemm_s(dev, block, 1024.0, 1.0, 4096.0, 7168.0, "fp8"))
    assert delta == pytest.approx(want, rel=1e-9) and want > 1e-6
    assert grouped_gemm_s(EngineKernels(dev, slow), 1024.0, 1.0, 4096, 7168, "fp8", True, block_scaled=True) == \
        serving_gemm.grouped_gemm_s(dev, slow_block, 1024.0, 1.0, 4096.0, 7168.0, "fp8")


@pytest.mark.parametrize("gpu", ["h100-sxm", "h200"])
def test_profiles_never_set_the_k_overhead_slot(gpu):
    # vLLM's fitted k_0 reaches its Triton block kernel only; a profile cannot put one on the per-tensor kernels
    vllm = engine_calibration(profiles.load_device(gpu), "vllm")
    assert vllm.moe_blockfp8_k_overhead > 0 and vllm.moe_fp8_k_overhead == 0.0
    own = block_fp8_kernels(EngineKernels(profiles.load_device(gpu), KernelConstants.of_engine(vllm)), 1)
    assert own is not None and own[1].moe_fp8_k_overhead == vllm.moe_blockfp8_k_overhead
    entry = {f.name: getattr(vllm, f.name) for f in dataclasses.fields(vllm) if f.name != "engine"}
    with pytest.raises(SpecError, match="moe_fp8_k_overhead"):
        engines_from_mapping({"vllm": {**entry, "moe_fp8_k_overhead": 100.0}}, source="test")


def test_block_input_quantisation_by_hand():
    # vLLM on B200 (TrtLlmFp8ExpertsMonolithic): the layer's BF16 input quantised per 128-group before the fused
    # kernel, t_q · tokens · hidden, the same at every EP; 0 where the constant is 0 (every other engine and device)
    gen = _vllm("b200", moe_trtllm_gen=1.0, moe_fp8_tile_s=0.0, moe_blockfp8_quant_s=1e-11)
    assert block_quant_s(gen, 4096.0, 2048.0) == pytest.approx(1e-11 * 4096 * 2048, rel=1e-12)
    assert block_quant_s(_vllm(), 4096.0, 2048.0) == 0.0
    # on TensorRT-LLM-gen the block path runs the engine's own constants at every EP (no Hopper Triton/CUTLASS pick)
    assert all(block_fp8_kernels(gen, ep) == (gen.device, block_fp8_constants(gen.k), True) for ep in (1, 2, 8))


def test_block_input_quantisation_in_the_step_time():
    # the prefill step of a block-scaled checkpoint pays t_q · tokens · hidden once per MoE layer (tokens: every
    # token of the instance enters each GPU's MoE layer); per-tensor FP8 and BF16 steps do not
    qwen = profiles.load_model("qwen3-30b-a3b")
    h100 = profiles.load_device("h100-sxm")
    quant = dataclasses.replace(h100, serving_engines=tuple(
        dataclasses.replace(c, moe_blockfp8_quant_s=1e-11) if c.engine == "vllm" else c for c in h100.serving_engines))
    kw = dict(batch=4, prompt_len=2048, engine="vllm", dtype="fp8")
    for shape in (InstanceShape(tp=2), InstanceShape(tp=2, ep=2)):
        base = prefill_time(qwen, h100, shape, quant_block=128, **kw)["gemm_s"]
        more = prefill_time(qwen, quant, shape, quant_block=128, **kw)["gemm_s"]
        moe_layers = qwen.layers
        assert more - base == pytest.approx(1e-11 * 4 * 2048 * qwen.hidden * moe_layers, rel=1e-6)
        assert prefill_time(qwen, quant, shape, **kw)["gemm_s"] == prefill_time(qwen, h100, shape, **kw)["gemm_s"]


def test_profiles_fit_the_block_input_quantisation_only_for_vllm_on_b200():
    # fitted for vLLM's TensorRT-LLM-gen block path only, off its bounds (1e-14, 1e-9 s per element): ~3 ps per
    # BF16 element (10 ps before the activation kernel had its own term), below HBM speed (~0.4 ps for its 3
    # bytes): a latency-bound kernel pair, not a byte stream; likewise the activation kernel's time per slot and
    # width element (bounds 1e-15, 1e-10), near the 3.4-5.3 ps SGLang's table gives the same kernel at EP 32-256
    for gpu in ("h100-sxm", "h200", "b200"):
        for cal in profiles.load_device(gpu).serving_engines:
            if (gpu, cal.engine) == ("b200", "vllm"):
                assert 1e-12 < cal.moe_blockfp8_quant_s < 3e-11
                assert 1e-12 < cal.moe_blockfp8_act_s < 1e-11
            else:
                assert cal.moe_blockfp8_quant_s == 0.0 and cal.moe_blockfp8_act_s == 0.0


def test_block_activation_kernel_by_hand():
    # vLLM on B200 (DeepSeek-FP8 block scales on TensorRT-LLM-gen): the separate activation kernel, t_act · routed
    # slots · expert width per GPU, at every EP through the block kernel's constants; 0 on Hopper's block kernels
    # (Triton / CUTLASS, not TensorRT-LLM-gen) and where the constant is 0
    gen = _vllm("b200", moe_trtllm_gen=1.0, moe_fp8_tile_s=0.0, moe_blockfp8_act_s=3e-12)
    for ep in (1, 2, 8):
        assert gen_activation_s(gen, 4096.0 * 8, 768.0, ep, True) == pytest.approx(3e-12 * 4096 * 8 * 768, rel=1e-12)
    assert gen_activation_s(_vllm("b200", moe_trtllm_gen=1.0, moe_fp8_tile_s=0.0), 4096.0 * 8, 768.0, 1, True) == 0.0
    assert gen_activation_s(_vllm(moe_blockfp8_act_s=3e-12), 4096.0 * 8, 768.0, 1, True) == 0.0
    # the slot only carries the block value: the per-tensor constants keep their own (0 for vLLM)
    assert gen.k.moe_gen_act_s == 0.0 and block_fp8_constants(gen.k).moe_gen_act_s == 3e-12


def test_block_activation_kernel_in_the_step_time():
    # vLLM's B200 block-scaled step pays t_act · tokens · top_k · (expert width / expert TP) once per MoE layer on
    # top of the profile's; its per-tensor FP8 step (fused SwiGLU in the first GEMM) does not
    qwen = profiles.load_model("qwen3-30b-a3b")
    b200 = profiles.load_device("b200")
    base_act = engine_calibration(b200, "vllm").moe_blockfp8_act_s
    more = dataclasses.replace(b200, serving_engines=tuple(
        dataclasses.replace(c, moe_blockfp8_act_s=base_act + 1e-11) if c.engine == "vllm" else c
        for c in b200.serving_engines))
    kw = dict(batch=4, prompt_len=2048, engine="vllm", dtype="fp8")
    moe = qwen.moe_dims
    for shape, etp in ((InstanceShape(tp=2), 2), (InstanceShape(tp=2, ep=2), 1)):
        base = prefill_time(qwen, b200, shape, quant_block=128, **kw)["gemm_s"]
        extra = prefill_time(qwen, more, shape, quant_block=128, **kw)["gemm_s"] - base
        assert extra == pytest.approx(1e-11 * 4 * 2048 * moe.top_k * 768 / etp * qwen.layers, rel=1e-6)
        assert prefill_time(qwen, more, shape, **kw)["gemm_s"] == prefill_time(qwen, b200, shape, **kw)["gemm_s"]
