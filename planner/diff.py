"""Structural diff of two plan documents, with `--fail-on` thresholds for CI.

Every section except `provenance` is compared leaf by leaf. A leaf is named by its JSON path as written by
`schema_check.json_path`: `decision.tp`, `predicted.breakdown.compute_s`, `alternatives[0].step_time_s`.
In the metric sections (predicted, baselines, solver, simulated, alternatives) lists are walked element by
element so that every number gets its own delta; in `decision` and `inputs` a list that holds no objects is
one value (`decision.stage_layers: [8, 8] -> [7, 9]`), which keeps placements readable.

Threshold grammar (`--fail-on`, repeatable):

    EXPR   := PATH ":" [SIGN] NUMBER ["%"]  |  PATH ":" [SIGN] "interval"  |  PATH ":changed"
    SIGN   := "+"   fail when B exceeds A by more than the limit   (a regression for times, loads, gaps)
            | "-"   fail when B falls below A by more than the limit (a regression for MFU, goodput)
            | none  fail when B differs from A by more than the limit, either way
    "%"    := the limit is relative to |A| (percent); without it the limit is absolute, in the field's unit
    interval := the limit is plan A's own 80 % prediction interval of that metric (`predicted.interval.<metric>`,
              planner/confidence): "+" fails when B exceeds its high end, "-" when B falls below its low end,
              no sign either; a change inside the model's noise passes
    changed := fail when the field differs in any way (the form for categorical fields: strings, booleans,
              lists, e.g. decision.recompute:changed); NUMBER and interval limits apply to numeric fields only,
              and are refused (exit 2) on a field that holds something else, so a gate cannot silently never fail

    predicted.step_time_s:+2%        step time grew by more than 2 %
    predicted.mfu:-1%                MFU fell by more than 1 % (relative)
    predicted.max_load_ratio:+0.05   max load ratio grew by more than 0.05 (absolute)
    solver.gap:+0.01                 optimality gap grew by more than 0.01
    predicted.step_time_s:+interval  step time grew beyond A's 80 % interval (more than the model's noise)
    decision.recompute:changed       the recompute mode is not the same

A number that exists on one side only (or is null on one side) crosses every threshold on it; a PATH present
in neither plan is an error, so a typo cannot pass CI silently.
"""

import math
import re
from dataclasses import dataclass

from costmodels.errors import SpecError
from planner.plan import Plan, canonicalize
from planner.schema_check import json_path

SECTION_ORDER = ("kind", "schema_version", "decision", "feasible", "infeasible_reasons", "predicted", "simulated",
                 "baselines", "solver", "inputs", "summary", "alternatives")
"""sections in the order a diff lists them (decisions first, the many alternatives last); others follow, sorted"""
IGNORED_SECTIONS = ("provenance",)
METRIC_SECTIONS = ("predicted", "simulated", "baselines", "solver", "alternatives")
"""sections whose lists are walked element by element"""
ABSENT = "absent"
"""how a diff table shows a field that one plan does not have (its JSON change record omits `a` or `b`)"""
TOLERANCE = 1e-9
"""limits are compared with this slack so that exactly +2.000 % does not count as more than +2 %"""

_EXPR = re.compile(r"^(?P<path>[^:\s]+):(?P<sign>[+-]?)"
                   r"(?:(?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(?P<pct>%?)|(?P<interval>interval)"
                   r"|(?P<changed>changed))$")


class _Missing:
    """The value of a field that one plan does not have."""

    def __repr__(self):
        return ABSENT


_MISSING = _Missing()


@dataclass(frozen=True, kw_only=True, slots=True)
class Threshold:
    """One parsed `--fail-on` expression."""

    expr: str
    """the text as given"""
    path: str
    """the field it watches, e.g. predicted.step_time_s"""
    direction: str
    """'+' (growth fails), '-' (shrinkage fails) or '' (either)"""
    limit: float
    """largest allowed change: a fraction of |A| when relative, else in the field's unit"""
    relative: bool
    """True for a percent limit"""
    interval: bool = False
    """True: the limit is plan A's prediction interval of the field (limit and relative unused)"""
    changed: bool = False
    """True: any change of the field fails (categorical fields; direction, limit and relative unused)"""

    def describe(self) -> str:
        if self.changed:
            return f"{self.path} changed"
        if self.interval:
            side = {"+": "grows above", "-": "falls below", "": "leaves"}[self.direction]
            return f"{self.path} {side} A's prediction interval"
        limit = f"{self.limit * 100:g}%" if self.relative else f"{self.limit:g}"
        verb = {"+": "grows by", "-": "falls by", "": "changes by"}[self.direction]
        return f"{self.path} {verb} more than {limit}"


def parse_threshold(expr: str) -> Threshold:
    """Parse 'PATH:[+|-]NUMBER[%]' (see the module docstring); SpecError naming the expression otherwise."""
    match = _EXPR.match(expr.strip())
    if match is None:
        raise SpecError(f"cannot parse {expr!r}; expected PATH:[+|-]NUMBER[%], PATH:[+|-]interval or PATH:changed, "
                        "e.g. predicted.step_time_s:+2%, predicted.step_time_s:+interval or "
                        "decision.recompute:changed", field="--fail-on")
    if match["changed"]:
        if match["sign"]:
            raise SpecError(f"{expr!r}: 'changed' takes no sign; use {match['path']}:changed", field="--fail-on")
        return Threshold(expr=expr, path=match["path"], direction="", limit=0.0, relative=False, changed=True)
    if match["interval"]:
        return Threshold(expr=expr, path=match["path"], direction=match["sign"], limit=0.0, relative=False,
                         interval=True)
    value = float(match["number"])
    relative = match["pct"] == "%"
    return Threshold(expr=expr, path=match["path"], direction=match["sign"],
                     limit=value / 100 if relative else value, relative=relative)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _walk(value, parts: list, walk_lists: bool, out: dict) -> None:
    if isinstance(value, dict):  # an empty object has no leaves: only its fields are compared
        for key in sorted(value):
            _walk(value[key], parts + [key], walk_lists, out)
    elif isinstance(value, list) and value and (walk_lists or any(isinstance(v, dict) for v in value)):
        for index, item in enumerate(value):
            _walk(item, parts + [index], walk_lists, out)
    else:
        out[json_path(parts)] = value


def flatten(doc: dict) -> dict:
    """Leaf path -> value for every section but provenance, in SECTION_ORDER (see the module docstring)."""
    doc = canonicalize(doc)
    known = [s for s in SECTION_ORDER if s in doc]
    rest = sorted(s for s in doc if s not in SECTION_ORDER and s not in IGNORED_SECTIONS)
    out: dict = {}
    for section in known + rest:
        _walk(doc[section], [section], section in METRIC_SECTIONS, out)
    return out


def _same(a, b) -> bool:
    """Equal values; a boolean never equals a number (JSON true is not 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _deltas(a, b) -> tuple[float | None, float | None]:
    if not (_is_number(a) and _is_number(b)):
        return None, None
    delta = b - a
    if a == 0:
        return delta, (0.0 if delta == 0 else None)
    return delta, delta / abs(a)


def _violation(threshold: Threshold, a, b) -> str | None:
    """Why (a -> b) crosses the threshold, or None."""
    if not (_is_number(a) and _is_number(b)):
        if _is_number(a) or _is_number(b):
            return f"{threshold.path} is {_show(a)} in A and {_show(b)} in B"
        return None
    delta = b - a
    change = ((math.inf if delta else 0.0) if a == 0 else delta / abs(a)) if threshold.relative else delta
    signed = {"+": change, "-": -change, "": abs(change)}[threshold.direction]
    if signed > threshold.limit * (1 + TOLERANCE) + TOLERANCE * (0 if threshold.relative else abs(a)):
        shown = f"{change * 100:+.3g}%" if threshold.relative and math.isfinite(change) else f"{delta:+.6g}"
        return f"{threshold.describe()}: {_show(a)} -> {_show(b)} ({shown})"
    return None


def _interval_bounds(path: str, flat_a: dict) -> tuple[float, float]:
    """(low, high) of plan A's prediction interval of `path` (a.b.metric -> a.b.interval.metric)."""
    parent, _, leaf = path.rpartition(".")
    low, high = (flat_a.get(f"{parent}.interval.{leaf}.{end}") for end in ("low", "high"))
    if not (_is_number(low) and _is_number(high)):
        stated = sorted({k.split(".interval.", 1)[1].rsplit(".", 1)[0] for k in flat_a
                         if ".interval." in k and k.endswith((".low", ".high"))})
        raise SpecError(f"plan A states no prediction interval for {path!r} ({parent}.interval.{leaf}); intervals "
                        f"exist for: {', '.join(stated) or 'none'}", field="--fail-on")
    return low, high


def _interval_violation(threshold: Threshold, a, b, flat_a: dict) -> str | None:
    """Why (a -> b) leaves A's prediction interval on the threshold's side, or None."""
    low, high = _interval_bounds(threshold.path, flat_a)
    if not (_is_number(a) and _is_number(b)):
        return _violation(threshold, a, b)
    above = b > high * (1 + TOLERANCE) and threshold.direction in ("+", "")
    below = b < low * (1 - TOLERANCE) and threshold.direction in ("-", "")
    if above or below:
        return f"{threshold.describe()} [{low:.6g}, {high:.6g}]: {_show(a)} -> {_show(b)}"
    return None


def diff_plans(a: Plan | dict, b: Plan | dict, fail_on=()) -> dict:
    """Compare plan A with plan B (provenance ignored).

    Returns {"equal": bool, "changes": [...], "thresholds": [expr, ...], "threshold_violations": [...]}.
    Each change has section, field, a, b, delta and rel_delta (delta / |a|; null unless both sides are numbers
    and a != 0); a side the plan lacks is left out. Each violation has expr, field, a, b and message.
    `fail_on` holds threshold expressions or parsed Thresholds.
    """
    thresholds = [t if isinstance(t, Threshold) else parse_threshold(t) for t in fail_on]
    flat_a = flatten(a.doc if isinstance(a, Plan) else a)
    flat_b = flatten(b.doc if isinstance(b, Plan) else b)
    order = list(flat_a) + [k for k in flat_b if k not in flat_a]
    changes = []
    for field in order:
        va, vb = flat_a.get(field, _MISSING), flat_b.get(field, _MISSING)
        if _same(va, vb):
            continue
        delta, rel = _deltas(va, vb)
        change = {"section": re.split(r"[.\[]", field, maxsplit=1)[0], "field": field, "delta": delta, "rel_delta": rel}
        change.update(_sides(va, vb))
        changes.append(change)
    violations = []
    for threshold in thresholds:
        if threshold.path not in flat_a and threshold.path not in flat_b:
            numeric = sorted(k for k, v in {**flat_a, **flat_b}.items() if _is_number(v))
            raise SpecError(f"{threshold.path!r} is in neither plan; numeric fields include: "
                            f"{', '.join(numeric[:12])}{', ...' if len(numeric) > 12 else ''}", field="--fail-on")
        va, vb = flat_a.get(threshold.path, _MISSING), flat_b.get(threshold.path, _MISSING)
        if threshold.changed:
            message = None if _same(va, vb) else f"{threshold.describe()}: {_show(va)} -> {_show(vb)}"
        elif _categorical(va, vb):
            raise SpecError(f"{threshold.expr!r}: {threshold.path} is not a number (A: {_show(va)}, B: {_show(vb)}); "
                            f"a numeric limit can never catch its change: use {threshold.path}:changed",
                            field="--fail-on")
        elif threshold.interval:
            message = _interval_violation(threshold, va, vb, flat_a)
        else:
            message = _violation(threshold, va, vb)
        if message:
            violations.append({"expr": threshold.expr, "field": threshold.path, "message": message, **_sides(va, vb)})
    return {"equal": not changes, "changes": changes, "thresholds": [t.expr for t in thresholds],
            "threshold_violations": violations}


def _categorical(va, vb) -> bool:
    """Neither side is a number and at least one holds something (a string, boolean, list or object)."""
    return not (_is_number(va) or _is_number(vb)) and any(v is not None and v is not _MISSING for v in (va, vb))


def _sides(va, vb) -> dict:
    """The `a` and `b` entries of a change record; a side the plan lacks is left out."""
    return {key: value for key, value in (("a", va), ("b", vb)) if value is not _MISSING}


def _show(value, width: int = 28) -> str:
    if value is _MISSING:
        return ABSENT
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    text = value if isinstance(value, str) else _compact(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def _compact(value) -> str:
    import json

    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def format_diff(result: dict, *, label_a: str = "A", label_b: str = "B", max_rows: int = 60) -> str:
    """A readable table (field, A, B, delta, rel delta), decisions first, then the threshold verdicts."""
    lines = [f"A: {label_a}", f"B: {label_b}"]
    changes = result["changes"]
    if result["equal"]:
        lines.append("plans are equal (provenance ignored)")
    else:
        rows = [("field", "A", "B", "delta", "rel delta")]
        for change in changes[:max_rows]:
            delta = "" if change["delta"] is None else _show(change["delta"]) if change["delta"] < 0 \
                else "+" + _show(change["delta"])
            rel = "" if change["rel_delta"] is None else f"{change['rel_delta'] * 100:+.2f}%"
            rows.append((change["field"], _show(change.get("a", _MISSING)), _show(change.get("b", _MISSING)),
                         delta, rel))
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        for row in rows:
            lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if len(changes) > max_rows:
            lines.append(f"... and {len(changes) - max_rows} more changes (write them all with -o FILE)")
        by_section = {}
        for change in changes:
            by_section[change["section"]] = by_section.get(change["section"], 0) + 1
        counts = ", ".join(f"{n} {section}" for section, n in by_section.items())
        lines.append(f"{len(changes)} change{'s' if len(changes) != 1 else ''} ({counts})")
    failed = {violation["expr"]: violation["message"] for violation in result["threshold_violations"]}
    for expr in result.get("thresholds", ()):
        lines.append(f"FAIL {expr}: {failed[expr]}" if expr in failed else f"ok   {expr}")
    return "\n".join(lines)
