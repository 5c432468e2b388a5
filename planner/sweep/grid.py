"""Grid files: which planner, which option values to sweep, which combinations to drop.

```yaml
planner: train                  # train | experts | serve | scatter | estimate-train | estimate-serve
axes:                           # option -> list of values; the sweep runs their product
  model: [llama3-8b, llama3-70b]
  num_gpus: [64, 128]
fixed:                          # option -> one value, the same in every scenario
  gbs: 256
  seq: 4096
filters:                        # keep a combination only where every expression is true
  - "model != 'llama3-70b' or num_gpus >= 64"
```
Keys are the planner's own command-line option names (`--num-gpus` is `num_gpus` or `num-gpus`). A string
value naming an existing file relative to the grid file is passed as that file's absolute path, and the file's
sha256 enters the scenario digest, so editing the file re-runs the scenarios that read it.
"""

import hashlib
import itertools
from dataclasses import dataclass
from pathlib import Path

import click
import yaml

from costmodels.errors import SpecError
from planner.commands.guard import check_params
from planner.plan import digest
from planner.sweep.commands import command_options, option_args, planner_command
from planner.sweep.filters import Filter

GRID_KEYS = ("planner", "axes", "fixed", "filters")


@dataclass(frozen=True, kw_only=True, slots=True)
class Scenario:
    """One combination of option values, ready to run."""

    index: int
    """position in the grid's expansion order"""
    planner: str
    """grid `planner:` value"""
    values: dict
    """grid key -> value as written in the grid"""
    args: tuple[str, ...]
    """command-line arguments of the planner command (files as absolute paths)"""
    digest: str
    """sha256 of planner, values and the contents of the files they name"""

    def task(self) -> dict:
        """What a worker needs (plain data, picklable for process pools and Ray)."""
        return {"digest": self.digest, "planner": self.planner, "args": list(self.args), "index": self.index}


@dataclass(frozen=True, kw_only=True, slots=True)
class Grid:
    """A parsed grid file."""

    planner: str
    axes: dict
    """key -> list of values, in file order"""
    fixed: dict
    filters: tuple[Filter, ...]
    source: str
    base_dir: Path

    @property
    def keys(self) -> list[str]:
        return [*self.axes, *self.fixed]


def _mapping(doc: dict, key: str, source: str) -> dict:
    value = doc.get(key) or {}
    if not isinstance(value, dict):
        raise SpecError(f"must be a mapping of option -> value(s), got {type(value).__name__}", field=key,
                        source=source)
    return {str(k).replace("-", "_"): v for k, v in value.items()}


def load_grid(path: str | Path) -> Grid:
    """Read and check a grid file (unknown keys and options are errors that list the valid ones)."""
    path = Path(path)
    source = str(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(f"cannot read grid: {exc.strerror}", source=source) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"malformed YAML: {exc}", source=source) from None
    if not isinstance(doc, dict):
        raise SpecError("a grid is a YAML mapping with keys " + ", ".join(GRID_KEYS), source=source)
    unknown = sorted(set(doc) - set(GRID_KEYS))
    if unknown:
        raise SpecError(f"unknown keys {unknown}; valid: {', '.join(GRID_KEYS)}", source=source)
    if "planner" not in doc:
        raise SpecError("missing", field="planner", source=source)
    options = command_options(planner_command(str(doc["planner"]), source))
    axes = {k: v if isinstance(v, list) else [v] for k, v in _mapping(doc, "axes", source).items()}
    fixed = _mapping(doc, "fixed", source)
    for key in [*axes, *fixed]:
        if key not in options:
            raise SpecError(f"{key!r} is not an option of planner {doc['planner']!r}; valid: {', '.join(options)}",
                            field=f"axes.{key}" if key in axes else f"fixed.{key}", source=source)
    both = sorted(set(axes) & set(fixed))
    if both:
        raise SpecError(f"{both} given both as axes and as fixed values", field="fixed", source=source)
    empty = [k for k, v in axes.items() if not v]
    if empty:
        raise SpecError("an axis needs at least one value", field=f"axes.{empty[0]}", source=source)
    texts = doc.get("filters") or []
    if isinstance(texts, str) or not isinstance(texts, list):
        raise SpecError("must be a list of expressions", field="filters", source=source)
    filters = tuple(Filter(str(t), set(axes) | set(fixed), source) for t in texts)
    return Grid(planner=str(doc["planner"]), axes=axes, fixed=fixed, filters=filters, source=source,
                base_dir=path.resolve().parent)


def _file_value(value: object, base_dir: Path) -> Path | None:
    if not isinstance(value, str) or not value or "\n" in value:
        return None
    candidate = (base_dir / value)
    return candidate.resolve() if candidate.is_file() else None


def _scenario(grid: Grid, index: int, values: dict, options: dict, command: click.Command) -> Scenario:
    args: list[str] = []
    files = {}
    for key, value in values.items():
        path = _file_value(value, grid.base_dir)
        if path is not None:
            files[key] = hashlib.sha256(path.read_bytes()).hexdigest()
            value = str(path)
        args += option_args(options[key], key, value, grid.source)
    try:
        check_params(command.make_context(command.name, list(args), resilient_parsing=False))
    except click.UsageError as exc:
        raise SpecError(f"scenario {index} ({_describe(values)}): {exc.format_message()}", source=grid.source) from None
    except SpecError as exc:  # the CLI's own checks (finite numbers, counts >= 1), as `parplan plan ...` runs them
        raise SpecError(f"scenario {index} ({_describe(values)}): {exc}", source=grid.source) from None
    key = digest({"planner": grid.planner, "values": values, "files": files})
    return Scenario(index=index, planner=grid.planner, values=dict(values), args=tuple(args), digest=key)


def _describe(values: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


def expand(grid: Grid) -> list[Scenario]:
    """Every combination of the axes (first axis slowest) that passes the filters, checked by click."""
    command = planner_command(grid.planner, grid.source)
    options = command_options(command)
    scenarios: list[Scenario] = []
    for combo in itertools.product(*grid.axes.values()):
        values = {**dict(zip(grid.axes, combo, strict=True)), **grid.fixed}
        try:
            keep = all(f.keeps(values) for f in grid.filters)
        except (TypeError, ValueError, ZeroDivisionError) as exc:
            raise SpecError(f"a filter fails on ({_describe(values)}): {exc}", field="filters",
                            source=grid.source) from None
        if keep:
            scenarios.append(_scenario(grid, len(scenarios), values, options, command))
    seen: dict[str, int] = {}
    for s in scenarios:
        if s.digest in seen:
            raise SpecError(f"scenarios {seen[s.digest]} and {s.index} are the same ({_describe(s.values)})",
                            field="axes", source=grid.source)
        seen[s.digest] = s.index
    return scenarios
