"""Serving attention (prefill, decode) kernel formulas, checked by hand (the all-reduce: test_serving_allreduce.py)."""

import dataclasses
import math

import pytest

import profiles
from costmodels.serving_attention import (
    decode_attention_s,
    head_tiles,
    mha_chunks,
    mha_waves,
    prefill_attention_s,
    query_tiles,
    runs_gqa_kernel,
    smooth_max,
    split_blocks,
)
from costmodels.serving_constants import KernelConstants
from costmodels.serving_kernels import EngineKernels, engine_calibration

H100_BF16 = 989.4e12
H100_HBM = 3.35e12
H100_NVLINK = 450e9


def _kernels(engine: str = "vllm", **changes: float) -> EngineKernels:
    h100 = profiles.load_device("h100-sxm")
    k = KernelConstants.of_engine(engine_calibration(h100, engine))
    return EngineKernels(h100, dataclasses.replace(k, **changes))


def test_prefill_attention_adds_one_cost_per_query_tile():
    ek = _kernels(attention_efficiency=0.5, attention_half_work=100.0, attention_floor_s=10e-6,
                  attention_tile_s=20e-9, kernel_floor_s=1e-6)
    # 2 prompts of 1000 tokens, 8 heads: 2·8·ceil(1000/128) = 128 tiles; rows of 500 keys: eff = 0.5·500/600
    tiles = query_tiles(2, 8, 1000)
    assert tiles == 2 * 8 * 8
    flops = 2 * 2 * 1000 * 500 * 8 * 256
    expect = 10e-6 + flops / (H100_BF16 * 0.5 * 500 / 600) + 128 * 20e-9
    assert prefill_attention_s(ek, flops, 500, tiles) == pytest.approx(expect)
    # more query heads sharing the same FLOPs cost more tiles
    assert prefill_attention_s(ek, flops, 500, 2 * tiles) == pytest.approx(expect + 128 * 20e-9)


def test_prefill_attention_reads_kv_passes_times():
    ek = _kernels(attention_efficiency=0.5, attention_half_work=100.0, attention_floor_s=10e-6,
                  attention_tile_s=0.0, kernel_floor_s=1e-6, prefill_kv_passes=2.5)
    flops = 2 * 2 * 1000 * 500 * 8 * 256
    base = prefill_attention_s(ek, flops, 500, 0.0)
    # 2 prompts of 1000 tokens with 8 KV heads of width 128 in BF16: K and V take 2·1000·8·2·128·2 bytes
    kv = 2 * 1000 * 8 * 2 * 128 * 2.0
    assert prefill_attention_s(ek, flops, 500, 0.0, kv) == pytest.approx(base + 2.5 * kv / H100_HBM)


def test_smooth_max_is_sum_at_one_and_tends_to_max():
    assert smooth_max((3e-6, 4e-6, 0.0), 1.0) == pytest.approx(7e-6)
    assert smooth_max((3e-6, 4e-6, 0.0), 2.0) == pytest.approx(5e-6)
    assert smooth_max((3e-6, 4e-6), 50.0) == pytest.approx(4e-6, rel=1e-3)


def test_decode_attention_by_hand():
    c = dict(decode_attention_floor_s=9e-6, decode_seq_s=30e-9, decode_mha_floor_s=8e-6, decode_mha_seq_s=10e-9,
             decode_mha_dequant_s=3e-13, decode_fp8_floor_s=6e-6,
             decode_fp8_seq_s=12e-9, decode_free_units=100.0, kv_read_efficiency=0.9, kv_dequant_s=2e-13,
             decode_split_s=5e-6, decode_split_tokens=500.0, decode_overlap_exponent=2.0, kernel_floor_s=1e-6)
    ek = _kernels(**c)
    # 64 sequences x 8 KV heads (32 query heads), context 1000, BF16 KV: 512 units, 412 beyond the free wave
    kv = 64 * 1000 * 2 * 8 * 128 * 2.0
    units = (512 - 100) * 30e-9
    read = kv / (H100_HBM * 0.9)
    split = 5e-6 * 1000 / 1500
    expect = 9e-6 + math.hypot(units, read) + split
    assert decode_attention_s(ek, 64, 8, 32, 1000, kv, 1.0) == pytest.approx(expect)
    # MHA (a KV head per query head): the non-GQA kernel's floor and unit time
    mha = 8e-6 + math.hypot((512 - 100) * 10e-9, read) + split
    assert decode_attention_s(ek, 64, 8, 8, 1000, kv, 1.0) == pytest.approx(mha)
    # ... for an FP8 KV cache too (half the bytes, plus that kernel's own dequant term)
    read8 = kv / 2 / (H100_HBM * 0.9)
    mha8 = 8e-6 + math.sqrt(((512 - 100) * 10e-9) ** 2 + read8 ** 2 + (kv / 2 * 3e-13) ** 2) + split
    assert decode_attention_s(ek, 64, 8, 8, 1000, kv / 2, 1.0, kv_fp8=True) == pytest.approx(mha8)
    # FP8 KV: half the bytes, its own floor and unit time, plus the dequant term (one element per byte)
    kv8 = kv / 2
    fp8 = 6e-6 + math.sqrt(((512 - 100) * 12e-9) ** 2 + (kv8 / (H100_HBM * 0.9)) ** 2 + (kv8 * 2e-13) ** 2) + split
    assert decode_attention_s(ek, 64, 8, 32, 1000, kv8, 1.0, kv_fp8=True) == pytest.approx(fp8)
    # few units: no per-unit time at all
    small = 9e-6 + 100 * 4096 / (H100_HBM * 0.9) + 5e-6 * 100 / 600
    assert decode_attention_s(ek, 1, 8, 32, 100, 100 * 4096.0, 1.0) == pytest.approx(small)


def test_split_blocks_by_hand():
    # no multi-block heuristic: one block per unit
    assert split_blocks(0.0, 132.0, 256, 100000) == 1
    # history c + 1 = 128 tokens: one block of 128; 256 tokens: two (256 x 2 blocks = 3.9 waves, under 8)
    assert split_blocks(128.0, 132.0, 256, 127) == 1
    assert split_blocks(128.0, 132.0, 256, 255) == 2
    # 2048 tokens: 16 blocks, capped at round(sqrt(8 x 16)) = 11; 128 x 11 blocks are 10.7 waves, 1.33 x the
    # target of 8: floor(11 / 1.33) = 8
    assert split_blocks(128.0, 132.0, 128, 2047) == 8
    # a long history over many units: the wave cut leaves at least one block
    assert split_blocks(128.0, 132.0, 4096, 65535) == 1


def test_decode_attention_with_multi_block_split_by_hand():
    c = dict(decode_attention_floor_s=9e-6, decode_seq_s=30e-9, decode_free_units=100.0, kv_read_efficiency=0.9,
             decode_split_s=5e-6, decode_split_tokens=500.0, decode_overlap_exponent=2.0, kernel_floor_s=1e-6,
             decode_split_block_tokens=128.0, gemm_sms=132.0, decode_gqa_min_block_factor=0.0,
             decode_mha_block_tokens=0.0)
    ek = _kernels("trtllm", **c)
    # 32 sequences x 8 KV heads (32 query heads), context 127: 256 units of one block each, no reduction
    kv = 32 * 127 * 2 * 8 * 128 * 2.0
    short = 9e-6 + math.hypot((256 - 100) * 30e-9, kv / (H100_HBM * 0.9))
    assert decode_attention_s(ek, 32, 8, 32, 127, kv, 1.0) == pytest.approx(short)
    # context 255: two blocks per unit (512 blocks), plus the reduction
    kv2 = 32 * 255 * 2 * 8 * 128 * 2.0
    split = 9e-6 + math.hypot((512 - 100) * 30e-9, kv2 / (H100_HBM * 0.9)) + 5e-6 * 255 / 755
    assert decode_attention_s(ek, 32, 8, 32, 255, kv2, 1.0) == pytest.approx(split)
    # MHA runs the non-GQA kernel: no multi-block split
    c_mha = dict(decode_mha_floor_s=8e-6, decode_mha_seq_s=10e-9)
    mha = 8e-6 + math.hypot((256 - 100) * 10e-9, kv2 / (H100_HBM * 0.9)) + 5e-6 * 255 / 755
    assert decode_attention_s(_kernels("trtllm", **c, **c_mha), 32, 8, 8, 255, kv2, 1.0) == pytest.approx(mha)


def test_runs_gqa_kernel_by_hand():
    k = _kernels("trtllm", decode_split_block_tokens=128.0, decode_gqa_min_block_factor=4.0, gemm_sms=132.0).k
    # history under 256 tokens: one block per unit; 4 x 32 = 128 blocks < 132 SMs -> MMHA, 4 x 33 = 132 -> XQA
    assert not runs_gqa_kernel(k, 32, 31, False)
    assert runs_gqa_kernel(k, 33, 31, False)
    # 256 history tokens (context 255) split in two: 16 units x 2 x 4 = 128 -> MMHA, 17 units -> XQA
    assert not runs_gqa_kernel(k, 16, 255, False)
    assert runs_gqa_kernel(k, 17, 255, False)
    # an FP8 KV cache always runs XQA (MMHA has no BF16-query / FP8-KV path); no selection rule: always the GQA kernel
    assert runs_gqa_kernel(k, 1, 31, True)
    assert runs_gqa_kernel(dataclasses.replace(k, decode_gqa_min_block_factor=0.0), 1, 31, False)


def test_mha_chunks_by_hand():
    # 8 units: ceil(132 / 8) = 17 chunks fill the SMs once, but a 4096-token history has only 16 of 256 tokens
    assert mha_chunks(256.0, 132.0, 8, 4095) == 16
    assert mha_chunks(256.0, 132.0, 8, 8191) == 17
    # as many units as SMs, or a history of one chunk: no split
    assert mha_chunks(256.0, 132.0, 256, 65535) == 1
    assert mha_chunks(256.0, 132.0, 8, 100) == 1


def test_mha_waves_by_hand():
    # from 4 x 132 = 528 units on: 256-thread blocks, 4 per SM, 528 a wave
    assert mha_waves(132.0, 1024) == 2
    assert mha_waves(132.0, 2048) == 4
    # fewer units: blocks of 256 x min(ceil(528 / u), 4) threads, used as 256, 512 or 1024
    assert mha_waves(132.0, 100) == 1  # 1024 threads, one block per SM
    assert mha_waves(132.0, 140) == 2  # ceil(528 / 140) = 4: 1024 threads, 140 blocks on 132 SMs
    assert mha_waves(132.0, 256) == 1  # ceil(528 / 256) = 3: 768 -> 512 threads, two blocks per SM
    assert mha_waves(132.0, 300) == 2  # 512 threads: 264 blocks a wave


def test_head_tiles_by_hand():
    k = _kernels("trtllm", decode_fp8_head_tile=8.0).k
    assert [head_tiles(k, g) for g in (1, 4, 8, 12, 16)] == [1, 1, 1, 2, 2]
    assert head_tiles(dataclasses.replace(k, decode_fp8_head_tile=0.0), 16) == 1


def test_decode_attention_fp8_gqa_pays_per_head_tile():
    c = dict(decode_fp8_floor_s=6e-6, decode_fp8_seq_s=12e-9, decode_free_units=100.0, kv_read_efficiency=0.9,
             kv_dequant_s=0.0, decode_split_s=0.0, decode_overlap_exponent=1.0, kernel_floor_s=1e-6,
             decode_split_block_tokens=128.0, gemm_sms=132.0, decode_fp8_head_tile=8.0)
    ek = _kernels("trtllm", **c)
    # 2048 sequences x 1 KV head, context 1, FP8 KV: 2048 units (one block each); 16 query heads fill two
    # 8-head tiles, so each unit beyond the free 100 costs 2 x 12 ns, against 1 x 12 ns with 8 query heads
    kv = 2048 * 1 * 2 * 1 * 128 * 1.0
    read = kv / (H100_HBM * 0.9)
    assert decode_attention_s(ek, 2048, 1, 16, 1, kv, 1.0, kv_fp8=True) == pytest.approx(
        6e-6 + (2048 - 100) * 24e-9 + read)
    assert decode_attention_s(ek, 2048, 1, 8, 1, kv, 1.0, kv_fp8=True) == pytest.approx(
        6e-6 + (2048 - 100) * 12e-9 + read)


def test_decode_attention_on_mmha_by_hand():
    c = dict(decode_mha_floor_s=8e-6, decode_mha_seq_s=10e-9, decode_free_units=100.0, kv_read_efficiency=0.9,
             decode_split_s=5e-6, decode_split_tokens=500.0, decode_overlap_exponent=2.0, kernel_floor_s=1e-6,
             decode_split_block_tokens=128.0, gemm_sms=132.0, decode_gqa_min_block_factor=4.0,
             decode_mha_block_tokens=256.0, decode_mha_token_s=30e-9)
    ek = _kernels("trtllm", **c)
    # 2 sequences x 1 KV head (16 query heads), context 2047, BF16 KV: 2 x 16 = 32 XQA blocks, 4 x 32 < 132 SMs,
    # so MMHA runs on 32 query-head units that read their KV head's 2048 tokens each (16 x the GQA bytes);
    # ceil(132 / 32) = 5 chunks (under 2048 / 256 = 8) of 2048 / 5 tokens each
    kv = 2 * 2047 * 2 * 1 * 128 * 2.0
    read = 16 * kv / (H100_HBM * 0.9)
    stream = 2048 / 5 * 30e-9
    expect = 8e-6 + math.hypot(read, stream) + 5e-6 * 2047 / 2547
    assert decode_attention_s(ek, 2, 1, 16, 2047, kv, 1.0) == pytest.approx(expect)
    # the same as MHA with 16 KV heads
    assert decode_attention_s(ek, 2, 16, 16, 2047, 16 * kv, 1.0) == pytest.approx(expect)
    # 64 sequences x 8 heads at context 1: 512 units take two waves (512-thread blocks, 264 a wave), the second
    # costing its 528 unit slots; one chunk of 2 history tokens each, so no reduction
    kv1 = 64 * 1 * 2 * 8 * 128 * 2.0
    waves = 8e-6 + math.sqrt((528 * 10e-9) ** 2 + (kv1 / (H100_HBM * 0.9)) ** 2 + (2 * 30e-9) ** 2)
    assert decode_attention_s(ek, 64, 8, 8, 1, kv1, 1.0) == pytest.approx(waves)
    # without the streaming term (an engine without MMHA's multi-block mode) the time is shorter
    plain = _kernels("trtllm", **{**c, "decode_mha_block_tokens": 0.0})
    assert decode_attention_s(plain, 2, 1, 16, 2047, kv, 1.0) == pytest.approx(8e-6 + read + 5e-6 * 2047 / 2547)

