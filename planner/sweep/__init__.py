"""Capacity-planning sweeps: a grid of planner option values, run locally or on Ray, one row per scenario.

    from planner.sweep import SweepOptions, run_sweep
    result = run_sweep("grid.yaml", "results.parquet", options=SweepOptions(workers=2))
"""

from planner.sweep.grid import Grid, Scenario, expand, load_grid
from planner.sweep.run import SweepOptions, SweepResult, run_sweep

__all__ = ["Grid", "Scenario", "SweepOptions", "SweepResult", "expand", "load_grid", "run_sweep"]
