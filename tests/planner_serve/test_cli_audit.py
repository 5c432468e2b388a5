"""Regression tests of the serving CLI/API audit (issue 12): each input below was once accepted silently, or refused
with the wrong message or exit code. Every case fails before any planning work, so the file runs in seconds."""

import json

import pytest
from click.testing import CliRunner

import profiles
from cli import main
from costmodels.errors import SpecError
from costmodels.hardware import ClusterSpec
from planner import plan_serving
from planner.serve import ServeOptions, ServingWorkload, estimate_serving
from planner.serve.request import ServeRequest, check_serve_inputs, quant_block_note

PLAN = ["plan", "serve", "--model", "llama3.1-8b", "--gpu", "h100-sxm", "--num-gpus", "8", "--isl", "1000",
        "--osl", "200"]
SLO = ["--ttft-ms", "500", "--tpot-ms", "20"]
EST = ["estimate", "serve", "--gpu", "h100-sxm", "--batch", "8", "--isl", "1024", "--osl", "128"]


def _run(args: list[str]):
    return CliRunner().invoke(main, args)


def _refused(args: list[str], *words: str, code: int = 2) -> str:
    r = _run(args)
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output and all(w in r.output for w in words), r.output
    return r.output


@pytest.fixture(scope="module")
def small():
    return profiles.load_model("llama3.1-8b"), ClusterSpec.homogeneous(profiles.load_device("h100-sxm"), 8)


def test_throughput_objective_refuses_slos_and_rate(small):
    """Offline planning once ignored --ttft-ms/--tpot-ms, --rate, --lengths/--lognormal, --arrival and --robust
    (stored them in the plan, planned without them)."""
    _refused(PLAN + ["--objective", "throughput"] + SLO, "ttft_ms", "no TTFT/TPOT SLOs", "--objective goodput")
    _refused(PLAN + ["--objective", "throughput", "--rate", "5"], "rate", "drop --rate")
    _refused(PLAN + ["--objective", "throughput", "--lognormal", "6", "1", "4", "1"], "lognormal", "fixed --isl/--osl")
    _refused(PLAN + ["--objective", "throughput", "--arrival", "bursty"], "arrival", "no arrival process")
    _refused(PLAN + ["--objective", "throughput", "--robust"], "robust", "drop --robust")
    model, cluster = small
    with pytest.raises(SpecError, match="no TTFT/TPOT SLOs"):
        plan_serving(model, cluster, ServingWorkload(input_len=1000, output_len=200, ttft_s=0.5, tpot_s=0.02),
                     objective="throughput")
    with pytest.raises(SpecError, match="drop --rate"):
        ServeRequest(model=model, cluster=cluster, objective="throughput",
                     workload=ServingWorkload(input_len=1000, output_len=200, ttft_s=0, tpot_s=0, rate_per_s=5.0))


def test_pareto_needs_slos(small):
    """--pareto with --objective throughput was silently dropped (the front is goodput against the TPOT SLO)."""
    _refused(PLAN + ["--objective", "throughput", "--pareto", "--top", "2"], "pareto", "--top N")
    model, cluster = small
    with pytest.raises(SpecError, match="pareto"):
        check_serve_inputs(model, cluster, ServeOptions(pareto=True), objective="throughput")
    check_serve_inputs(model, cluster, ServeOptions(pareto=True))  # with SLOs and no rate it is fine
    # with a target rate (objective gpus) the front was dropped without a word
    _refused(PLAN + SLO + ["--rate", "5", "--pareto"], "pareto", "drop --rate 5 (objective gpus)")
    with pytest.raises(SpecError, match="takes no target rate"):
        check_serve_inputs(model, cluster, ServeOptions(pareto=True), rate=5.0)


@pytest.mark.parametrize("flags, words", [
    (["--ep", "2"], ["ep 2 needs an MoE model", "llama3.1-8b is dense"]),
    (["--attention-dp", "2"], ["attention-dp 2 needs an MoE model"]),
    (["--moe-skew", "1.5"], ["moe-skew", "needs an MoE model"]),
])
def test_moe_flags_on_a_dense_model(flags, words):
    """plan serve --ep 2 on a dense model once exited 3 with "no instance shape fits the model's weights"; a routing
    skew on a dense model was accepted without effect."""
    _refused(PLAN + SLO + flags, *words)


@pytest.mark.parametrize("flags, words", [
    (["--ep", "3"], ["--ep 3", "valid --ep: 1, 2, 4, 8;", "128 experts"]),
    (["--ep", "16"], ["--ep 16", "valid --ep: 1, 2, 4, 8;"]),
    (["--attention-dp", "3"], ["--attention-dp 3", "valid --attention-dp: 1, 2, 4, 8"]),
    (["--ep", "2", "--attention-dp", "4"], ["--ep 2 --attention-dp 4", "valid --ep: 4, 8"]),
])
def test_moe_degrees_no_shape_has(flags, words):
    """--ep 3 (128 experts), --ep 16 on 8 GPUs, --attention-dp 3: plan serve once exited 3 saying "no instance shape
    fits the model's weights in the cluster's GPUs"; it is bad input, named with the degrees that work."""
    _refused(["plan", "serve", "--model", "qwen3-30b-a3b", "--gpu", "h100-sxm", "--num-gpus", "8", "--isl", "1000",
              "--osl", "200"] + SLO + flags, *words)


def test_moe_skew_is_bounded_by_what_routing_can_do():
    """The busiest of ep GPUs holds at most min(top_k, experts/ep) of a token's top_k slots: at ep 1 the skew is 1
    (estimates once doubled the expert work at ep 1, skew 2), and Mixtral (8 experts, top-2) at ep 2 reaches 2."""
    mixtral, h100 = profiles.load_model("mixtral-8x7b"), profiles.load_device("h100-sxm")
    kw = dict(tp=2, batch=8, isl=1024, osl=128, engine="trtllm")
    with pytest.raises(SpecError, match=r"\[1, 1\] at ep=1"):
        estimate_serving(mixtral, h100, ep=1, moe_skew=2.0, **kw)
    with pytest.raises(SpecError, match=r"\[1, 2\] at ep=2"):
        estimate_serving(mixtral, h100, ep=2, moe_skew=2.5, **kw)
    at_bound = estimate_serving(mixtral, h100, ep=2, moe_skew=2.0, **kw)
    assert at_bound["inputs"]["moe_skew"] == 2.0
    _refused(EST + ["--model", "mixtral-8x7b", "--tp", "2", "--ep", "2", "--moe-skew", "3"], "moe-skew", "at ep=2")
    _refused(EST + ["--model", "llama3.1-8b", "--tp", "1", "--moe-skew", "1.5"], "moe-skew", "dense")
    # plan serve: no shape is known yet, so the widest bound (one expert per GPU): experts / top_k = 4
    cluster = ClusterSpec.homogeneous(h100, 8)
    with pytest.raises(SpecError, match="experts / top_k = 8/2 = 4"):
        check_serve_inputs(mixtral, cluster, ServeOptions(moe_skew=4.5))
    check_serve_inputs(mixtral, cluster, ServeOptions(moe_skew=4.0))


def test_quant_block_with_bf16_weights_is_named():
    """--quant-block with BF16 weights was applied without a word: the split check ran, the kernels were BF16."""
    out = _refused(EST + ["--model", "qwen3-30b-a3b", "--tp", "2", "--engine", "vllm", "--quant-block", "128"],
                   "warning: --quant-block 128", "--dtype is bf16", "timed at bf16", code=0)
    assert "feasible: True" in out
    assert quant_block_note(128, "fp8") is None and quant_block_note(0, "bf16") is None
    # with FP8 weights the split check refuses an impossible expert TP, exit 3 naming the block; no warning
    out = _refused(EST + ["--model", "qwen3-235b-a22b", "--tp", "8", "--engine", "vllm", "--dtype", "fp8",
                          "--quant-block", "128"], "128-wide", "1536", code=3)
    assert "warning" not in out
    # ... and says which --ep (or smaller --tp, for a dense model) splits it
    assert "at tp=8 attention-dp=1 it splits with --ep 2 or 4 or 8" in out
    _refused(EST + ["--model", "llama3-405b", "--tp", "8", "--engine", "vllm", "--dtype", "fp8", "--quant-block",
                    "8192"], "6656 columns", "no --ep splits it at tp=8; --tp 1 does", code=3)


def test_prefix_len_must_be_shorter_than_every_prompt(tmp_path):
    """--prefix-len was checked against --isl only, so a --lengths file with shorter prompts was accepted."""
    lengths = tmp_path / "lengths.csv"
    lengths.write_text("input,output\n1000,200\n500,50\n")
    _refused(PLAN + SLO + ["--lengths", str(lengths), "--prefix-len", "800"], "prefix-len", "shortest input",
             "500 tokens")
    with pytest.raises(SpecError, match="shortest input"):
        ServingWorkload(input_len=1000, output_len=200, ttft_s=0.5, tpot_s=0.02, prefix_len=500,
                        lengths=((1000, 200), (500, 50)))
    assert ServingWorkload(input_len=1000, output_len=200, ttft_s=0.5, tpot_s=0.02, prefix_len=499,
                           lengths=((1000, 200), (500, 50))).prefix_len == 499


def test_estimate_cli_equals_api_bytes():
    """Same inputs, same bytes: the CLI's -o document is the API's (twice)."""
    args = EST + ["--model", "qwen3-30b-a3b", "--tp", "2", "--ep", "2", "--engine", "vllm", "--dtype", "fp8",
                  "--moe-skew", "1.5", "--offline", "-o", "-"]
    first, second = _run(args), _run(args)
    assert first.exit_code == 0 and first.output == second.output
    api = estimate_serving(profiles.load_model("qwen3-30b-a3b"), profiles.load_device("h100-sxm"), tp=2, ep=2,
                           batch=8, isl=1024, osl=128, engine="vllm", dtype="fp8", moe_skew=1.5, offline=True)
    assert json.loads(first.output) == json.loads(api.dumps()) and first.output == api.dumps()


@pytest.mark.parametrize("call, words", [
    (lambda m, d: estimate_serving(m, d, tp=1, batch="4", isl=10, osl=10), "batch: must be an integer, got '4'"),
    (lambda m, d: estimate_serving(m, d, tp=1, batch=1, isl=10.5, osl=10), "isl: must be an integer, got 10.5"),
    (lambda m, d: estimate_serving(m, "h100-sxm", tp=1, batch=1, isl=10, osl=10), "device: must be a DeviceSpec"),
    (lambda m, d: estimate_serving("llama3.1-8b", d, tp=1, batch=1, isl=10, osl=10), "model: must be a ModelSpec"),
    (lambda m, d: estimate_serving(m, d, tp=1, batch=1, isl=10, osl=10, moe_skew=float("inf")), "moe-skew: must be a "
                                                                                                 "finite number"),
    (lambda m, d: ServingWorkload(input_len=10, output_len=10, ttft_s=0.5, tpot_s=0.02, rate_per_s=float("inf")),
     "ServingWorkload.rate_per_s: must be a finite number or None"),
    (lambda m, d: ServingWorkload(input_len=10.5, output_len=10, ttft_s=0.5, tpot_s=0.02),
     "ServingWorkload.input_len: must be an integer"),
    (lambda m, d: ServingWorkload(input_len=10, output_len=10, ttft_s=0.5, tpot_s=0.02, lognormal=(float("nan"), 1, 3,
                                                                                                    1)), "lognormal"),
    (lambda m, d: ServeOptions(modes="colocated"), "ServeOptions.modes: must be a tuple, got 'colocated'"),
    (lambda m, d: ServeOptions(top=1.5), "ServeOptions.top: must be an integer"),
    (lambda m, d: ServeOptions(time_limit_s=float("inf")), "ServeOptions.time_limit_s: must be a finite number"),
])
def test_api_arguments_of_the_wrong_type_are_named(call, words):
    """API callers once got a TypeError/AttributeError traceback (a string batch, a profile name for a spec) or a
    silent acceptance (isl 10.5, an infinite rate, top 1.5, modes "colocated" read letter by letter)."""
    model, device = profiles.load_model("llama3.1-8b"), profiles.load_device("h100-sxm")
    with pytest.raises(SpecError) as err:
        call(model, device)
    assert words in str(err.value)


@pytest.fixture(scope="module")
def small_plan(small):
    model, cluster = small
    return plan_serving(model, cluster, ServingWorkload(input_len=1000, output_len=200, ttft_s=0.5, tpot_s=0.02),
                        options=ServeOptions(simulate_requests=300, verify_seeds=2, verify_layouts=1,
                                             modes=("disaggregated",)))


def test_validate_names_an_edited_shape_the_model_cannot_split(small_plan, tmp_path):
    """A decision edited to tp 3 (32 heads) was recomputed as if it could run ("capacity_rps ... recomputed 0.0")."""
    from planner.serve import check

    assert check(small_plan) == []
    doc = json.loads(small_plan.dumps())
    doc["decision"]["groups"][0]["tp"] = 3
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(doc))
    out = _refused(["validate", str(path)], "tp (3) must divide heads (32)", code=1)
    assert "recomputed 0.0" not in out
    _refused(["export", str(path), "--format", "vllm"], "not a valid serve plan", "tp (3) must divide heads")


def test_negative_auto_degree_names_zero_as_valid():
    """plan serve --ep -1 said "--ep must be >= 1" although 0 (any) is the default and valid."""
    _refused(PLAN + SLO + ["--ep", "-1"], "--ep must be >= 1 (or 0, the default: any), got -1")
    _refused(PLAN + SLO + ["--attention-dp", "-2"], "--attention-dp must be >= 1 (or 0, the default: any), got -2")
    _refused(EST + ["--model", "llama3.1-8b", "--tp", "1", "--ep", "0"], "--ep must be >= 1, got 0")


def test_explain_says_what_the_plan_and_estimate_were_made_for(small_plan):
    """explain of a serve plan named neither the model nor the lengths, dtypes, cached prefix or speculative
    decoding it was planned for; an estimate's header left out attention-DP and the dtypes."""
    from planner.serve import explain

    assert "  workload   llama3.1-8b, ISL 1000 / OSL 200, bf16 weights / bf16 KV\n" in explain(small_plan)
    doc = json.loads(small_plan.dumps())
    doc["inputs"]["workload"]["prefix_len"] = 600
    doc["inputs"]["options"].update(spec_depth=3, spec_accept=2.2, dtype="fp8", kv_dtype="")
    from planner.plan import Plan

    text = explain(Plan(doc))
    assert "fp8 weights / fp8 KV, cached prefix 600 tokens, speculative depth 3 at 2.2 tokens/step" in text
    est = estimate_serving(profiles.load_model("qwen3-30b-a3b"), profiles.load_device("h100-sxm"), tp=2, ep=4, dp=2,
                           batch=8, isl=1024, osl=128, engine="sglang", dtype="fp8", moe_skew=1.5)
    head = explain(est).splitlines()[:2]
    assert head == ["serve estimate: qwen3-30b-a3b on h100-sxm tp=2 pp=1 ep=4 attention-dp=2 (engine sglang)",
                    "  batch 8 x ISL 1024 / OSL 128, fp8 weights / fp8 KV, MoE skew 1.5"]


def test_gpus_per_node_with_a_cluster_profile_is_refused():
    """--gpus-per-node was silently ignored next to --cluster (the profile sets each pool's node size)."""
    _refused(["plan", "serve", "--model", "llama3.1-8b", "--cluster", "h200x8-h100x8", "--gpus-per-node", "4",
              "--isl", "1000", "--osl", "200"] + SLO, "gpus-per-node", "cluster profile sets")


def test_negative_seed_and_huge_replays_are_refused(small_plan, tmp_path):
    """A negative --seed was a numpy ValueError traceback (after the whole solve in plan serve); --requests 10^8
    ran out of memory after about 40 minutes."""
    path = tmp_path / "plan.json"
    path.write_text(small_plan.dumps())
    _refused(["simulate", str(path), "--seed", "-1"], "--seed must be >= 0, got -1")
    _refused(PLAN + SLO + ["--seed", "-3"], "--seed must be >= 0, got -3")
    _refused(["trace", "synth", "--layers", "2", "--experts", "8", "--top-k", "2", "--seed", "-1", "-o",
              str(tmp_path / "stats.json")], "--seed must be >= 0")
    _refused(["simulate", str(path), "--requests", "100000000"], "requests", "1..10,000,000", "100,000,000")
    _refused(PLAN + SLO + ["--requests", "100000000"], "requests", "10..10,000,000")
    with pytest.raises(SpecError, match="seed"):
        ServeOptions(seed=-1)


def test_readme_and_help_name_the_engines_and_dtypes_the_cli_takes():
    """README's plan serve note listed four engines (the CLI takes five) and bf16|fp8 (it takes fp16 too)."""
    import pathlib
    import re

    from costmodels.serving import ENGINES

    readme = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text()
    engines = re.search(r"--engine ([a-z|]+):", readme)
    dtypes = re.search(r"--dtype/--kv-dtype ([a-z0-9|]+)", readme)
    assert engines and set(engines.group(1).split("|")) == set(ENGINES)
    for command in (["plan", "serve"], ["estimate", "serve"]):
        text = _run([*command, "--help"]).output
        choices = re.search(r"--dtype \[([a-z0-9|]+)\]", text)
        assert dtypes and choices and set(dtypes.group(1).split("|")) == set(choices.group(1).split("|"))
        assert all(e in text for e in ENGINES)


def test_offline_plan_export_is_not_wrong(small, tmp_path):
    """An offline plan's vLLM lines capped every step at the in-flight batch (--max-num-batched-tokens 377 against
    the 8192-token budget its throughput assumes) and SGLang's had --chunked-prefill-size 0; the plan now records its
    budget and exports it (tests/exports/test_offline_export.py checks the flags)."""
    model, cluster = small
    plan = plan_serving(model, cluster, ServingWorkload(input_len=1000, output_len=200, ttft_s=0, tpot_s=0),
                        objective="throughput")
    path = tmp_path / "offline.json"
    path.write_text(plan.dumps())
    for fmt, flag in (("vllm", "--max-num-batched-tokens 8192"), ("sglang", "--chunked-prefill-size 8192")):
        assert flag in _run(["export", str(path), "--format", fmt]).output


def test_tiny_rates_are_refused_or_printed(small_plan, tmp_path):
    """simulate --rate 1e-300 replayed with TTFT 0 ms (float rounding at arrival times ~1e302 s), plan serve --rate
    1e-6 crashed in the simulator's router; explain printed a 2e-5 req/s target as "rate 0.000 req/s"."""
    from planner.serve import explain

    path = tmp_path / "plan.json"
    path.write_text(small_plan.dumps())
    _refused(["simulate", str(path), "--rate", "1e-300"], "rate", "must be >= 1e-05 requests/s")
    _refused(PLAN + SLO + ["--rate", "1e-6"], "rate", "must be >= 1e-05")  # planning at 1e-6 crashed (IndexError)
    with pytest.raises(SpecError, match="1e-05"):
        ServingWorkload(input_len=10, output_len=10, ttft_s=0.5, tpot_s=0.02, rate_per_s=1e-7)
    out = _refused(["simulate", str(path), "--rate", "0.0002", "--requests", "20"], "at 0.0002 req/s", code=0)
    assert "TTFT p50" in out
    doc = json.loads(small_plan.dumps())
    doc["predicted"]["rate_rps"] = 2e-5
    from planner.plan import Plan

    assert "rate 2e-05 req/s" in explain(Plan(doc))


def test_cost_objective_needs_prices(tmp_path):
    """--objective cost on profiles without cost_per_hour (none of the built-in ones has it) minimised a cost of 0:
    any deployment was "optimal"."""
    import pathlib

    _refused(PLAN + SLO + ["--rate", "5", "--objective", "cost"], "objective", "h100-sxm has no cost_per_hour",
             "--objective gpus")
    hw = pathlib.Path(profiles.__file__).parent / "hardware" / "h100-sxm.yaml"
    priced = tmp_path / "h100-priced.yaml"
    priced.write_text(hw.read_text() + "\ncost_per_hour: 2.5\n")
    model = profiles.load_model("llama3.1-8b")
    cluster = ClusterSpec.homogeneous(profiles.load_device(str(priced)), 8)
    wl = ServingWorkload(input_len=1000, output_len=200, ttft_s=0.5, tpot_s=0.02, rate_per_s=5.0)
    assert ServeRequest(model=model, cluster=cluster, workload=wl, objective="cost").objective == "cost"
    with pytest.raises(SpecError, match="no cost_per_hour"):
        plan_serving(model, ClusterSpec.homogeneous(profiles.load_device("h100-sxm"), 8), wl, objective="cost")
