"""Blackwell (SM100) attention terms (costmodels/serving_attention_sm100.py), checked by hand."""

import dataclasses

import pytest

import profiles
from costmodels import compute, serving
from costmodels.serving_attention import decode_attention_s, prefill_attention_s, query_tiles
from costmodels.serving_attention_sm100 import (
    kv_read_s,
    longest_tile_flops,
    runs_decode_kernel,
    tail_tile_s,
)
from costmodels.serving_constants import KernelConstants
from costmodels.serving_kernels import EngineKernels, engine_calibration

B200_BF16 = 2250e12
SMS = 148.0


def _kernels(device: str = "b200", engine: str = "vllm", **changes: float) -> EngineKernels:
    dev = profiles.load_device(device)
    k = KernelConstants.of_engine(engine_calibration(dev, engine))
    return EngineKernels(dev, dataclasses.replace(k, **changes))


def test_longest_tile_is_the_last_128_rows_over_all_keys():
    # 4096 new tokens: rows 3968..4095, each over 3969..4096 keys, 4032 on average; d_qk + d_v = 256
    assert longest_tile_flops(4096, 0, 256) == 2 * 128 * 4032 * 256
    # 50 new tokens after 100 cached: all 50 rows, 101..150 keys, 125 on average
    assert longest_tile_flops(50, 100, 256) == 2 * 50 * 125 * 256
    assert longest_tile_flops(0, 100, 256) == 0.0


def test_tail_tile_runs_the_longest_unit_at_one_sms_share():
    ek = _kernels(prefill_tail_tile=1.0, gemm_sms=SMS)
    f = 2 * 128 * 4032 * 256
    assert tail_tile_s(ek, f, 0.6) == pytest.approx(f * 148 / (B200_BF16 * 0.6))
    assert tail_tile_s(_kernels(prefill_tail_tile=0.0), f, 0.6) == 0.0


def test_prefill_tail_dominates_one_long_sequence_of_few_heads():
    # one 4096-token prompt, 4 heads: 4·32 = 128 units on 148 SMs; efficiency flat at 0.6 (half work ~0)
    on = _kernels(prefill_tail_tile=1.0, gemm_sms=SMS, attention_efficiency=0.6, attention_half_work=1e-9,
                  attention_floor_s=10e-6, attention_tile_s=20e-9, kernel_floor_s=1e-6, prefill_kv_passes=0.0)
    off = _kernels(prefill_tail_tile=0.0, gemm_sms=SMS, attention_efficiency=0.6, attention_half_work=1e-9,
                   attention_floor_s=10e-6, attention_tile_s=20e-9, kernel_floor_s=1e-6, prefill_kv_passes=0.0)
    flops = 2.0 * 4096 * 2048 * 4 * 256
    tiles = query_tiles(1, 4, 4096)
    tile = longest_tile_flops(4096, 0, 256)
    spread = flops / (B200_BF16 * 0.6)
    base = 10e-6 + spread + 128 * 20e-9
    assert prefill_attention_s(off, flops, 2048, tiles, 0.0, tile) == pytest.approx(base)
    # the longest unit alone takes 148 · 128·4032 / (4·4096·2048) = 2.28x the spread-out time
    assert prefill_attention_s(on, flops, 2048, tiles, 0.0, tile) == pytest.approx(base + spread * 2.28, rel=1e-3)
    # many units of short rows: the tail is a small share
    short = 2.0 * 256 * 512 * 256 * 32 * 256
    t_on = prefill_attention_s(on, short, 256, query_tiles(256, 32, 512), 0.0, longest_tile_flops(512, 0, 256))
    t_off = prefill_attention_s(off, short, 256, query_tiles(256, 32, 512), 0.0, longest_tile_flops(512, 0, 256))
    assert 0 < t_on / t_off - 1 < 0.01


def test_one_token_prefill_runs_the_decode_kernel_only_where_selected():
    on, off = _kernels(prefill_one_token_decode=1.0), _kernels(prefill_one_token_decode=0.0)
    assert runs_decode_kernel(on, 1) and not runs_decode_kernel(on, 2)
    assert not runs_decode_kernel(off, 1)


def test_kv_read_from_l2_only_when_warm_and_within_it():
    ek = _kernels(kv_warm_l2=1.0, kv_l2_bytes_per_s=20e12, kv_read_efficiency=0.9)
    hbm = ek.device.hbm_bytes_per_s
    assert ek.device.l2_bytes == 126 * 2**20  # B200's L2 (profiles/hardware/b200.yaml l2_mib)
    assert kv_read_s(ek, 64e6, warm_l2=True) == pytest.approx(64e6 / 20e12)
    assert kv_read_s(ek, 140e6, warm_l2=True) == pytest.approx(140e6 / (hbm * 0.9))
    assert kv_read_s(ek, 64e6) == pytest.approx(64e6 / (hbm * 0.9))  # serving: never warm
    assert kv_read_s(_kernels(kv_warm_l2=0.0, kv_read_efficiency=0.9), 64e6, True) == pytest.approx(
        64e6 / (hbm * 0.9))


def test_mha_decode_on_the_gqa_kernel_uses_its_constants():
    consts = dict(decode_attention_floor_s=9e-6, decode_seq_s=10e-9, decode_mha_floor_s=20e-6, decode_mha_seq_s=1e-6,
                  decode_free_units=100.0, decode_overlap_exponent=1.0, decode_split_s=0.0, kv_read_efficiency=0.9,
                  kernel_floor_s=1e-6, decode_split_block_tokens=0.0, decode_gqa_min_block_factor=0.0, kv_warm_l2=0.0)
    packed = _kernels(decode_mha_as_gqa=1.0, **consts)
    own = _kernels(decode_mha_as_gqa=0.0, **consts)
    # 16 sequences x 8 heads (MHA), context 1000: 128 units, 28 beyond the free ones; K = 16·1000·8·2·128·2 bytes
    kv = 16 * 1000 * 8 * 2 * 128 * 2.0
    read = kv / (packed.device.hbm_bytes_per_s * 0.9)
    assert decode_attention_s(packed, 16, 8, 8, 1000, kv, 1.0) == pytest.approx(9e-6 + 28 * 10e-9 + read)
    assert decode_attention_s(own, 16, 8, 8, 1000, kv, 1.0) == pytest.approx(20e-6 + 28 * 1e-6 + read)


def test_hopper_profiles_keep_every_sm100_term_off():
    for device in ("h100-sxm", "h200"):
        for cal in profiles.load_device(device).serving_engines:
            assert (cal.prefill_tail_tile, cal.prefill_one_token_decode, cal.decode_mha_as_gqa, cal.kv_warm_l2) == (
                0.0, 0.0, 0.0, 0.0), (device, cal.engine)


def test_b200_profile_selects_the_terms_per_engine():
    cals = {c.engine: c for c in profiles.load_device("b200").serving_engines}
    assert all(c.prefill_tail_tile == 1.0 and c.decode_mha_as_gqa == 1.0 for c in cals.values())
    assert cals["vllm"].prefill_one_token_decode == 1.0
    assert cals["trtllm"].prefill_one_token_decode == 0.0 and cals["sglang"].prefill_one_token_decode == 0.0
    assert all(c.kv_warm_l2 == 1.0 and c.kv_l2_bytes_per_s > c.kv_read_efficiency * 8e12
               for c in cals.values())


def test_serving_prefill_adds_the_tail_of_its_longest_unit_per_layer():
    # Llama-3.1-8B at TP 8 on B200 (4 query heads per GPU), one 4096-token prompt: 4·32 = 128 units on 148 SMs
    model, dev = profiles.load_model("llama3.1-8b"), profiles.load_device("b200")
    off = dataclasses.replace(dev, serving_engines=tuple(
        dataclasses.replace(c, prefill_tail_tile=0.0) for c in dev.serving_engines))
    shape = serving.InstanceShape(tp=8)
    t_on = serving.prefill_time(model, dev, shape, batch=1, prompt_len=4096, engine="vllm")["attention_s"]
    t_off = serving.prefill_time(model, off, shape, batch=1, prompt_len=4096, engine="vllm")["attention_s"]
    ek = EngineKernels(dev, KernelConstants.of_engine(engine_calibration(dev, "vllm")))
    eff = compute.attention_efficiency(2048.0, 128.0, ek.device.calibration)
    tail = 2 * 128 * 4032 * 256 * 148 / (B200_BF16 * eff)
    assert t_on - t_off == pytest.approx(model.layers * tail, rel=1e-6)
