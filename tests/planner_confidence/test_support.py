"""Regimes, backoff to supported dimensions, the prior, and the extrapolation reasons."""

import pytest
from confidence_fixtures import table

from planner.confidence.distribution import MIN_ROWS, from_log_errors, prior_from
from planner.confidence.regimes import bucket, family_of, serve_regime, train_regime
from planner.confidence.support import assess


def support(skew: float = 1.0, **kw):
    args = dict(moe=False, dtype="bf16", framework="megatron", zero=1, dp_group=32, seq_len=4096, family="gpu-a")
    args.update(kw)
    rows = table().of("train", ("step_time_s",))
    return assess(train_regime(**args), rows, rows, size=args["dp_group"], length=args["seq_len"], skew=skew)


def test_buckets_and_families():
    assert bucket(8, (8, 64, 512), "dp") == "dp<=8" and bucket(9, (8, 64, 512), "dp") == "dp<=64"
    assert bucket(4096, (4096, 16384), "ctx") == "ctx<=4k" and bucket(131072, (4096, 16384), "ctx") == "ctx>16k"
    assert family_of("gpu-a2", {"gpu-a2": "gpu-a"}) == "gpu-a" and family_of("b200", {}) == "b200"
    r = train_regime(moe=True, dtype="fp8", framework="torchtitan", zero=3, dp_group=128, seq_len=8192, family="x")
    assert r.key == "train/moe/fp8/torchtitan-zero3/dp<=512/ctx<=16k/x"
    s = serve_regime(moe=False, dtype="bf16", engine="legacy", tp=4, prompt_len=512, family="x")
    assert s.key == "serve/dense/bf16/legacy/tp<=8/ctx<=4k/x"


def test_a_regime_with_enough_rows_uses_its_own_rows():
    s = support()
    assert s.matched == "train/dense/bf16/megatron-zero1/dp<=64/ctx<=4k/gpu-a" and s.reasons == ()
    want = from_log_errors([-0.04, -0.02, 0.0, 0.01, 0.03, 0.05])
    assert s.distribution == want and s.support == want and not s.distribution.prior
    block = s.to_json()
    assert block["rows"] == 6 and block["median_error"] == pytest.approx(want.median_error)


def test_a_small_regime_relaxes_context_then_scale_then_framework():
    s = support(framework="torchtitan", zero=3, dp_group=64, seq_len=8192)
    assert len([r for r in table().rows if r.framework == "torchtitan-zero3"]) < MIN_ROWS
    assert s.matched == "train/dense/bf16/*/*/*/gpu-a" and s.reasons == ()
    assert s.support.rows == 9


def test_zero3_beyond_the_fitted_scale_is_extrapolated_and_uses_the_prior_when_wider():
    s = support(framework="torchtitan", zero=3, dp_group=512, seq_len=8192)
    assert any("torchtitan-zero3" in r and "512" in r and "128" in r for r in s.reasons)
    assert s.distribution.half_width >= s.support.half_width and s.distribution.prior
    # the prior comes from the family's own rows (gpu-a), not from other devices'
    family = [r.log_error for r in table().rows if r.target == "train" and r.family == "gpu-a"]
    assert s.distribution == prior_from(family)


@pytest.mark.parametrize("kw, words", [
    (dict(family="b200"), ("device b200", "no train calibration rows")),
    (dict(dtype="fp8"), ("FP8 on gpu-a",)),
    (dict(moe=True), ("MoE on gpu-a",)),
    (dict(seq_len=131072), ("sequence length 131072", "8192")),
    (dict(family="gpu-b"), ("only 2 train calibration rows on gpu-b",)),
    (dict(framework="deepspeed", zero=2), ("deepspeed-zero2 on gpu-a: no calibration rows",)),
])
def test_extrapolation_reasons(kw, words):
    s = support(**kw)
    text = " | ".join(s.reasons)
    assert all(w in text for w in words), text
    assert s.distribution.prior


def test_moe_skew_is_a_reason():
    s = support(moe=True, skew=1.3)
    assert any("skew 1.3" in r for r in s.reasons)
    assert not any("routing skew" in r for r in support(moe=True, skew=1.0).reasons)


def test_a_device_without_rows_gets_the_prior():
    s = support(family="mi300x")
    assert s.matched == "prior" and s.support is None and s.to_json()["rows"] == 0 and s.to_json()["prior"]


def test_serving_engine_without_rows_is_extrapolated():
    rows = table().of("serve", ("prefill_s", "decode_step_s"))
    ok = assess(serve_regime(moe=False, dtype="bf16", engine="legacy", tp=8, prompt_len=2048, family="gpu-a"), rows,
                rows, size=8, length=2048)
    assert ok.reasons == () and ok.support.rows == 6
    modern = assess(serve_regime(moe=False, dtype="bf16", engine="modern", tp=8, prompt_len=2048, family="gpu-a"),
                    rows, rows, size=8, length=2048)
    assert any("engine model 'modern'" in r for r in modern.reasons)
