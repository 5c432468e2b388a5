"""Check a plan document against the JSON Schema that ships with the package (planner/schema/plan-v<N>.json).

`schema_problems(doc)` lists every violation as "<json path>: <message>", sorted by path, so `parplan validate`
can print them all; `check_document(doc)` raises one SpecError naming the failing paths (used by the loader).
Paths are written the way `parplan diff` names fields: `decision.stage_layers[2]`, `$` for the document itself.
"""

import functools
import json
from importlib import resources

from costmodels.errors import SpecError

MAX_LISTED = 10
"""violations spelled out in a SpecError message before the rest are counted"""
MAX_MESSAGE_CHARS = 200
"""a violation message quotes the offending value; long values are cut here"""


@functools.cache
def load_schema(version: int = 1) -> dict:
    """The JSON Schema of plan documents of this schema version (read once from the package data)."""
    try:
        text = resources.files("planner").joinpath("schema", f"plan-v{version}.json").read_text()
    except FileNotFoundError:
        raise SpecError(f"no JSON Schema ships for schema_version {version!r}", field="schema_version") from None
    return json.loads(text)


@functools.cache
def _validator(version: int):
    from jsonschema import Draft202012Validator  # imported on first use: `import planner` stays cheap

    schema = load_schema(version)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def json_path(parts) -> str:
    """['decision', 'stage_layers', 2] -> 'decision.stage_layers[2]'; [] -> '$'."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "$"


def schema_problems(doc: dict, version: int = 1) -> list[str]:
    """Every schema violation of `doc`, as '<path>: <message>', sorted by path then message."""
    found = []
    for error in _validator(version).iter_errors(doc):
        message = error.message
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[:MAX_MESSAGE_CHARS - 3] + "..."
        found.append((json_path(error.absolute_path), message))
    return [f"{path}: {message}" for path, message in sorted(set(found))]


def check_document(doc: dict, *, source: str | None = None, version: int = 1) -> None:
    """Raise SpecError listing the failing JSON paths unless `doc` matches the schema."""
    problems = schema_problems(doc, version)
    if not problems:
        return
    listed = "; ".join(problems[:MAX_LISTED])
    more = f"; and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
    raise SpecError(f"plan does not match schema v{version}: {listed}{more}", source=source)
