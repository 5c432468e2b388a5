"""vLLM's per-token FP8 input quantisation as its FP8 GEMM table rows run it (serving_gemm.token_quant_s): Inductor's
compiled QuantFP8.forward_native, one program per row looping over 2048-element chunks of the row twice (amax, then
quantise): m·(t_p + 2·⌈k/2048⌉·t_c), by hand, in an unfused linear layer's input quantisation, and against the
measured n 32 rows (no GEMM work to speak of) that show it; fitted for vLLM only (Hopper and B200)."""

import pytest
from bench_modules import bench_modules
from kernel_constants import kernel_constants

import profiles
from costmodels.serving_gemm import INDUCTOR_R0_BLOCK, gemm_fp8_s, input_quant_s, token_quant_s
from costmodels.serving_kernels import EngineKernels, engine_calibration, gemm_s

HOPPER = ("h100-sxm", "h200")


def test_token_quant_by_hand():
    """Two (m, k) points worked by hand: k 2048 is one chunk, k 5120 three (2048 + 2048 + 1024)."""
    k = kernel_constants(fp8_gemm_row_s=4e-9, fp8_gemm_row_chunk_s=1e-9)
    assert INDUCTOR_R0_BLOCK == 2048
    assert token_quant_s(k, 1000.0, 2048.0) == pytest.approx(1000 * (4e-9 + 2 * 1 * 1e-9))  # 6 µs
    assert token_quant_s(k, 32768.0, 5120.0) == pytest.approx(32768 * (4e-9 + 2 * 3 * 1e-9))  # 327.68 µs
    # one element past a chunk costs a whole further iteration in each pass; no constants: no time
    assert token_quant_s(k, 1.0, 2049.0) - token_quant_s(k, 1.0, 2048.0) == pytest.approx(2e-9)
    assert token_quant_s(kernel_constants(), 4096.0, 8192.0) == 0.0


def test_token_quant_is_part_of_the_unfused_input_quantisation():
    """It adds to a linear layer whose input is quantised apart, not to the GEMM kernel, and not where the producing
    kernel quantises (fused_quant)."""
    h100 = profiles.load_device("h100-sxm")
    off = kernel_constants(fp8_gemm_row_s=0.0, fp8_gemm_row_chunk_s=0.0)
    on = kernel_constants(fp8_gemm_row_s=4e-9, fp8_gemm_row_chunk_s=1e-9)
    m, n, kk = 4096.0, 8192.0, 5120.0
    assert gemm_fp8_s(h100, on, m, n, kk) == gemm_fp8_s(h100, off, m, n, kk)
    assert input_quant_s(h100, on, m, kk) - input_quant_s(h100, off, m, kk) == pytest.approx(4096 * 10e-9)
    ek_on, ek_off = EngineKernels(h100, on), EngineKernels(h100, off)
    assert gemm_s(ek_on, m, n, kk, "fp8") - gemm_s(ek_off, m, n, kk, "fp8") == pytest.approx(4096 * 10e-9)
    assert gemm_s(ek_on, m, n, kk, "fp8", fused_quant=True) == gemm_s(ek_off, m, n, kk, "fp8", fused_quant=True)


def _bench():
    return bench_modules("serve_engine_fit", "serve_engine_ops", needs="the measured GEMM tables and the fit's bounds")


@pytest.mark.parametrize("device", (*HOPPER, "b200"))
def test_chunk_time_is_fitted_for_vllm_only(device):
    f, ops = _bench()
    for engine in ("trtllm", "vllm", "sglang"):
        names = f._constrained(f.op_names("gemm fp8", engine), ops.predict_gemm, engine, device, [])
        assert ("fp8_gemm_row_chunk_s" in names) == (engine == "vllm"), (engine, device)
    for cal in profiles.load_device(device).serving_engines:
        assert (cal.fp8_gemm_row_chunk_s > 0) == (cal.engine == "vllm")


@pytest.mark.parametrize("device", HOPPER)
def test_measured_n32_rows_step_with_the_chunks(device):
    """vLLM's n 32 FP8 rows between m 8192 and 32768, less the measured static quantise kernel, grow per row as the
    fitted program does: within 20 % at k 32 (one chunk) and 8192 (four), and the step from k 2048 to 2560 (a second
    chunk) is at least half the model's 2·t_c."""
    _bench()
    from aic_quant_tables import static_quant_points
    from aiconfigurator_tables import load

    table = {(p[0], p[1], p[2], p[3]): p[4] for p in load(device, "vllm").gemm}
    quant = {(m, k): t for m, k, t in static_quant_points(device, "vllm")}
    cal = engine_calibration(profiles.load_device(device), "vllm")
    lo, hi = 8192, 32768

    def slope(kk: int) -> float:
        rows = (table[hi, 32, kk, "fp8"] - table[lo, 32, kk, "fp8"]) / (hi - lo)
        return rows - (quant[hi, kk] - quant[lo, kk]) / (hi - lo)

    for kk in (32, 8192):
        assert slope(kk) == pytest.approx(token_quant_s(cal, 1.0, kk), rel=0.2), kk
    assert slope(2560) - slope(2048) > 0.5 * 2 * cal.fp8_gemm_row_chunk_s
