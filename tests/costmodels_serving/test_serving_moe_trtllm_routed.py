"""TensorRT-LLM's per-tensor MoE table rows ('moe bf16', 'moe fp8') are predicted on the token-expert rows its
collector routed (benchmarks/aic_moe_workload.measured_rows: balanced routing, GPU 0's experts computing their own
slots, no grouped top-k), not on uniform-random expert hits: checked by hand, and against the measured table where
slots ~ experts (uniform hits would leave a third of the experts' weights unread)."""

import functools
import pathlib
import sys

import pytest

import profiles
from costmodels import serving_gemm
from costmodels.serving_constants import KernelConstants
from costmodels.serving_kernels import EngineKernels, engine_calibration

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "benchmarks"))
import serve_engine_ops  # noqa: E402
from aic_moe_workload import measured_rows  # noqa: E402


def _trtllm(device: str = "h100-sxm") -> EngineKernels:
    dev = profiles.load_device(device)
    return EngineKernels(dev, KernelConstants.of_engine(engine_calibration(dev, "trtllm")))


def _by_hand(ek: EngineKernels, rows, h: float, inter: float, dtype: str, walked: float = 0.0) -> float:
    """Both grouped GEMMs (gate+up, down) of the layer on `rows`, TensorRT-LLM's tuned kernel (no default config)."""
    return sum(serving_gemm.grouped_gemm_rows_s(ek.device, ek.k, rows, n, kk, dtype, 0.0, walked)
               for n, kk in ((2 * inter, h), (h, inter)))


def _uniform(ek: EngineKernels, slots: float, local: float, h: float, inter: float, dtype: str) -> float:
    """The same layer on uniform-random expert hits (serving_gemm.grouped_gemm_s), as the fit predicted before."""
    return sum(serving_gemm.grouped_gemm_s(ek.device, ek.k, slots, local, n, kk, dtype)
               for n, kk in ((2 * inter, h), (h, inter)))


@pytest.mark.parametrize("dtype", ["bf16", "fp8"])
def test_every_expert_gets_one_row_where_slots_equal_experts(dtype: str):
    # Qwen3-30B-A3B's layer (hidden 2048, width 768, top-8 of 128), 16 tokens at EP 1: stride 16, token t picks
    # t + 16j, so all 128 experts get exactly one row; uniform hits reach only 128·(1 - (127/128)^128) ≈ 81
    ek = _trtllm()
    assert ek.tuned_moe is None  # TensorRT-LLM's own CUTLASS MoE: no borrowed kernel
    assert measured_rows(16, 128, 8, 1, False)[1] == ((1, 128),)
    point = (16.0, 2048.0, 768.0, 8.0, 128.0, 1.0, 1.0, dtype, 1.0)
    got = serve_engine_ops.predict_moe(ek, point, engine="trtllm")
    # per-tensor FP8: plus the layer's input quantise kernel over the 16 tokens (moe_input_quant)
    quant = serving_gemm.moe_input_quant_s(ek.device, ek.k, 16.0, 2048.0) if dtype == "fp8" else 0.0
    assert (quant > 0) == (dtype == "fp8")
    assert got == pytest.approx(_by_hand(ek, ((1, 128),), 2048.0, 768.0, dtype) + quant, rel=1e-12)
    assert serving_gemm.experts_hit(128, 128) == pytest.approx(81.0, abs=0.5)
    assert got > 1.4 * _uniform(ek, 128.0, 128.0, 2048.0, 768.0, dtype)  # 128 experts' weights read, not 81


def test_expert_parallel_rows_are_gpu0s_own_without_grouped_topk():
    # DeepSeek-V3's layer (7168, 2048, top-8 of 256), 1 token at EP 2: stride 32 picks experts 0, 32, ..., 224,
    # GPU 0 (experts 0-127) computes 4 of them, as the block-FP8 rows show (EP 2 runs half of EP 1); vLLM's
    # collector applies the grouped top-k, which would put all 8 on GPU 0
    ek = _trtllm()
    assert measured_rows(1, 256, 8, 2, False)[1] == ((0, 124), (1, 4))
    assert measured_rows(1, 256, 8, 2, False, (8, 4))[1] == ((0, 120), (1, 8))
    point = (1.0, 7168.0, 2048.0, 8.0, 256.0, 1.0, 2.0, "fp8", 1.0)
    # plus the input quantise kernel over the layer's one token (moe_input_quant: every GPU quantises all of them)
    want = _by_hand(ek, ((0, 124), (1, 4)), 7168.0, 2048.0, "fp8") + serving_gemm.moe_input_quant_s(
        ek.device, ek.k, 1.0, 7168.0)
    assert serve_engine_ops.predict_moe(ek, point, engine="trtllm") == pytest.approx(want, rel=1e-12)


def test_trtllm_writes_only_its_own_slots():
    # TensorRT-LLM's CUTLASS MoE permutes GPU 0's slots only: at EP 4 (experts 0-31 of 128) 256 tokens x top-8
    # give GPU 0 512 of the 2048 slots (16 rows per local expert), and its output is those 512 rows, not all 2048
    ek = _trtllm()
    rows = measured_rows(256, 128, 8, 4, False)[1]
    assert rows == ((16, 32),)
    point = (256.0, 2048.0, 768.0, 8.0, 128.0, 1.0, 4.0, "bf16", 1.0)
    got = serve_engine_ops.predict_moe(ek, point, engine="trtllm")
    assert got == pytest.approx(_by_hand(ek, rows, 2048.0, 768.0, "bf16"), rel=1e-12)
    assert got < _by_hand(ek, rows, 2048.0, 768.0, "bf16", walked=2048.0)


@functools.cache
def _table(device: str) -> dict[tuple, float]:
    from aiconfigurator_tables import load

    return {p[:8]: p[8] for p in load(device, "trtllm").moe}


@pytest.mark.parametrize("device", ["h100-sxm", "h200"])
@pytest.mark.parametrize("dtype", ["bf16", "fp8"])
def test_routed_rows_match_the_measured_layer_where_uniform_hits_ran_fast(device: str, dtype: str):
    """Qwen3-30B-A3B's layer at TP 1, EP 1, 16-64 tokens (128-512 slots on 128 experts): the profile's fitted
    TensorRT-LLM constants on the routed rows stay within 6 % of the measured layer at every token count (fitted:
    -0.2 to +3.1 %), where the same constants on uniform hits come out 29-32 % fast at 16 tokens."""
    pytest.importorskip("aiconfigurator_core", reason="needs aiconfigurator-core (optional extra `aiconfigurator`): "
                                                      "the measured per-op tables")
    ek = _trtllm(device)
    table = _table(device)
    for tokens in (16, 32, 48, 64):
        measured = table[(tokens, 2048, 768, 8, 128, 1, 1, dtype)]
        point = (float(tokens), 2048.0, 768.0, 8.0, 128.0, 1.0, 1.0, dtype, measured)
        assert serve_engine_ops.predict_moe(ek, point, engine="trtllm") == pytest.approx(measured, rel=0.06)
    measured = table[(16, 2048, 768, 8, 128, 1, 1, dtype)]
    assert _uniform(ek, 128.0, 128.0, 2048.0, 768.0, dtype) < 0.8 * measured
