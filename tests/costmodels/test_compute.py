"""Kernel times and one layer's parts, worked by hand."""

import math

from costmodels import NodePool
from costmodels.compute import (
    attention_efficiency,
    attention_time_s,
    fp8_cast_time_s,
    gemm_efficiency,
    gemm_time_s,
    memory_bound_time_s,
)
from costmodels.layer_parts import Setting, layer_cost
from tests.costmodels.helpers import device, gpt

DEV = device(gemm_efficiency_max=0.8, gemm_half_flops=1e10, attention_efficiency=0.5, attention_half_work=512,
             hbm_efficiency=0.5, kernel_floor_s=5e-6, fp8_gemm_efficiency_max=0.6, fp8_gemm_half_flops=4e10)
CAL = DEV.calibration


def test_gemm_efficiency_curve_and_tiles():
    # F = 2mnk = 1e10 (m = 1280, a whole number of 128-row tiles): half of the maximum
    m, n, k = 1280, 1e10 / 2 / 1280 / 1000, 1000
    assert math.isclose(gemm_efficiency(m, n, k, "bf16", CAL), 0.4)
    # 100 rows fill 100 of the 128 rows of one tile
    f = 2 * 100 * 4096 * 4096
    padded = 2.0 * 128 * 4096 * 4096  # 100 rows run as one 128-row tile; the fixed cost is paid once
    assert math.isclose(gemm_efficiency(100, 4096, 4096, "bf16", CAL), 0.8 * f / (padded + 1e10))
    # fp8 has its own curve
    f = 2 * 4096**3
    assert math.isclose(gemm_efficiency(4096, 4096, 4096, "fp8", CAL), 0.6 * f / (f + 4e10))


def test_many_small_experts_run_slower_than_few_large_ones():
    # 16 experts x 512 tokens vs 4 experts x 2048 tokens: the same FLOPs, h = 4096, f = 1536
    small = 16 * gemm_time_s(512, 1536, 4096, "bf16", DEV)
    large = 4 * gemm_time_s(2048, 1536, 4096, "bf16", DEV)
    assert small > 1.3 * large


def test_gemm_roofline_and_floor():
    # 4096^3: compute 2*4096^3 / (312e12 * eff) ; bytes 2 * 3 * 4096^2 / (2.039e12 * 0.5) is smaller
    f = 2 * 4096**3
    assert math.isclose(gemm_time_s(4096, 4096, 4096, "bf16", DEV), f / (312e12 * 0.8 * f / (f + 1e10)))
    # a skinny GEMM (16 tokens) on a flat curve is bandwidth bound: 2 * (16*8192 + 8192^2) + 2 * 16*8192 bytes
    t = gemm_time_s(16, 8192, 8192, "bf16", device(gemm_half_flops=0.0, hbm_efficiency=0.5))
    assert math.isclose(t, 2 * (16 * 8192 * 2 + 8192 * 8192) / (2.039e12 * 0.5))
    # fp8 operands are 1 byte: half the weight bytes
    t8 = gemm_time_s(16, 8192, 8192, "fp8", device(fp8=True, fp8_gemm_half_flops=0.0, hbm_efficiency=0.5))
    assert math.isclose(t8, (16 * 8192 + 8192 * 8192 + 2 * 16 * 8192) / (2.039e12 * 0.5))
    assert gemm_time_s(1, 1, 1, "bf16", device(gemm_half_flops=0.0, kernel_floor_s=5e-6)) == 5e-6
    assert gemm_time_s(0, 10, 10, "bf16", DEV) == 0.0


def test_fp8_cast_is_memory_bound():
    # 5 bytes per element of the three operands at 50 % of 2.039 TB/s
    assert math.isclose(fp8_cast_time_s(100, 200, 300, DEV), 5 * (100 * 300 + 300 * 200 + 100 * 200) / 1.0195e12)


def test_attention_efficiency_rises_with_sequence_length():
    # w = s * d / 128; eff = 0.5 * w / (w + 512)
    assert math.isclose(attention_efficiency(512, 128, CAL), 0.25)
    assert math.isclose(attention_efficiency(8192, 128, CAL), 0.5 * 8192 / 8704)
    assert attention_efficiency(2048, 64, CAL) < attention_efficiency(2048, 128, CAL)
    # causal forward 2*b*s^2*a*(d+d)/2 at the 16-bit peak, also for fp8 runs; backward adds 2.5x
    fwd = attention_time_s(2, 4096, 4096, 32, 128, 128, DEV)
    flops = 2 * 2 * 4096 * 4096 * 32 * 256 / 2
    eff = 0.5 * 4096 / (4096 + 512)
    assert math.isclose(fwd, flops / (312e12 * eff))
    assert math.isclose(attention_time_s(2, 4096, 4096, 32, 128, 128, DEV, backward=True), 3.5 * fwd)
    # ring attention: blocks of s/cp keys per kernel call run at the efficiency of s/cp
    ring = attention_time_s(2, 4096, 4096, 32, 128, 128, DEV, block_kv=1024)
    assert math.isclose(ring, flops / (312e12 * 0.5 * 1024 / 1536))
    assert math.isclose(memory_bound_time_s(1e9, DEV), 1e9 / (2.039e12 * 0.5))


def test_layer_parts_without_parallelism_by_hand():
    model = gpt(layers=2, hidden=1024, heads=16, vocab=1000)
    dev = device(gemm_efficiency_max=0.8, gemm_half_flops=1e10, attention_efficiency=0.5, attention_half_work=512,
                 hbm_efficiency=0.5, kernel_floor_s=0.0)
    pool = NodePool(name="p", device=dev, nodes=1, devices_per_node=8, intra_node_bytes_per_s=300e9,
                    inter_node_bytes_per_s=25e9)
    st = Setting(mbs=1, seq=2048, dtype="bf16", tp=1, cp=1, dp=1, ep=1, etp=1, zero=0, recompute="none", sp=False)
    cost = layer_cost(model, False, pool, st)
    T, h = 2048, 1024

    def g(m, n, k):  # compute-bound here: F / (peak * eff(F)), m a multiple of the 128-row tile
        flops = 2 * m * n * k
        return max(flops / (312e12 * 0.8 * flops / (flops + 1e10)), 2 * (m * k + k * n + m * n) / (2.039e12 * 0.5))
    # QKV (T x 3h x h), out (T x h x h), fc1 (T x 4h x h), fc2 (T x h x 4h); x3 for forward + backward
    gemm = g(T, 3 * h, h) + g(T, h, h) + g(T, 4 * h, h) + g(T, h, 4 * h)
    assert math.isclose(cost.parts["gemm"], 3 * gemm)
    # causal core 2*s^2*h FLOPs (a*d = h, d_qk + d_v = 2d, halved) at 0.5 * w/(w+512), w = 2048*64/128 = 1024;
    # forward + 2.5 x forward in backward
    eff = 0.5 * 1024 / (1024 + 512)
    assert math.isclose(cost.parts["attention"], 3.5 * 2 * T * T * h / (312e12 * eff))
    # element-wise: (15h + 2*4h) elements per token, 2 bytes, at 50 % of 2.039 TB/s, x3
    assert math.isclose(cost.parts["elementwise"], 3 * 2 * T * (15 * h + 8 * h) / (2.039e12 * 0.5))
    assert cost.parts["tp_comm"] == cost.parts["recompute"] == cost.dp_sync_s == 0.0
    # states: 12h^2 + 2h parameters x 18 B (ZeRO 0)
    assert cost.state_bytes == (12 * h * h + 2 * h) * 18
