"""Options and output shared by all commands."""

import sys

import click

from planner.commands.output import write_text
from planner.plan import Plan

output_option = click.option(
    "-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), default=None,
    help="Write the plan JSON to FILE ('-' for stdout) instead of printing a summary.")
model_option = click.option(
    "--model", "model_ref", required=True, metavar="M",
    help="Model profile name, model YAML path, or Hugging Face config.json path.")
gpu_option = click.option(
    "--gpu", "gpu_ref", required=True, metavar="G", help="Hardware profile name or hardware YAML path.")
num_gpus_option = click.option("--num-gpus", type=int, required=True, metavar="N", help="GPUs to use.")
gpus_per_node_option = click.option(
    "--gpus-per-node", type=int, default=None, metavar="K", help="GPUs per node (default: the hardware profile's).")
time_limit_option = click.option(
    "--time-limit", "time_limit_s", type=float, default=60.0, show_default=True, metavar="SEC",
    help="Solver wall-clock limit in seconds.")


def write_output(text: str, output: str, note: str | None = None) -> None:
    """Write `text` to stdout when `output` is '-', else atomically to the file `output` (planner.commands.output:
    a failed or interrupted write leaves the previous file untouched, errors exit 2 naming the path),
    announcing it on stderr."""
    if output == "-":
        sys.stdout.write(text)
        return
    write_text(output, text)
    click.echo(note or f"wrote {output}", err=True)


def emit(plan: Plan, output: str | None, summary: str) -> None:
    """Write the canonical JSON to `output`, or print the human summary when no output is given."""
    if output is None:
        click.echo(summary)
    else:
        write_output(plan.dumps(), output)


def progress(message: str) -> None:
    """One line of progress on stderr (never on stdout, which may carry JSON)."""
    click.echo(message, err=True)


def warn(message: str) -> None:
    """A warning on stderr."""
    click.echo(f"parplan: warning: {message}", err=True)
