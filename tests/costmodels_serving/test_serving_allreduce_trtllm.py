"""TensorRT-LLM 1.3.0rc20's all-reduce by its source's rules (serving_allreduce.trtllm_allreduce_s), checked by hand:
the AUTO strategy's lookup-table row (fusion NONE, hidden 4096: 8 KiB a BF16 token) on Hopper (SM90) and Blackwell
(SM100), one-shot / two-shot / NCCL; which profiles select which table."""

import dataclasses

import pytest

import profiles
from costmodels.serving_allreduce import allreduce_s, engine_allreduce_s, trtllm_strategy
from costmodels.serving_constants import KernelConstants
from costmodels.serving_kernels import EngineKernels, engine_calibration

KIB, MIB = 1024.0, 2.0**20
TOKEN = 8 * KIB
T = dict(allreduce_call_s=5e-6, allreduce_hop_s=0.1e-6, allreduce_efficiency=0.5, allreduce_twoshot_call_s=8e-6,
         allreduce_twoshot_hop_s=0.0, allreduce_twoshot_efficiency=0.9, allreduce_nccl_call_s=20e-6,
         allreduce_nccl_efficiency=0.5, allreduce_nccl_ring_efficiency=0.7, allreduce_custom_max_bytes=2.0**24,
         allreduce_vllm_sm100=0.0,
         allreduce_sglang_v2=0.0)
"""one-shot B·η_1 = 0.5 B, two-shot B·η_2 = 0.9 B, NCCL NVLS B·η_nccl = 0.5 B, NCCL ring B·η_ring = 0.7 B (B: 450 GB/s
on H100, 900 GB/s on B200)"""


def _kernels(device: str, **changes: float) -> EngineKernels:
    dev = profiles.load_device(device)
    k = KernelConstants.of_engine(engine_calibration(dev, "trtllm"))
    return EngineKernels(dev, dataclasses.replace(k, **changes))


def _hopper() -> EngineKernels:
    return _kernels("h100-sxm", **T, allreduce_trtllm_sm90=1.0, allreduce_trtllm_sm100=0.0)


def _blackwell() -> EngineKernels:
    return _kernels("b200", **T, allreduce_trtllm_sm90=0.0, allreduce_trtllm_sm100=1.0)


def _one(s: float, n: int, link: float) -> float:
    return 5e-6 + (n - 1) * (0.1e-6 + s / (0.5 * link))


def _two(s: float, n: int, link: float) -> float:
    return 8e-6 + 2 * (n - 1) / n * s / (0.9 * link)


def _nccl(s: float, n: int, link: float) -> float:
    ring, nvls = 2 * (n - 1) / n, (n + 1) / n  # the ring at n <= 3, NVLS above
    return 20e-6 + (ring * s / (0.7 * link) if ring <= nvls else nvls * s / (0.5 * link))


def test_sm90_row_one_shot_two_shot_nccl_by_tokens():
    ek, b = _hopper(), 450e9
    assert ek.device.intra_node_bytes_per_s == b
    # TP 8: one-shot up to 64 tokens, NCCL at 128 (NVLS 9/8), two-shot at 256 and 512, NCCL from 1024
    assert allreduce_s(ek, 64 * TOKEN, 8) == pytest.approx(_one(64 * TOKEN, 8, b))
    assert allreduce_s(ek, 128 * TOKEN, 8) == pytest.approx(20e-6 + 9 / 8 * 128 * TOKEN / (0.5 * b))
    assert allreduce_s(ek, 256 * TOKEN, 8) == pytest.approx(8e-6 + 1.75 * 256 * TOKEN / (0.9 * b))
    assert allreduce_s(ek, 512 * TOKEN, 8) == pytest.approx(_two(512 * TOKEN, 8, b))
    assert allreduce_s(ek, 1024 * TOKEN, 8) == pytest.approx(_nccl(1024 * TOKEN, 8, b))
    # TP 4: one-shot up to 128 tokens, two-shot 256-1024, NCCL from 2048 (NVLS 5/4)
    assert allreduce_s(ek, 128 * TOKEN, 4) == pytest.approx(_one(128 * TOKEN, 4, b))
    assert allreduce_s(ek, 256 * TOKEN, 4) == pytest.approx(_two(256 * TOKEN, 4, b))
    assert allreduce_s(ek, 1024 * TOKEN, 4) == pytest.approx(_two(1024 * TOKEN, 4, b))
    assert allreduce_s(ek, 2048 * TOKEN, 4) == pytest.approx(20e-6 + 1.25 * 16 * MIB / (0.5 * b))
    # TP 2: one-shot up to 2048 tokens (16 MiB: above the 16 MB workspace older releases had), NCCL (ring 1, η_ring)
    # above
    assert allreduce_s(ek, 2048 * TOKEN, 2) == pytest.approx(5e-6 + 0.1e-6 + 16 * MIB / (0.5 * b))
    assert allreduce_s(ek, 4096 * TOKEN, 2) == pytest.approx(20e-6 + 32 * MIB / (0.7 * b))


def test_sm100_row_one_shot_two_shot_nccl_by_tokens():
    ek, b = _blackwell(), 900e9
    assert ek.device.intra_node_bytes_per_s == b
    # TP 8: one-shot up to 256 tokens, two-shot 512-4096 (32 MiB: above the 8 MB of older releases), NCCL at 8192
    assert allreduce_s(ek, 256 * TOKEN, 8) == pytest.approx(_one(256 * TOKEN, 8, b))
    assert allreduce_s(ek, 512 * TOKEN, 8) == pytest.approx(_two(512 * TOKEN, 8, b))
    assert allreduce_s(ek, 4096 * TOKEN, 8) == pytest.approx(8e-6 + 1.75 * 32 * MIB / (0.9 * b))
    assert allreduce_s(ek, 8192 * TOKEN, 8) == pytest.approx(_nccl(8192 * TOKEN, 8, b))
    # TP 4: one-shot up to 512 tokens, two-shot at 1024 and 2048, NCCL from 4096
    assert allreduce_s(ek, 512 * TOKEN, 4) == pytest.approx(_one(512 * TOKEN, 4, b))
    assert allreduce_s(ek, 2048 * TOKEN, 4) == pytest.approx(_two(2048 * TOKEN, 4, b))
    assert allreduce_s(ek, 4096 * TOKEN, 4) == pytest.approx(_nccl(4096 * TOKEN, 4, b))
    # TP 2: one-shot up to 2048 tokens, NCCL from 4096
    assert allreduce_s(ek, 2048 * TOKEN, 2) == pytest.approx(_one(2048 * TOKEN, 2, b))
    assert allreduce_s(ek, 4096 * TOKEN, 2) == pytest.approx(_nccl(4096 * TOKEN, 2, b))


def test_table_index_is_floor_log2_tokens_and_the_row_of_the_power_of_two_below_n():
    # 511 tokens read the 256-token cell (one-shot at SM100 TP 8), 512 the two-shot one; under one token: index 0
    assert trtllm_strategy(511 * TOKEN, 8, 100) == "O"
    assert trtllm_strategy(512 * TOKEN, 8, 100) == "T"
    assert trtllm_strategy(2 * KIB, 8, 90) == "O"
    # TP 6 reads the TP 4 row (index int(log2 6) - 1 = 1), TP 3 the TP 2 row; beyond 16384 tokens: NCCL
    assert [trtllm_strategy(t * TOKEN, 6, 90) for t in (128, 256, 2048)] == ["O", "T", "N"]
    assert trtllm_strategy(2048 * TOKEN, 3, 90) == "O"
    assert trtllm_strategy(32768 * TOKEN, 2, 100) == "N"
    # TP 16 has no row: NCCL (NVLS 17/16) even for 64 KiB
    assert engine_allreduce_s(_hopper(), 64 * KIB, 16) == pytest.approx(20e-6 + 17 / 16 * 64 * KIB / 225e9)


def test_the_rules_stand_for_the_fitted_size_limit():
    for ek in (_hopper(), _blackwell()):
        other = EngineKernels(ek.device, dataclasses.replace(ek.k, allreduce_custom_max_bytes=2.0**20))
        for s, n in ((MIB, 8), (4 * MIB, 8), (15 * MIB, 2), (64 * MIB, 4)):
            assert allreduce_s(other, s, n) == allreduce_s(ek, s, n)


def test_profiles_select_the_table_of_the_device_for_trtllm_only():
    for device, sm90, sm100 in (("h100-sxm", 1.0, 0.0), ("h200", 1.0, 0.0), ("b200", 0.0, 1.0)):
        for cal in profiles.load_device(device).serving_engines:
            mine = cal.engine == "trtllm"
            assert (cal.allreduce_trtllm_sm90, cal.allreduce_trtllm_sm100) == ((sm90, sm100) if mine else (0.0, 0.0))
            if mine:  # NCCL runs table points on every device: its call time is fitted, not at its 1e-9 bound
                assert cal.allreduce_nccl_call_s > 1e-8, device
