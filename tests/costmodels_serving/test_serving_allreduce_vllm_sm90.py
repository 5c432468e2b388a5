"""vLLM's all-reduce on Hopper (SM90) by its size tables (serving_allreduce.vllm_allreduce_s, sm 90), checked by
hand: the custom one-/two-stage kernel below the "9.0" table's size and its 8 MiB buffer, torch symmetric memory
(multimem at 4, 6, 8 GPUs, two-shot at 2), PyNCCL above; the Blackwell rows in test_serving_allreduce_b200.py."""

import dataclasses

import pytest

import profiles
from costmodels.serving_allreduce import (
    VLLM_CUSTOM_BUFFER_BYTES,
    VLLM_CUSTOM_MAX_BYTES,
    VLLM_MULTIMEM_SIZES,
    VLLM_SYMM_MEM_MAX_BYTES,
    allreduce_s,
)
from costmodels.serving_constants import KernelConstants
from costmodels.serving_kernels import EngineKernels, engine_calibration

H100_NVLINK = 450e9
KIB, MIB = 1024.0, 2.0**20
C = dict(allreduce_vllm_sm90=1.0, allreduce_vllm_sm100=0.0, allreduce_call_s=5e-6, allreduce_hop_s=0.1e-6,
         allreduce_efficiency=0.5, allreduce_twoshot_call_s=8e-6, allreduce_twoshot_hop_s=2e-6,
         allreduce_symm_call_s=15e-6, allreduce_symm_efficiency=0.4, allreduce_nccl_call_s=20e-6,
         allreduce_nccl_efficiency=0.5, allreduce_nccl_ring_efficiency=0.6, allreduce_custom_max_bytes=2.0**20,
         allreduce_twoshot_efficiency=0.9, allreduce_pass_s=0.0)


def _kernels(**changes: float) -> EngineKernels:
    dev = profiles.load_device("h100-sxm")
    k = KernelConstants.of_engine(engine_calibration(dev, "vllm"))
    return EngineKernels(dev, dataclasses.replace(k, **{**C, **changes}))


def test_the_sm90_tables_as_vllm_ships_them():
    # all_reduce_utils.py CUSTOM_ALL_REDUCE_MAX_SIZES / SYMM_MEM_ALL_REDUCE_MAX_SIZES["9.0"], symm_mem.py
    # _WORLD_SIZES_MULTIMEM["9.0"], custom_all_reduce.py's default max_size 8192 * 1024
    assert VLLM_CUSTOM_MAX_BYTES[90] == {2: 64 * MIB, 4: 32 * MIB, 6: 512 * KIB, 8: 256 * KIB}
    assert VLLM_SYMM_MEM_MAX_BYTES[90] == {2: 64 * MIB, 4: 32 * MIB, 6: 64 * MIB, 8: 64 * MIB}
    assert VLLM_MULTIMEM_SIZES[90] == (4, 6, 8)
    assert VLLM_CUSTOM_BUFFER_BYTES == 8192 * 1024


def test_custom_kernel_below_its_8_mib_buffer_then_torch_two_shot_at_two_gpus():
    ek = _kernels()
    assert ek.device.intra_node_bytes_per_s == H100_NVLINK
    # n = 2 below 8 MiB (not the table's 64 MiB, nor the fitted 1 MiB limit): one-stage, 5 + 0.1 us + S / (450e9·0.5)
    assert allreduce_s(ek, 4 * MIB, 2) == pytest.approx(5e-6 + 0.1e-6 + 4 * MIB / 225e9)
    # from 8 MiB to 64 MiB inclusive: torch's two-shot kernel (2 is no multimem size), 15 us + 1·S / (450e9·0.9)
    assert allreduce_s(ek, 8 * MIB, 2) == pytest.approx(15e-6 + 8 * MIB / 405e9)
    assert allreduce_s(ek, 64 * MIB, 2) == pytest.approx(15e-6 + 64 * MIB / 405e9)
    # above: PyNCCL on its ring (volume 1 <= NVLS's 3/2) at B·0.6
    assert allreduce_s(ek, 128 * MIB, 2) == pytest.approx(20e-6 + 128 * MIB / 270e9)


def test_custom_stages_then_multimem_then_nccl_at_four_and_eight_gpus():
    ek = _kernels()
    # n = 4: one-stage below 512 KiB, two-stage from it to the 8 MiB buffer: 8 + 3·2 us + 2·3/4·S / (450e9·0.5)
    assert allreduce_s(ek, 256 * KIB, 4) == pytest.approx(5e-6 + 3 * (0.1e-6 + 256 * KIB / 225e9))
    assert allreduce_s(ek, 4 * MIB, 4) == pytest.approx(8e-6 + 6e-6 + 1.5 * 4 * MIB / 225e9)
    # 8 MiB to 32 MiB inclusive: multimem (4 is a multimem size on SM90, not on SM100), 15 us + 5/4·S / (450e9·0.4)
    assert allreduce_s(ek, 8 * MIB, 4) == pytest.approx(15e-6 + 1.25 * 8 * MIB / 180e9)
    assert allreduce_s(ek, 32 * MIB, 4) == pytest.approx(15e-6 + 1.25 * 32 * MIB / 180e9)
    assert allreduce_s(ek, 64 * MIB, 4) == pytest.approx(20e-6 + 1.25 * 64 * MIB / 225e9)  # NCCL NVLS
    # n = 8: the custom kernel below 256 KiB only (one-stage), multimem from it to 64 MiB, NCCL NVLS above
    assert allreduce_s(ek, 128 * KIB, 8) == pytest.approx(5e-6 + 7 * (0.1e-6 + 128 * KIB / 225e9))
    assert allreduce_s(ek, 256 * KIB, 8) == pytest.approx(15e-6 + 9 / 8 * 256 * KIB / 180e9)
    assert allreduce_s(ek, 64 * MIB, 8) == pytest.approx(15e-6 + 9 / 8 * 64 * MIB / 180e9)
    assert allreduce_s(ek, 128 * MIB, 8) == pytest.approx(20e-6 + 9 / 8 * 128 * MIB / 225e9)
    # n = 6: two-stage between 256 KiB and its 512 KiB limit, multimem at it
    assert allreduce_s(ek, 384 * KIB, 6) == pytest.approx(8e-6 + 5 * 2e-6 + 5 / 3 * 384 * KIB / 225e9)
    assert allreduce_s(ek, 512 * KIB, 6) == pytest.approx(15e-6 + 7 / 6 * 512 * KIB / 180e9)


def test_only_vllm_on_hopper_uses_the_sm90_tables():
    for device in ("h100-sxm", "h200", "b200"):
        for cal in profiles.load_device(device).serving_engines:
            mine = cal.engine == "vllm" and device != "b200"
            assert cal.allreduce_vllm_sm90 == (1.0 if mine else 0.0), (device, cal.engine)
