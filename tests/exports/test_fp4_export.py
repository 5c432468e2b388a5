"""NVFP4 serve plans (--dtype fp4, B200) export with the quantisation their kernel times assume, and their
confidence regime is the FP4 one (not BF16's)."""

import functools

import pytest
from names import command_lines, is_engine

import profiles
from costmodels.hardware import ClusterSpec
from planner import plan_serving
from planner.plan import Plan
from planner.serve import ServeOptions, ServingWorkload, export

WORKLOAD = ServingWorkload(input_len=1000, output_len=200, ttft_s=0.0, tpot_s=0.0)


@functools.cache
def fp4_plan(engine: str) -> Plan:
    cluster = ClusterSpec.homogeneous(profiles.load_device("b200"), 8)
    return plan_serving(profiles.load_model("llama3-8b"), cluster, WORKLOAD, objective="throughput",
                        options=ServeOptions(engine=engine, dtype="fp4", kv_dtype="fp8"))


def _flag(words: list[str], name: str) -> str | None:
    return words[words.index(name) + 1] if name in words else None


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_fp4_plan_launches_an_nvfp4_checkpoint_with_fp8_kv(engine):
    plan = fp4_plan(engine)
    servers = [w for w in command_lines(export(plan, engine)) if is_engine(w)]
    assert servers
    for words in servers:
        assert _flag(words, "--quantization") == "modelopt_fp4"
        assert _flag(words, "--kv-cache-dtype") == ("fp8" if engine == "vllm" else "fp8_e4m3")


def test_fp4_plan_is_in_the_fp4_regime():
    regime = fp4_plan("vllm")["predicted"]["regime"]
    assert regime["dtype"] == "fp4" and "/fp4/" in regime["key"]
