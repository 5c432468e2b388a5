"""Operations on any plan document: validate, explain, export (the API behind `parplan validate/explain/export`).

The planner-specific part of each is delegated to the planner package that handles the document
(`planner.registry.handler`): its independent `check`, its `explain`, its `EXPORT_FORMATS` and `export`.
"""

from costmodels.errors import SpecError
from planner import registry
from planner.plan import Plan, inputs_digest
from planner.schema_check import schema_problems


def _planner_function(plan: Plan, name: str):
    module = registry.handler(plan)
    function = getattr(module, name, None)
    if function is None:
        raise SpecError(f"{module.__name__} provides no {name}() for {plan.kind} documents", field="kind")
    return function


def validate_plan(plan: Plan) -> list[str]:
    """Problems found in a plan, empty when it is valid.

    Three layers, each run only when the previous one passed (a later one relies on the earlier):
    the JSON Schema of the document's version, the recomputed `inputs_digest`, then the planner's own
    independent check that re-evaluates the decision against the inputs with the cost models (train and
    serve checks also re-derive the confidence fields: planner.confidence.documents).
    """
    problems = schema_problems(plan.doc, plan["schema_version"])
    if problems:
        return [f"schema: {p}" for p in problems]
    stored, recomputed = plan["inputs"]["inputs_digest"], inputs_digest(plan["inputs"])
    if stored != recomputed:
        return [f"inputs.inputs_digest: {stored} does not match the inputs (sha256 {recomputed}); "
                "the inputs were edited after planning"]
    check = _planner_function(plan, "check")
    try:
        return [str(problem) for problem in check(plan)]
    except (KeyError, TypeError, IndexError, ValueError, AttributeError) as exc:  # hand-edited past the schema
        return [f"{plan.kind} check could not read the plan ({type(exc).__name__}: {exc}); it was edited into a "
                "shape the planner never writes"]


def require_valid(plan: Plan, source: str | None = None) -> None:
    """SpecError (exit 2) listing the problems `validate_plan` finds: what export and simulate run first, so that
    a hand-edited impossible plan (tp=3 on 32 heads, more GPUs than the plan has) is never acted upon."""
    problems = validate_plan(plan)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise SpecError(f"not a valid {plan.kind} plan ({shown}); `parplan validate` lists every problem",
                        source=source)


def _number(value) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "-"}[value]
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def header(plan: Plan) -> str:
    """What every plan shows first: kind, schema version, inputs digest, solver verdict, headline metrics."""
    kind = plan.kind
    if kind == "estimate":
        kind = f"estimate of a {plan['inputs'].get('target', '?')} configuration"
    lines = [f"plan        {kind} (schema version {plan['schema_version']})",
             f"inputs      sha256 {plan['inputs']['inputs_digest']}"]
    solver = plan.get("solver") or {}
    if solver:
        gap = solver.get("gap")
        gap_text = "-" if gap is None else f"{gap * 100:.3g}%"
        lines.append(f"solver      {solver.get('backend', '?')} {solver.get('status', '?')}; objective "
                     f"{_number(solver.get('objective'))}, bound {_number(solver.get('bound'))}, gap {gap_text}")
    if "feasible" in plan.doc:
        lines.append(f"feasible    {_number(plan['feasible'])}")
        lines.extend(f"  - {reason}" for reason in plan.get("infeasible_reasons") or [])
    headline = {key: value for key, value in sorted(plan["predicted"].items())
                if value is None or isinstance(value, (int, float, str))}
    if headline:
        width = max(len(key) for key in headline)
        lines.append("predicted")
        for key, value in headline.items():
            gib = f" ({value / 2**30:.2f} GiB)" if key.endswith("_bytes") and isinstance(value, (int, float)) else ""
            lines.append(f"  {key.ljust(width)}  {_number(value)}{gib}")
    return "\n".join(lines)


def explain_plan(plan: Plan) -> str:
    """The generic header followed by the planner's own readable summary."""
    explain = _planner_function(plan, "explain")
    try:
        body = explain(plan)
    except (KeyError, TypeError, IndexError, ValueError, AttributeError) as exc:  # a hand-edited document
        problems = validate_plan(plan)
        why = "; ".join(problems[:3]) if problems else f"{type(exc).__name__}: {exc}"
        raise SpecError(f"cannot explain this {plan.kind} plan: it is malformed ({why}); `parplan validate` "
                        "lists its problems") from None
    return header(plan) + "\n\n" + body.rstrip("\n")


def export_formats(plan: Plan) -> tuple[str, ...]:
    """The executor formats the planner of this document can export."""
    return tuple(getattr(registry.handler(plan), "EXPORT_FORMATS", ()))


def export_plan(plan: Plan, fmt: str) -> str:
    """The plan in an executor's format (Megatron arguments, vLLM command, ...); SpecError on unknown formats
    and on plans that `validate_plan` rejects (checked first)."""
    formats = export_formats(plan)
    if fmt not in formats:
        raise SpecError(f"unknown format {fmt!r} for {plan.kind} plans; valid: {', '.join(formats) or '(none)'}",
                        field="--format")
    require_valid(plan)
    return _planner_function(plan, "export")(plan, fmt)
