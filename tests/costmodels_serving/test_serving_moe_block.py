"""FP8 experts of 128x128 block-scaled checkpoints (--quant-block): the engine's block-scaled MoE kernel constants
(serving_kernels.block_fp8_constants / block_fp8_kernels), checked by hand; selected only with quant_block > 0 and
FP8 weights; per-tensor FP8 unchanged."""

import json

import pytest
from click.testing import CliRunner
from kernel_constants import kernel_constants

import profiles
from cli import main
from costmodels import serving_gemm
from costmodels.serving import InstanceShape, Precision, decode_step_time, prefill_time
from costmodels.serving_constants import KernelConstants
from costmodels.serving_kernels import (
    EngineKernels,
    block_fp8_constants,
    block_fp8_kernels,
    engine_calibration,
    grouped_gemm_s,
)

MOE = dict(moe_fp8_efficiency=0.25, moe_fp8_block_rows=16.0, moe_fp8_floor_s=1e-5, moe_fp8_hbm_efficiency=0.9,
           moe_fp8_slot_bytes=2.0)
"""the MoE kernel constants these tests exercise (the rest: kernel_constants.DENSE)"""


def _constants(**over: float) -> KernelConstants:
    return kernel_constants(**{**MOE, **over})


BLOCK = dict(moe_blockfp8_efficiency=0.5, moe_blockfp8_block_rows=128.0, moe_blockfp8_floor_s=2e-5,
             moe_blockfp8_hbm_efficiency=0.5, moe_blockfp8_slot_bytes=4.0)


def test_no_block_kernel_by_default_keeps_per_tensor():
    k = _constants()
    assert k.moe_blockfp8_efficiency == 0.0 and block_fp8_constants(k) is None
    ek = EngineKernels(profiles.load_device("h100-sxm"), k)
    assert block_fp8_kernels(ek) is None
    for slots in (1.0, 64.0, 4096.0):
        per_tensor = grouped_gemm_s(ek, slots, 16, 4096, 7168, "fp8", True)
        assert grouped_gemm_s(ek, slots, 16, 4096, 7168, "fp8", True, block_scaled=True) == per_tensor


def test_block_scaled_grouped_gemm_by_hand():
    # one slot on one expert of (7168 x 4096) FP8 weights: one 128-row block computed, the weights streamed once
    dev = profiles.load_device("h100-sxm")
    ek = EngineKernels(dev, _constants(**BLOCK))
    n, kk = 4096.0, 7168.0
    flops = 2.0 * 128 * n * kk
    compute_s = (flops + 2e9) / (dev.peak_flops_per_s("fp8") * 0.7 * 0.5)       # curve (eff_max, half) x e_block
    moved = kk * n + 4.0 * (1 * kk + 1 * 2.0 * n)                                # weights + σ (slot in, slot out)
    memory_s = 4e-6 + moved / (dev.hbm_bytes_per_s * 0.5)
    assert memory_s > compute_s
    got = grouped_gemm_s(ek, 1.0, 1.0, n, kk, "fp8", True, block_scaled=True)
    assert got == pytest.approx(2e-5 + memory_s, rel=1e-9)
    # per-tensor: its own efficiency (0.25: compute-bound here; the curve pads the 16-row block to a 128-row tile),
    # HBM efficiency, slot traffic and fixed time
    per_tensor_compute = (flops + 2e9) / (dev.peak_flops_per_s("fp8") * 0.7 * 0.25)
    per_tensor_memory = 4e-6 + (kk * n + 2.0 * (kk + 2.0 * n)) / (dev.hbm_bytes_per_s * 0.9)
    assert per_tensor_compute > per_tensor_memory
    assert grouped_gemm_s(ek, 1.0, 1.0, n, kk, "fp8", True) == pytest.approx(1e-5 + per_tensor_compute, rel=1e-9)


def test_block_rows_pad_to_the_block_kernels_rows():
    dev = profiles.load_device("h100-sxm")
    k = _constants(**BLOCK)
    ek = EngineKernels(dev, k)
    blk = block_fp8_constants(k)
    assert blk is not None and blk.moe_fp8_block_rows == 128.0 and blk.moe_fp8_efficiency == 0.5
    # 200 slots on 1 expert: 256 rows computed by the block-scaled kernel (2 x 128), 208 per tensor (13 x 16)
    assert grouped_gemm_s(ek, 200.0, 1.0, 4096, 7168, "fp8", True, block_scaled=True) == pytest.approx(
        serving_gemm.grouped_gemm_s(ek.device, blk, 200.0, 1.0, 4096, 7168, "fp8"))
    assert (blk.moe_fp8_tile_s, blk.moe_fp8_overlap_exponent, blk.moe_fp8_default_efficiency) == (0.0, 0.0, 1.0)


@pytest.mark.parametrize("gpu", ["h100-sxm", "h200"])
def test_engines_block_kernels(gpu):
    dev = profiles.load_device(gpu)
    kern = {c.engine: EngineKernels(dev, KernelConstants.of_engine(c)) for c in dev.serving_engines}
    trt = block_fp8_kernels(kern["trtllm"])
    k = kern["trtllm"].k  # relative to its FP8 curve: at most the FP8 peak (1 / the curve's eff_max)
    assert trt is not None and 0.05 < k.moe_blockfp8_efficiency <= 1.0 / k.fp8_gemm_efficiency_max
    # the block-scaled kernel (its serial slot kernels and per-expert walk included) is the slower one on a
    # prefill-sized layer: 4096 slots over 8 experts of 28672 x 4096
    assert grouped_gemm_s(kern["trtllm"], 4096, 8, 28672, 4096, "fp8", True, block_scaled=True) > grouped_gemm_s(
        kern["trtllm"], 4096, 8, 28672, 4096, "fp8", True)
    # vLLM at EP > 1: TensorRT-LLM's block-scaled constants (FlashInfer's CUTLASS MoE, autotuned at startup; its
    # Triton kernel at EP 1: test_serving_moe_vllm_block.py)
    vllm = block_fp8_kernels(kern["vllm"], 2)
    assert vllm is not None and vllm[1] == trt[1]
    assert grouped_gemm_s(kern["vllm"], 512, 8, 1536, 2048, "fp8", True, block_scaled=True, ep=2) == pytest.approx(
        grouped_gemm_s(kern["trtllm"], 512, 8, 1536, 2048, "fp8", True, block_scaled=True, ep=2))
    # SGLang: its FP8 constants are block-scaled already (its table's only FP8 kind): the same path
    sg = kern["sglang"]
    assert block_fp8_kernels(sg) is None
    assert grouped_gemm_s(sg, 512, 8, 1536, 2048, "fp8", True, 0.0, 0.0, True) == grouped_gemm_s(
        sg, 512, 8, 1536, 2048, "fp8", True)
    assert engine_calibration(dev, "sglang").moe_blockfp8_efficiency == 0.0


def test_step_time_selects_block_path_only_with_quant_block_and_fp8():
    qwen = profiles.load_model("qwen3-30b-a3b")
    h100 = profiles.load_device("h100-sxm")
    shape = InstanceShape(tp=1)
    kw = dict(batch=4, prompt_len=2048, engine="trtllm")
    per_tensor = prefill_time(qwen, h100, shape, dtype="fp8", **kw)
    assert prefill_time(qwen, h100, shape, dtype="fp8", quant_block=0, **kw) == per_tensor
    block = prefill_time(qwen, h100, shape, dtype="fp8", quant_block=128, **kw)
    assert block["gemm_s"] > per_tensor["gemm_s"]                  # block-scaled efficiency below per-tensor's
    assert {k: v for k, v in block.items() if k not in ("gemm_s", "time_s")} == \
        {k: v for k, v in per_tensor.items() if k not in ("gemm_s", "time_s")}
    bf16 = prefill_time(qwen, h100, shape, dtype="bf16", **kw)
    assert prefill_time(qwen, h100, shape, dtype="bf16", quant_block=128, **kw) == bf16
    dec = dict(batch=16, context_len=1024, engine="trtllm", dtype="fp8")
    assert decode_step_time(qwen, h100, shape, quant_block=128, **dec)["time_s"] != \
        decode_step_time(qwen, h100, shape, **dec)["time_s"]
    assert Precision(dtype="fp8", quant_block=128).block_scaled
    assert not Precision(dtype="bf16", quant_block=128).block_scaled and not Precision(dtype="fp8").block_scaled


def test_cli_estimate_with_quant_block(tmp_path):
    args = ["estimate", "serve", "--model", "qwen3-30b-a3b", "--gpu", "h100-sxm", "--tp", "1", "--batch", "8",
            "--isl", "1024", "--osl", "128", "--dtype", "fp8", "--engine", "trtllm", "-o", "-"]
    runner = CliRunner()
    plain, block = runner.invoke(main, args), runner.invoke(main, [*args, "--quant-block", "128"])
    assert plain.exit_code == 0 and block.exit_code == 0, plain.output + block.output
    p, b = json.loads(plain.output), json.loads(block.output)
    assert b["inputs"]["quant_block"] == 128
    assert b["predicted"]["prefill_s"] > p["predicted"]["prefill_s"]
    # validate recomputes the numbers with the plan's quant_block
    path = tmp_path / "block.json"
    path.write_text(block.output)
    checked = runner.invoke(main, ["validate", str(path)])
    assert checked.exit_code == 0, checked.output
