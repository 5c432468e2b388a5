"""Serve features end to end: cached prefix, speculative decoding, offline throughput, top N, Pareto front,
layouts verified by simulation."""

import json

import pytest
from click.testing import CliRunner

import profiles
from cli import main
from costmodels.hardware import ClusterSpec
from costmodels.serving import InstanceShape, kv_capacity_tokens, mean_decode_step_time, prefill_time
from planner import plan_serving
from planner.plan import Plan
from planner.serve import ServeOptions, ServingWorkload, check, estimate_serving, explain
from planner.serve.capacity import CapacityModel

QUICK = dict(simulate_requests=300, verify_seeds=2, verify_layouts=1)


@pytest.fixture(scope="module")
def small():
    return profiles.load_model("llama3-8b"), ClusterSpec.homogeneous(profiles.load_device("h100-sxm"), 8)


def test_prefix_and_spec_in_estimates_by_hand():
    llama, h100 = profiles.load_model("llama3.1-70b"), profiles.load_device("h100-sxm")
    kw = dict(engine="vllm", devices_per_node=8)
    plan = estimate_serving(llama, h100, tp=8, batch=4, isl=4000, osl=500, prefix_len=3000, spec_depth=3,
                            spec_accept=2.5, **kw)
    p = plan["predicted"]
    shape = InstanceShape(tp=8)
    # prefill computes only the 1000 uncached tokens, attending to the 3000 cached ones
    assert p["prefill_s"] == pytest.approx(prefill_time(llama, h100, shape, batch=4, prompt_len=1000,
                                                        context_len=3000, **kw)["time_s"])
    # each step verifies 4 tokens per sequence and emits 2.5 on average
    step = mean_decode_step_time(llama, h100, shape, batch=4, input_len=4000, output_len=500, tokens_per_seq=4, **kw)
    assert p["decode_step_s"] == pytest.approx(step) and p["tpot_s"] == pytest.approx(step / 2.5)
    plain = estimate_serving(llama, h100, tp=8, batch=4, isl=4000, osl=500, **kw)["predicted"]
    assert p["prefill_s"] < plain["prefill_s"] / 2 and p["tpot_s"] < plain["tpot_s"]
    assert check(plan) == []
    assert "cached prefix" in explain(plan) and "speculative" in explain(plan)
    r = CliRunner().invoke(main, ["estimate", "serve", "--model", "llama3.1-70b", "--gpu", "h100-sxm", "--tp", "8",
                                  "--batch", "4", "--isl", "4000", "--osl", "500", "--engine", "vllm",
                                  "--prefix-len", "3000", "--spec-depth", "3", "--spec-accept", "2.5", "-o", "-"])
    assert r.exit_code == 0 and json.loads(r.output)["predicted"]["tpot_s"] == pytest.approx(p["tpot_s"])
    r = CliRunner().invoke(main, ["estimate", "serve", "--model", "llama3.1-70b", "--gpu", "h100-sxm", "--tp", "8",
                                  "--batch", "4", "--isl", "4000", "--osl", "500", "--spec-accept", "2"])
    assert r.exit_code == 2 and "spec-accept" in r.output


def test_offline_estimate_by_hand():
    llama, h100 = profiles.load_model("llama3.1-70b"), profiles.load_device("h100-sxm")
    kw = dict(engine="trtllm", dtype="bf16", kv_dtype="", skew=1.0, devices_per_node=8)
    plan = estimate_serving(llama, h100, tp=8, batch=1, isl=2000, osl=1000, engine="trtllm", offline=True,
                            prefill_token_budget=1)  # one prompt per prefill step (test_offline_batching: the rest)
    p = plan["predicted"]
    shape = InstanceShape(tp=8)
    batch = int(kv_capacity_tokens(llama, h100, shape) // 3000)
    assert p["offline_batch"] == batch > 1
    pre = prefill_time(llama, h100, shape, batch=1, prompt_len=2000, **kw)["time_s"]
    step = mean_decode_step_time(llama, h100, shape, batch=batch, input_len=2000, output_len=1000, **kw)
    assert p["offline_output_tokens_per_s_per_gpu"] == pytest.approx(1000 / (pre + 1000 * step / batch) / 8)
    assert check(plan) == [] and "offline" in explain(plan)


def test_throughput_objective_plan(small, tmp_path):
    model, cluster = small
    wl = ServingWorkload(input_len=1000, output_len=500, ttft_s=0.0, tpot_s=0.0)
    plan = plan_serving(model, cluster, wl, objective="throughput", options=ServeOptions(top=2))
    assert check(plan) == [] and plan["decision"]["mode"] == "colocated"
    best = plan["predicted"]["offline_output_tokens_per_s_per_gpu"]
    assert [a["rank"] for a in plan["alternatives"]] == [1, 2]
    assert all(a["offline_output_tokens_per_s_per_gpu"] <= best for a in plan["alternatives"])
    doc = json.loads(plan.dumps())
    doc["predicted"]["offline_output_tokens_per_s_per_gpu"] *= 1.5
    assert any("recomputed" in x for x in check(Plan(doc)))
    out = tmp_path / "offline.json"
    r = CliRunner().invoke(main, ["plan", "serve", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "8",
                                  "--isl", "1000", "--osl", "500", "--objective", "throughput", "--top", "2",
                                  "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_text() == plan.dumps()
    assert CliRunner().invoke(main, ["validate", str(out)]).exit_code == 0
    assert CliRunner().invoke(main, ["simulate", str(out)]).exit_code == 2
    r = CliRunner().invoke(main, ["plan", "serve", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "8",
                                  "--isl", "1000", "--osl", "500"])
    assert r.exit_code == 2 and "--ttft-ms" in r.output


def test_prefix_spec_plan_and_top(small):
    model, cluster = small
    base = ServingWorkload(input_len=2000, output_len=200, ttft_s=0.3, tpot_s=0.015)
    cm_plain = CapacityModel(model, cluster, base, ServeOptions(**QUICK))
    cached = ServingWorkload(input_len=2000, output_len=200, ttft_s=0.3, tpot_s=0.015, prefix_len=1500)
    cm = CapacityModel(model, cluster, cached, ServeOptions(**QUICK, spec_depth=2, spec_accept=2.0))
    pool, shape = cluster.pools[0], InstanceShape(tp=1)
    assert cm.prefill_seconds(pool, shape, 2000) < cm_plain.prefill_seconds(pool, shape, 2000) / 2
    assert cm.token_seconds(pool, shape, 32, 2000) < cm_plain.token_seconds(pool, shape, 32, 2000)
    plan = plan_serving(model, cluster, cached, options=ServeOptions(**QUICK, spec_depth=2, spec_accept=2.0, top=3))
    assert check(plan) == []
    tops = [a for a in plan["alternatives"] if "rank" in a]
    assert [a["rank"] for a in tops] == [1, 2, 3]
    goodputs = [a["goodput_tokens_per_s_per_gpu"] for a in tops]
    assert goodputs == sorted(goodputs, reverse=True)
    assert all(sum(g["gpus"] * g["instances"] for g in a["groups"]) == a["gpus"] <= 8 for a in tops)
    assert "top 1" in explain(plan)


def test_pareto_front(small):
    model, cluster = small
    wl = ServingWorkload(input_len=1000, output_len=100, ttft_s=0.4, tpot_s=0.015)
    plan = plan_serving(model, cluster, wl, options=ServeOptions(**QUICK, modes=("colocated",), pareto=True))
    front = plan["predicted"]["pareto"]
    assert len(front) >= 2 and check(plan) == []
    tpots = [pt["tpot_slo_s"] for pt in front]
    goodputs = [pt["goodput_tokens_per_s_per_gpu"] for pt in front]
    assert tpots == sorted(tpots)
    assert goodputs == sorted(goodputs)  # non-dominated: a looser TPOT SLO must buy more goodput
    assert any(pt["tpot_slo_s"] == pytest.approx(0.015) for pt in front) or goodputs[0] > 0
    assert "pareto TPOT" in explain(plan)


def test_verified_layouts_pick_the_best_simulated(small):
    model, cluster = small
    wl = ServingWorkload(input_len=1500, output_len=150, ttft_s=0.4, tpot_s=0.015)
    disagg = {**QUICK, "modes": ("disaggregated",)}
    one = plan_serving(model, cluster, wl, options=ServeOptions(**{**disagg, "verify_layouts": 1}))
    three = plan_serving(model, cluster, wl, options=ServeOptions(**{**disagg, "verify_layouts": 3}))
    # more layouts verified can only keep or improve the simulated goodput of the chosen deployment
    assert three["predicted"]["goodput_tokens_per_s_per_gpu"] >= one["predicted"]["goodput_tokens_per_s_per_gpu"] - 1e-9
    assert check(three) == []


def test_plan_refuses_a_checkpoint_no_shape_can_split():
    model = profiles.load_model("llama3-405b")  # ffn 53248: /2, /4, /8 are not multiples of 8192; tp <= 2 do not fit
    cluster = ClusterSpec.homogeneous(profiles.load_device("h100-sxm"), 16)
    wl = ServingWorkload(input_len=1000, output_len=100, ttft_s=1.0, tpot_s=0.1)
    from costmodels.errors import InfeasibleError

    with pytest.raises(InfeasibleError, match="8192-wide quantization block"):
        plan_serving(model, cluster, wl, options=ServeOptions(**QUICK, quant_block=8192))
    r = CliRunner().invoke(main, ["plan", "serve", "--model", "llama3-405b", "--gpu", "h100-sxm", "--num-gpus", "16",
                                  "--isl", "1000", "--osl", "100", "--ttft-ms", "1000", "--tpot-ms", "100",
                                  "--quant-block", "8192"])
    assert r.exit_code == 3 and "8192" in r.output


def test_ep_and_attention_dp_restrict_the_shapes():
    from planner.serve.capacity import shapes_for

    qwen = profiles.load_model("qwen3-235b-a22b")
    pool = ClusterSpec.homogeneous(profiles.load_device("h200"), 16).pools[0]
    free = shapes_for(qwen, pool, ServeOptions())
    pinned = shapes_for(qwen, pool, ServeOptions(ep=8, attention_dp=2))
    assert {(s.ep, s.dp) for s in free} > {(8, 2)}
    assert pinned and all(s.ep == 8 and s.dp == 2 for s in pinned)
    r = CliRunner().invoke(main, ["estimate", "serve", "--model", "qwen3-235b-a22b", "--gpu", "h200", "--tp", "4",
                                  "--attention-dp", "2", "--ep", "8", "--batch", "8", "--isl", "1000", "--osl", "100",
                                  "--engine", "sglang", "--dtype", "fp8", "--moe-skew", "1.3", "-o", "-"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["inputs"]["shape"] == {"tp": 4, "pp": 1, "ep": 8, "dp": 2} and doc["inputs"]["moe_skew"] == 1.3
