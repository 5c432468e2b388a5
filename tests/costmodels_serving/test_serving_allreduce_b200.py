"""vLLM's all-reduce on Blackwell (SM100) by its size tables (serving_allreduce.vllm_allreduce_s, sm 100), checked by
hand: custom one-/two-stage kernel, torch symmetric memory (multimem or two-shot), PyNCCL; the pass bound of its
few-block kernels (allreduce_pass_s) in test_serving_allreduce.py; TensorRT-LLM's lookup-table rules in
test_serving_allreduce_trtllm.py."""

import dataclasses

import pytest

import profiles
from costmodels.serving_allreduce import allreduce_s, engine_allreduce_s
from costmodels.serving_constants import KernelConstants
from costmodels.serving_kernels import EngineKernels, engine_calibration

B200_NVLINK = 900e9
KIB, MIB = 1024.0, 2.0**20
C = dict(allreduce_vllm_sm100=1.0, allreduce_call_s=5e-6, allreduce_hop_s=0.1e-6, allreduce_efficiency=0.5,
         allreduce_twoshot_call_s=8e-6, allreduce_twoshot_hop_s=2e-6, allreduce_symm_call_s=15e-6,
         allreduce_symm_efficiency=0.4, allreduce_nccl_call_s=20e-6, allreduce_nccl_efficiency=0.5,
         allreduce_nccl_ring_efficiency=0.6,
         allreduce_custom_max_bytes=2.0**24, allreduce_twoshot_efficiency=0.9, allreduce_pass_s=0.0)


def _kernels(device: str = "b200", engine: str = "vllm", **changes: float) -> EngineKernels:
    dev = profiles.load_device(device)
    k = KernelConstants.of_engine(engine_calibration(dev, engine))
    return EngineKernels(dev, dataclasses.replace(k, **changes))


def test_custom_kernel_one_stage_then_two_stage_by_size_and_world():
    ek = _kernels(**C)
    assert ek.device.intra_node_bytes_per_s == B200_NVLINK
    # n = 8 below 256 KiB: one-stage, 5 + 7·(0.1 + 131072 / 450e9 s) us
    assert allreduce_s(ek, 128 * KIB, 8) == pytest.approx(5e-6 + 7 * (0.1e-6 + 131072 / 450e9))
    # n = 8 at 256 KiB: two-stage, 8 + 7·2 us + 2·7/8·262144 / 450e9 s (one-shot efficiency 0.5, not 0.9)
    assert allreduce_s(ek, 256 * KIB, 8) == pytest.approx(8e-6 + 14e-6 + 1.75 * 262144 / 450e9)
    # n = 4: one-stage below 512 KiB, two-stage at it
    assert allreduce_s(ek, 256 * KIB, 4) == pytest.approx(5e-6 + 3 * (0.1e-6 + 262144 / 450e9))
    assert allreduce_s(ek, 512 * KIB, 4) == pytest.approx(8e-6 + 6e-6 + 1.5 * 524288 / 450e9)
    # n = 2: always one-stage below the 2 MiB limit
    assert allreduce_s(ek, 1 * MIB, 2) == pytest.approx(5e-6 + 0.1e-6 + MIB / 450e9)


def test_symmetric_memory_then_nccl_above_the_tables_limits():
    ek = _kernels(**C)
    # n = 8 from 1 MiB (custom limit) to 128 MiB inclusive (should_use_symm_mem: <= max_size): multimem, volume
    # 9/8, 15 us + 9/8·S / (900e9·0.4)
    assert allreduce_s(ek, 1 * MIB, 8) == pytest.approx(15e-6 + 9 / 8 * MIB / 360e9)
    assert allreduce_s(ek, 128 * MIB, 8) == pytest.approx(15e-6 + 9 / 8 * 128 * MIB / 360e9)
    # n = 4 from 2 MiB to 32 MiB: torch's two-shot kernel, volume 2·3/4 = 1.5 at the two-shot efficiency 0.9
    assert allreduce_s(ek, 2 * MIB, 4) == pytest.approx(15e-6 + 1.5 * 2 * MIB / 810e9)
    assert allreduce_s(ek, 32 * MIB, 4) == pytest.approx(15e-6 + 1.5 * 32 * MIB / 810e9)
    assert allreduce_s(ek, 8 * MIB, 2) == pytest.approx(15e-6 + 1.0 * 8 * MIB / 810e9)
    # above 8 MiB (n = 2), 32 MiB (n = 4), 128 MiB (n = 8): NCCL, the lower of ring 2(n-1)/n (at B·0.6) and NVLS
    # (n+1)/n (at B·0.5)
    assert allreduce_s(ek, 16 * MIB, 2) == pytest.approx(20e-6 + 1.0 * 16 * MIB / 540e9)
    assert allreduce_s(ek, 64 * MIB, 4) == pytest.approx(20e-6 + 1.25 * 64 * MIB / 450e9)
    assert allreduce_s(ek, 256 * MIB, 8) == pytest.approx(20e-6 + 9 / 8 * 256 * MIB / 450e9)
    # a world size outside vLLM's tables (3) runs neither custom kernel nor symmetric memory: NCCL ring 4/3
    assert engine_allreduce_s(ek, 64 * KIB, 3) == pytest.approx(20e-6 + 4 / 3 * 64 * KIB / 540e9)


def test_only_vllm_on_b200_uses_the_tables():
    assert engine_calibration(profiles.load_device("b200"), "vllm").allreduce_vllm_sm100 == 1.0
    for device in ("b200", "h100-sxm", "h200"):
        for cal in profiles.load_device(device).serving_engines:
            if (device, cal.engine) != ("b200", "vllm"):
                assert cal.allreduce_vllm_sm100 == 0.0, (device, cal.engine)


def test_hopper_formula_unchanged_without_the_flag():
    # the same constants with the flag off: the custom kernel's min(one-shot, two-shot) below its limit, NCCL above
    ek = _kernels("h100-sxm", **{**C, "allreduce_vllm_sm100": 0.0, "allreduce_vllm_sm90": 0.0})
    s = 4 * MIB
    one = 5e-6 + 7 * (0.1e-6 + s / (450e9 * 0.5))
    two = 8e-6 + 1.75 * s / (450e9 * 0.9)
    assert allreduce_s(ek, s, 8) == pytest.approx(min(one, two))
    assert allreduce_s(ek, 2.0**24, 8) == pytest.approx(20e-6 + 9 / 8 * 2.0**24 / (450e9 * 0.5))

