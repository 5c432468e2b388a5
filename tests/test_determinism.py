"""Same inputs, same bytes: CLI commands run in fresh interpreters under two PYTHONHASHSEED values.

Set and dict iteration orders of strings change with the hash seed, so any plan that depends on them shows
up here as a byte difference. Each run is a separate process (the seed only acts at interpreter start).
"""

import json
import os
import subprocess
import sys

from planner.schema_check import schema_problems

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HASH_SEEDS = ("0", "4242")

ESTIMATE_TRAIN = ["estimate", "train", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "16",
                  "--tp", "2", "--pp", "2", "--mbs", "1", "--gbs", "32", "--seq", "4096",
                  "--recompute", "selective", "-o", "-"]


def _parplan(args, hash_seed: str, cwd: str = REPO) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    return subprocess.run([sys.executable, os.path.join(REPO, "cli.py"), *args], cwd=cwd, env=env,
                          capture_output=True, timeout=300)


def _runs_under_both_seeds(args) -> bytes:
    outputs = []
    for seed in HASH_SEEDS:
        done = _parplan(args, seed)
        assert done.returncode == 0, done.stderr.decode()
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1], f"`parplan {' '.join(args)}` depends on PYTHONHASHSEED"
    assert outputs[0], "no output"
    return outputs[0]


def test_estimate_train_is_byte_identical_across_hash_seeds(tmp_path):
    text = _runs_under_both_seeds(ESTIMATE_TRAIN)
    doc = json.loads(text)
    assert doc["kind"] == "estimate" and doc["inputs"]["target"] == "train"
    assert schema_problems(doc) == []
    assert text.decode().endswith("}\n")
    # the document round-trips through diff as equal to itself, deterministically too
    (tmp_path / "a.json").write_bytes(text)
    (tmp_path / "b.json").write_bytes(text)
    diff = _runs_under_both_seeds(["diff", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "-o", "-"])
    assert json.loads(diff)["equal"] is True


def test_plan_scatter_is_byte_identical_across_hash_seeds(tmp_path):
    lengths = tmp_path / "lengths.txt"
    lengths.write_text("\n".join(str(n) for n in (1024, 8192, 2048, 512, 16384, 4096, 3000, 700)) + "\n")
    text = _runs_under_both_seeds(["plan", "scatter", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "8",
                                   "--lengths", str(lengths), "-o", "-"])
    assert json.loads(text)["kind"] == "scatter"


def test_diff_of_different_plans_is_byte_identical_across_hash_seeds(tmp_path):
    lengths = tmp_path / "lengths.txt"
    lengths.write_text("\n".join(str(n) for n in (1024, 8192, 2048, 512, 16384, 4096, 3000, 700)) + "\n")
    for name, gpus in (("a.json", "4"), ("b.json", "8")):
        done = _parplan(["plan", "scatter", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", gpus,
                         "--lengths", str(lengths), "-o", str(tmp_path / name)], "0")
        assert done.returncode == 0, done.stderr.decode()
    outputs = []
    for seed in HASH_SEEDS:
        done = _parplan(["diff", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "-o", "-"], seed)
        assert done.returncode == 1, done.stderr.decode()
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1] and json.loads(outputs[0])["equal"] is False
