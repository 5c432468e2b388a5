"""parplan command line: parses, calls the public API, prints, maps errors to exit codes.

Exit codes: 0 ok, 1 bug (traceback) or `diff` found differences, 2 bad input, 3 infeasible request,
4 solver failure, 5 solver backend missing. Nothing imports this module.
"""

import click

from costmodels.errors import ParplanError
from planner.commands import documents, experts, profiles, scatter, serve, train
from planner.commands import estimate as estimate_cmds
from planner.commands import plot as plot_cmds
from planner.commands import sweep as sweep_cmds
from planner.commands.guard import guard_commands


class _ParplanGroup(click.Group):
    """A click group that turns expected parplan errors into a message and an exit code, no traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ParplanError as exc:
            click.echo(f"parplan: error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=_ParplanGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="parplan")
def main():
    """parplan: ILP/LP parallelism planner for large language models."""


@main.group(cls=_ParplanGroup)
def plan():
    """Find the best plan: train, experts, serve, scatter."""


@main.group(cls=_ParplanGroup)
def estimate():
    """Cost one given configuration with the analytical models."""


@main.group(cls=_ParplanGroup)
def trace():
    """Make or convert workload traces (routing statistics, sequence lengths)."""


GROUPS = {"root": main, "plan": plan, "estimate": estimate, "trace": trace}
for _module in (estimate_cmds, train, experts, serve, scatter, documents, profiles, sweep_cmds, plot_cmds):
    _module.register(GROUPS)
guard_commands(main)  # outputs writable and distinct from inputs, numbers finite and in range: before any work

if __name__ == "__main__":
    main()
