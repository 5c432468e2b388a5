"""parplan's public planning API. Each function returns a `planner.plan.Plan` (canonical JSON via `.dumps()`).

The heavy solver imports happen on first use, so `import planner` stays cheap for autotuners.
"""

from planner.diff import diff_plans
from planner.documents import explain_plan, export_formats, export_plan, validate_plan
from planner.plan import Plan, load_plan, make_plan


def plan_training(*args, **kwargs) -> Plan:
    """Fastest hybrid-parallel training strategy that fits; see planner.train.plan_training."""
    from planner.train import plan_training as run
    return run(*args, **kwargs)


def place_experts(*args, **kwargs) -> Plan:
    """MoE expert placement with replicas and token split; see planner.experts.place_experts."""
    from planner.experts import place_experts as run
    return run(*args, **kwargs)


def plan_serving(*args, **kwargs) -> Plan:
    """Prefill/decode split under TTFT/TPOT SLOs; see planner.serve.plan_serving."""
    from planner.serve import plan_serving as run
    return run(*args, **kwargs)


def scatter_sequences(*args, **kwargs) -> Plan:
    """Per-batch sequence-parallel groups; see planner.scatter.scatter_sequences."""
    from planner.scatter import scatter_sequences as run
    return run(*args, **kwargs)


__all__ = ["Plan", "load_plan", "make_plan", "plan_training", "place_experts", "plan_serving", "scatter_sequences",
           "validate_plan", "diff_plans", "explain_plan", "export_plan", "export_formats"]
