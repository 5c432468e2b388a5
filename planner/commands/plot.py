"""`parplan plot PLAN -o out.png`: a picture of a plan (PNG or SVG by suffix)."""

import click

from planner.commands.common import progress


@click.command("plot")
@click.argument("plan_path", metavar="PLAN", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="Image to write: .png or .svg.")
def plot(plan_path, output):
    """Draw a plan: train (pipeline Gantt, memory per stage, step time), experts (GPU load per layer vs greedy,
    node traffic), serve (goodput vs TPOT/TTFT, simulated percentiles vs SLO), scatter (groups and sequences).
    Estimates of a training configuration draw like train plans. Needs matplotlib (parplan[plots]).
    """
    from planner.plan import load_plan
    from planner.plots import plot_plan
    from planner.plots.figure import check_suffix

    check_suffix(output)
    plan = load_plan(plan_path, check_schema=False)
    plot_plan(plan.doc, output)
    progress(f"wrote {output}")


def register(groups):
    """Attach `plot`."""
    groups["root"].add_command(plot)
