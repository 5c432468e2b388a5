"""Every plot type drawn from real plans (made here through the CLI): valid PNG/SVG files of the expected size."""

import json
import struct
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from cli import main

pytest.importorskip("matplotlib", reason="matplotlib is not installed (pip install 'parplan[plots]')")

from planner.plots import plot_plan  # noqa: E402
from planner.plots.figure import DPI  # noqa: E402
from planner.plots.schedule import pipeline_schedule  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def plans(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("plans")
    _cli("trace", "synth", "--layers", "4", "--experts", "16", "--top-k", "2", "--skew", "1.2", "--affinity", "0.5",
         "-o", str(folder / "stats.json"))
    (folder / "lengths.txt").write_text("\n".join(str(n) for n in (512, 8192, 2048, 700, 16384, 4096, 3000, 1024)))
    commands = {
        "train_pp": ["estimate", "train", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "16", "--tp", "2",
                     "--pp", "4", "--mbs", "1", "--gbs", "32", "--seq", "4096", "--recompute", "selective"],
        "train_vpp": ["estimate", "train", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "16", "--tp", "2",
                      "--pp", "4", "--vpp", "2", "--mbs", "1", "--gbs", "32", "--seq", "4096"],
        "train": ["plan", "train", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "8", "--gbs", "32",
                  "--seq", "2048"],
        "experts": ["plan", "experts", "--stats", str(folder / "stats.json"), "--num-gpus", "8", "--gpus-per-node", "4",
                    "--slots-per-gpu", "3"],
        "serve": ["plan", "serve", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "8", "--isl", "1024",
                  "--osl", "128", "--ttft-ms", "1000", "--tpot-ms", "50", "--requests", "300"],
        "scatter": ["plan", "scatter", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "8", "--lengths",
                    str(folder / "lengths.txt")],
    }
    out = {}
    for name, args in commands.items():
        path = folder / f"{name}.json"
        path.write_text(_cli(*args, "-o", "-"))
        out[name] = path
    return out


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("name, size_in", [("train_pp", (12, 8)), ("train_vpp", (12, 8)), ("train", (12, 8)),
                                           ("experts", (12, 8)), ("serve", (12, 8)), ("scatter", (12, 6))])
def test_every_plan_kind_draws_png_and_svg_of_the_expected_size(plans, name, size_in, tmp_path):
    png, svg = tmp_path / f"{name}.png", tmp_path / f"{name}.svg"
    result = CliRunner().invoke(main, ["plot", str(plans[name]), "-o", str(png)])
    assert result.exit_code == 0, result.output
    assert _png_size(png) == (size_in[0] * DPI, size_in[1] * DPI)
    assert png.stat().st_size > 20_000  # drawn, not blank
    plot_plan(json.loads(plans[name].read_text()), svg)
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg") and root.get("width") == f"{size_in[0] * 72}pt"
    first = svg.read_bytes()
    plot_plan(json.loads(plans[name].read_text()), svg)
    assert svg.read_bytes() == first  # same plan, same picture bytes


def test_bad_plot_requests_exit_2_naming_the_problem(plans, tmp_path):
    result = CliRunner().invoke(main, ["plot", str(plans["serve"]), "-o", str(tmp_path / "x.jpg")])
    assert result.exit_code == 2 and "valid: .png, .svg" in result.output
    (tmp_path / "bad.json").write_text("{")
    result = CliRunner().invoke(main, ["plot", str(tmp_path / "bad.json"), "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and "malformed JSON" in result.output and "Traceback" not in result.output


def test_schedule_matches_the_pipeline_formula_for_equal_stages():
    from costmodels.pipeline import pipeline_step_time

    for pp, m, v in ((1, 4, 1), (2, 4, 1), (4, 8, 1), (4, 2, 1), (8, 16, 1), (2, 4, 2), (4, 8, 2), (4, 8, 4),
                     (2, 2, 3), (8, 16, 2)):
        ops = pipeline_schedule([0.3] * pp, m, vpp=v)
        assert len(ops) == 2 * pp * m * (v if pp > 1 else 1)
        assert max(o.end_s for o in ops) == pytest.approx(pipeline_step_time([0.3] * pp, m, v if pp > 1 else 1))
    uneven = pipeline_schedule([0.3] * 4, 6, vpp=2)  # 6 micro-batches on 4 stages: not interleavable
    assert {o.chunk for o in uneven} == {0} and max(o.end_s for o in uneven) == pytest.approx(0.3 * 9)
    ops = pipeline_schedule([1.0, 2.0], 3, "full")
    by_stage = [sorted((o.start_s, o.kind) for o in ops if o.stage == s) for s in range(2)]
    assert [k for _, k in by_stage[0]] == ["F", "F", "B", "F", "B", "B"]  # one warm-up forward on stage 0 of 2
    assert [k for _, k in by_stage[1]] == ["F", "B", "F", "B", "F", "B"]
    first_forward = next(o for o in ops if o.stage == 0 and o.kind == "F")
    assert first_forward.end_s == pytest.approx(0.25)  # forward = 1/4 of the micro-batch time with full recompute


def test_experts_loads_are_the_plan_shares_times_the_loads(plans):
    from planner.plots.experts import _stats, gpu_load, plan_shares

    doc = json.loads(plans["experts"].read_text())
    stats = _stats(doc)
    load = gpu_load(stats, plan_shares(doc, stats.layers, stats.experts, 8))
    assert load.sum(axis=1) == pytest.approx(stats.expert_load.sum(axis=1))  # every token served once
    assert load.max(axis=1) == pytest.approx(doc["predicted"]["layer_max_gpu_tokens"], rel=1e-6)
