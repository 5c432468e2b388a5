"""Grid files: expansion order, filters, option checking, digests, and clear errors for bad grids."""

import textwrap

import pytest
from click.testing import CliRunner

from cli import main
from costmodels.errors import SpecError
from planner.sweep import expand, load_grid


def _grid(tmp_path, text: str):
    path = tmp_path / "grid.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_product_in_file_order_with_filters_and_fixed_values(tmp_path):
    path = _grid(tmp_path, """
        planner: estimate-train
        axes:
          num_gpus: [8, 16]
          tp: [1, 2, 4]
        fixed: {model: llama3-8b, gpu: h100-sxm, pp: 1, mbs: 1, gbs: 64, seq: 2048}
        filters: ["num_gpus // tp >= 4"]
    """)
    scenarios = expand(load_grid(path))
    assert [(s.values["num_gpus"], s.values["tp"]) for s in scenarios] == [(8, 1), (8, 2), (16, 1), (16, 2), (16, 4)]
    assert [s.index for s in scenarios] == [0, 1, 2, 3, 4]
    first = scenarios[0]
    assert first.args[:4] == ("--num-gpus", "8", "--tp", "1")
    assert "--model" in first.args and first.values["model"] == "llama3-8b"
    assert len({s.digest for s in scenarios}) == 5
    assert [s.digest for s in expand(load_grid(path))] == [s.digest for s in scenarios]  # digests are stable


def test_flags_and_file_values(tmp_path):
    lengths = tmp_path / "lengths.txt"
    lengths.write_text("1024\n2048\n")
    path = _grid(tmp_path, """
        planner: train
        axes: {allow_cross_node_tp: [true, false]}
        fixed: {model: llama3-8b, gpu: h100-sxm, num-gpus: 8, gbs: 16, seq: 2048}
    """)
    with_flag, without = expand(load_grid(path))
    assert "--allow-cross-node-tp" in with_flag.args and "--allow-cross-node-tp" not in without.args
    scatter = _grid(tmp_path, """
        planner: scatter
        fixed: {model: llama3-8b, gpu: h100-sxm, num_gpus: 8, lengths: lengths.txt}
    """)
    (before,) = expand(load_grid(scatter))
    assert str(lengths.resolve()) in before.args  # relative to the grid file
    lengths.write_text("1024\n4096\n")
    (after,) = expand(load_grid(scatter))
    assert after.digest != before.digest  # the file's contents are part of the digest


@pytest.mark.parametrize("text, words", [
    ("planner: trian\n", ["unknown planner 'trian'", "train, experts"]),
    ("planner: train\naxes: {gpus: [8]}\n", ["'gpus' is not an option", "num_gpus", "axes.gpus"]),
    ("planner: train\naxes: {num_gpus: [8]}\nfixed: {num_gpus: 8}\n", ["both as axes and as fixed"]),
    ("planner: train\naxis: {num_gpus: [8]}\n", ["unknown keys ['axis']", "valid: planner, axes, fixed, filters"]),
    ("planner: train\naxes: {num_gpus: [8]}\nfilters: ['__import__(\"os\")']\n", ["uses Call"]),
    ("planner: train\naxes: {num_gpus: [8]}\nfilters: ['gpus > 1']\n", ["names 'gpus'", "num_gpus"]),
    ("planner: train\naxes: {num_gpus: [eight]}\nfixed: {model: llama3-8b, gpu: h100-sxm, gbs: 8, seq: 64}\n",
     ["scenario 0", "num_gpus=eight", "--num-gpus", "eight"]),
    ("planner: train\naxes: {num_gpus: [8]}\n", ["scenario 0", "Missing option"]),
    ("planner: train\naxes: {num_gpus: [8, -8]}\nfixed: {model: llama3-8b, gpu: h100-sxm, gbs: 8, seq: 64}\n",
     ["scenario 1", "num_gpus=-8", "--num-gpus must be >= 1"]),
    ("planner: [train\n", ["malformed YAML"]),
])
def test_bad_grids_name_the_problem(tmp_path, text, words):
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        expand(load_grid(path))
    message = str(info.value)
    assert str(path) in message
    for word in words:
        assert word in message


def test_cli_bad_grid_exits_2_without_traceback(tmp_path):
    path = _grid(tmp_path, "planner: serve\naxes: {isl: [128]}\nfixed: {nonsense: 1}\n")
    result = CliRunner().invoke(main, ["sweep", str(path), "-o", str(tmp_path / "r.csv")])
    assert result.exit_code == 2, result.output
    assert "'nonsense' is not an option" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["sweep", str(path), "-o", str(tmp_path / "r.xlsx")])
    assert result.exit_code == 2 and "valid: .parquet, .csv" in result.output
