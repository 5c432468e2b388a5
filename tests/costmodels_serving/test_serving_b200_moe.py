"""MoE serving on B200: the kernel each engine runs there (read from its source: vLLM 0.24.0 FlashInfer's
TensorRT-LLM-gen fused MoE, moe_trtllm_gen; SGLang 0.5.14 by model architecture, refused), which engines' fitted MoE
models meet the accuracy bar (benchmarks/serve_engine_fit.py MOE_BAR: moe_fitted, moe_fp8_fitted) and so serve MoE
models on B200, and an end-to-end estimate of one."""

import dataclasses
import json
import math
import pathlib
import statistics
import sys

import numpy as np
import pytest
import yaml
from bench_modules import fit_tables, held_aside_errors
from click.testing import CliRunner

import profiles
from cli import main
from costmodels import serving_gemm
from costmodels.errors import SpecError
from costmodels.serving_constants import KernelConstants
from costmodels.serving_kernels import EngineKernels, block_fp8_kernels, engine_calibration, grouped_gemm_s
from costmodels.serving_moe_configs import SGLANG_SM100_TRTLLM_GEN, TRTLLM_GEN_MOE, family_refusal
from costmodels.serving_moe_flashinfer import trtllm_gen_launch_s, trtllm_gen_tile
from planner.serve.estimate import estimate_serving
from profiles.hardware import engines_from_mapping

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "benchmarks"))

MODEL = "qwen3-30b-a3b"
SERVED = {"trtllm": (True, True, True), "vllm": (True, True, True), "sglang": (True, True, True)}
"""engine -> (moe_fitted, moe_fp8_fitted, moe_blockfp8_fitted) on B200 after benchmarks/serve_engine_fit.py --devices
b200: TensorRT-LLM's BF16, block-FP8 and per-tensor FP8 MoE meet the bar (per-tensor: held-aside 5.6/18.7 % with its
input's own static quantise kernel, serving_gemm.moe_input_quant_s; 5.8/20.7 % without it);
vLLM's and SGLang's TensorRT-LLM-gen MoE (the same kernel; SGLang's for Qwen3-MoE and DeepSeek-V3 only) with the same
terms: its L2 re-read share moe_gen_l2_bytes, its grouped GEMMs' time per launched token-tile CTA moe_gen_cta_s and the
slot traffic inside the GEMMs, once. vLLM meets it at BF16 and per-tensor FP8 (held-aside 3.4/12.1 %, 5.2/18.2 %), and
at block-scaled FP8 (4.8/17.5 %, with its input's group quantisation moe_blockfp8_quant_s and its DeepSeek-FP8
activation kernel moe_blockfp8_act_s; was 7.6/20.0 % without the activation kernel); SGLang at BF16 and at
(block-scaled) FP8 (held-aside 6.1/15.6 % and 6.7/18.9 %; FP8 was 7.7/22.7 % without the CTA term, with
its activation kernel moe_gen_act_s alone, 11.3/35.6 % before it)"""


def _estimate(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, ["estimate", "serve", "--model", MODEL, "--tp", "1", "--batch", "8", "--isl", "512",
                                  "--osl", "64", "-o", "-", *args])
    return r.exit_code, r.output


def _kernels(engine: str, **changes: float) -> EngineKernels:
    dev = profiles.load_device("b200")
    k = KernelConstants.of_engine(engine_calibration(dev, engine))
    return EngineKernels(dev, dataclasses.replace(k, **changes))


def test_trtllm_gen_moe_runs_no_triton_config_and_only_its_own_slots():
    """moe_trtllm_gen 1: the default tile config's row block and the walk over the whole layer's slots that vLLM's
    Hopper Triton kernel pays do not apply (FlashInfer's TensorRT-LLM-gen MoE routes inside the kernel)."""
    n, kk, slots, local = 1536.0, 2048.0, 96.0, 16.0
    for dtype in ("bf16", "fp8"):
        gen = _kernels("vllm", moe_trtllm_gen=1.0, moe_fp8_tile_s=0.0)
        alone = grouped_gemm_s(gen, slots, local, n, kk, dtype, True)
        assert grouped_gemm_s(gen, slots, local, n, kk, dtype, True, default_rows=64.0, all_slots=8 * slots) == alone
        kernel = serving_gemm.grouped_gemm_s(gen.device, gen.k, slots, local, n, kk, dtype)
        assert alone == pytest.approx(kernel + trtllm_gen_launch_s(gen.k, slots, local))  # plus its launched CTAs
    hopper_rules = _kernels("vllm", moe_trtllm_gen=0.0, moe_fp8_tile_s=0.0)
    assert (grouped_gemm_s(hopper_rules, slots, local, n, kk, "bf16", default_rows=64.0, all_slots=8 * slots)
            > grouped_gemm_s(hopper_rules, slots, local, n, kk, "bf16"))


def test_trtllm_gen_block_fp8_on_its_own_constants_at_every_ep():
    """vLLM on B200 runs block-scaled FP8 experts on the TensorRT-LLM-gen kernel at EP 1 and EP > 1 alike: no
    borrowed TensorRT-LLM CUTLASS constants (its Hopper rule at EP > 1), since the fallback-tile term is off."""
    ek = _kernels("vllm", moe_trtllm_gen=1.0, moe_fp8_tile_s=0.0, moe_blockfp8_efficiency=0.5)
    assert ek.tuned_moe is None
    for ep in (1, 2, 8):
        block = block_fp8_kernels(ek, ep)
        assert block is not None and block[2] and block[1].moe_fp8_efficiency == 0.5


def test_fit_rules_for_b200_moe():
    fit = pytest.importorskip("serve_engine_fit", reason="needs benchmarks/ (scipy, numpy)")
    assert fit.ENGINE_DEVICE_CONSTANTS["vllm", "b200"]["moe_trtllm_gen"] == 1.0
    assert fit.ENGINE_DEVICE_CONSTANTS["vllm", "b200"]["moe_fp8_tile_s"] == 0.0
    assert "moe_trtllm_gen" not in fit.ENGINE_DEVICE_CONSTANTS.get(("trtllm", "b200"), {})
    assert all(op in fit.device_ops("b200") for op in ("moe bf16", "moe fp8", "moe fp8 block"))
    good, bad = (0.05, 0.15), (0.05, 0.25)
    rows = [("gemm bf16", 1, 1, 0.5, 0.9)]
    assert fit.moe_served(rows) == (False, False, False)
    assert fit.moe_served(rows + [("moe bf16", 1, 1, *good), ("moe fp8", 1, 1, *good),
                                  ("moe fp8 block", 1, 1, *good)]) == (True, True, True)
    assert fit.moe_served([("moe bf16", 1, 1, *good), ("moe fp8", 1, 1, *bad),
                           ("moe fp8 block", 1, 1, *good)]) == (True, False, True)
    assert fit.moe_served([("moe bf16", 1, 1, *good), ("moe fp8", 1, 1, *good),
                           ("moe fp8 block", 1, 1, *bad)]) == (True, True, False)
    assert fit.moe_served([("moe bf16", 1, 1, *bad), ("moe fp8", 1, 1, *good)]) == (False, False, False)
    assert fit.moe_served([("moe bf16", 1, 1, 0.09, 0.15)]) == (False, False, False)  # the median counts too


def test_fit_writes_each_false_flag_and_the_loader_reads_it_back():
    """yaml_block writes moe_fitted / moe_fp8_fitted / moe_blockfp8_fitted only where false; the profile loader reads
    the block back to the same flags."""
    fit = pytest.importorskip("serve_engine_fit", reason="needs benchmarks/ (scipy, numpy)")
    cal = engine_calibration(profiles.load_device("b200"), "trtllm")
    for flags in ((True, False, True), (True, True, False), (False, False, False)):
        want = dataclasses.replace(cal, moe_fitted=flags[0], moe_fp8_fitted=flags[1], moe_blockfp8_fitted=flags[2])
        text = fit.yaml_block([want])
        assert text.count(": false") == flags.count(False)
        (back,) = engines_from_mapping(yaml.safe_load(text)["serving_engines"], source="test")
        assert (back.moe_fitted, back.moe_fp8_fitted, back.moe_blockfp8_fitted) == flags


def test_b200_profile_serves_moe_for_the_engines_that_meet_the_bar():
    dev = profiles.load_device("b200")
    got = {c.engine: (c.moe_fitted, c.moe_fp8_fitted, c.moe_blockfp8_fitted) for c in dev.serving_engines}
    assert got == SERVED
    assert engine_calibration(dev, "vllm").moe_trtllm_gen == 1.0
    assert engine_calibration(dev, "trtllm").moe_trtllm_gen == 0.0


def _missed(engine: str, **flags: bool):
    """The B200 profile with `engine`'s MoE flags set as if its fitted ops had missed the bar."""
    dev = profiles.load_device("b200")
    return dataclasses.replace(dev, serving_engines=tuple(
        dataclasses.replace(c, **flags) if c.engine == engine else c for c in dev.serving_engines))


@pytest.mark.parametrize("engine, dtype, words", [
    ("trtllm", "fp8", ("per-tensor FP8", "accuracy bar", "--dtype bf16", "--quant-block 128")),
])
def test_refusals_on_b200_say_why(engine: str, dtype: str, words: tuple[str, ...]):
    """On a B200 profile whose per-tensor FP8 MoE missed the bar (moe_fp8_fitted false), the refusal names the
    device, the flag's reason and what is served instead."""
    with pytest.raises(SpecError) as e:
        estimate_serving(profiles.load_model(MODEL), _missed(engine, moe_fp8_fitted=False), tp=1, batch=8, isl=512,
                         osl=64, engine=engine, dtype=dtype)
    assert "b200" in str(e.value) and all(w in str(e.value) for w in words), str(e.value)


def test_sglang_fp8_moe_served_on_b200_end_to_end():
    """SGLang's FP8 MoE (block-scaled: its FP8 experts run FlashInfer's TensorRT-LLM-gen DeepSeek-FP8 path) meets the
    bar on B200: --dtype fp8 is served, CLI == API, with a finite step that differs from its BF16 one."""
    code, out = _estimate("--gpu", "b200", "--engine", "sglang", "--dtype", "fp8")
    assert code == 0, out
    api = estimate_serving(profiles.load_model(MODEL), profiles.load_device("b200"), tp=1, batch=8, isl=512, osl=64,
                           engine="sglang", dtype="fp8")
    assert json.loads(api.dumps()) == json.loads(out)
    code, bf16 = _estimate("--gpu", "b200", "--engine", "sglang")
    assert code == 0, bf16
    p, b = json.loads(out)["predicted"], json.loads(bf16)["predicted"]
    assert math.isfinite(p["decode_step_s"]) and 0 < p["decode_step_s"] != b["decode_step_s"]


def test_block_fp8_refused_where_its_op_misses_the_bar():
    """A B200 profile whose TensorRT-LLM block-scaled FP8 MoE missed the bar (moe_blockfp8_fitted false) refuses
    --quant-block on the API, naming the flag and why; per-tensor and BF16 follow their own flags."""
    dev = profiles.load_device("b200")
    cals = tuple(dataclasses.replace(c, moe_blockfp8_fitted=False) for c in dev.serving_engines)
    off = dataclasses.replace(dev, serving_engines=cals)
    model = profiles.load_model(MODEL)
    with pytest.raises(SpecError, match="block-scaled FP8.*accuracy bar") as e:
        estimate_serving(model, off, tp=1, batch=8, isl=512, osl=64, engine="trtllm", dtype="fp8", quant_block=128)
    assert "quant-block" in str(e.value)
    bf16 = estimate_serving(model, off, tp=1, batch=8, isl=512, osl=64, engine="trtllm")
    assert json.loads(bf16.dumps())["predicted"]["decode_step_s"] > 0


def test_block_fp8_moe_served_on_b200_by_trtllm_end_to_end():
    """TensorRT-LLM's block-scaled FP8 MoE meets the bar on B200: --dtype fp8 --quant-block 128 is served (CLI == API)
    on its block-scaled constants, and differs from the BF16 and the per-tensor FP8 estimates."""
    code, out = _estimate("--gpu", "b200", "--engine", "trtllm", "--dtype", "fp8", "--quant-block", "128")
    assert code == 0, out
    api = estimate_serving(profiles.load_model(MODEL), profiles.load_device("b200"), tp=1, batch=8, isl=512, osl=64,
                           engine="trtllm", dtype="fp8", quant_block=128)
    assert json.loads(api.dumps()) == json.loads(out)
    _, bf16 = _estimate("--gpu", "b200", "--engine", "trtllm")
    p, b = json.loads(out)["predicted"], json.loads(bf16)["predicted"]
    assert math.isfinite(p["decode_step_s"]) and 0 < p["decode_step_s"] != b["decode_step_s"]
    code, tensor = _estimate("--gpu", "b200", "--engine", "trtllm", "--dtype", "fp8")
    assert code == 0, tensor
    assert json.loads(tensor)["predicted"]["decode_step_s"] != p["decode_step_s"]


def test_moe_estimate_on_b200_end_to_end_faster_than_h100():
    """TensorRT-LLM, BF16 Qwen3-30B-A3B: CLI == API on B200, a finite step, prefill and decode faster than on H100
    (B200: 2.25 vs 0.99 PFLOPS BF16, 8 vs 3.35 TB/s)."""
    code, out = _estimate("--gpu", "b200", "--engine", "trtllm")
    assert code == 0, out
    b200 = json.loads(out)
    api = estimate_serving(profiles.load_model(MODEL), profiles.load_device("b200"), tp=1, batch=8, isl=512, osl=64,
                           engine="trtllm")
    assert json.loads(api.dumps()) == b200
    code, out = _estimate("--gpu", "h100-sxm", "--engine", "trtllm")
    assert code == 0, out
    p, h = b200["predicted"], json.loads(out)["predicted"]
    assert math.isfinite(p["decode_step_s"]) and 0 < p["decode_step_s"] < h["decode_step_s"]
    assert 0 < p["prefill_s"] < h["prefill_s"]


@pytest.mark.parametrize("op", ["moe bf16", "moe fp8", "moe fp8 block"])
def test_trtllm_b200_moe_constants_meet_the_bar_on_held_aside_rows(op: str):
    """The committed B200 constants of TensorRT-LLM predict its held-aside measured MoE rows (one in five by key hash,
    never fitted) within the bar: median <= 8 %, p90 <= 20 %."""
    ek = EngineKernels(profiles.load_device("b200"),
                       KernelConstants.of_engine(engine_calibration(profiles.load_device("b200"), "trtllm")))
    err, bar = held_aside_errors(ek, "b200", "trtllm", op)
    assert len(err) > 100
    assert statistics.median(err) <= bar[0] and float(np.quantile(err, 0.9)) <= bar[1]


def test_sglang_b200_moe_kernel_by_model_family():
    """SGLang 0.5.14 on B200 (server_args): FlashInfer's TensorRT-LLM-gen MoE for Qwen3-MoE (BF16, FP8) and
    DeepSeek-V3 (FP8), its Triton fused MoE for the rest, refused by family name; Hopper and other engines never."""
    assert ("sglang", "b200") in TRTLLM_GEN_MOE
    assert family_refusal("sglang", "b200", "qwen3_moe", "bf16") is None
    assert family_refusal("sglang", "b200", "deepseek_v3", "fp8") is None
    assert "--dtype fp8" in str(family_refusal("sglang", "b200", "deepseek_v3", "bf16"))
    for family in ("mixtral", "qwen2_moe", ""):
        why = family_refusal("sglang", "b200", family, "bf16")
        assert why is not None and "Triton" in why
    assert family_refusal("sglang", "h200", "mixtral", "bf16") is None
    assert family_refusal("vllm", "b200", "mixtral", "bf16") is None
    assert set(SGLANG_SM100_TRTLLM_GEN) == {"qwen3_moe", "deepseek_v3"}


def test_sglang_b200_refuses_mixtral_naming_the_family():
    r = CliRunner().invoke(main, ["estimate", "serve", "--model", "mixtral-8x7b", "--tp", "2", "--batch", "8",
                                  "--isl", "512", "--osl", "64", "--gpu", "b200", "--engine", "sglang", "-o", "-"])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "'mixtral'" in r.output and "Triton" in r.output, r.output
    with pytest.raises(SpecError, match="mixtral"):
        estimate_serving(profiles.load_model("mixtral-8x7b"), profiles.load_device("b200"), tp=2, batch=8, isl=512,
                         osl=64, engine="sglang")


def test_sglang_b200_fit_domain_is_its_trtllm_gen_families():
    """The SGLang B200 MoE ops fit and report only the shapes of the families it runs the TensorRT-LLM-gen kernel
    for (Qwen3-MoE; DeepSeek-V3 at FP8), predicted as that kernel (own slots, no Triton config); Hopper keeps all."""
    ops = pytest.importorskip("serve_engine_ops", reason="needs benchmarks/ (scipy, numpy)")
    fit, tables = fit_tables("b200", "sglang")
    families = {ops.SHIPPED_MOE_FAMILY[p[1:5]] for p in ops.OPS["moe bf16"][0](tables)}
    assert families == {"qwen3_moe"}
    families = {ops.SHIPPED_MOE_FAMILY[p[1:5]] for p in ops.OPS["moe fp8"][0](tables)}
    assert families == {"qwen3_moe", "deepseek_v3"}
    hopper = fit.load("h200", "sglang")
    assert "mixtral" in {ops.SHIPPED_MOE_FAMILY[p[1:5]] for p in ops.OPS["moe bf16"][0](hopper)}
    ek = _kernels("sglang")
    assert ek.k.moe_trtllm_gen == 1.0
    p = next(p for p in ops.OPS["moe bf16"][0](tables) if p[6] == 2)
    assert ops.predict_moe(ek, p, engine="sglang") == pytest.approx(ops.predict_moe(ek, p, engine="vllm"))


def test_trtllm_gen_fallback_token_tile_by_hand():
    """FlashInfer's TensorRT-LLM-gen MoE without a tuned tactic: t = nextPowerOfTwo(⌊tokens·top_k / local experts⌋)
    clamped to 8..128, the fallback the smallest candidate, t / 2 (t at 8)."""
    assert trtllm_gen_tile(80 * 2, 8) == 16.0  # 20 rows per expert: t 32, fallback 16
    assert trtllm_gen_tile(80 * 2, 4) == 32.0  # EP 2: 40 -> 64 -> 32
    assert trtllm_gen_tile(8 * 8, 128) == 8.0  # under one row per expert: t 8, no smaller candidate
    assert trtllm_gen_tile(16 * 8, 8) == 8.0  # exactly 16: t 16, fallback 8
    assert trtllm_gen_tile(16384 * 8, 8) == 64.0  # clamped at 128: fallback 64


def test_trtllm_gen_weights_stream_once_per_token_tile():
    """On the TensorRT-LLM-gen kernel each further token tile of an expert re-reads the share moe_block_weight_reads
    of its weights: 20 rows per expert at a 16-row tile (2 tiles) cost more than the same rows at EP 2 (one 32-row
    tile per expert, half the experts) times 2, by the re-read weights; no re-reads, no difference."""
    n, kk = 2.0 * 16384, 6144.0
    for reads, more in ((0.5, True), (0.0, False)):
        ek = _kernels("vllm", moe_trtllm_gen=1.0, moe_block_weight_reads=reads, moe_gen_l2_bytes=0.0, moe_floor_s=0.0,
                      kernel_floor_s=0.0)
        ep1 = grouped_gemm_s(ek, 160.0, 8.0, n, kk, "bf16", ep=1)
        ep2 = grouped_gemm_s(ek, 80.0, 4.0, n, kk, "bf16", ep=2)
        assert (ep1 > 2 * ep2 * 1.05) is more, (ep1, ep2)


def test_trtllm_gen_re_reads_miss_l2_by_the_expert_weight_bytes():
    """Hand-checked: with ρ = 0.2 and C = 100 bytes, an expert GEMM of W = 300 bytes over 3 token tiles streams its
    weights 1 + (0.2 + 0.8 · 300 / 400) · 2 = 2.6 times; W = 0 (or C = 0, the term off) keeps the flat share,
    1 + 0.2 · 2 = 1.4."""
    k = _kernels("vllm", moe_block_weight_reads=0.2, moe_gen_l2_bytes=100.0).k
    assert serving_gemm.weight_passes(k, 3.0, 300.0) == pytest.approx(2.6)
    assert serving_gemm.weight_passes(k, 3.0, 0.0) == pytest.approx(1.4)
    assert serving_gemm.weight_passes(dataclasses.replace(k, moe_gen_l2_bytes=0.0), 3.0, 300.0) == pytest.approx(1.4)
    assert serving_gemm.weight_passes(k, 1.0, 300.0) == 1.0  # one tile: weights once


def test_trtllm_gen_tp_streams_fewer_bytes_per_expert_than_ep():
    """vLLM B200 profile: Mixtral-8x22B-sized experts (h 6144, width 16384) at 16384 tokens, top-2. At TP 4 each
    GPU's expert slice (W/4) mostly stays in L2 between token tiles; at EP 4 (whole experts, a quarter of them) it
    streams from HBM every tile: the same FLOPs per GPU, EP 4 slower by the re-read bytes (measured on the B200
    table's Mixtral-8x7B rows: TP 4 2.77 ms vs EP 4 5.21 ms at 16384 tokens)."""
    ek = _kernels("vllm")
    c = ek.k.moe_gen_l2_bytes
    assert 32 * 2**20 < c < 256 * 2**20  # an L2-sized capacity (B200: 126 MB of L2)
    h, inter, slots = 6144.0, 16384.0, 16384.0 * 2
    tp4 = sum(grouped_gemm_s(ek, slots, 8.0, n, kk, "bf16", ep=1) for n, kk in ((2 * inter / 4, h), (h, inter / 4)))
    ep4 = sum(grouped_gemm_s(ek, slots / 4, 2.0, n, kk, "bf16", ep=4) for n, kk in ((2 * inter, h), (h, inter)))
    assert ep4 > 1.3 * tp4, (ep4, tp4)


@pytest.mark.parametrize("dtype", ["bf16", "fp8"])
def test_vllm_moe_served_on_b200_end_to_end(dtype: str):
    """vLLM's BF16 and per-tensor FP8 Qwen3-MoE on B200 (TensorRT-LLM-gen kernel, fitted within the bar): CLI ==
    API, finite, faster than on H100; its block-scaled FP8 is served too (meets the bar since its activation kernel
    has a term): CLI == API, slower than per-tensor FP8 (input group quantisation, separate activation kernel)."""
    code, out = _estimate("--gpu", "b200", "--engine", "vllm", "--dtype", dtype)
    assert code == 0, out
    api = estimate_serving(profiles.load_model(MODEL), profiles.load_device("b200"), tp=1, batch=8, isl=512, osl=64,
                           engine="vllm", dtype=dtype)
    assert json.loads(api.dumps()) == json.loads(out)
    _, h100 = _estimate("--gpu", "h100-sxm", "--engine", "vllm", "--dtype", dtype)
    p, h = json.loads(out)["predicted"], json.loads(h100)["predicted"]
    assert math.isfinite(p["decode_step_s"]) and 0 < p["decode_step_s"] < h["decode_step_s"]
    code, block = _estimate("--gpu", "b200", "--engine", "vllm", "--dtype", "fp8", "--quant-block", "128")
    assert code == 0, block
    api = estimate_serving(profiles.load_model(MODEL), profiles.load_device("b200"), tp=1, batch=8, isl=512, osl=64,
                           engine="vllm", dtype="fp8", quant_block=128)
    assert json.loads(api.dumps()) == json.loads(block)
    _, fp8 = _estimate("--gpu", "b200", "--engine", "vllm", "--dtype", "fp8")
    b, f = json.loads(block)["predicted"], json.loads(fp8)["predicted"]
    assert math.isfinite(b["decode_step_s"]) and b["decode_step_s"] > f["decode_step_s"]


def test_trtllm_gen_prices_its_slot_traffic_once():
    """Hand-checked: on the TensorRT-LLM-gen kernel (vLLM and SGLang on B200) an FP8 grouped GEMM's slot traffic
    s·k + s·2·n is priced once, inside the kernel (σ = moe_fp8_slot_bytes), never again as separate serial kernels
    (moe_fp8_serial_bytes 0 in both engines' profiles): with σ_s = 1 forced, the GEMM grows by exactly
    (80·2048 + 80·2·4096) B / (BW · η_fp8), what serving_gemm.serial_s charges."""
    args = (80.0, 2.0, 4096.0, 2048.0, "fp8")
    for engine in ("vllm", "sglang"):
        ek = _kernels(engine)
        assert ek.k.moe_trtllm_gen == 1.0 and ek.k.moe_fp8_serial_bytes == 0.0 and ek.k.moe_fp8_slot_bytes > 0.1
        assert ek.k.moe_block_weight_reads == 0.0 and ek.k.moe_gen_l2_bytes > 0
        doubled = grouped_gemm_s(_kernels(engine, moe_fp8_serial_bytes=1.0), *args, True)
        bw = ek.device.hbm_bytes_per_s * ek.k.moe_fp8_hbm_efficiency
        extra = (80 * 2048 + 80 * 2 * 4096) / bw
        assert doubled - grouped_gemm_s(ek, *args, True) == pytest.approx(extra)


def test_sglang_qwen3_moe_served_on_b200_end_to_end():
    """SGLang's BF16 Qwen3-MoE on B200 (TensorRT-LLM-gen kernel, fitted within the bar): CLI == API, finite, faster
    than on H100 (its FP8: test_sglang_fp8_moe_served_on_b200_end_to_end)."""
    code, out = _estimate("--gpu", "b200", "--engine", "sglang")
    assert code == 0, out
    api = estimate_serving(profiles.load_model(MODEL), profiles.load_device("b200"), tp=1, batch=8, isl=512, osl=64,
                           engine="sglang")
    assert json.loads(api.dumps()) == json.loads(out)
    _, h100 = _estimate("--gpu", "h100-sxm", "--engine", "sglang")
    p, h = json.loads(out)["predicted"], json.loads(h100)["predicted"]
    assert math.isfinite(p["decode_step_s"]) and 0 < p["decode_step_s"] < h["decode_step_s"]


def test_fp8_refusals_offer_only_what_is_served():
    """SGLang serves DeepSeek-V3 on B200 at FP8 only (its server_args): its block-scaled FP8 is served (within the
    bar), and on a profile where it missed the bar the refusal offers no BF16; TensorRT-LLM's per-tensor FP8 is
    served, and on a profile where it missed the bar its refusal offers BF16 and --quant-block."""
    args = ["estimate", "serve", "--model", "deepseek-v3", "--gpu", "b200", "--tp", "8", "--batch", "8", "--isl", "512",
            "--osl", "64", "--dtype", "fp8", "-o", "-"]
    r = CliRunner().invoke(main, [*args, "--engine", "sglang", "--quant-block", "128"])
    assert r.exit_code == 0, r.output
    dev = profiles.load_device("b200")
    off = dataclasses.replace(dev, serving_engines=tuple(
        dataclasses.replace(c, moe_fp8_fitted=False, moe_blockfp8_fitted=False) if c.engine == "sglang" else c
        for c in dev.serving_engines))
    with pytest.raises(SpecError, match="quant-block") as e:
        estimate_serving(profiles.load_model("deepseek-v3"), off, tp=8, batch=8, isl=512, osl=64, engine="sglang",
                         dtype="fp8", quant_block=128)
    assert "--dtype bf16" not in str(e.value)
    r = CliRunner().invoke(main, [*args, "--engine", "trtllm"])
    assert r.exit_code == 0, r.output
    with pytest.raises(SpecError) as e:
        estimate_serving(profiles.load_model("deepseek-v3"), _missed("trtllm", moe_fp8_fitted=False), tp=8, batch=8,
                         isl=512, osl=64, engine="trtllm", dtype="fp8")
    assert "--dtype bf16" in str(e.value) and "--quant-block 128" in str(e.value), str(e.value)
    r = CliRunner().invoke(main, [*args, "--engine", "trtllm", "--quant-block", "128"])
    assert r.exit_code == 0, r.output
