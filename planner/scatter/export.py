"""Executor-facing export of a scatter plan: which SP group, SP rank and sequences each GPU rank takes."""

import json

from costmodels.errors import SpecError
from planner.plan import Plan, canonicalize

EXPORT_FORMATS = ("json",)


def export(plan: Plan, fmt: str) -> str:
    """`json`: {"ranks": [{rank, group, sp_rank, tp_rank, degree, sequences, micro_batch}]} sorted by rank."""
    if fmt not in EXPORT_FORMATS:
        raise SpecError(f"unknown export format {fmt!r}; valid: {', '.join(EXPORT_FORMATS)}", field="format")
    tp = plan["decision"]["tp"]
    rows = []
    for g, group in enumerate(plan["decision"]["groups"]):
        mbs = group.get("micro_batch", [0] * len(group["sequences"]))
        for pos, rank in enumerate(group["ranks"]):
            rows.append({"rank": rank, "group": g, "sp_rank": pos // tp, "tp_rank": pos % tp,
                         "degree": group["degree"], "sequences": group["sequences"], "micro_batch": mbs})
    rows.sort(key=lambda r: r["rank"])
    return json.dumps(canonicalize({"sp_style": plan["decision"]["sp_style"], "ranks": rows}), sort_keys=True,
                      indent=1) + "\n"
