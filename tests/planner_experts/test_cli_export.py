"""CLI == API, exit codes, exports in the engines' exact structures, determinism across hash seeds."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from planner.experts import check, place_experts
from planner.plan import load_plan

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def stats_file(tmp_path):
    path = tmp_path / "stats.json"
    result = CliRunner().invoke(main, ["trace", "synth", "--layers", "3", "--experts", "16", "--top-k", "2",
                                       "--skew", "1.2", "--affinity", "0.8", "--seed", "4", "--tokens", "256",
                                       "-o", str(path)])
    assert result.exit_code == 0, result.output
    return path


def test_cli_output_equals_api(tmp_path, stats_file):
    out = tmp_path / "plan.json"
    result = CliRunner().invoke(main, ["plan", "experts", "--stats", str(stats_file), "--num-gpus", "8",
                                       "--gpus-per-node", "4", "--slots-per-gpu", "3", "-o", str(out)])
    assert result.exit_code == 0, result.output
    api = place_experts(str(stats_file), num_gpus=8, gpus_per_node=4, slots_per_gpu=3)
    assert out.read_text() == api.dumps()
    assert check(load_plan(out)) == []
    summary = CliRunner().invoke(main, ["plan", "experts", "--stats", str(stats_file), "--num-gpus", "8",
                                        "--gpus-per-node", "4", "--slots-per-gpu", "3"])
    assert "greedy_replicate" in summary.output and "gap" in summary.output


@pytest.mark.parametrize("doc, field", [({"expert_load": [[1, -1, 2]]}, "expert_load"),
                                        ({"expert_load": [[1, 1, 2]], "transitions": [[1]]}, "transitions")])
def test_bad_stats_exit_2(tmp_path, doc, field):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    result = CliRunner().invoke(main, ["plan", "experts", "--stats", str(path), "--num-gpus", "2",
                                       "--slots-per-gpu", "2"])
    assert result.exit_code == 2
    assert field in result.output and "Traceback" not in result.output


def test_more_experts_than_slots_exit_2(stats_file):
    result = CliRunner().invoke(main, ["plan", "experts", "--stats", str(stats_file), "--num-gpus", "4",
                                       "--slots-per-gpu", "3"])
    assert result.exit_code == 2 and "slots" in result.output


def test_trace_stats_command(tmp_path):
    trace = tmp_path / "trace.json"
    trace.write_text(json.dumps({"expert_ids": [[[0, 1], [2, 3]], [[1, 2], [0, 3]]], "num_experts": 4}))
    out = tmp_path / "s.npz"
    result = CliRunner().invoke(main, ["trace", "stats", str(trace), "-o", str(out)])
    assert result.exit_code == 0, result.output
    with np.load(out) as npz:
        assert npz["expert_load"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 1]]
        assert npz["transitions"].shape == (1, 4, 4)


def test_same_bytes_under_two_hash_seeds(tmp_path, stats_file):
    outs = []
    for seed in ("1", "2"):
        out = tmp_path / f"p{seed}.json"
        env = dict(os.environ, PYTHONHASHSEED=seed)
        subprocess.run([sys.executable, "-c", "from cli import main; main()", "plan", "experts", "--stats",
                        str(stats_file), "--num-gpus", "8", "--gpus-per-node", "4", "--slots-per-gpu", "3",
                        "-o", str(out)], check=True, cwd=REPO, env=env, capture_output=True)
        outs.append(out.read_text())
    assert outs[0] == outs[1]
