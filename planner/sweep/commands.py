"""The planner commands a sweep can run, and how a grid's option values become their command-line arguments.

A sweep calls the same click commands as the CLI (`planner/commands/*`), so a grid key means exactly what the
option of that name means on the command line: `num_gpus: 64` is `--num-gpus 64`, parsed and converted by click.
"""

import importlib

import click

from costmodels.errors import SpecError

PLANNERS = {
    "train": ("planner.commands.train", "plan_train"),
    "experts": ("planner.commands.experts", "plan_experts"),
    "serve": ("planner.commands.serve", "plan_serve"),
    "scatter": ("planner.commands.scatter", "plan_scatter"),
    "estimate-train": ("planner.commands.estimate", "train_command"),
    "estimate-serve": ("planner.commands.serve", "estimate_serve"),
}
"""grid `planner:` value -> (module, click command attribute)"""

RESERVED = ("output", "help")
"""options a sweep sets itself (every scenario writes its plan to stdout)"""


def planner_command(planner: str, source: str = "grid") -> click.Command:
    """The click command behind a grid's `planner:` value."""
    if planner not in PLANNERS:
        raise SpecError(f"unknown planner {planner!r}; valid: {', '.join(PLANNERS)}", field="planner", source=source)
    module, attr = PLANNERS[planner]
    return getattr(importlib.import_module(module), attr)


def option_key(option: click.Option) -> str:
    """The grid key of an option: its long name without dashes, '-' as '_' (`--num-gpus` -> `num_gpus`)."""
    longs = [o for o in option.opts if o.startswith("--")]
    return (longs[0] if longs else option.opts[0]).lstrip("-").replace("-", "_")


def command_options(command: click.Command) -> dict[str, click.Option]:
    """Grid key -> click option, for every option a grid may set."""
    options = {option_key(p): p for p in command.params if isinstance(p, click.Option)}
    return {k: v for k, v in sorted(options.items()) if k not in RESERVED}


def option_args(option: click.Option, key: str, value: object, source: str) -> list[str]:
    """Command-line arguments that give `option` the grid value `value`."""
    flag = next((o for o in option.opts if o.startswith("--")), option.opts[0])
    if option.is_flag:
        if not isinstance(value, bool):
            raise SpecError(f"is a flag: give true or false, got {value!r}", field=key, source=source)
        if value:
            return [flag]
        return [option.secondary_opts[0]] if option.secondary_opts else []
    if value is None:
        return []
    if option.nargs > 1:
        if not isinstance(value, list) or len(value) != option.nargs:
            raise SpecError(f"takes {option.nargs} values: give a list of {option.nargs}, got {value!r}",
                            field=key, source=source)
        return [flag, *(_text(v) for v in value)]
    if option.multiple:
        values = value if isinstance(value, list) else [value]
        return [arg for v in values for arg in (flag, _text(v))]
    if isinstance(value, (list, dict)):
        raise SpecError(f"takes one value, got {value!r}", field=key, source=source)
    return [flag, _text(value)]


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
