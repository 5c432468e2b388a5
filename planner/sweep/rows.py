"""One flat row per scenario: its option values, decision summary, predicted metrics, solver status, wall time.

Columns: the grid keys as written, then `status`, `exit_code`, `error`, `wall_s`, `digest`, `plan_file`, then
`decision.*`, `predicted.*`, `simulated.*` and `solver.*` scalars (nested dicts flattened with dots, e.g. an
interval `predicted.step_time_s_interval.low`). Lists are kept only when short and scalar (as JSON text);
breakdowns stay in the plan document.
"""

import json

SECTIONS = ("decision", "predicted", "simulated", "solver")
SKIP = {"predicted": ("breakdown",), "solver": ("search", "milp_statuses")}
MAX_LIST = 16
"""longest scalar list kept in a row (as JSON text)"""
DEPTH = 3


def _flatten(prefix: str, value: object, depth: int, out: dict) -> None:
    if isinstance(value, dict):
        if depth == 0:
            return
        for key in sorted(value):
            _flatten(f"{prefix}.{key}", value[key], depth - 1, out)
    elif isinstance(value, list):
        if len(value) <= MAX_LIST and all(isinstance(v, (int, float, str, bool)) or v is None for v in value):
            out[prefix] = json.dumps(value)
    else:
        out[prefix] = value


def plan_columns(doc: dict) -> dict:
    """Flat scalar columns of one plan document (what exists; absent sections give no columns)."""
    out: dict = {}
    for section in SECTIONS:
        body = doc.get(section)
        if not isinstance(body, dict):
            continue
        kept = {k: v for k, v in body.items() if k not in SKIP.get(section, ())}
        _flatten(section, kept, DEPTH, out)
    return out


def scenario_row(values: dict, result: dict, plan_file: str | None) -> dict:
    """The row of one finished scenario (its plan parsed from result["plan"] when there is one)."""
    row = dict(values)
    row.update({"status": result["status"], "exit_code": result["exit_code"], "error": result["error"],
                "wall_s": result["wall_s"], "digest": result["digest"], "plan_file": plan_file})
    if result.get("plan"):
        first = result["plan"].splitlines()[0] if result["plan"].lstrip().startswith("{\"") else result["plan"]
        row.update(plan_columns(json.loads(first)))
    return row
