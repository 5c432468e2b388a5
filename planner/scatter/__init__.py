"""The scatter planner: per-batch sequence-parallel groups of mixed degrees (DESIGN.md, "scatter").

Public: scatter_sequences (one batch), scatter_batches (many), and for validate/explain/export:
check, explain, EXPORT_FORMATS, export. Layout: request.py (inputs, cost table), bounds.py (lower
bounds), search.py (multiset branch and bound), assign.py (exact-length assignment), layout.py (ranks),
milp.py (FlexSP-style comparison), check.py (verifier), export.py, lengths.py (length files, synthetic).
"""

from planner.scatter.check import check, explain
from planner.scatter.export import EXPORT_FORMATS, export
from planner.scatter.request import ScatterOptions, ScatterRequest
from planner.scatter.solve import batches_summary, scatter_batches, scatter_sequences

__all__ = ["EXPORT_FORMATS", "ScatterOptions", "ScatterRequest", "batches_summary", "check", "explain", "export",
           "scatter_batches", "scatter_sequences"]
