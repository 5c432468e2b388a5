"""SGLang's Triton fused MoE on Hopper pays the per-tile prologue/epilogue k_0 of the block-scaled Triton kernel
(fused_moe_triton_kernels.py fused_moe_kernel: the 128x128 block scales loaded and applied at every 128-deep k step,
as in vLLM's): its FP8 constants are that kernel's, so the k_0 fitted with them is stored as moe_blockfp8_k_overhead
and reaches the FP8 grouped GEMM (costmodels/serving_constants.py EngineCalibration, serving_gemm._grouped_s)."""

import dataclasses
import statistics

import pytest
from bench_modules import fit_tables
from kernel_constants import DENSE

import profiles
from costmodels import serving_gemm
from costmodels.serving_constants import EngineCalibration, KernelConstants
from costmodels.serving_kernels import EngineKernels

FP8 = dict(moe_fp8_efficiency=0.5, moe_fp8_block_rows=128.0, moe_fp8_hbm_efficiency=1.0)
"""the FP8 grouped GEMM constants these tests exercise (the rest: kernel_constants.DENSE)"""


def test_fp8_constants_of_the_block_kernel_keep_its_k_overhead():
    # no block-scaled constants of its own (moe_blockfp8_efficiency 0: SGLang): the k_0 the fit puts in the slot is
    # the one the profile stores, and a stored one fills the slot; vLLM's block constants keep its slot at 0
    fitted = EngineCalibration(engine="sglang", **DENSE, **FP8, moe_fp8_k_overhead=300.0)
    loaded = EngineCalibration(engine="sglang", **DENSE, **FP8, moe_blockfp8_k_overhead=300.0)
    assert fitted.moe_blockfp8_k_overhead == 300.0 and loaded.moe_fp8_k_overhead == 300.0
    vllm = EngineCalibration(engine="vllm", **DENSE, **FP8, moe_blockfp8_efficiency=0.5, moe_blockfp8_k_overhead=300.0)
    assert vllm.moe_fp8_k_overhead == 0.0
    # on the loaded constants one expert's 1024 slots (8 blocks of 128 rows, compute-bound) cost 2·1024·4096·300
    # more FLOPs at the kernel's full rate: the FP8 peak x the curve's maximum 0.7 x e_moe 0.5
    k = KernelConstants.of_engine(loaded)
    dev = EngineKernels(profiles.load_device("h100-sxm"), k).device
    want = 2.0 * 1024 * 4096 * 300 / (dev.peak_flops_per_s("fp8") * 0.7 * 0.5)
    delta = (serving_gemm.grouped_gemm_s(dev, k, 1024.0, 1.0, 4096.0, 7168.0, "fp8")
             - serving_gemm.grouped_gemm_s(dev, dataclasses.replace(k, moe_fp8_k_overhead=0.0), 1024.0, 1.0, 4096.0,
                                           7168.0, "fp8"))
    assert delta == pytest.approx(want, rel=1e-9) and want > 1e-6


@pytest.mark.parametrize("device", ["h100-sxm", "h200"])
def test_narrow_experts_pay_the_tile_overhead(device):
    # DeepSeek-V3 at TP 8 / 16 (expert width 256 / 128 per GPU: the down projection one or two 128-deep k steps per
    # tile, the tile's prologue/epilogue not hidden under its main loop), up to 512 tokens, all measured rows: within
    # 5 % median with the fitted k_0; without it the same constants under-predict them by more than 10 %
    fit, tables = fit_tables(device, "sglang")
    cal = {c.engine: c for c in profiles.load_device(device).serving_engines}["sglang"]
    k = KernelConstants.of_engine(cal)
    assert 100.0 < k.moe_fp8_k_overhead == cal.moe_blockfp8_k_overhead < 1000.0
    domain, predict, _ = fit.OPS["moe fp8"]
    rows = [p for p in domain(tables) if p[1:5] == (7168, 2048, 8, 256) and p[2] / p[5] <= 256 and p[0] <= 512]
    assert len(rows) > 40
    dev = profiles.load_device(device)
    for k_0, lo, hi in ((k.moe_fp8_k_overhead, -0.05, 0.05), (0.0, -1.0, -0.10)):
        ek = EngineKernels(dev, dataclasses.replace(k, moe_fp8_k_overhead=k_0))
        assert lo < statistics.median(predict(ek, p, engine="sglang") / p[-1] - 1 for p in rows) < hi


@pytest.mark.parametrize("device", ["h100-sxm", "h200"])
def test_default_config_runs_at_the_tuned_efficiency_by_rule(device):
    # SGLang's default block-FP8 tile config (fused_moe_triton_config.get_default_config, block_shape [128, 128]:
    # 64 x 128 x 128, 4 warps) is the one its shipped H100/H200 block-FP8 files pick at 2048-4096 tokens (60 of their
    # 69 configs there): a rule read from the source, efficiency 1, not a fitted constant (fitted, it ran to its bound)
    fit, tables = fit_tables(device, "sglang")
    assert fit.ENGINE_DEVICE_CONSTANTS["sglang", device]["moe_fp8_default_efficiency"] == 1.0
    domain, predict, names = fit.OPS["moe fp8"]
    assert "moe_fp8_default_efficiency" in names
    assert "moe_fp8_default_efficiency" not in fit._constrained(names, predict, "sglang", device, domain(tables))
    cal = {c.engine: c for c in profiles.load_device(device).serving_engines}["sglang"]
    assert cal.moe_fp8_default_efficiency == 1.0
