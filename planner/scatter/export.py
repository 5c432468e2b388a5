"""Executor-facing export of a scatter plan: which SP group, SP rank and sequences each GPU rank takes.

`json` (parplan's own rank map, format 1): {"parplan": header, "sp_style": ..., "ranks": [{rank, group, sp_rank,
tp_rank, degree, sequences, micro_batch}] sorted by rank}; the header names the format and the plan digest.
"""

import json

from planner.exports.common import header_facts, target
from planner.plan import Plan, canonicalize

EXPORT_FORMATS = ("json",)


def export(plan: Plan, fmt: str) -> str:
    """The rank map of format `fmt` (one of EXPORT_FORMATS)."""
    tgt = target(fmt, EXPORT_FORMATS)
    tp = plan["decision"]["tp"]
    rows = []
    for g, group in enumerate(plan["decision"]["groups"]):
        mbs = group.get("micro_batch", [0] * len(group["sequences"]))
        for pos, rank in enumerate(group["ranks"]):
            rows.append({"rank": rank, "group": g, "sp_rank": pos // tp, "tp_rank": pos % tp,
                         "degree": group["degree"], "sequences": group["sequences"], "micro_batch": mbs})
    rows.sort(key=lambda r: r["rank"])
    doc = {"parplan": header_facts(plan, tgt), "sp_style": plan["decision"]["sp_style"], "ranks": rows}
    return json.dumps(canonicalize(doc), sort_keys=True, indent=1) + "\n"
