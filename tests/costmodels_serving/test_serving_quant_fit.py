"""The FP8 input quantise kernel fitted to its own measured table (benchmarks/aic_quant_tables.py, serve_engine_fit.py
op 'fp8 quant'), and 'gemm fp8' fitted on top of it with those constants fixed."""

import statistics
import subprocess
import sys

import pytest
from bench_modules import BENCH, bench_modules

import profiles
from costmodels.serving_gemm import fp8_quant_s
from costmodels.serving_kernels import EngineKernels, engine_calibration


def _bench():
    return bench_modules("aic_quant_tables", "serve_engine_fit", needs="the measured quantise-kernel tables")


@pytest.mark.parametrize("device", ["h100-sxm", "h200"])
def test_static_quant_points_are_the_engines_quantise_kernels(device):
    q, _ = _bench()
    dev = profiles.load_device(device)
    for engine in ("trtllm", "vllm"):
        points = q.static_quant_points(device, engine)
        assert points == tuple(sorted(points)) and len({p[:2] for p in points}) == len(points)
        m, k, t = max(points, key=lambda p: p[0] * p[1])
        # the largest point streams its BF16 input and FP8 output once: between 3 bytes per element at peak HBM
        # bandwidth and twice that time (a memory-bound element-wise kernel, not a composite of several)
        assert 3.0 * m * k / dev.hbm_bytes_per_s < t < 2 * 3.0 * m * k / dev.hbm_bytes_per_s
        assert min(p[2] for p in points) > 1e-6  # a launch at least
    # SGLang's table times a torch composite (~30 bytes per element), not the kernel its GEMM rows run
    assert q.static_quant_points(device, "sglang") == ()


def test_op_names_fit_the_quantise_kernel_once():
    _, f = _bench()
    quant = ("fp8_quant_s", "fp8_quant_row_s", "fp8_quant_bytes", "fp8_quant_l2_share")
    for engine in ("trtllm", "vllm"):
        # vLLM's kernel runs one thread block per row (its per-block bandwidth fitted), TensorRT-LLM's grid-strides
        assert f.op_names("fp8 quant", engine) == quant + (("fp8_quant_row_bytes_per_s",) if engine == "vllm" else ())
        assert not set(f.op_names("fp8 quant", engine)) & set(f.op_names("gemm fp8", engine))
        assert "fp8_gemm_row_s" in f.op_names("gemm fp8", engine)
    assert f.op_names("fp8 quant", "sglang") == ()
    assert {"fp8_quant_s", "fp8_quant_row_s", "fp8_quant_bytes"} <= set(f.op_names("gemm fp8", "sglang"))
    assert "fp8_gemm_row_s" not in f.op_names("gemm fp8", "sglang")
    ops = f.fit_order()
    assert ops.index("fp8 quant") < ops.index("gemm fp8")  # the quantise kernel's constants first
    # every op once; NVFP4 (vLLM's warm-L2 quantise reads the L2 rate decode attention fits) after decode attention
    assert sorted(ops) == sorted(f.OPS) and ops.index("gemm fp4") == ops.index("decode attention") + 1


@pytest.mark.parametrize("device", ["h100-sxm", "h200"])
def test_profile_quantise_constants_follow_the_measured_table(device):
    q, f = _bench()
    dev = profiles.load_device(device)
    for engine in ("trtllm", "vllm"):
        ek = EngineKernels(dev, engine_calibration(dev, engine))
        points = [p for p in q.static_quant_points(device, engine) if p[0] <= 256 and 512 <= p[1] <= 16384]
        err = [fp8_quant_s(ek.device, ek.k, m, k) / t - 1 for m, k, t in points]
        # small activations (decode): within 15 % at the median, where the GEMM-row fit had put it +49..+78 %
        assert abs(statistics.median(err)) < 0.15, (engine, statistics.median(err))


def test_fit_of_the_quantise_op_reproduces_held_aside_points():
    q, f = _bench()
    dev = profiles.load_device("h200")
    t = f.load("h200", "trtllm")
    points = f.OPS["fp8 quant"][0](t)
    train = [p for p in points if not f.held_aside(p[:-1])]
    test = [p for p in points if f.held_aside(p[:-1])]
    names = f.op_names("fp8 quant", "trtllm")
    values = f.fit_op(dev, dict(f.START), names, train, f.OPS["fp8 quant"][1])
    ek = f._kernels(dev, values)
    err = sorted(abs(f.OPS["fp8 quant"][1](ek, p) / p[-1] - 1) for p in test)
    assert statistics.median(err) < 0.05 and err[int(0.9 * len(err))] < 0.15
    assert 1.5 < values["fp8_quant_bytes"] < 4.5  # read 2 bytes, write 1, at the device's element-wise efficiency


def test_refit_of_the_quantise_op_alone_is_refused():
    _bench()
    run = subprocess.run([sys.executable, str(BENCH / "serve_engine_fit.py"), "--refit", "fp8 quant",
                          "--out", "/dev/null"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "'fp8 quant' also needs 'gemm fp8'" in run.stderr


def test_quantise_kernel_terms():
    import dataclasses

    dev = profiles.load_device("h100-sxm")
    base = dataclasses.replace(engine_calibration(dev, "trtllm"), fp8_quant_s=0.0, fp8_quant_row_s=0.0,
                               fp8_quant_bytes=3.0, fp8_quant_l2_share=0.5,
                               fp8_quant_row_bytes_per_s=0.0)
    ek = EngineKernels(dev, base)
    stream = 3.0 / (ek.device.hbm_bytes_per_s * ek.device.calibration.hbm_efficiency)  # per element from HBM
    # 1024 x 8192: 24 MiB of BF16 input and FP8 output fit in L2: half the HBM bytes; 4096 x 8192 (96 MiB) does not
    assert fp8_quant_s(ek.device, ek.k, 1024, 8192) == pytest.approx(0.5 * stream * 1024 * 8192)
    assert fp8_quant_s(ek.device, ek.k, 4096, 8192) == pytest.approx(stream * 4096 * 8192)
    # one thread block per row (vLLM): a single 51200-wide row streams at one block's bandwidth
    rows = EngineKernels(dev, dataclasses.replace(base, fp8_quant_row_bytes_per_s=2e10))
    assert fp8_quant_s(rows.device, rows.k, 1, 51200) == pytest.approx(3.0 * 51200 / 2e10)
    assert fp8_quant_s(rows.device, rows.k, 4096, 8192) == fp8_quant_s(ek.device, ek.k, 4096, 8192)
