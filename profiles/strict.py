"""Strict reading of profile files: parse errors carry file and line, unknown keys are errors.

Every error is a SpecError whose message names the file (source), the key path (field) and, where there
is a choice, the valid values. Values are type-checked here so the spec constructors see clean numbers.
"""

import json
import math
import pathlib
import re
from collections.abc import Iterable, Mapping

import yaml

from costmodels.errors import SpecError

_EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def read_yaml(text: str, source: str) -> dict:
    """Parse a YAML document that must be a mapping; syntax errors name the line and column (1-based)."""
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise SpecError(f"malformed YAML: {exc.problem or exc.context}", source=where) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"malformed YAML: {exc}", source=source) from None
    if not isinstance(data, dict):
        raise SpecError(f"expected a mapping of keys at the top level, got {type(data).__name__}", source=source)
    return data


def read_json(text: str, source: str) -> dict:
    """Parse a JSON object; syntax errors name the line and column."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"malformed JSON: {exc.msg}", source=f"{source}:{exc.lineno}:{exc.colno}") from None
    if not isinstance(data, dict):
        raise SpecError(f"expected a JSON object at the top level, got {type(data).__name__}", source=source)
    return data


def read_text(path: pathlib.Path) -> str:
    """A file's text; a missing or unreadable file is a SpecError naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("file not found", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read file: {exc}", source=str(path)) from None


PLAUSIBLE_RANGES: dict[str, tuple[float, float, str]] = {
    "hbm_gib": (1, 4096, "GiB"),
    "hbm_gb": (1, 4400, "GB"),
    "memory_reserve_gib": (0, 1024, "GiB"),
    "bf16_tflops": (1, 100_000, "TFLOP/s"),
    "fp8_tflops": (0, 200_000, "TFLOP/s"),
    "fp4_tflops": (0, 400_000, "TFLOP/s"),
    "hbm_tb_per_s": (0.05, 100, "TB/s"),
    "intra_node_gb_per_s": (0.1, 100_000, "GB/s"),
    "nic_gb_per_s": (0.01, 10_000, "GB/s"),
    "inter_pool_gb_per_s": (0, 10_000, "GB/s"),
    "intra_node_latency_us": (0, 1e6, "µs"),
    "inter_node_latency_us": (0, 1e6, "µs"),
}
"""key -> (low, high, unit): device figures far outside these are unit mix-ups (bytes for GiB, bit/s for GB/s)"""


def _unit_hint(value: float, high: float, unit: str) -> str:
    """A guess at the unit actually used, for a value far above the range."""
    if value <= high:
        return ""
    for factor, name in ((2**30, "bytes"), (1e9, "bytes (or bit/s)"), (1e12, "FLOP/s or bytes/s"), (8, "Gb/s")):
        if value / factor <= high and value / factor >= 1e-3:
            return f"; it looks like {name}: {value / factor:g} {unit}?"
    return ""


class Section:
    """A mapping read from a file, checked on construction against the keys it may and must have.

    The typed getters (`integer`, `number`, `flag`, `text`, `choice`) return a key's value or fail naming the key.
    """

    def __init__(self, data: Mapping, *, source: str, prefix: str = "", allowed: Iterable[str],
                 required: Iterable[str] = ()):
        if not isinstance(data, Mapping):
            raise SpecError(f"expected a mapping, got {type(data).__name__}", source=source, field=prefix or None)
        self.source = source
        self.prefix = prefix
        self.allowed = tuple(sorted(allowed))
        bad = sorted(str(k) for k in data if k not in self.allowed)
        if bad:
            raise SpecError(f"unknown key {bad[0]!r}; valid keys: {', '.join(self.allowed)}",
                            source=source, field=self.path(bad[0]))
        missing = [k for k in required if k not in data]
        if missing:
            raise SpecError(f"missing required key {missing[0]!r}", source=source, field=self.path(missing[0]))
        self.data = dict(data)

    def path(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def has(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def error(self, key: str, message: str) -> SpecError:
        return SpecError(message, source=self.source, field=self.path(key))

    def raw(self, key: str, default=None):
        return self.data.get(key, default)

    def integer(self, key: str, default: int | None = None) -> int:
        value = self.data.get(key, default)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be an integer, got {value!r}")
        return value

    def number(self, key: str, default: float | None = None) -> float:
        """A finite number; keys of PLAUSIBLE_RANGES must also lie in their range (a unit mix-up otherwise)."""
        value = self.data.get(key, default)
        if isinstance(value, str) and _EXPONENT_NUMBER.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads 2.0e9 (no sign in the exponent) as a string
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(key, f"must be a number, got {value!r}")
        if not math.isfinite(value):
            raise self.error(key, f"must be a finite number, got {value!r}")
        if key in PLAUSIBLE_RANGES and key in self.data:
            low, high, unit = PLAUSIBLE_RANGES[key]
            if not low <= value <= high:
                raise self.error(key, f"{value:g} is not a plausible value in {unit} (expected {low:g} to {high:g})"
                                      f"{_unit_hint(value, high, unit)}")
        return float(value)

    def flag(self, key: str, default: bool | None = None) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, got {value!r}")
        return value

    def text(self, key: str, default: str | None = None) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, got {value!r}")
        return value

    def choice(self, key: str, choices: Iterable[str], default: str | None = None) -> str:
        value = self.text(key, default)
        choices = tuple(choices)
        if value not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def one_of(self, keys: Iterable[str]) -> str:
        """The single key of `keys` that is present (e.g. hbm_gib or hbm_gb)."""
        keys = tuple(keys)
        present = [k for k in keys if k in self.data]
        if len(present) != 1:
            what = "missing" if not present else "conflicting"
            raise SpecError(f"{what} keys: give exactly one of {', '.join(keys)}", source=self.source,
                            field=self.prefix or None)
        return present[0]
