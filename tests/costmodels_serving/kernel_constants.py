"""KernelConstants for the hand-calculated serving kernel tests: round values for the dense GEMM, attention and
all-reduce fields every engine needs; each test file adds the MoE constants it exercises as overrides."""

from costmodels.serving_constants import KernelConstants

DENSE = dict(gemm_efficiency_max=0.8, gemm_half_flops=1e9, fp8_gemm_efficiency_max=0.7, fp8_gemm_half_flops=2e9,
             fp8_quant_s=2e-6, hbm_efficiency=0.8, kernel_floor_s=4e-6, attention_efficiency=0.5,
             attention_floor_s=0.0, attention_half_work=0.0, kv_read_efficiency=0.8, decode_attention_floor_s=0.0,
             decode_seq_s=0.0, allreduce_call_s=0.0, allreduce_hop_s=0.0, allreduce_efficiency=0.5)


def kernel_constants(**over: float) -> KernelConstants:
    """DENSE with `over` replacing or adding fields."""
    return KernelConstants(**{**DENSE, **over})
