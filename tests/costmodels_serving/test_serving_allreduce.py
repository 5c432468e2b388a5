"""The engines' all-reduce algorithm selection by their size tables (costmodels/serving_allreduce.py), checked by
hand: SGLang 0.5.14's CustomAllReduceV2 on Hopper (one-shot push, one-shot pull, two-shot pull, NCCL), the pass
bound of vLLM's few-block kernels on Blackwell (custom one-/two-stage kernel, torch's two-shot kernel), and the
engines without size tables (the faster custom kernel below a fitted limit, NCCL above; the ring across nodes)."""

import dataclasses
import math

import pytest

import profiles
from costmodels.serving_allreduce import allreduce_s, engine_allreduce_s, two_stage_allreduce_s
from costmodels.serving_constants import KernelConstants
from costmodels.serving_kernels import EngineKernels, engine_calibration

B200_NVLINK, H200_NVLINK, H100_NVLINK = 900e9, 450e9, 450e9  # the profiles' intra-node bytes/s per GPU
KIB, MIB = 1024.0, 2.0**20
SGLANG = dict(allreduce_sglang_v2=1.0, allreduce_call_s=3e-6, allreduce_hop_s=0.2e-6, allreduce_efficiency=0.5,
              allreduce_twoshot_call_s=4e-6, allreduce_twoshot_hop_s=0.5e-6, allreduce_twoshot_efficiency=0.4,
              allreduce_nccl_call_s=20e-6, allreduce_nccl_efficiency=0.6, allreduce_nccl_ring_efficiency=0.8,
              allreduce_custom_max_bytes=2.0**26)
VLLM = dict(allreduce_vllm_sm100=1.0, allreduce_call_s=5e-6, allreduce_hop_s=0.1e-6, allreduce_efficiency=0.5,
            allreduce_twoshot_call_s=8e-6, allreduce_twoshot_hop_s=2e-6, allreduce_twoshot_efficiency=0.5,
            allreduce_symm_call_s=15e-6, allreduce_symm_efficiency=0.4, allreduce_pass_s=2e-6,
            allreduce_nccl_call_s=20e-6, allreduce_nccl_efficiency=0.5, allreduce_nccl_ring_efficiency=0.5)


def _kernels(device: str, engine: str, **changes: float) -> EngineKernels:
    dev = profiles.load_device(device)
    k = KernelConstants.of_engine(engine_calibration(dev, engine))
    return EngineKernels(dev, dataclasses.replace(k, **changes))


def test_sglang_hopper_push_then_pull_kernels_by_its_tables():
    ek = _kernels("h200", "sglang", **SGLANG)
    assert ek.device.intra_node_bytes_per_s == H200_NVLINK
    # n = 8 up to 160 KiB (inclusive): one-shot push, 3 + 7·(0.2 + S / (450e9·0.5)) us
    s = 160 * KIB
    assert allreduce_s(ek, s, 8) == pytest.approx(3e-6 + 7 * (0.2e-6 + s / 225e9))
    # just above: two-shot pull, 4 + 7·0.5 us + 2·7/8·S / (450e9·0.4)
    s = 256 * KIB
    assert allreduce_s(ek, s, 8) == pytest.approx(4e-6 + 3.5e-6 + 1.75 * s / 180e9)
    # n = 4: push up to 384 KiB (its pull threshold, 256 KiB, is below it: no one-shot pull), then two-shot
    assert allreduce_s(ek, 384 * KIB, 4) == pytest.approx(3e-6 + 3 * (0.2e-6 + 384 * KIB / 225e9))
    assert allreduce_s(ek, 512 * KIB, 4) == pytest.approx(4e-6 + 1.5e-6 + 1.5 * 512 * KIB / 180e9)
    # n = 2: push up to 2 MiB, then one-shot pull up to the 16 MiB pull buffer: 4 + 1·(0.5 + S / 180e9) us
    assert allreduce_s(ek, 2 * MIB, 2) == pytest.approx(3e-6 + 0.2e-6 + 2 * MIB / 225e9)
    assert allreduce_s(ek, 16 * MIB, 2) == pytest.approx(4e-6 + 0.5e-6 + 16 * MIB / 180e9)


def test_sglang_hopper_nccl_above_the_pull_buffer_and_outside_its_world_sizes():
    ek = _kernels("h200", "sglang", **SGLANG)
    # 16 MiB at n = 8 is still the custom kernel (should_custom_ar: <= max_size), 32 MiB NCCL (NVLS 9/8 at
    # B·0.6, ring 1 at n = 2 at B·0.8)
    assert allreduce_s(ek, 16 * MIB, 8) == pytest.approx(4e-6 + 3.5e-6 + 1.75 * 16 * MIB / 180e9)
    assert allreduce_s(ek, 32 * MIB, 8) == pytest.approx(20e-6 + 9 / 8 * 32 * MIB / 270e9)
    assert allreduce_s(ek, 32 * MIB, 2) == pytest.approx(20e-6 + 1.0 * 32 * MIB / 360e9)
    # the fitted size limit (allreduce_custom_max_bytes, 64 MiB here) does not apply under the tables
    assert engine_allreduce_s(ek, 48 * MIB, 4) == pytest.approx(20e-6 + 1.25 * 48 * MIB / 270e9)
    # world size 16 (beyond the tables): NCCL
    assert engine_allreduce_s(ek, 64 * KIB, 16) == pytest.approx(20e-6 + 17 / 16 * 64 * KIB / 270e9)


def test_sglang_tables_off_keeps_the_faster_custom_kernel():
    ek = _kernels("h200", "sglang", **{**SGLANG, "allreduce_sglang_v2": 0.0, "allreduce_twoshot_hop_s": 0.0})
    s = 512 * KIB  # min(one-shot, two-shot) below the fitted limit: the tables' two-shot time needs the flag
    one = 3e-6 + 7 * (0.2e-6 + s / 225e9)
    two = 4e-6 + 1.75 * s / 180e9
    assert allreduce_s(ek, s, 8) == pytest.approx(min(one, two))


def test_vllm_sm100_pass_bound_of_its_custom_kernel():
    ek = _kernels("b200", "vllm", **VLLM)
    assert ek.device.intra_node_bytes_per_s == B200_NVLINK
    window = 36 * 512 * 16  # bytes per peer a pass: 36 blocks x 512 threads x one 16-byte pack
    # n = 2, 1 MiB: one-stage; 4 passes of 2 us (8 us) exceed 1·S / (900e9·0.5) = 2.3 us
    s = 1 * MIB
    assert math.ceil(s / window) == 4
    assert allreduce_s(ek, s, 2) == pytest.approx(5e-6 + 0.1e-6 + 4 * 2e-6)
    # n = 8, 128 KiB: one pass (2 us) below 7·S / 450e9 = 2.04 us: the link bounds it
    s = 128 * KIB
    assert allreduce_s(ek, s, 8) == pytest.approx(5e-6 + 0.7e-6 + 7 * s / 450e9)
    # n = 4, 512 KiB: two-stage, S/4 = 128 KiB per peer: one pass in each of its two phases (4 us) vs
    # 2·3/4·S / 450e9 = 1.75 us
    s = 512 * KIB
    assert allreduce_s(ek, s, 4) == pytest.approx(8e-6 + 3 * 2e-6 + 2 * 2e-6)


def test_vllm_sm100_pass_bound_of_torch_two_shot():
    ek = _kernels("b200", "vllm", **VLLM)
    # n = 2, 8 MiB (symmetric memory up to 8 MiB inclusive): torch's two-shot kernel, 24 blocks x 1024 threads x
    # 16 bytes = 384 KiB per pass; S/2 = 4 MiB per phase: 11 passes, twice: 44 us, above 1·S / 450e9 = 18.6 us
    s = 8 * MIB
    assert math.ceil(s / 2 / (24 * 1024 * 16)) == 11
    assert allreduce_s(ek, s, 2) == pytest.approx(15e-6 + 22 * 2e-6)
    # n = 8, 64 MiB: multimem, no pass bound: 15 us + 9/8·S / (900e9·0.4)
    assert allreduce_s(ek, 64 * MIB, 8) == pytest.approx(15e-6 + 9 / 8 * 64 * MIB / 360e9)
    # without the constant (0) the bound is off: the bandwidth term alone
    off = _kernels("b200", "vllm", **{**VLLM, "allreduce_pass_s": 0.0})
    assert allreduce_s(off, s, 2) == pytest.approx(15e-6 + 1.0 * s / 450e9)


def test_two_stage_formula_by_hand():
    ek = _kernels("b200", "vllm", **VLLM)
    s = 3 * MIB
    assert two_stage_allreduce_s(ek, s, 6, 0.25) == pytest.approx(8e-6 + 5 * 2e-6 + 2 * 5 / 6 * s / 225e9)


def test_profiles_set_the_sglang_tables_on_hopper_only():
    for device in ("b200", "h100-sxm", "h200"):
        for cal in profiles.load_device(device).serving_engines:
            on = cal.engine == "sglang" and device in ("h100-sxm", "h200")
            assert cal.allreduce_sglang_v2 == (1.0 if on else 0.0), (device, cal.engine)
            assert cal.allreduce_pass_s == 0.0 or (device, cal.engine) == ("b200", "vllm"), (device, cal.engine)


def test_engine_allreduce_algorithms_by_hand():
    c = dict(allreduce_call_s=3e-6, allreduce_hop_s=0.1e-6, allreduce_efficiency=0.6,
             allreduce_twoshot_call_s=9e-6, allreduce_twoshot_efficiency=0.7, allreduce_nccl_call_s=30e-6,
             allreduce_nccl_efficiency=0.65, allreduce_nccl_ring_efficiency=0.75,
             allreduce_custom_max_bytes=2.0 ** 24, allreduce_vllm_sm90=0.0)  # no size tables: the fitted limit
    ek = _kernels("h100-sxm", "vllm", **c)
    # 16 KiB over 8 GPUs: one-shot (each GPU reads 7 peers) beats two-shot's larger fixed time
    one = 3e-6 + 7 * (0.1e-6 + 16384 / (H100_NVLINK * 0.6))
    assert allreduce_s(ek, 16384, 8) == pytest.approx(one)
    # 8 MiB over 8 GPUs: two-shot moves 2·7/8 S instead of 7 S
    s = 8 * 2.0 ** 20
    two = 9e-6 + 2 * 7 / 8 * s / (H100_NVLINK * 0.7)
    assert two < 3e-6 + 7 * (0.1e-6 + s / (H100_NVLINK * 0.6))
    assert allreduce_s(ek, s, 8) == pytest.approx(two)
    # 64 MiB: NCCL; NVLS volume (n+1)/n = 9/8 at 8 GPUs at η_nccl, the ring's 2(n-1)/n = 1 at 2 GPUs at η_ring;
    # at 3 GPUs both move 4/3 S: the ring
    big = 64 * 2.0 ** 20
    assert engine_allreduce_s(ek, big, 8) == pytest.approx(30e-6 + 9 / 8 * big / (H100_NVLINK * 0.65))
    assert engine_allreduce_s(ek, big, 2) == pytest.approx(30e-6 + 1.0 * big / (H100_NVLINK * 0.75))
    assert engine_allreduce_s(ek, big, 3) == pytest.approx(30e-6 + 4 / 3 * big / (H100_NVLINK * 0.75))


def test_allreduce_without_custom_kernel_is_the_ring():
    ek = _kernels("h100-sxm", "vllm", allreduce_custom_max_bytes=0.0, allreduce_call_s=5e-6, allreduce_hop_s=1e-6,
                  allreduce_efficiency=0.5)
    # ring inside a node: t_call + 2(n-1)·t_hop + 2(n-1)/n · S / (450 GB/s · η)
    assert allreduce_s(ek, 1e6, 8) == pytest.approx(5e-6 + 14 * 1e-6 + 2 * 7 / 8 * 1e6 / (H100_NVLINK * 0.5))
    assert allreduce_s(ek, 1e6, 1) == 0.0
