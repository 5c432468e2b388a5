"""Specs and pure cost functions (no solver, no I/O). `costmodels` imports nothing else of parplan.

    estimate_training(model, cluster, workload, config) -> TrainingEstimate
    layer_costs(model, pool, workload, config) -> LayerCosts
    pipeline_step_time(stage_times_s, microbatches, vpp) -> float
"""

from costmodels.errors import InfeasibleError, ParplanError, SolverError, SolverUnavailableError, SpecError
from costmodels.hardware import ClusterSpec, DeviceCalibration, DeviceSpec, NodePool
from costmodels.model import MLASpec, ModelSpec, MoESpec
from costmodels.parallel import ParallelConfig, TrainingWorkload
from costmodels.pipeline import pipeline_step_time
from costmodels.training import LayerCosts, TrainingEstimate, estimate_training, layer_costs

__all__ = [
    "ClusterSpec", "DeviceCalibration", "DeviceSpec", "InfeasibleError", "LayerCosts", "MLASpec", "ModelSpec",
    "MoESpec", "NodePool", "ParallelConfig", "ParplanError", "SolverError", "SolverUnavailableError", "SpecError",
    "TrainingEstimate", "TrainingWorkload", "estimate_training", "layer_costs", "pipeline_step_time",
]
