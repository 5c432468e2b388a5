"""The plan document: one canonical JSON per run, identical bytes for identical inputs.

Top level (schema version 1, see planner/schema/plan-v1.json and SCHEMA_HISTORY):
  schema_version  integer
  kind            train | experts | serve | scatter | estimate
  inputs          resolved inputs (model/cluster/workload/options) and their sha256 `inputs_digest`
  decision        what an executor needs
  predicted       metrics with units in their names, and a breakdown
  alternatives    next-best candidates with why they lost
  baselines       the same metrics for the anchor baselines
  solver          backend, status, objective, bound, gap
  provenance      parplan version (ignored by `diff`); wall times are printed, never stored, so that
                  identical inputs give identical bytes
Kinds may add top-level sections listed in EXTRA_SECTIONS (e.g. `simulated` for serve, `feasible` for estimate).
"""

import hashlib
import json
import math
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from costmodels.errors import SpecError

SCHEMA_VERSION = 1
SCHEMA_HISTORY = {1: "first release"}
KINDS = ("train", "experts", "serve", "scatter", "estimate")
CORE_SECTIONS = ("decision", "predicted", "alternatives", "baselines", "solver")
EXTRA_SECTIONS = ("simulated", "feasible", "infeasible_reasons", "summary")
FLOAT_DIGITS = 9
"""significant digits kept for every float in a plan"""


def canonicalize(value):
    """Round floats to FLOAT_DIGITS significant digits, turn tuples into lists, sort nothing (json sorts keys)."""
    kind = type(value)
    if kind is list and all(type(v) is int for v in value):  # fast path: the long index/length lists of scatter plans
        return list(value)
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        rounded = float(f"{value:.{FLOAT_DIGITS}g}")
        return 0.0 if rounded == 0 else rounded
    if isinstance(value, dict):
        return {str(k): canonicalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonicalize(v) for v in value]
    if hasattr(value, "item"):  # numpy scalar
        return canonicalize(value.item())
    if hasattr(value, "tolist"):  # numpy array
        return canonicalize(value.tolist())
    raise TypeError(f"cannot put {type(value).__name__} into a plan")


def dumps_canonical(doc: dict) -> str:
    """Canonical JSON text: sorted keys, fixed rounding, two-space indent, trailing newline."""
    return json.dumps(canonicalize(doc), sort_keys=True, indent=2, ensure_ascii=True, allow_nan=False) + "\n"


def digest(obj) -> str:
    """sha256 of the canonical JSON of obj."""
    return hashlib.sha256(dumps_canonical(obj).encode()).hexdigest()


def inputs_digest(inputs: dict) -> str:
    """The digest a plan's `inputs` should carry: sha256 of the canonical inputs without `inputs_digest`."""
    rest = {k: v for k, v in inputs.items() if k != "inputs_digest"}
    return digest(rest)


def parplan_version() -> str:
    try:
        return metadata.version("parplan")
    except metadata.PackageNotFoundError:
        return "0+unknown"


@dataclass(frozen=True, slots=True)
class Plan:
    """A plan document (a plain JSON-able dict) with canonical output."""

    doc: dict

    @property
    def kind(self) -> str:
        return self.doc["kind"]

    def __getitem__(self, key):
        return self.doc[key]

    def get(self, key, default=None):
        return self.doc.get(key, default)

    def dumps(self) -> str:
        return dumps_canonical(self.doc)

    def write(self, path: str | Path) -> None:
        Path(path).write_text(self.dumps())


def make_plan(kind: str, *, inputs: dict, decision: dict, predicted: dict, alternatives: list | None = None,
              baselines: dict | None = None, solver: dict | None = None, **extra) -> Plan:
    """Assemble a canonical plan. `extra` holds kind-specific top-level sections (EXTRA_SECTIONS)."""
    if kind not in KINDS:
        raise ValueError(f"unknown plan kind {kind!r}")
    unknown = sorted(set(extra) - set(EXTRA_SECTIONS))
    if unknown:
        raise ValueError(f"unknown plan sections {unknown}; allowed extras: {EXTRA_SECTIONS}")
    from planner.contract import normalized_solver  # the one builder of the solver block (imports this module)

    inputs = canonicalize(dict(inputs))
    inputs["inputs_digest"] = inputs_digest(inputs)
    doc = {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "inputs": inputs,
        "decision": decision,
        "predicted": predicted,
        "alternatives": alternatives or [],
        "baselines": baselines or {},
        "solver": normalized_solver(solver or {}),
        "provenance": {"parplan_version": parplan_version()},
        **extra,
    }
    return Plan(canonicalize(doc))


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a valid plan number")


def load_plan(path: str | Path, *, check_schema: bool = True) -> Plan:
    """Read a plan file; reject malformed JSON (with line), unknown kinds and unknown schema versions.

    With `check_schema` (the default) the document must also match the JSON Schema of its version; the
    SpecError then names the failing JSON paths. `parplan validate` passes False and lists the violations itself.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read plan: {exc.strerror}", source=str(path)) from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"not UTF-8 text (byte {exc.start}): a plan is a JSON file", source=str(path)) from None
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise SpecError(f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                        source=str(path)) from None
    except ValueError as exc:
        raise SpecError(f"malformed JSON: {exc}", source=str(path)) from None
    if not isinstance(doc, dict):
        raise SpecError("a plan is a JSON object", source=str(path))
    version = doc.get("schema_version")
    if type(version) is not int or version not in SCHEMA_HISTORY:
        raise SpecError(f"unsupported schema_version {version!r}; this parplan reads {sorted(SCHEMA_HISTORY)}",
                        field="schema_version", source=str(path))
    if not isinstance(doc.get("kind"), str) or doc["kind"] not in KINDS:
        raise SpecError(f"unknown kind {doc.get('kind')!r}; valid: {', '.join(KINDS)}", field="kind", source=str(path))
    if check_schema:
        from planner.schema_check import check_document

        check_document(doc, source=str(path), version=version)
    return Plan(doc)
