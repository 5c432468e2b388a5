"""Batched prefill up to a token budget: the step cost by hand, the batch-server simulator against the analytic
M/G/(c·k) model, what batching changes (short prompts) and does not (prompts at or over the budget), the
--prefill-token-budget flag end to end, and bad budgets."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import profiles
from cli import main
from costmodels.errors import SpecError
from costmodels.hardware import ClusterSpec
from costmodels.serving import (
    InstanceShape,
    default_prefill_token_budget,
    engine_kernels,
    engine_model,
    prefill_batch_time,
    prefill_time,
)
from costmodels.serving_attention import prefill_attention_s, query_tiles
from planner.plan import Plan, load_plan
from planner.serve import ServeOptions, ServingWorkload, check, estimate_serving, export
from planner.serve.capacity import CapacityModel
from planner.serve.simulate import replay_prefill

SLO_S = 0.6


@pytest.fixture(scope="module")
def llama():
    return profiles.load_model("llama3.1-70b"), profiles.load_device("h100-sxm")


def test_batched_step_by_hand(llama):
    model, dev = llama
    shape, kw = InstanceShape(tp=2), dict(engine="vllm", devices_per_node=8)
    both = prefill_batch_time(model, dev, shape, prompts=[(300, 0), (500, 0)], **kw)
    # GEMMs and element-wise kernels see the summed tokens: the same as one 800-token prompt
    one = prefill_time(model, dev, shape, batch=1, prompt_len=800, **kw)
    for part in ("gemm_s", "elementwise_s", "allreduce_s"):
        assert both[part] == pytest.approx(one[part], rel=1e-12)
    # attention: one varlen kernel doing each prompt's own causal work, 2·L·(L/2)·(heads/tp)·(d_qk + d_v) FLOPs,
    # at the efficiency of the FLOP-weighted keys per row
    ek = engine_kernels(dev, engine_model("vllm"), 8)
    heads, d = model.heads / 2, model.head_dim
    flops = [2 * n * (n / 2) * heads * 2 * d for n in (300, 500)]
    rows = (flops[0] * 150 + flops[1] * 250) / sum(flops)
    # work units: each prompt's own 128-row query tiles; K and V of its 800 keys (BF16, kv_heads/tp heads) read
    tiles = query_tiles(1, heads, 300) + query_tiles(1, heads, 500)
    kv_bytes = 800 * 2 * (model.kv_heads / 2) * d * 2
    assert both["attention_s"] == pytest.approx(
        model.layers * prefill_attention_s(ek, sum(flops), rows, tiles, kv_bytes), rel=1e-9)
    assert both["attention_s"] < one["attention_s"]  # no attention across prompts
    # the single-prompt case is the batched form with one prompt, identical numbers; k equal prompts = batch k
    assert prefill_batch_time(model, dev, shape, prompts=[(700, 100)], **kw) == \
        prefill_time(model, dev, shape, batch=1, prompt_len=700, context_len=100, **kw)
    assert prefill_batch_time(model, dev, shape, prompts=[(500, 0)] * 3, **kw) == \
        prefill_time(model, dev, shape, batch=3, prompt_len=500, **kw)


def test_attention_dp_step_spreads_prompts_over_ranks():
    """tp1 dp4 ep4: four prompts run one per attention rank (the busiest rank's attention is one prompt's), the
    MoE layers see all their tokens, and the step costs far less than four one-prompt steps."""
    qwen, h100 = profiles.load_model("qwen3-30b-a3b"), profiles.load_device("h100-sxm")
    shape, kw = InstanceShape(tp=1, dp=4, ep=4), dict(engine="sglang", devices_per_node=8)
    one = prefill_batch_time(qwen, h100, shape, prompts=[(500, 0)], **kw)
    four = prefill_batch_time(qwen, h100, shape, prompts=[(500, 0)] * 4, **kw)
    assert four["attention_s"] == one["attention_s"]
    assert four["alltoall_s"] > 2 * one["alltoall_s"]  # the experts get four prompts' tokens
    assert four["gemm_s"] >= one["gemm_s"]
    assert four["time_s"] < 2 * one["time_s"]


def test_engine_default_budgets(llama):
    _, h100 = llama
    a100 = profiles.load_device("a100-80gb")
    assert [default_prefill_token_budget(e, h100) for e in ("vllm", "sglang", "trtllm", "legacy")] == \
        [8192, 8192, 8192, 1]
    assert default_prefill_token_budget("vllm", a100) == 2048  # vLLM keeps 2048 on A100 (its PR #17885)


def _prefill_only(llama, isl: int, budget: int, tp: int = 8, instances: int = 1, lognormal: tuple = ()):
    """The prefill candidate and a simulator replay of its router queue alone (TTFT = KV ready - arrival)."""
    model, dev = llama
    cluster = ClusterSpec.homogeneous(dev, 16, 8)
    pool = cluster.pools[0]
    wl = ServingWorkload(input_len=isl, output_len=200, ttft_s=SLO_S, tpot_s=0.05, lognormal=lognormal)
    cm = CapacityModel(model, cluster, wl, ServeOptions(engine="vllm", prefill_token_budget=budget))
    shape = InstanceShape(tp=tp)
    cand = cm.prefill(pool, pool, shape)

    def p90(rate: float, seeds: int = 2, n: int = 3000) -> float:
        ttft = [replay_prefill(cm, pool, shape, instances=instances, rate=rate, requests=n, seed=seed)
                for seed in range(seeds)]
        return float(np.mean([np.percentile(t[n // 10:], 90) for t in ttft]))

    return cand, p90


def test_simulator_agrees_with_the_batched_queue_model(llama):
    """Tolerance: sustained rate (simulated p90 TTFT <= SLO) within 15 % of the analytic capacity; TTFT p90 at
    0.8x capacity within 15 %."""
    for instances in (1, 2):  # one instance, and two behind one router queue
        cand, p90 = _prefill_only(llama, 500, 8192, instances=instances)
        cap = cand.group_rps(instances)
        assert cand.ttft_quantile_s(cap, 0.9, servers=instances) == pytest.approx(SLO_S, rel=1e-3)
        rates = [cap * f for f in np.linspace(0.7, 1.2, 11)]
        sustained = max(r for r in rates if p90(r) <= SLO_S)
        assert sustained == pytest.approx(cap, rel=0.15)
        assert p90(0.8 * cap) == pytest.approx(cand.ttft_quantile_s(0.8 * cap, 0.9, servers=instances), rel=0.15)


def test_mixed_lengths_sustained_rate_matches(llama):
    """Lognormal prompt lengths (median 665 tokens, p90 1855): the simulated sustained rate within 15 % of the
    analytic capacity (the steps of a mixed batch are priced at their mean length)."""
    cand, p90 = _prefill_only(llama, 1000, 8192, lognormal=(6.5, 0.8, 5.0, 0.5))
    cap = cand.group_rps(1)
    rates = [cap * f for f in np.linspace(0.7, 1.3, 13)]
    sustained = max(r for r in rates if p90(r) <= SLO_S)
    assert sustained == pytest.approx(cap, rel=0.15)


def test_batching_raises_short_prompt_throughput_and_leaves_long_ones(llama):
    one, p90_one = _prefill_only(llama, 500, 1)
    batched, p90_batched = _prefill_only(llama, 500, 8192)
    assert batched.capacity_rps > 1.1 * one.capacity_rps
    rate = 0.95 * batched.capacity_rps  # the batched server keeps the SLO where one prompt per step cannot
    assert p90_batched(rate) < SLO_S < p90_one(rate)
    # prompts at or over the budget run one per step: nothing changes, analytically or simulated
    for budget in (4000, 3000):
        same, p90_same = _prefill_only(llama, 4000, budget)
        ref, p90_ref = _prefill_only(llama, 4000, 1)
        assert same.pooled_rps == ref.pooled_rps and same.ttft_floor_s == ref.ttft_floor_s
        assert p90_same(0.5) == p90_ref(0.5)


def test_budget_flag_round_trip(tmp_path):
    r = CliRunner().invoke(main, ["estimate", "serve", "--model", "llama3.1-70b", "--gpu", "h100-sxm", "--tp", "8",
                                  "--batch", "10", "--isl", "500", "--osl", "100", "--engine", "vllm",
                                  "--prefill-token-budget", "2000", "-o", str(tmp_path / "e.json")])
    assert r.exit_code == 0, r.output
    est = load_plan(tmp_path / "e.json")
    assert est["inputs"]["prefill_token_budget"] == 2000 and est["predicted"]["prefill_steps"] == 3
    model, dev = profiles.load_model("llama3.1-70b"), profiles.load_device("h100-sxm")
    kw = dict(engine="vllm", devices_per_node=8)
    four = prefill_time(model, dev, InstanceShape(tp=8), batch=4, prompt_len=500, **kw)["time_s"]
    two = prefill_time(model, dev, InstanceShape(tp=8), batch=2, prompt_len=500, **kw)["time_s"]
    assert est["predicted"]["prefill_s"] == pytest.approx(2 * four + two)
    assert check(est) == []
    # the engine default when the flag is absent; legacy keeps the batch in one step (as calibrated)
    api = estimate_serving(model, dev, tp=8, batch=10, isl=500, osl=100, **kw)
    assert api["inputs"]["prefill_token_budget"] == 8192
    assert estimate_serving(model, dev, tp=8, batch=10, isl=500, osl=100)["inputs"]["prefill_token_budget"] == 5000
    out = tmp_path / "p.json"
    r = CliRunner().invoke(main, ["plan", "serve", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "4",
                                  "--isl", "500", "--osl", "100", "--ttft-ms", "300", "--tpot-ms", "30", "--modes",
                                  "disaggregated", "--requests", "300", "--verify-seeds", "2", "--verify-layouts", "1",
                                  "--prefill-token-budget", "3000", "-o", str(out)])
    assert r.exit_code == 0, r.output
    plan = load_plan(out)
    assert plan["inputs"]["options"]["prefill_token_budget"] == 3000
    pre = [g for g in plan["decision"]["groups"] if g["role"] == "prefill"]
    assert pre and all(g["prefill_token_budget"] == 3000 for g in pre)
    assert check(plan) == []
    assert CliRunner().invoke(main, ["validate", str(out)]).exit_code == 0
    doc = json.loads(out.read_text())  # validate re-derives the budget from the options and the engine
    next(g for g in doc["decision"]["groups"] if g["role"] == "prefill")["prefill_token_budget"] = 1024
    assert any("prefill_token_budget is 1024" in p for p in check(Plan(doc)))
    assert "--max-num-batched-tokens 3000" in export(plan, "vllm")
    assert "--chunked-prefill-size 3000" in export(plan, "sglang")


def test_auto_budget_picks_the_most_capacity(llama):
    """--prefill-token-budget auto: one prompt per step (budget 4000) for 4000-token prompts on TP2, where sharing an
    8192-token step only delays the first prompt; several prompts per step for 500-token prompts on TP8; never less
    capacity than any budget it tried."""
    model, dev = llama
    cluster = ClusterSpec.homogeneous(dev, 16, 8)
    pool = cluster.pools[0]
    for isl, tp, batched in ((4000, 2, False), (500, 8, True)):
        wl = ServingWorkload(input_len=isl, output_len=200, ttft_s=SLO_S, tpot_s=0.05)
        auto = CapacityModel(model, cluster, wl, ServeOptions(engine="vllm", prefill_token_budget="auto"))
        cand = auto.prefill(pool, pool, InstanceShape(tp=tp))
        assert (cand.prefill_token_budget > isl) == batched and cand.prefill_token_budget in auto.prefill_budgets(pool)
        for budget in auto.prefill_budgets(pool):
            fixed = CapacityModel(model, cluster, wl, ServeOptions(engine="vllm", prefill_token_budget=budget))
            assert fixed.prefill(pool, pool, InstanceShape(tp=tp)).capacity_rps <= cand.capacity_rps
    r = CliRunner().invoke(main, ["estimate", "serve", "--model", "llama3-8b", "--gpu", "h100-sxm", "--tp", "1",
                                  "--batch", "1", "--isl", "100", "--osl", "10", "--prefill-token-budget", "auto"])
    assert r.exit_code == 2 and "prefill-token-budget" in r.output and "plan serve" in r.output


@pytest.mark.parametrize("bad", ["0", "-5", "2.5", "many"])
def test_bad_budget_exits_2_naming_the_flag(bad):
    for cmd in (["estimate", "serve", "--model", "llama3-8b", "--gpu", "h100-sxm", "--tp", "1", "--batch", "1",
                 "--isl", "100", "--osl", "10"],
                ["plan", "serve", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "2", "--isl", "100",
                 "--osl", "10", "--ttft-ms", "300", "--tpot-ms", "30"]):
        r = CliRunner().invoke(main, cmd + ["--prefill-token-budget", bad])
        assert r.exit_code == 2, r.output
        assert "prefill-token-budget" in r.output and "Traceback" not in r.output
    with pytest.raises(SpecError, match="prefill-token-budget"):
        ServeOptions(prefill_token_budget=0)
    with pytest.raises(SpecError, match="prefill-token-budget"):
        ServeOptions(prefill_token_budget=2.5)  # type: ignore[arg-type]
