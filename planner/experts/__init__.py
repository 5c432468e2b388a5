"""The experts planner: MoE expert placement with replicas, exact token split and affinity-aware nodes.

Public: place_experts (place.py), check and explain (check.py), EXPORT_FORMATS and export (export.py).
"""

from planner.experts.check import check, explain
from planner.experts.export import EXPORT_FORMATS, export
from planner.experts.place import place_experts

__all__ = ["EXPORT_FORMATS", "check", "explain", "export", "place_experts"]
