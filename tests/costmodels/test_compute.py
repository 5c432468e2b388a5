"""Kernel times and one layer's parts, worked by hand."""

import math

from costmodels import DeviceCalibration, NodePool
from costmodels.compute import attention_time_s, gemm_efficiency, gemm_time_s, memory_bound_time_s
from costmodels.layer_parts import Setting, layer_cost
from tests.costmodels.helpers import device, gpt

CAL = DeviceCalibration(gemm_efficiency_max=0.8, gemm_half_flops=1e10, attention_efficiency=0.5, hbm_efficiency=0.5,
                        kernel_floor_s=5e-6)


def test_gemm_efficiency_curve():
    # eff(F) = 0.8 * F / (F + 1e10): half of the maximum at 1e10, 0.8 * 0.9 at 9e10
    assert math.isclose(gemm_efficiency(1e10, CAL), 0.4)
    assert math.isclose(gemm_efficiency(9e10, CAL), 0.72)


def test_gemm_roofline_and_floor():
    # 4096 x 4096 x 4096: F = 2 * 4096^3 = 1.374e11; eff = 0.8 * F / (F + 1e10) = 0.7457;
    # compute 1.374e11 / (1e15 * 0.7457) = 184.3 us; bytes 2 * 3 * 4096^2 = 100.7 MB / (2e12 * 0.5) = 100.7 us
    f = 2 * 4096**3
    t = gemm_time_s(f, 4096, 4096, 4096, 1e15, 2e12, CAL)
    assert math.isclose(t, f / (1e15 * 0.8 * f / (f + 1e10)))
    # a skinny GEMM (16 tokens) is bandwidth bound: bytes 2 * (16*8192 + 8192^2 + 16*8192) / 1e12
    f = 2 * 16 * 8192 * 8192
    t = gemm_time_s(f, 16, 8192, 8192, 1e15, 2e12, CAL)
    assert math.isclose(t, 2 * (16 * 8192 * 2 + 8192 * 8192) / 1e12)
    # the curve itself puts a floor of gemm_half_flops / (peak * max) = 1e10 / 0.8e15 = 12.5 us under any GEMM
    assert math.isclose(gemm_time_s(10.0, 1, 1, 5, 1e15, 2e12, CAL), (10 + 1e10) / 0.8e15)
    flat = DeviceCalibration(gemm_efficiency_max=0.8, gemm_half_flops=0.0, kernel_floor_s=5e-6)
    assert gemm_time_s(10.0, 1, 1, 5, 1e15, 2e12, flat) == 5e-6  # the launch floor


def test_attention_and_memory_bound():
    assert math.isclose(attention_time_s(1e12, 1e15, CAL), 1e12 / 0.5e15)  # 2 ms
    assert math.isclose(memory_bound_time_s(1e9, 2e12, CAL), 1e-3)  # 1 GB at 1 TB/s


def test_layer_parts_without_parallelism_by_hand():
    model = gpt(layers=2, hidden=1024, heads=16, vocab=1000)
    dev = device(gemm_efficiency_max=0.8, gemm_half_flops=1e10, attention_efficiency=0.5, hbm_efficiency=0.5,
                 kernel_floor_s=0.0)
    pool = NodePool(name="p", device=dev, nodes=1, devices_per_node=8, intra_node_bytes_per_s=300e9,
                    inter_node_bytes_per_s=25e9)
    st = Setting(mbs=1, seq=2048, dtype="bf16", tp=1, cp=1, dp=1, ep=1, etp=1, zero=0, recompute="none", sp=False)
    cost = layer_cost(model, False, pool, st)
    T, h = 2048, 1024

    def g(flops, m, k, n):  # compute-bound here: F / (peak * eff(F))
        return max(flops / (312e12 * 0.8 * flops / (flops + 1e10)), 2 * (m * k + k * n + m * n) / (2.039e12 * 0.5))
    # QKV 2*T*h*3h, out 2*T*h*h, fc1 2*T*h*4h, fc2 2*T*4h*h; x3 for forward + backward
    gemm = g(2 * T * h * 3 * h, T, h, 3 * h) + g(2 * T * h * h, T, h, h) + g(2 * T * h * 4 * h, T, h, 4 * h) \
        + g(2 * T * 4 * h * h, T, 4 * h, h)
    assert math.isclose(cost.parts["gemm"], 3 * gemm)
    # causal core 2*b*s^2*h at 50 % of 312 TFLOP/s, x3
    assert math.isclose(cost.parts["attention"], 3 * 2 * T * T * h / (312e12 * 0.5))
    # element-wise: (15h + 2*4h) elements per token, 2 bytes, at 50 % of 2.039 TB/s, x3
    assert math.isclose(cost.parts["elementwise"], 3 * 2 * T * (15 * h + 8 * h) / (2.039e12 * 0.5))
    assert cost.parts["tp_comm"] == cost.parts["recompute"] == cost.dp_sync_s == 0.0
    # states: 12h^2 + 2h parameters x 18 B (ZeRO 0)
    assert cost.state_bytes == (12 * h * h + 2 * h) * 18
