"""Which planner package handles a plan document (for validate, explain and export).

Each planner package (planner.train, planner.experts, planner.serve, planner.scatter) exposes
`check(plan) -> list[str]` (problems found by its independent verifier; empty = valid),
`explain(plan) -> str` (a readable summary), `EXPORT_FORMATS` (tuple of names) and
`export(plan, fmt) -> str`. Estimate documents name their planner in `inputs.target`.
"""

import importlib

from costmodels.errors import SpecError
from planner.plan import Plan

PLANNERS = ("train", "experts", "serve", "scatter")


def handler(plan: Plan):
    """The planner package responsible for this document."""
    target = plan["inputs"].get("target") if plan.kind == "estimate" else plan.kind
    if target not in PLANNERS:
        raise SpecError(f"no planner handles target {target!r}; valid: {', '.join(PLANNERS)}", field="inputs.target")
    return importlib.import_module(f"planner.{target}")
