"""Offline batch inference with batched and mixed steps (planner/serve/offline.py): hand-computed steady states,
budget 1 = one prompt per prefill step, the token budget honoured from the CLI and the API."""

import json
import math

import pytest
from click.testing import CliRunner

import profiles
from cli import main
from costmodels.hardware import ClusterSpec
from costmodels.serving import (
    InstanceShape,
    kv_capacity_tokens,
    mean_decode_step_time,
    mixed_step_time,
    prefill_time,
)
from planner import plan_serving
from planner.serve import ServeOptions, ServingWorkload, check, estimate_serving
from planner.serve.offline import offline_throughput


@pytest.fixture(scope="module")
def setup():
    model, device = profiles.load_model("llama3.1-70b"), profiles.load_device("h100-sxm")
    return model, device, InstanceShape(tp=8)


def _kw(engine: str) -> dict:
    return dict(engine=engine, dtype="bf16", kv_dtype="", skew=1.0, devices_per_node=8)


def _batch(model, device, shape, isl, osl) -> int:
    return min(1024, int(kv_capacity_tokens(model, device, shape) // (isl + osl)))


def test_budget_one_is_one_prompt_per_step(setup):
    model, device, shape = setup
    for engine in ("vllm", "trtllm", "sglang"):
        got = offline_throughput(model, device, shape, isl=128, osl=1024, kw=_kw(engine), budget=1)
        batch = _batch(model, device, shape, 128, 1024)
        pre = prefill_time(model, device, shape, batch=1, prompt_len=128, **_kw(engine))["time_s"]
        step = mean_decode_step_time(model, device, shape, batch=batch, input_len=128, output_len=1024,
                                     **_kw(engine))
        assert got["offline_requests_per_s"] == pytest.approx(1 / (pre + 1024 * step / batch), rel=1e-12)
        assert got["offline_prompts_per_step"] == 1 and got["offline_decode_batch"] == batch


def test_mixed_steady_state_by_hand(setup):
    """vLLM, ISL 128 / OSL 128, budget 8192: B = 1024 running sequences need 1024 · 128 / 128 = 1024 prompt tokens
    per step (8 whole prompts), 1024 + 1024 <= 8192, so every step is 1024 decodes + 8 prompts of 128 tokens."""
    model, device, shape = setup
    kw = _kw("vllm")
    assert _batch(model, device, shape, 128, 128) == 1024
    got = offline_throughput(model, device, shape, isl=128, osl=128, kw=kw, budget=8192)
    tau = mixed_step_time(model, device, shape, decode_batch=1024, decode_context=192, chunk_tokens=1024,
                          chunk_context=0, **kw)
    own = prefill_time(model, device, shape, batch=8, prompt_len=128, **kw)["attention_s"]
    chunk = prefill_time(model, device, shape, batch=1, prompt_len=1024, **kw)["attention_s"]
    tau += own - chunk
    assert got["offline_decode_batch"] == 1024 and got["offline_prompts_per_step"] == pytest.approx(8)
    assert got["offline_requests_per_s"] == pytest.approx(1024 / 128 / tau, rel=1e-12)
    assert got["offline_output_tokens_per_s_per_gpu"] == pytest.approx(1024 / tau / 8, rel=1e-12)
    # short prompts: batching them into the running steps beats one prompt per prefill step by far
    one = offline_throughput(model, device, shape, isl=128, osl=128, kw=kw, budget=1)
    assert got["offline_output_tokens_per_s_per_gpu"] > 1.3 * one["offline_output_tokens_per_s_per_gpu"]


def test_mixed_budget_bound_by_hand(setup):
    """ISL 8000 / OSL 128 at budget 8192: keeping B running would need B · (1 + 8000/128) tokens per step, far over the
    budget, so D = 8192 / (1 + 62.5) sequences run and the rest of the budget (one prompt's worth and a bit) is
    prompt tokens; a prompt (8000) fits the room (8192 - D), so steps carry whole prompts, interpolated between
    ⌊p/F⌋ and ⌈p/F⌉ prompts."""
    model, device, shape = setup
    kw = _kw("trtllm")
    got = offline_throughput(model, device, shape, isl=8000, osl=128, kw=kw, budget=8192)
    running = 8192 / (1 + 8000 / 128)
    units = running * 8000 / 128 / 8000
    assert got["offline_decode_batch"] == pytest.approx(running)
    assert running < _batch(model, device, shape, 8000, 128)
    assert got["offline_prompts_per_step"] == pytest.approx(units)

    def step(n):
        return mixed_step_time(model, device, shape, decode_batch=running, decode_context=8064, chunk_tokens=n * 8000,
                               chunk_context=0, chunk_prompts=n, **kw)

    lo = math.floor(units)
    tau = (lo + 1 - units) * step(lo) + (units - lo) * step(lo + 1)
    assert got["offline_requests_per_s"] == pytest.approx(running / 128 / tau, rel=1e-12)


def test_alternating_engine_by_hand(setup):
    """SGLang runs a prefill batch between decode steps, admitting the requests that finished since the last one:
    ISL 128 / OSL 128 with B = 1024 running, 1024 / 128 = 8 per decode step (under the budget's 8192 // 128 = 64);
    at budget 256 the batch is capped at 2 prompts."""
    model, device, shape = setup
    kw = _kw("sglang")
    batch = _batch(model, device, shape, 128, 128)
    step = mean_decode_step_time(model, device, shape, batch=batch, input_len=128, output_len=128, **kw)
    for budget, k in ((8192, 8), (256, 2)):
        got = offline_throughput(model, device, shape, isl=128, osl=128, kw=kw, budget=budget)
        pre = prefill_time(model, device, shape, batch=k, prompt_len=128, **kw)["time_s"]
        assert got["offline_prompts_per_step"] == k
        assert got["offline_requests_per_s"] == pytest.approx(1 / (pre / k + 128 * step / batch), rel=1e-12)
    # fewer completions than one per decode step: one prompt per prefill batch
    assert offline_throughput(model, device, shape, isl=128, osl=4096, kw=kw, budget=8192)[
        "offline_prompts_per_step"] == 1


def test_mixed_step_prompts(setup):
    model, device, shape = setup
    kw = _kw("vllm")

    def step(prompts, tokens):
        return mixed_step_time(model, device, shape, decode_batch=64, decode_context=1000,
                               chunk_tokens=prompts * tokens, chunk_context=0, chunk_prompts=prompts, **kw)
    one = step(1, 2048)
    assert one == mixed_step_time(model, device, shape, decode_batch=64, decode_context=1000, chunk_tokens=2048,
                                  chunk_context=0, **kw)
    # 16 prompts of 128 tokens attend each to itself: cheaper than one 2048-token chunk, dearer than no prompts
    assert step(0, 128) < step(16, 128) < one
    # each prompt's causal attention: 16 x 128 tokens cost less attention than one 2048-token prompt by the
    # same margin prefill_time gives
    own = prefill_time(model, device, shape, batch=16, prompt_len=128, **kw)["attention_s"]
    whole = prefill_time(model, device, shape, batch=1, prompt_len=2048, **kw)["attention_s"]
    assert one - step(16, 128) == pytest.approx(whole - own, rel=0.05)


def test_budget_from_cli_and_api(setup, tmp_path):
    model, device, _ = setup
    args = ["estimate", "serve", "--model", "llama3.1-70b", "--gpu", "h100-sxm", "--tp", "8", "--batch", "1",
            "--isl", "128", "--osl", "128", "--engine", "vllm", "--offline", "-o", "-"]
    by_budget = {}
    for budget in ("1", "2048", None):
        r = CliRunner().invoke(main, args + (["--prefill-token-budget", budget] if budget else []))
        assert r.exit_code == 0, r.output
        by_budget[budget] = json.loads(r.output)["predicted"]
    api = estimate_serving(model, device, tp=8, batch=1, isl=128, osl=128, engine="vllm", offline=True,
                           prefill_token_budget=2048)
    assert api["predicted"]["offline_output_tokens_per_s_per_gpu"] == \
        pytest.approx(by_budget["2048"]["offline_output_tokens_per_s_per_gpu"])
    assert check(api) == []
    tput = [by_budget[b]["offline_output_tokens_per_s_per_gpu"] for b in ("1", "2048", None)]
    assert tput[0] < tput[1] <= tput[2]
    # the legacy engine prefills one prompt per step offline, whatever the estimate's batch budget
    legacy = estimate_serving(model, device, tp=8, batch=4, isl=128, osl=128, engine="legacy", offline=True)
    assert legacy["predicted"]["offline_prompts_per_step"] == 1 and check(legacy) == []


def test_plan_throughput_honours_budget(tmp_path):
    model = profiles.load_model("llama3-8b")
    cluster = ClusterSpec.homogeneous(profiles.load_device("h100-sxm"), 8)
    wl = ServingWorkload(input_len=128, output_len=128, ttft_s=0.0, tpot_s=0.0)
    plans = {b: plan_serving(model, cluster, wl, objective="throughput",
                             options=ServeOptions(engine="vllm", prefill_token_budget=b)) for b in (1, 8192)}
    got = {b: p["predicted"]["offline_output_tokens_per_s_per_gpu"] for b, p in plans.items()}
    assert got[8192] > got[1] and all(check(p) == [] for p in plans.values())
    out = tmp_path / "offline.json"
    r = CliRunner().invoke(main, ["plan", "serve", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "8",
                                  "--isl", "128", "--osl", "128", "--engine", "vllm", "--objective", "throughput",
                                  "--prefill-token-budget", "1", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text())["predicted"]["offline_output_tokens_per_s_per_gpu"] == pytest.approx(got[1])
