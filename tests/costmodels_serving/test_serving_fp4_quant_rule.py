"""vLLM's NVFP4 input quantise kernel's fixed time is its FP8 quantise kernel's, measured on its own table
(serve_engine_fit.FP4_QUANT_FROM_FP8), not fitted in 'gemm fp4' where it ran to its lower bound."""

from bench_modules import bench_modules

import profiles
from costmodels.serving_kernels import engine_calibration


def test_b200_vllm_fp4_quantise_time_is_the_fp8_kernels():
    cal = engine_calibration(profiles.load_device("b200"), "vllm")
    assert cal.fp4_quant_s == cal.fp8_quant_s > 1e-7  # a kernel's fixed time (~2 us), not the 1e-9 bound


def test_gemm_fp4_does_not_fit_it_for_vllm_only():
    fit = bench_modules("serve_engine_fit", needs="the fit's op lists")[0]
    assert "fp4_quant_s" not in fit.op_names("gemm fp4", "vllm")
    assert "fp4_quant_s" in fit.op_names("gemm fp4", "sglang") and "fp4_quant_s" in fit.op_names("gemm fp4", "trtllm")
