"""The checks every command's parsed parameters pass before the command does any work.

`guard_commands(group)` wraps the callback of every command under `group` (cli.py calls it once) so that,
in the user's own terms (the flag as typed, the value in the unit of the flag):
- every output path (`-o/--output`, `--report` ...) can be written (planner.commands.output.output_problem),
  and is not the same file as any input of the command (a plan, a lengths file, a model YAML ...);
- every number is finite (nan and inf are refused, naming the flag);
- degrees, counts and sizes (POSITIVE_INTS) are >= 1, seeds (NON_NEGATIVE_INTS) >= 0, and times, rates and means
  (POSITIVE_FLOATS) are > 0.
A violation is a SpecError: exit 2 with a message and no traceback (cli._ParplanGroup).
"""

import functools
import math
import os
from collections.abc import Iterator
from typing import Any

import click

from costmodels.errors import SpecError
from planner.commands.output import output_problem

POSITIVE_INTS = frozenset({
    "tp", "pp", "dp", "cp", "ep", "etp", "vpp", "mbs", "gbs", "seq", "num_gpus", "gpus_per_node", "batch", "isl",
    "osl", "slots_per_gpu", "layers", "experts", "top_k", "tokens", "clusters", "windows", "count", "batches",
    "max_len", "requests", "attention_dp", "verify_seeds", "workers"})
"""integer parameters that count something (degrees, GPUs, tokens, sequences): must be >= 1"""

NON_NEGATIVE_INTS = frozenset({"seed"})
"""integer parameters that may be 0 but not negative (numpy seeds)"""

POSITIVE_FLOATS = frozenset({"ttft_ms", "tpot_ms", "rate", "time_limit_s", "mean"})
"""float parameters that are durations, rates or means: must be > 0"""

OUTPUT_NAMES = frozenset({"output", "report_path"})
"""parameters that name a file the command writes"""


def flag(param: click.Parameter) -> str:
    """The parameter as the user types it: the longest option string, or the argument's metavar."""
    if isinstance(param, click.Option):
        return max(param.opts, key=len)
    return param.human_readable_name


def _values(value: Any) -> Iterator[Any]:
    if isinstance(value, (tuple, list)):
        for v in value:
            yield from _values(v)
    elif value is not None:
        yield value


def _check_numbers(param: click.Parameter, value: Any) -> None:
    """Finite always; the ranges only off the flag's own default (0 is "auto" for some flags)."""
    for v in _values(value):
        if isinstance(v, bool):
            continue
        if isinstance(v, float) and not math.isfinite(v):
            raise SpecError(f"{flag(param)} must be a finite number, got {v}")
        if param.name in NON_NEGATIVE_INTS and isinstance(v, int) and v < 0:
            raise SpecError(f"{flag(param)} must be >= 0, got {v}")
        if v == param.default:
            continue
        if param.name in POSITIVE_INTS and isinstance(v, int) and v < 1:
            auto = " (or 0, the default: any)" if param.default == 0 else ""
            raise SpecError(f"{flag(param)} must be >= 1{auto}, got {v}")
        if param.name in POSITIVE_FLOATS and isinstance(v, (int, float)) and v <= 0:
            raise SpecError(f"{flag(param)} must be > 0, got {v:g}")


def _is_output(param: click.Parameter) -> bool:
    return param.name in OUTPUT_NAMES


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_params(ctx: click.Context) -> None:
    """All checks above on a parsed context (raises SpecError)."""
    params = [(p, ctx.params.get(p.name)) for p in ctx.command.params if p.name in ctx.params]
    outputs = [(p, v) for p, v in params if _is_output(p) and isinstance(v, str) and v != "-"]
    for p, v in params:
        _check_numbers(p, v)
    for p, out in outputs:
        problem = output_problem(out)
        if problem is not None:
            raise SpecError(f"{flag(p)}: {problem}")
        for q, value in params:
            if _is_output(q):
                continue
            for v in _values(value):
                if isinstance(v, str) and v and _same_file(out, v):
                    raise SpecError(f"{flag(p)} {out} is the same file as the input {flag(q)} {v}; writing it "
                                    f"would destroy the input: choose another output path")


def _undecodable(ctx: click.Context, exc: UnicodeDecodeError) -> str:
    """The input file that is not UTF-8 text, named by its flag."""
    for p in ctx.command.params:
        for v in _values(ctx.params.get(p.name)):
            if isinstance(v, str) and not _is_output(p) and os.path.isfile(v):
                try:
                    with open(v, encoding="utf-8") as fh:
                        fh.read()
                except UnicodeDecodeError as bad:
                    return f"{flag(p)} {v}: not UTF-8 text (byte {bad.start} is {bad.object[bad.start]:#04x})"
                except OSError:
                    continue
    return f"an input is not UTF-8 text: {exc}"


def _guarded(command: click.Command) -> None:
    callback = command.callback
    if callback is None or getattr(callback, "_parplan_guarded", False):
        return

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        check_params(ctx)
        try:
            return callback(*args, **kwargs)
        except UnicodeDecodeError as exc:  # a reader that did not check its encoding: name the file for it
            raise SpecError(_undecodable(ctx, exc)) from None

    run._parplan_guarded = True  # type: ignore[attr-defined]
    command.callback = run


def guard_commands(group: click.Group) -> None:
    """Wrap every command under `group` (recursively) with `check_params`."""
    for command in group.commands.values():
        if isinstance(command, click.Group):
            guard_commands(command)
        else:
            _guarded(command)
