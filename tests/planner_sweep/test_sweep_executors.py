"""A 24-scenario experts sweep: local pool vs Ray give the same plan bytes; dying workers are retried; resume."""

import os
import signal
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from planner.sweep import SweepOptions, expand, load_grid, run_sweep
from planner.sweep.worker import run_scenario

GRID = """
planner: train
axes:
  gpu: [h100-sxm, a100-80gb, h200]
  num_gpus: [4, 8]
  gbs: [16, 32]
  seq: [1024, 2048]
fixed:
  model: llama3-8b
"""
SMALL = "filters: [\"gpu == 'h100-sxm' and seq == 1024\"]\n"
"""the same scenarios (same digests) cut to 4, for the failure tests"""


@pytest.fixture(scope="module")
def grid_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("grid") / "grid.yaml"
    path.write_text(textwrap.dedent(GRID))
    return path


@pytest.fixture(scope="module")
def small_grid(grid_file) -> Path:
    path = grid_file.with_name("small.yaml")
    path.write_text(textwrap.dedent(GRID) + SMALL)
    return path


@pytest.fixture(scope="module")
def local_sweep(grid_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "results.csv"
    return run_sweep(grid_file, out, options=SweepOptions(workers=2, progress=False))


@pytest.fixture(scope="module")
def small_sweep(small_grid, tmp_path_factory):
    """The 4 scenarios of the failure tests, run undisturbed (what a retried run must reproduce)."""
    out = tmp_path_factory.mktemp("small") / "results.csv"
    return run_sweep(small_grid, out, options=SweepOptions(workers=1, progress=False))


def _plans(result) -> dict[str, bytes]:
    return {row["digest"]: (result.plans_dir / row["plan_file"]).read_bytes() for row in result.rows}


def test_local_sweep_runs_every_scenario_and_matches_a_direct_cli_run(local_sweep):
    assert len(local_sweep.rows) == 24 and local_sweep.ran == 24
    assert [r["status"] for r in local_sweep.rows] == ["ok"] * 24, [r["error"] for r in local_sweep.rows]
    row = local_sweep.rows[5]
    args = ["plan", "train", "--model", "llama3-8b", "--gpu", row["gpu"], "--num-gpus", str(row["num_gpus"]),
            "--gbs", str(row["gbs"]), "--seq", str(row["seq"]), "-o", "-"]
    direct = CliRunner().invoke(main, args)
    assert direct.exit_code == 0
    assert (local_sweep.plans_dir / row["plan_file"]).read_text() == direct.stdout
    assert 0 < row["predicted.mfu"] < 1 and row["solver.status"] == "optimal"
    assert row["decision.tp"] * row["decision.pp"] * row["decision.dp"] * row["decision.cp"] == row["num_gpus"]


def test_rerun_resumes_from_the_journal(local_sweep, grid_file):
    again = run_sweep(grid_file, local_sweep.files[0], plans_dir=local_sweep.plans_dir,
                      options=SweepOptions(workers=2, progress=False))
    assert again.ran == 0 and [r["digest"] for r in again.rows] == [r["digest"] for r in local_sweep.rows]
    victim = local_sweep.rows[3]
    (local_sweep.plans_dir / victim["plan_file"]).unlink()
    third = run_sweep(grid_file, local_sweep.files[0], plans_dir=local_sweep.plans_dir,
                      options=SweepOptions(workers=1, progress=False))
    assert third.ran == 1 and (local_sweep.plans_dir / victim["plan_file"]).is_file()


def _die_once(task: dict, marker_dir: str, victim: int) -> dict:
    """Kill this worker process (SIGKILL, mid-task) the first time it runs scenario `victim`."""
    if task["index"] == victim:
        try:
            fd = os.open(os.path.join(marker_dir, "killed"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass
        else:
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            os.kill(os.getpid(), signal.SIGKILL)
    return run_scenario(task)


def _local_die_once(task: dict) -> dict:
    return _die_once(task, os.environ["PARPLAN_TEST_MARKER_DIR"], 1)


def test_local_pool_retries_a_killed_worker(small_sweep, small_grid, tmp_path, monkeypatch):
    monkeypatch.setenv("PARPLAN_TEST_MARKER_DIR", str(tmp_path))  # spawned workers inherit the environment
    result = run_sweep(small_grid, tmp_path / "r.csv", options=SweepOptions(workers=2, progress=False),
                       run=_local_die_once)
    assert (tmp_path / "killed").is_file()
    assert [r["status"] for r in result.rows] == ["ok"] * 4
    assert _plans(result) == _plans(small_sweep)


def _local_raise(task: dict) -> dict:
    raise RuntimeError(f"scenario {task['index']} broke")


def test_local_pool_records_a_raising_task_with_its_error(small_grid, tmp_path):
    result = run_sweep(small_grid, tmp_path / "r.csv", options=SweepOptions(workers=2, progress=False),
                       run=_local_raise)
    assert len(result.rows) == 4 and {r["status"] for r in result.rows} == {"error"}
    index = expand(load_grid(small_grid))[2].index
    assert result.rows[2]["error"] == f"RuntimeError: scenario {index} broke"


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'parplan[ray]')")
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except Exception as exc:  # a sandbox without the shared memory or sockets Ray needs
        pytest.skip(f"Ray is installed but a local Ray cluster could not start here: {type(exc).__name__}: {exc}")
    yield ray
    ray.shutdown()


def test_ray_sweep_gives_the_same_bytes_as_the_local_pool(ray_cluster, local_sweep, grid_file, tmp_path):
    result = run_sweep(grid_file, tmp_path / "results.parquet", options=SweepOptions(ray=True, progress=False))
    assert result.ran == 24
    assert [r["digest"] for r in result.rows] == [r["digest"] for r in local_sweep.rows]
    assert _plans(result) == _plans(local_sweep)
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "results.parquet")
    assert table.num_rows == 24 and table.column("status").to_pylist() == ["ok"] * 24


def test_ray_retries_a_task_whose_worker_is_killed(ray_cluster, small_sweep, small_grid, tmp_path):
    marker, victim = str(tmp_path / "killed"), 1

    def die_once(task: dict) -> dict:
        """Self-contained (Ray ships closures by value): SIGKILL this worker the first time it runs `victim`."""
        import os
        import signal

        from planner.sweep.worker import run_scenario

        if task["index"] == victim:
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
                os.kill(os.getpid(), signal.SIGKILL)
        return run_scenario(task)

    result = run_sweep(small_grid, tmp_path / "r.csv", options=SweepOptions(ray=True, retries=2, progress=False),
                       run=die_once)
    killed_pid = int((tmp_path / "killed").read_text())
    assert killed_pid != os.getpid()  # a Ray worker process was killed mid-task ...
    assert [r["status"] for r in result.rows] == ["ok"] * 4  # ... and its scenario was retried
    assert _plans(result) == _plans(small_sweep)


def test_ray_records_a_raising_task_with_its_error(ray_cluster, small_grid, tmp_path):
    def always_raise(task: dict) -> dict:
        raise RuntimeError(f"scenario {task['index']} broke")

    result = run_sweep(small_grid, tmp_path / "r.csv", options=SweepOptions(ray=True, progress=False),
                       run=always_raise)
    assert len(result.rows) == 4 and {r["status"] for r in result.rows} == {"error"}
    index = expand(load_grid(small_grid))[3].index
    assert f"scenario {index} broke" in result.rows[3]["error"] and "\x1b" not in result.rows[3]["error"]


def test_ray_that_cannot_start_is_a_clear_error_not_a_traceback(monkeypatch):
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'parplan[ray]')")
    from costmodels.errors import SolverUnavailableError
    from planner.sweep.executors import run_ray

    def refuse(**_kw):
        raise ConnectionError("GCS at 10.0.0.9:6379 not reachable\nafter 3 tries")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refuse)
    with pytest.raises(SolverUnavailableError, match=r"could not connect to the Ray cluster at 10\.0\.0\.9:6379: "
                                                     r"ConnectionError: GCS .* not reachable after 3 tries"):
        run_ray([{"index": 0}], lambda r: None, address="10.0.0.9:6379")
