"""Overlapped CPU scheduling (costmodels.serving.cpu_overhead_s): the measured engines prepare step n+1 on the CPU
while the GPU runs step n, so their per-sequence CPU cost only counts where it exceeds the GPU work."""

import dataclasses

import pytest

import profiles
from costmodels import serving
from costmodels.serving import ENGINES, InstanceShape, cpu_overhead_s, decode_step_time, mixed_step_time

STEP_S, SEQ_S = 0.5e-3, 2.5e-4
"""the H200 profile's per-iteration and (legacy) per-sequence CPU costs; measured engines take 0.1 of SEQ_S"""


@pytest.fixture(scope="module")
def h200():
    dev = profiles.load_device("h200")
    assert (dev.calibration.decode_step_overhead_s, dev.calibration.seq_overhead_s) == (STEP_S, SEQ_S)
    return dev


def test_overlapped_engine_hides_per_sequence_cost_up_to_the_gpu_time(h200):
    trt = ENGINES["trtllm"]
    assert trt.overlapped_cpu and all(ENGINES[e].overlapped_cpu for e in ("vllm", "sglang"))
    # 892 sequences x 25 us = 22.3 ms of CPU work: hidden behind 34 ms of GPU work, 12.3 ms left over 10 ms
    assert cpu_overhead_s(h200, trt, 892, 34e-3) == pytest.approx(STEP_S)
    assert cpu_overhead_s(h200, trt, 892, 10e-3) == pytest.approx(STEP_S + 22.3e-3 - 10e-3)
    assert cpu_overhead_s(h200, trt, 0, 0.0) == pytest.approx(STEP_S)


def test_engines_without_overlap_add_the_whole_cpu_cost(h200):
    for name in ("legacy", "modern"):
        assert not ENGINES[name].overlapped_cpu
    assert cpu_overhead_s(h200, ENGINES["legacy"], 10, 1.0) == pytest.approx(STEP_S + 10 * SEQ_S)
    assert cpu_overhead_s(h200, ENGINES["modern"], 100, 1.0) == pytest.approx(STEP_S + 100 * 0.1 * SEQ_S)


def _gpu(step: dict) -> float:
    return step["time_s"] - step["overhead_s"]


def test_decode_step_wall_is_max_of_gpu_and_cpu_work(h200):
    model, shape = profiles.load_model("llama3.1-8b"), InstanceShape(tp=1)
    kw = dict(engine="trtllm", dtype="fp8", kv_dtype="fp8")
    # the 8B offline step of ISL/OSL 1000/1000: 892 decodes, GPU work above the 22.3 ms of CPU work
    big = decode_step_time(model, h200, shape, batch=892, context_len=1500, **kw)
    assert _gpu(big) > 892 * 0.1 * SEQ_S
    assert big["overhead_s"] == pytest.approx(STEP_S)
    # ISL/OSL 128/128: 1024 decodes over short contexts, GPU work below the 25.6 ms of CPU work: CPU-bound
    short = decode_step_time(model, h200, shape, batch=1024, context_len=192, **kw)
    assert _gpu(short) < 1024 * 0.1 * SEQ_S
    assert short["time_s"] == pytest.approx(1024 * 0.1 * SEQ_S + STEP_S)
    legacy = decode_step_time(model, h200, shape, batch=64, context_len=1500, engine="legacy")
    assert legacy["overhead_s"] == pytest.approx(STEP_S + 64 * SEQ_S)


def test_mixed_step_overlap_saves_exactly_the_hidden_cpu_work(h200, monkeypatch):
    model, shape = profiles.load_model("llama3.1-8b"), InstanceShape(tp=1)
    kw = dict(decode_batch=400, decode_context=1500, chunk_tokens=8000, chunk_context=0.0, engine="trtllm",
              dtype="fp8", kv_dtype="fp8", chunk_prompts=8)
    overlapped = mixed_step_time(model, h200, shape, **kw)
    monkeypatch.setitem(serving.ENGINES, "trtllm", dataclasses.replace(ENGINES["trtllm"], overlapped_cpu=False))
    serial = mixed_step_time(model, h200, shape, **kw)
    assert serial - overlapped == pytest.approx(400 * 0.1 * SEQ_S)  # 10 ms, all below the chunk's GPU work
