"""Every export format of every planner names a target executor version, and every export states the digest of
the plan it came from (the same document gives the same bytes)."""

import json
import os
import pathlib
import subprocess
import sys

from click.testing import CliRunner
from serve_plans import planned as serve_plan
from train_plans import planned as train_plan

import planner
import profiles
from cli import main
from costmodels.hardware import ClusterSpec
from planner import experts, scatter, serve, train
from planner.exports.common import TARGETS, header_lines, plan_digest
from planner.scatter import scatter_sequences


def test_every_format_has_a_named_target():
    for module in (train, serve, experts, scatter):
        for fmt in module.EXPORT_FORMATS:
            assert fmt in TARGETS and TARGETS[fmt].version


def test_headers_carry_version_and_digest():
    plan = train_plan("dense")
    text = train.export(plan, "megatron")
    assert header_lines(plan, TARGETS["megatron"])[0] in text
    assert plan_digest(plan) in text and "d98e8a6" in text
    assert text == train.export(plan, "megatron")
    s = serve.export(serve_plan("llama3-8b", 8, "colocated"), "sglang")
    assert "sglang 0.5.23" in s and plan_digest(serve_plan("llama3-8b", 8, "colocated")) in s


def test_scatter_rank_map_header_and_ranks():
    h100 = profiles.load_device("h100-sxm")
    plan = scatter_sequences([4000, 3000, 1000, 500, 500, 200, 100, 50], model=profiles.load_model("llama3-8b"),
                             cluster=ClusterSpec.homogeneous(h100, 8))
    doc = json.loads(scatter.export(plan, "json"))
    assert plan_digest(plan) in doc["parplan"]["plan"]
    assert [r["rank"] for r in doc["ranks"]] == list(range(8))
    assert sorted({i for r in doc["ranks"] for i in r["sequences"]}) == list(range(8))


def test_same_plan_same_bytes_under_two_hash_seeds(tmp_path):
    path = tmp_path / "serve.json"
    serve_plan("llama3-8b", 8, "disaggregated").write(path)
    repo = pathlib.Path(__file__).resolve().parents[2]
    outs = [subprocess.run([sys.executable, "-m", "cli", "export", str(path), "--format", "sglang"], cwd=repo,
                           env=dict(os.environ, PYTHONHASHSEED=seed), check=True, capture_output=True).stdout
            for seed in ("1", "2")]
    assert outs[0] == outs[1] and outs[0]


def test_cli_output_equals_the_api(tmp_path):
    """`parplan export` prints exactly planner.export_plan's text, for a format of each planner."""
    for plan, fmt in ((train_plan("moe"), "torchtitan-toml"), (serve_plan("llama3-8b", 8, "colocated"), "vllm")):
        path = tmp_path / f"{fmt}.json"
        plan.write(path)
        result = CliRunner().invoke(main, ["export", str(path), "--format", fmt])
        assert result.exit_code == 0 and result.output == planner.export_plan(plan, fmt)
