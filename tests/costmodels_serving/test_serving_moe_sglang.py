"""SGLang's measured MoE table: the rows its collector hands the Triton kernel (benchmarks/aic_moe_workload.py) and
the grouped GEMM on an uneven split of rows (costmodels/serving_gemm.grouped_gemm_rows_s), checked by hand."""

import pathlib
import sys

import pytest
from kernel_constants import kernel_constants

import profiles
from costmodels.serving_constants import KernelConstants
from costmodels.serving_gemm import grouped_gemm_rows_s, grouped_gemm_s, overlap_s
from costmodels.serving_kernels import EngineKernels

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "benchmarks"))

from aic_moe_workload import (  # noqa: E402
    GROUPED_ROUTING,
    RAW_KERNEL_SHAPES,
    balanced_choices,
    grouped_choices,
    measured_rows,
)

H100_BF16 = 989.4e12


MOE = dict(moe_efficiency=0.5, moe_block_rows=16.0, moe_floor_s=1e-5, moe_slot_bytes=2.0)
"""the MoE kernel constants these tests exercise (the rest: kernel_constants.DENSE)"""


def _constants(**over: float) -> KernelConstants:
    return kernel_constants(**{**MOE, **over})


def test_balanced_routing_spreads_each_token_over_stride_apart_experts():
    # 8 experts, top-2: stride 4, token t picks t mod 8 and (t + 4) mod 8
    assert balanced_choices(8, 8, 2).tolist() == [[0, 4], [1, 5], [2, 6], [3, 7], [4, 0], [5, 1], [6, 2], [7, 3]]
    # fewer tokens than the stride: token t starts at floor(t * 4 / 2) = 2t
    assert balanced_choices(2, 8, 2).tolist() == [[0, 4], [2, 6]]
    # a repeated id (12 experts, top-5: stride 3, j = 4 wraps onto j = 0) gives its place to the lowest free expert
    assert balanced_choices(3, 12, 5)[0].tolist() == [0, 3, 6, 9, 1]


def test_bare_kernel_under_ep_computes_remote_slots_on_expert_zero():
    # Mixtral shape, EP 4 (experts 0, 1 on GPU 0), 8 tokens: tokens 0, 1, 4, 5 have a slot there (M0 = 4); their
    # remote slots (4, 5, 4, 5) are clamped to expert 0: expert 0 computes 2 + 1 + 2 + 1 = 6 rows, expert 1 two
    assert measured_rows(8, 8, 2, 4, True) == (4, ((2, 1), (6, 1)), 8)
    # the engine's own layer: all 8 tokens enter, each local expert computes its 2 slots, all 16 slots are walked
    assert measured_rows(8, 8, 2, 4, False) == (8, ((2, 2),), 16)
    # no EP: both paths are every token on its own experts
    assert measured_rows(8, 8, 2, 1, True) == measured_rows(8, 8, 2, 1, False) == (8, ((2, 8),), 16)
    # the collector's Mixtral EP 2 workload computes as many rows as EP 1 (why the measured time does not fall)
    tokens = 4096
    assert sum(r * c for r, c in measured_rows(tokens, 8, 2, 2, True)[1]) == 2 * tokens
    assert (4096, 14336, 2, 8) in RAW_KERNEL_SHAPES and (2048, 768, 8, 128) not in RAW_KERNEL_SHAPES


def test_grouped_routing_of_balanced_logits_favours_the_lowest_groups_and_experts():
    # DeepSeek-V3: 256 experts in 8 groups of 32, top-8, 4 groups. Balanced logits favour t mod 32 + 32 j (one
    # expert in every group): all groups tie, groups 0-3 win; inside them the 4 favoured experts and, among the
    # tied rest, the 4 lowest ids
    assert GROUPED_ROUTING[(7168, 2048, 8, 256)] == (8, 4)
    ids = grouped_choices(balanced_choices(64, 256, 8), 256, 8, 4)
    assert ids[0].tolist() == [0, 1, 2, 3, 4, 32, 64, 96]
    assert ids[2].tolist() == [0, 1, 2, 3, 4, 34, 66, 98]  # favoured 2 is among the low ids: the 4 cold are 0, 1, 3, 4
    assert ids[40].tolist() == [0, 1, 2, 3, 8, 40, 72, 104]
    # GPU 0 of EP 2 holds groups 0-3: every slot (as measured: EP 2 as slow as EP 1); EP 8 (group 0): the favoured
    # expert of group 0 and the 4 low ids, 5 slots a token
    for ep, per_token in ((1, 8), (2, 8), (4, 6), (8, 5)):
        _, rows, walked = measured_rows(64, 256, 8, ep, False, (8, 4))
        assert sum(r * c for r, c in rows) == per_token * 64 and walked == 8 * 64


def test_grouped_gemm_on_uneven_rows_pads_each_expert_on_its_own():
    h100 = profiles.load_device("h100-sxm")
    k = _constants()
    ek = EngineKernels(h100, k)
    n, kk = 4096.0, 4096.0
    # expert 0 with 40 rows (3 blocks of 16), expert 1 with 8 rows (one block): 64 rows computed, 48 slots
    t = grouped_gemm_rows_s(ek.device, k, ((40, 1), (8, 1)), n, kk, "bf16")
    compute_s = (2 * 128 * n * kk + 1e9) / (H100_BF16 * 0.8 * 0.5)  # 64 rows within one 128-row tile of the curve
    moved = 2 * 2 * kk * n + 2.0 * (48 * 2 * kk + 48 * 2 * n)  # two experts' weights, slot traffic x 2
    memory_s = 4e-6 + moved / (h100.hbm_bytes_per_s * 0.8)
    assert t == pytest.approx(1e-5 + max(compute_s, memory_s))
    # walking 96 slots (zero rows for other GPUs' experts) adds their output rows only
    walked = grouped_gemm_rows_s(ek.device, k, ((40, 1), (8, 1)), n, kk, "bf16", all_slots=96.0)
    moved_walked = moved + 2.0 * (96 - 48) * 2 * n
    assert walked == pytest.approx(1e-5 + max(compute_s, 4e-6 + moved_walked / (h100.hbm_bytes_per_s * 0.8)))
    # an even split on whole blocks is the uniform grouped GEMM of the same slots
    even = grouped_gemm_rows_s(ek.device, k, ((512, 8),), n, kk, "bf16")
    assert even == pytest.approx(grouped_gemm_s(ek.device, k, 4096.0, 8.0, n, kk, "bf16"))


def test_overlap_exponent_adds_compute_and_memory_time_as_a_p_norm():
    assert overlap_s(3.0, 4.0, 2.0) == pytest.approx(5.0)
    assert overlap_s(3.0, 4.0, 0.0) == 4.0  # 0: max, the other engines' kernels
    h100 = profiles.load_device("h100-sxm")
    n, kk = 4096.0, 4096.0
    rows = ((40, 1), (8, 1))
    # 64 block rows, charged by the compute layer's size curve at one whole 128-row tile: (F_128 + half) / (P e)
    compute_s = (2 * 128 * n * kk + 1e9) / (H100_BF16 * 0.8 * 0.5)
    memory_s = 4e-6 + (2 * 2 * kk * n + 2.0 * 48 * 2 * (kk + n)) / (h100.hbm_bytes_per_s * 0.8)
    k = _constants(moe_overlap_exponent=2.0)
    t = grouped_gemm_rows_s(EngineKernels(h100, k).device, k, rows, n, kk, "bf16")
    assert t == pytest.approx(1e-5 + (compute_s ** 2 + memory_s ** 2) ** 0.5)
    # the FP8 experts have their own exponent: 0 here, so max as before
    fp8 = grouped_gemm_rows_s(EngineKernels(h100, k).device, k, rows, n, kk, "fp8")
    k0 = _constants()
    assert fp8 == pytest.approx(grouped_gemm_rows_s(EngineKernels(h100, k0).device, k0, rows, n, kk, "fp8"))
