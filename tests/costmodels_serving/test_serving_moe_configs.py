"""Tuned vs default tile configs of the engines' Triton MoE kernels (costmodels/serving_moe_configs.py) and the
grouped expert GEMM on each, checked by hand."""

import dataclasses

import pytest
from kernel_constants import kernel_constants

import profiles
from costmodels.serving import ENGINES, InstanceShape, engine_kernels, prefill_time
from costmodels.serving_constants import KernelConstants
from costmodels.serving_gemm import grouped_gemm_s
from costmodels.serving_kernels import EngineKernels
from costmodels.serving_moe_configs import (
    TUNED,
    config_block_rows,
    default_block_rows,
    tuned_config,
    walks_all_slots,
)


def test_tuned_configs_are_the_files_the_releases_ship():
    # Mixtral-8x7B (8 experts, width 14336) at expert TP 1: SGLang 0.5.14 ships the BF16 config for H200 only
    assert tuned_config("sglang", "h200", 8, 14336, "bf16")
    assert not tuned_config("sglang", "h100-sxm", 8, 14336, "bf16")
    # the same model at EP 2 (4 experts per GPU): no file in either engine -> default config
    assert not tuned_config("sglang", "h200", 4, 14336, "bf16")
    assert not tuned_config("vllm", "h200", 4, 14336, "bf16")
    # Qwen3-30B-A3B (128 x 768) at TP 1 on H200: both engines ship it; SGLang's FP8 (block-scaled) file is (128, 768)
    assert tuned_config("vllm", "h200", 128, 768, "bf16") and tuned_config("sglang", "h200", 128, 768, "fp8")
    # kernels without shipped configs (TensorRT-LLM, vLLM's FlashInfer CUTLASS FP8 experts, the preset engines)
    assert tuned_config("trtllm", "h200", 4, 14336, "bf16")
    assert tuned_config("vllm", "h200", 4, 14336, "fp8")
    assert tuned_config("legacy", "h200", 4, 14336, "bf16")
    assert all(e > 0 and n > 0 for shapes in TUNED.values() for e, n in shapes)


MOE = dict(moe_efficiency=0.5, moe_block_rows=64.0, moe_floor_s=1e-5, moe_default_efficiency=0.4)
"""the MoE kernel constants these tests exercise (the rest: kernel_constants.DENSE)"""


def _constants(**over: float) -> KernelConstants:
    return kernel_constants(**{**MOE, **over})


def test_default_config_runs_compute_bound_experts_at_its_own_efficiency():
    h100 = profiles.load_device("h100-sxm")
    k = _constants()
    ek = EngineKernels(h100, k)
    slots, experts, n, kk = 4096.0, 8.0, 4096.0, 4096.0  # 512 rows per expert: whole 64-row blocks
    padded = 4096
    curve = 0.8 * 2 * padded * n * kk / (2 * padded * n * kk + 1e9)
    tuned_s = 1e-5 + 2 * padded * n * kk / (989.4e12 * curve * 0.5)
    default_s = 1e-5 + 2 * padded * n * kk / (989.4e12 * curve * 0.5 * 0.4)
    assert grouped_gemm_s(ek.device, k, slots, experts, n, kk, "bf16") == pytest.approx(tuned_s)
    assert grouped_gemm_s(ek.device, k, slots, experts, n, kk, "bf16", default_rows=64.0) == pytest.approx(default_s)
    # the FP8 kernel has its own default-config efficiency (1: unchanged)
    assert grouped_gemm_s(ek.device, k, slots, experts, n, kk, "fp8", default_rows=64.0) == pytest.approx(
        grouped_gemm_s(ek.device, k, slots, experts, n, kk, "fp8"))


def _with_default_efficiency(dev, value: float):
    return dataclasses.replace(dev, serving_engines=tuple(
        dataclasses.replace(c, moe_default_efficiency=value) if c.engine == "sglang" else c
        for c in dev.serving_engines))


def test_serving_step_charges_the_default_config_where_the_engine_ships_none():
    """Mixtral-8x7B prefill on H200 under SGLang: at TP 2 (E 8, N 7168: a tuned file) the routed experts do not
    depend on the default-config efficiency; at TP 2 x EP 2 (E 4, N 14336: none) halving it slows them."""
    h200 = profiles.load_device("h200")
    model = profiles.load_model("mixtral-8x7b")
    half, neutral = _with_default_efficiency(h200, 0.5), _with_default_efficiency(h200, 1.0)
    assert engine_kernels(half, ENGINES["sglang"]).k.moe_default_efficiency == 0.5

    def gemm_s(dev, shape: InstanceShape) -> float:
        return prefill_time(model, dev, shape, batch=1, prompt_len=4096, engine="sglang")["gemm_s"]

    assert gemm_s(half, InstanceShape(tp=2)) == pytest.approx(gemm_s(neutral, InstanceShape(tp=2)))
    assert gemm_s(half, InstanceShape(tp=2, ep=2)) > 1.2 * gemm_s(neutral, InstanceShape(tp=2, ep=2))


@pytest.mark.parametrize(("engine", "tokens", "experts", "dtype", "rows"), [
    ("vllm", 32, 8, "bf16", 16.0), ("vllm", 33, 8, "bf16", 32.0), ("vllm", 512, 8, "bf16", 64.0),
    ("vllm", 513, 8, "bf16", 128.0),
    ("sglang", 64, 64, "bf16", 16.0), ("sglang", 65, 64, "bf16", 64.0), ("sglang", 1, 64, "fp8", 64.0),
])
def test_default_config_row_blocks_follow_the_releases(engine: str, tokens: float, experts: float, dtype: str,
                                                       rows: float):
    assert default_block_rows(engine, tokens, experts, dtype) == rows


def test_config_block_rows_is_zero_on_a_tuned_config():
    assert config_block_rows("sglang", "h200", 4096, 8, 14336, "bf16") == 0.0
    assert config_block_rows("sglang", "h200", 4096, 4, 14336, "bf16") == 64.0
    assert config_block_rows("trtllm", "h200", 4096, 4, 14336, "bf16") == 0.0


def test_triton_path_walks_every_slot_of_the_layer():
    assert walks_all_slots("sglang", "bf16") and walks_all_slots("sglang", "fp8") and walks_all_slots("vllm", "bf16")
    assert not walks_all_slots("vllm", "fp8") and not walks_all_slots("trtllm", "bf16")


def test_walked_slots_write_an_output_row_each():
    """Memory-bound grouped GEMM (8 slots over 8 experts, n = k = 4096): walking 64 slots adds the output rows of
    the 56 slots of other GPUs' experts (2 bytes x n each, times the slot traffic factor)."""
    h100 = profiles.load_device("h100-sxm")
    k = _constants(moe_slot_bytes=2.0)
    ek = EngineKernels(h100, k)
    n = kk = 4096.0
    alone = grouped_gemm_s(ek.device, k, 8.0, 8.0, n, kk, "bf16")
    walked = grouped_gemm_s(ek.device, k, 8.0, 8.0, n, kk, "bf16", all_slots=64.0)
    assert walked - alone == pytest.approx(2.0 * 56 * 2 * n / (3.35e12 * 0.8))
    assert grouped_gemm_s(ek.device, k, 8.0, 8.0, n, kk, "bf16", all_slots=4.0) == alone
