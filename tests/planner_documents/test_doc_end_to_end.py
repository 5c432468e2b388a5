"""validate / diff / explain / export end to end on documents made by the real planners (no fakes)."""

import json

import pytest
from click.testing import CliRunner

import cli

ESTIMATE = ["estimate", "train", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "16", "--pp", "2",
            "--mbs", "1", "--gbs", "32", "--seq", "4096", "--recompute", "selective"]


def run(*args):
    result = CliRunner().invoke(cli.main, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


@pytest.fixture(scope="module")
def estimates(tmp_path_factory):
    """Two estimate documents of the same job at tp=2 and tp=4."""
    folder = tmp_path_factory.mktemp("estimates")
    paths = {}
    for tp in (2, 4):
        paths[tp] = folder / f"tp{tp}.json"
        result = run(*ESTIMATE, "--tp", tp, "-o", paths[tp])
        assert result.exit_code == 0, result.output
    return paths


@pytest.fixture(scope="module")
def scatter_plan(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scatter")
    lengths = folder / "lengths.txt"
    lengths.write_text("1024\n8192\n2048\n512\n16384\n4096\n")
    path = folder / "plan.json"
    result = run("plan", "scatter", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "8",
                 "--lengths", lengths, "-o", path)
    assert result.exit_code == 0, result.output
    return path


def test_validate_a_real_estimate_and_catch_a_tampered_one(estimates, tmp_path):
    assert run("validate", estimates[2]).exit_code == 0
    doc = json.loads(estimates[2].read_text())
    doc["predicted"]["step_time_s"] *= 0.9  # a plan that claims a faster step than its inputs give
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(doc))
    result = run("validate", tampered)
    assert result.exit_code == 1 and "predicted.step_time_s" in result.output


def test_diff_two_real_estimates(estimates, tmp_path):
    assert run("diff", estimates[2], estimates[2]).exit_code == 0
    result = run("diff", estimates[2], estimates[4])
    assert result.exit_code == 1
    table = result.output.splitlines()
    decision_rows = [i for i, line in enumerate(table) if line.startswith("decision.")]
    metric_rows = [i for i, line in enumerate(table) if line.startswith("predicted.")]
    assert decision_rows and metric_rows and max(decision_rows) < min(metric_rows)
    assert any(line.split()[:3] == ["decision.tp", "2", "4"] for line in table)
    out = tmp_path / "diff.json"
    run("diff", estimates[2], estimates[4], "-o", out)
    changes = {c["field"]: c for c in json.loads(out.read_text())["changes"]}
    a, b = json.loads(estimates[2].read_text()), json.loads(estimates[4].read_text())
    step = changes["predicted.step_time_s"]
    assert (step["a"], step["b"]) == (a["predicted"]["step_time_s"], b["predicted"]["step_time_s"])
    assert step["rel_delta"] == pytest.approx(b["predicted"]["step_time_s"] / a["predicted"]["step_time_s"] - 1)
    # a threshold generous enough to pass and one that is crossed, in the direction the step time moved
    grew = step["delta"] > 0
    rel = abs(step["rel_delta"]) * 100
    sign = "+" if grew else "-"
    for limit, exit_code in ((rel * 2, 0), (rel / 2, 1)):
        expr = f"predicted.step_time_s:{sign}{limit}%"
        assert run("diff", estimates[2], estimates[4], "--fail-on", expr).exit_code == exit_code


def test_explain_a_real_estimate(estimates):
    result = run("explain", estimates[2])
    assert result.exit_code == 0
    assert result.output.startswith("plan        estimate of a train configuration (schema version 1)")
    assert "step_time_s" in result.output and "GiB)" in result.output


def test_validate_explain_export_a_real_scatter_plan(scatter_plan, tmp_path):
    assert run("validate", scatter_plan).exit_code == 0
    explained = run("explain", scatter_plan)
    assert explained.exit_code == 0 and "solver      " in explained.output and "gap" in explained.output
    from planner.scatter import EXPORT_FORMATS
    out = tmp_path / "export.txt"
    assert run("export", scatter_plan, "--format", EXPORT_FORMATS[0], "-o", out).exit_code == 0
    assert out.read_text().strip()
    unknown = run("export", scatter_plan, "--format", "no-such-format")
    assert unknown.exit_code == 2 and f"valid: {', '.join(EXPORT_FORMATS)}" in unknown.output
    doc = json.loads(scatter_plan.read_text())
    doc["decision"]["groups"][0]["sequences"].pop()  # a sequence left unassigned
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(doc))
    assert run("validate", broken).exit_code == 1


def test_export_a_real_train_plan(tmp_path):
    path = tmp_path / "train.json"
    result = run("plan", "train", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "16", "--gbs", "64",
                 "--seq", "4096", "-o", path)
    assert result.exit_code == 0, result.output
    assert run("validate", path).exit_code == 0
    doc = json.loads(path.read_text())
    megatron = run("export", path, "--format", "megatron")
    assert megatron.exit_code == 0
    assert f"--tensor-model-parallel-size {doc['decision']['tp']}" in megatron.stdout
    assert f"--pipeline-model-parallel-size {doc['decision']['pp']}" in megatron.stdout
    explained = run("explain", path)
    assert explained.exit_code == 0 and explained.output.startswith("plan        train (schema version 1)")


def test_validate_explain_export_diff_a_real_serve_plan(tmp_path):
    paths = {}
    for tpot_ms in (50, 40):
        paths[tpot_ms] = tmp_path / f"serve{tpot_ms}.json"
        result = run("plan", "serve", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "8", "--isl", "1024",
                     "--osl", "256", "--ttft-ms", "1000", "--tpot-ms", tpot_ms, "--requests", "200",
                     "-o", paths[tpot_ms])
        assert result.exit_code == 0, result.output
    assert run("validate", paths[50]).exit_code == 0
    assert run("explain", paths[50]).output.startswith("plan        serve (schema version 1)")
    from planner.serve import EXPORT_FORMATS
    for fmt in EXPORT_FORMATS:
        exported = run("export", paths[50], "--format", fmt)
        assert exported.exit_code == 0 and exported.stdout.strip()
    # a tighter TPOT SLO changes the inputs (and so the digest) and cannot raise goodput
    result = run("diff", paths[50], paths[40], "--fail-on", "predicted.goodput_tokens_per_s_per_gpu:+0%", "-o", "-")
    assert result.exit_code == 0
    fields = [c["field"] for c in json.loads(result.stdout)["changes"]]
    assert "inputs.inputs_digest" in fields


def test_validate_explain_export_diff_a_real_experts_plan(tmp_path):
    from planner.experts import EXPORT_FORMATS, place_experts
    from planner.experts.synthetic import synth_stats

    paths = {}
    for slots in (2, 3):
        stats = synth_stats(layers=2, experts=8, top_k=2, skew=1.0, affinity=0.5, seed=0, tokens=2000)
        paths[slots] = tmp_path / f"experts{slots}.json"
        place_experts(stats, num_gpus=4, gpus_per_node=2, slots_per_gpu=slots).write(paths[slots])
    assert run("validate", paths[2]).exit_code == 0
    assert run("explain", paths[2]).output.startswith("plan        experts (schema version 1)")
    for fmt in EXPORT_FORMATS:  # made without --model: only the MoE-layer-indexed Ascend map can be written
        exported = run("export", paths[2], "--format", fmt)
        if fmt == "vllm-ascend":
            assert exported.exit_code == 0 and exported.stdout.strip()
        else:
            assert exported.exit_code == 2 and "Traceback" not in exported.output
    # more replica slots per GPU can only lower the busiest GPU's load
    result = run("diff", paths[2], paths[3], "--fail-on", "predicted.max_load_ratio:+0", "-o", "-")
    assert result.exit_code == 0, result.stdout
    assert any(c["field"].startswith("decision.layers[0]") for c in json.loads(result.stdout)["changes"])
    doc = json.loads(paths[2].read_text())
    doc["predicted"]["cross_node_tokens"] *= 0.5  # a claim the placement cannot back
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(doc))
    assert run("validate", tampered).exit_code == 1
