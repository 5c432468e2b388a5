"""Offline (objective throughput) plans export as planned: each instance launches with the token budget per step and
the in-flight batch the plan's throughput assumes (planner/serve/offline.py), with flags the executor accepts."""

import copy
import functools

import pytest
from click.testing import CliRunner
from names import UNLISTED, accepted, command_lines, is_engine, serve_names

import profiles
from cli import main
from costmodels.hardware import ClusterSpec
from costmodels.serving import default_prefill_token_budget
from planner import plan_serving
from planner.plan import Plan, load_plan
from planner.serve import EXPORT_FORMATS, ServeOptions, ServingWorkload, check, export
from planner.serve.offline import offline_budget

WORKLOAD = ServingWorkload(input_len=1000, output_len=200, ttft_s=0.0, tpot_s=0.0)
H100 = "h100-sxm"


@functools.cache
def offline(engine: str = "vllm", budget: int | None = None) -> Plan:
    cluster = ClusterSpec.homogeneous(profiles.load_device(H100), 8)
    return plan_serving(profiles.load_model("llama3-8b"), cluster, WORKLOAD, objective="throughput",
                        options=ServeOptions(engine=engine, prefill_token_budget=budget))


def _servers(text: str) -> list[list[str]]:
    return [w for w in command_lines(text) if is_engine(w)]


def _flag(words: list[str], name: str) -> str | None:
    return words[words.index(name) + 1] if name in words else None


def _with_group(plan: Plan, **fields) -> Plan:
    doc = copy.deepcopy(plan.doc)
    doc["decision"]["groups"][0].update(fields)
    return Plan(doc)


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_plan_records_the_budget_its_throughput_assumes(engine):
    plan = offline(engine)
    (g,) = plan["decision"]["groups"]
    device = profiles.load_device(H100)
    assert g["prefill_token_budget"] == offline_budget(engine, default_prefill_token_budget(engine, device)) > 1
    assert g["max_batch"] == plan["predicted"]["offline_batch"] >= 1 and check(plan) == []
    assert check(_with_group(plan, prefill_token_budget=g["prefill_token_budget"] // 2)) != []


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_export_launches_the_planned_budget_and_batch(engine, fmt):
    plan = offline(engine)
    g = plan["decision"]["groups"][0]
    text = export(plan, fmt)
    names = serve_names(text)
    assert names and not names - accepted(fmt) - UNLISTED.get(fmt, set())
    servers = _servers(text)
    assert len(servers) == g["instances"]
    for words in servers:
        if fmt == "vllm":  # the regression: --max-num-batched-tokens was the in-flight batch, 377
            assert _flag(words, "--max-num-batched-tokens") == str(g["prefill_token_budget"])
            assert _flag(words, "--max-num-seqs") == str(g["max_batch"])
            assert "--enable-chunked-prefill" in words
        else:  # the regression: --chunked-prefill-size 0
            assert _flag(words, "--chunked-prefill-size") == str(g["prefill_token_budget"])
            assert _flag(words, "--max-running-requests") == str(g["max_batch"])
            assert "--max-prefill-tokens" not in words  # 8192 is under SGLang's 16384 default


def test_large_budget_and_data_parallel_engines():
    plan = offline("vllm", 32768)
    assert plan["decision"]["groups"][0]["prefill_token_budget"] == 32768
    words = _servers(export(plan, "sglang"))[0]
    assert _flag(words, "--chunked-prefill-size") == _flag(words, "--max-prefill-tokens") == "32768"
    # vLLM's budget and batch are per data-parallel engine; the running batch never exceeds the budget
    dp = _with_group(plan, dp=2, tp=1, gpus=2, instances=4, max_batch=600, prefill_token_budget=1024)
    words = _servers(export(dp, "vllm"))[0]
    assert _flag(words, "--data-parallel-size") == "2"
    assert _flag(words, "--max-num-batched-tokens") == "512" and _flag(words, "--max-num-seqs") == "300"
    small = _with_group(plan, dp=2, tp=1, gpus=2, instances=4, max_batch=600, prefill_token_budget=400)
    words = _servers(export(small, "vllm"))[0]
    assert _flag(words, "--max-num-batched-tokens") == "200" and _flag(words, "--max-num-seqs") == "200"


def _cli(*args: str):
    return CliRunner().invoke(main, list(args))


def test_cli_plan_then_export(tmp_path):
    path = tmp_path / "offline.json"
    made = _cli("plan", "serve", "--model", "llama3-8b", "--gpu", H100, "--num-gpus", "8", "--isl", "1000",
                "--osl", "200", "--objective", "throughput", "-o", str(path))
    assert made.exit_code == 0, made.output
    g = load_plan(path)["decision"]["groups"][0]
    for fmt in EXPORT_FORMATS:
        out = _cli("export", str(path), "--format", fmt)
        assert out.exit_code == 0, out.output
        flag = "--max-num-batched-tokens" if fmt == "vllm" else "--chunked-prefill-size"
        assert _flag(_servers(out.output)[0], flag) == "8192"
        assert len(_servers(out.output)) == g["instances"]


def test_one_prompt_per_step_and_unrecorded_budgets_are_refused(tmp_path):
    """The legacy engine model prefills one prompt per step (budget 1), which neither engine's scheduler runs; a
    plan made before the budget was recorded cannot say what to launch. Both exit 2 naming the field."""
    legacy, old = tmp_path / "legacy.json", tmp_path / "old.json"
    legacy.write_text(offline("legacy").dumps())
    doc = copy.deepcopy(offline().doc)
    del doc["decision"]["groups"][0]["prefill_token_budget"]
    old.write_text(Plan(doc).dumps())
    for fmt in EXPORT_FORMATS:
        out = _cli("export", str(legacy), "--format", fmt)
        assert out.exit_code == 2 and "prefill_token_budget" in out.output and "Traceback" not in out.output
        assert "budget > 1" in out.output
        out = _cli("export", str(old), "--format", fmt)
        assert out.exit_code == 2 and "re-plan" in out.output and "Traceback" not in out.output
