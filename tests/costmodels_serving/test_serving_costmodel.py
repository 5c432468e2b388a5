"""Serving cost model: hand-worked numbers, accuracy against measured latencies, queueing formulas."""

import csv
import math
import statistics

import pytest

import profiles
from costmodels.errors import SpecError
from costmodels.kv import kv_bytes_per_token, kv_bytes_per_token_layer
from costmodels.queueing import max_offered_load, mg1_max_rate, mg1_wait_quantile_s
from costmodels.serving import (
    InstanceShape,
    check_shape,
    decode_step_time,
    kv_bytes_per_token_gpu,
    kv_capacity_tokens,
    kv_transfer_time,
    mean_decode_step_time,
    prefill_time,
    weight_bytes_per_gpu,
)
from planner.serve import check, estimate_serving

KIB = 1024


def test_kv_bytes_per_token_hand_worked():
    # Llama-2-70B: 2 (K,V) x 80 layers x 8 kv heads x 128 x 2 bytes = 327,680 B = 320 KiB
    assert kv_bytes_per_token(profiles.load_model("llama2-70b")) == 320 * KIB
    # DeepSeek-V3 MLA: (512 + 64) x 61 layers x 2 bytes = 70,272 B = 68.6 KiB
    ds = profiles.load_model("deepseek-v3")
    assert kv_bytes_per_token(ds) == 576 * 61 * 2
    # the MLA latent is not sharded by TP; GQA shards over min(tp, kv_heads)
    assert kv_bytes_per_token_gpu(ds, InstanceShape(tp=8)) == kv_bytes_per_token_layer(ds) * 61
    llama = profiles.load_model("llama2-70b")
    assert kv_bytes_per_token_gpu(llama, InstanceShape(tp=8)) == 320 * KIB / 8
    assert kv_bytes_per_token_gpu(llama, InstanceShape(tp=16, ep=1)) == 320 * KIB / 8


def test_weights_and_capacity_hand_worked():
    llama = profiles.load_model("llama2-70b")
    h100 = profiles.load_device("h100-sxm")
    # ~68.98e9 parameters x 2 bytes / 8 GPUs = 17.2 GB per GPU
    w = weight_bytes_per_gpu(llama, InstanceShape(tp=8))
    assert w == pytest.approx(68.98e9 * 2 / 8, rel=0.01)
    cap = kv_capacity_tokens(llama, h100, InstanceShape(tp=8))
    assert cap == pytest.approx((h100.usable_bytes * 0.9 - w) / (320 * KIB / 8))
    # 70B does not fit one 80 GB GPU
    assert kv_capacity_tokens(llama, h100, InstanceShape(tp=1)) == 0.0


def test_kv_transfer_time_hand_worked():
    llama = profiles.load_model("llama2-70b")
    # 4000 tokens x 320 KiB = 1.31 GB over 8 senders x 50 GB/s = 3.28 ms + 10 us
    t = kv_transfer_time(llama, tokens=4000, link_bytes_per_s=50e9, latency_s=10e-6, senders=8)
    assert t == pytest.approx(10e-6 + 4000 * 327680 / (8 * 50e9))


def test_monotone_in_batch_and_context():
    llama = profiles.load_model("llama3.1-70b")
    h100 = profiles.load_device("h100-sxm")
    shape = InstanceShape(tp=8)
    steps = [decode_step_time(llama, h100, shape, batch=b, context_len=2000)["time_s"] for b in (1, 8, 64, 256)]
    assert steps == sorted(steps)
    ctx = [decode_step_time(llama, h100, shape, batch=32, context_len=c)["time_s"] for c in (100, 4000, 32000)]
    assert ctx == sorted(ctx)
    pre = [prefill_time(llama, h100, shape, batch=1, prompt_len=n)["time_s"] for n in (128, 2048, 16384)]
    assert pre == sorted(pre)
    # more TP never makes a large prefill slower in this model (compute splits, all-reduce grows less)
    assert prefill_time(llama, h100, InstanceShape(tp=8), batch=1, prompt_len=8192)["time_s"] < \
        prefill_time(llama, h100, InstanceShape(tp=4), batch=1, prompt_len=8192)["time_s"]


def test_moe_shapes_and_errors():
    qwen = profiles.load_model("qwen3-235b-a22b")
    h200 = profiles.load_device("h200")
    a = decode_step_time(qwen, h200, InstanceShape(tp=8, ep=8), batch=64, context_len=4000, engine="modern")
    assert a["alltoall_s"] > 0 and a["time_s"] > 0
    with pytest.raises(SpecError):
        check_shape(qwen, InstanceShape(tp=8, ep=3))
    with pytest.raises(SpecError):
        check_shape(profiles.load_model("llama2-70b"), InstanceShape(tp=8, ep=8))


def test_mm1_quantile_is_exact():
    # M/M/1: P(W > t) = rho exp(-mu (1 - rho) t); E[S^2] = 2/mu^2
    mu, lam, q = 10.0, 7.0, 0.95
    rho = lam / mu
    exact = math.log(rho / (1 - q)) / (mu * (1 - rho))
    assert mg1_wait_quantile_s(lam, 1 / mu, 2 / mu ** 2, q) == pytest.approx(exact)
    assert mg1_wait_quantile_s(0.5, 0.1, 0.01, 0.9) == 0.0  # rho = 0.05 <= 1 - q: the 90th percentile waits 0
    r = mg1_max_rate(0.1, 0.02, 0.9, 0.5)
    assert mg1_wait_quantile_s(r, 0.1, 0.02, 0.9) == pytest.approx(0.5, rel=1e-6)
    a = max_offered_load(100, 0.9)
    assert a + 1.2815515655446004 * math.sqrt(a) == pytest.approx(100)


def _measured(shared_dir):
    path = shared_dir / "calibration" / "measured_serving_latency.csv"
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    return list(csv.DictReader(lines))


def test_accuracy_against_measured_serving_latency(shared_dir):
    """Median |error| <= 15 % for prefill and for per-token decode (Llama-2-70B, 8 x H100)."""
    rows = _measured(shared_dir)
    assert len(rows) >= 10
    model = profiles.load_model("llama2-70b")
    device = profiles.load_device("h100-sxm")
    pre_err, dec_err = [], []
    for r in rows:
        plan = estimate_serving(model, device, tp=int(r["tp"]), batch=int(r["batch"]), isl=int(r["prompt_len"]),
                                osl=int(r["output_len"]))
        pre_err.append(abs(plan["predicted"]["prefill_s"] * 1e3 / float(r["prefill_ms_median"]) - 1))
        dec_err.append(abs(plan["predicted"]["decode_step_s"] * 1e3 / float(r["decode_ms_per_token_median"]) - 1))
        assert plan["feasible"]
    assert statistics.median(pre_err) <= 0.15, sorted(pre_err)
    assert statistics.median(dec_err) <= 0.15, sorted(dec_err)


def test_estimate_document_checks_and_detects_tampering():
    plan = estimate_serving(profiles.load_model("llama2-70b"), profiles.load_device("h100-sxm"), tp=8, batch=4,
                            isl=1024, osl=256)
    assert check(plan) == []
    doc = dict(plan.doc)
    doc["predicted"] = {**doc["predicted"], "prefill_s": doc["predicted"]["prefill_s"] * 2}
    from planner.plan import Plan
    assert any("prefill_s" in p for p in check(Plan(doc)))


def test_estimate_reports_infeasible_memory():
    plan = estimate_serving(profiles.load_model("llama2-70b"), profiles.load_device("h100-sxm"), tp=1, batch=1,
                            isl=512, osl=128)
    assert plan["feasible"] is False and "GiB" in plan["infeasible_reasons"][0]


def test_mean_decode_averages_contexts():
    llama = profiles.load_model("llama2-70b")
    h100 = profiles.load_device("h100-sxm")
    shape = InstanceShape(tp=8)
    m = mean_decode_step_time(llama, h100, shape, batch=16, input_len=1000, output_len=1000)
    lo = decode_step_time(llama, h100, shape, batch=16, context_len=1000)["time_s"]
    hi = decode_step_time(llama, h100, shape, batch=16, context_len=2000)["time_s"]
    assert lo <= m <= hi
