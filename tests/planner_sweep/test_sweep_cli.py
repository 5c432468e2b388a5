"""`parplan sweep` end to end from the CLI: Parquet + CSV + plans + report, infeasible rows, progress with ETA."""

import io
import textwrap

import pytest
from click.testing import CliRunner

from cli import main
from planner.sweep.progress import ProgressBar

GRID = """
planner: train
axes:
  num_gpus: [2, 8]
fixed: {model: llama3-8b, gpu: a100-40gb, gbs: 8, seq: 2048}
filters: ["num_gpus >= 2"]
"""


def test_cli_sweep_writes_tables_plans_and_report(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed (pip install 'parplan[sweep]')")
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (pip install 'parplan[plots]')")
    (tmp_path / "grid.yaml").write_text(textwrap.dedent(GRID).replace("llama3-8b", "llama3-70b", 1)
                                        .replace("[2, 8]", "[2, 64]"))
    out = tmp_path / "r.parquet"
    result = CliRunner().invoke(main, ["sweep", str(tmp_path / "grid.yaml"), "-o", str(out), "--workers", "1",
                                       "--report", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    assert "ETA" in result.stderr and "2 scenarios (1 infeasible, 1 ok)" in result.stderr
    rows = pq.read_table(out).to_pylist()
    infeasible, ok = rows
    assert infeasible["num_gpus"] == 2 and infeasible["status"] == "infeasible" and infeasible["exit_code"] == 3
    assert "smallest GPU count that fits" in infeasible["error"] and infeasible["plan_file"] is None
    assert ok["status"] == "ok" and (tmp_path / "r_plans" / ok["plan_file"]).is_file()
    assert (tmp_path / "r.csv").read_text().splitlines()[0].startswith("num_gpus,model,gpu,gbs,seq,status,")
    assert "<table" in (tmp_path / "r.html").read_text()


def test_progress_bar_counts_and_estimates_the_rest():
    stream = io.StringIO()
    bar = ProgressBar(10, skipped=2, stream=stream)
    bar.update(True)
    bar.update(False)
    line = bar.line()
    assert "4/10" in line and "40%" in line and "1 failed" in line and "ETA" in line and "ETA ?" not in line
    assert stream.getvalue().count("\n") == 2  # not a terminal: a line per tenth, not one per scenario
