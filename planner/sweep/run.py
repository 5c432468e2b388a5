"""A whole sweep: expand the grid, skip what the journal already has, run the rest, write the tables."""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from costmodels.errors import SolverUnavailableError, SpecError
from planner.sweep.executors import default_workers, run_local, run_ray
from planner.sweep.grid import Grid, expand, load_grid
from planner.sweep.progress import ProgressBar
from planner.sweep.store import ResultStore, column_order, write_tables
from planner.sweep.worker import run_scenario


@dataclass(frozen=True, kw_only=True, slots=True)
class SweepOptions:
    """How to run a sweep."""

    workers: int = 0
    """local processes (0 = one per CPU)"""
    ray: bool = False
    """run scenarios as Ray tasks instead of local processes"""
    ray_address: str | None = None
    """existing Ray cluster (None: RAY_ADDRESS, else a local cluster)"""
    ray_cpus: int | None = None
    """CPUs of a local Ray cluster (None: all)"""
    retries: int = 2
    """re-runs of a scenario whose worker process died"""
    resume: bool = True
    """skip scenarios the journal already has"""
    progress: bool = True
    """progress bar with ETA on stderr"""


@dataclass(kw_only=True, slots=True)
class SweepResult:
    """What a sweep produced."""

    planner: str
    """the grid's planner"""
    axes: dict
    """the grid's axes (key -> values)"""
    grid_keys: list[str]
    """axes and fixed keys, the first columns of every row"""
    rows: list[dict]
    """one row per scenario, in grid order"""
    columns: list[str]
    files: list[Path]
    """tables written"""
    plans_dir: Path
    ran: int = 0
    """scenarios run now (the rest came from the journal)"""
    failed: list[dict] = field(default_factory=list)
    """rows with status 'error'"""


def default_plans_dir(output: Path) -> Path:
    """`results.parquet` -> `results_plans/` beside it."""
    return output.with_name(output.stem + "_plans")


def run_sweep(grid: Grid | str | Path, output: str | Path, *, plans_dir: str | Path | None = None,
              options: SweepOptions = SweepOptions(), run: Callable[[dict], dict] = run_scenario) -> SweepResult:
    """Run every scenario of `grid` not yet in the journal; write `output` (.parquet or .csv) and its CSV."""
    output = Path(output)
    if output.suffix not in (".parquet", ".csv"):
        raise SpecError(f"unknown table format {output.suffix!r}; valid: .parquet, .csv", field="output")
    if output.suffix == ".parquet":
        _require_pyarrow()
    grid = grid if isinstance(grid, Grid) else load_grid(grid)
    scenarios = expand(grid)
    store = ResultStore(plans_dir or default_plans_dir(output))
    done = store.done_rows() if options.resume else {}
    todo = [s for s in scenarios if s.digest not in done]
    by_digest = {s.digest: s for s in scenarios}
    bar = ProgressBar(len(scenarios), skipped=len(scenarios) - len(todo), enabled=options.progress)
    rows = {d: r for d, r in done.items() if d in by_digest}

    def on_result(result: dict) -> None:
        rows[result["digest"]] = store.record(by_digest[result["digest"]].values, result)
        bar.update(result["status"] != "error")

    tasks = [s.task() for s in todo]
    try:
        _execute(tasks, on_result, options, run)
    finally:
        bar.close()
    ordered = [rows[s.digest] for s in scenarios if s.digest in rows]
    columns = column_order(ordered, grid.keys)
    files = write_tables(ordered, columns, output)
    return SweepResult(planner=grid.planner, axes=dict(grid.axes), grid_keys=grid.keys, rows=ordered, columns=columns,
                       files=files, plans_dir=store.plans_dir, ran=len(tasks),
                       failed=[r for r in ordered if r["status"] == "error"])


def _execute(tasks: list[dict], on_result: Callable[[dict], None], options: SweepOptions,
             run: Callable[[dict], dict]) -> None:
    if not tasks:
        return
    if options.ray:
        run_ray(tasks, on_result, address=options.ray_address, num_cpus=options.ray_cpus, retries=options.retries,
                run=run)
    else:
        run_local(tasks, on_result, workers=options.workers or default_workers(), retries=options.retries, run=run)


def _require_pyarrow() -> None:
    try:
        import pyarrow  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        raise SolverUnavailableError("writing Parquet needs pyarrow: pip install 'parplan[sweep]' "
                                     "(or give -o results.csv)") from None
