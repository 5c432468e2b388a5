"""`parplan sweep GRID.yaml -o results.parquet`: run a planner over a grid of option values."""

import click

from planner.commands.common import progress


@click.command("sweep")
@click.argument("grid_path", metavar="GRID.yaml", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="Results table: .parquet (needs pyarrow) or .csv; a CSV is always written beside it.")
@click.option("--plans-dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Folder of plan documents by digest, and the journal that makes re-runs resume "
                   "[default: <output stem>_plans].")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True, metavar="N",
              help="Local worker processes (0 = one per CPU).")
@click.option("--ray", "use_ray", is_flag=True, help="Run scenarios as Ray tasks (pip install 'parplan[ray]').")
@click.option("--ray-address", default=None, envvar="RAY_ADDRESS", metavar="ADDR",
              help="Ray cluster to join (default: $RAY_ADDRESS, else a local cluster).")
@click.option("--ray-cpus", type=click.IntRange(min=1), default=None, metavar="N",
              help="CPUs of the local Ray cluster (default: all).")
@click.option("--retries", type=click.IntRange(min=0), default=2, show_default=True, metavar="K",
              help="Re-runs of a scenario whose worker process dies.")
@click.option("--no-resume", is_flag=True, help="Run every scenario, even those the journal already has.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None, metavar="HTML",
              help="Also write a self-contained HTML report (sortable table and plots; needs matplotlib).")
def sweep(grid_path, output, plans_dir, workers, use_ray, ray_address, ray_cpus, retries, no_resume, report_path):
    """Run every combination of a grid's option values through one planner.

    GRID.yaml names the planner and its axes by the planner's own option names (see planner/sweep/grid.py).
    Writes one row per scenario (inputs, decision, predicted metrics, solver status, wall time) and every plan
    document by digest; re-running skips finished scenarios. Exit 1 when some scenario failed (rows say why).
    """
    from planner.sweep import SweepOptions, run_sweep

    options = SweepOptions(workers=workers, ray=use_ray, ray_address=ray_address, ray_cpus=ray_cpus,
                           retries=retries, resume=not no_resume)
    result = run_sweep(grid_path, output, plans_dir=plans_dir, options=options)
    counts = {}
    for row in result.rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    progress(f"sweep: {len(result.rows)} scenarios ({summary}); ran {result.ran}, "
             f"{len(result.rows) - result.ran} from the journal")
    for path in result.files:
        progress(f"wrote {path}")
    progress(f"plans in {result.plans_dir}")
    if report_path:
        from planner.plots.report import write_report

        write_report(result, report_path)
        progress(f"wrote {report_path}")
    for row in result.failed[:5]:
        progress(f"failed: scenario {row['digest'][:12]}: {row['error']}")
    if result.failed:
        raise click.exceptions.Exit(1)


def register(groups):
    """Attach `sweep`."""
    groups["root"].add_command(sweep)
