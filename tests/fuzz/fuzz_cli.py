"""In-process CLI runner for the fuzz suite (a module name of its own: conftest names clash across test folders)."""

from click.testing import CliRunner, Result

import cli


def invoke(args: list) -> Result:
    """Run the CLI in-process; stdout and stderr together in `.output`."""
    return CliRunner().invoke(cli.main, [str(a) for a in args])
