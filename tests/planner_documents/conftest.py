"""Fixtures for the plan-document tests: small synthetic plans of every kind and a fake planner handler."""

import types

import pytest

from planner import registry
from planner.plan import make_plan

SOLVER = {"backend": "highs", "backend_version": "1.7.0", "status": "optimal", "objective": 1.25, "bound": 1.2,
          "gap": 0.04}
DECISIONS = {
    "train": {"tp": 4, "pp": 2, "dp": 2, "cp": 1, "ep": 1, "etp": 1, "vpp": 1, "mbs": 1, "zero": 1,
              "recompute": "selective", "sequence_parallel": True, "stage_layers": [16, 16]},
    "experts": {"layers": [{"layer": 0, "slots": [[0, 1], [2, 3]]}]},
    "serve": {"mode": "disaggregated", "prefill": [{"tp": 2, "count": 1}], "decode": [{"tp": 4, "count": 1}]},
    "scatter": {"groups": [{"degree": 2, "ranks": [0, 1], "sequences": [1]},
                           {"degree": 2, "ranks": [2, 3], "sequences": [0, 2]}]},
}


def build_plan(kind="scatter", *, step_time_s=1.25, decision=None, inputs=None, **overrides):
    """A schema-valid plan of `kind`; keyword overrides replace whole sections."""
    if kind == "estimate":
        sections = {"decision": DECISIONS["train"], "solver": {}, "feasible": True, "infeasible_reasons": []}
        base_inputs = {"target": "train", "model": {"layers": 32, "hidden": 4096}, "num_gpus": 16}
    else:
        sections = {"decision": DECISIONS[kind], "solver": dict(SOLVER)}
        base_inputs = {"model": {"layers": 32, "hidden": 4096}, "num_gpus": 16, "lengths": [100, 2000, 300]}
    if decision is not None:
        sections["decision"] = decision
    sections.update({"predicted": {"step_time_s": step_time_s, "mfu": 0.41, "max_load_ratio": 1.1,
                                   "breakdown": {"compute_s": 1.0, "comm_s": 0.25}},
                     "baselines": {"static_sp": {"step_time_s": 1.5}},
                     "alternatives": [{"step_time_s": 1.4, "why": "more pipeline bubble"}]})
    if kind == "estimate":
        sections["predicted"].update(model_tflops_per_gpu=400.0, hardware_tflops_per_gpu=410.0,
                                     memory_per_gpu_bytes=6.0e10)
    sections.update(overrides)
    return make_plan(kind, inputs=inputs if inputs is not None else base_inputs, **sections)


@pytest.fixture
def plan_factory():
    return build_plan


@pytest.fixture
def write_plan(tmp_path):
    """Write a plan (or raw text) to tmp_path/name and return the path as a string."""

    def write(plan_or_text, name="plan.json"):
        path = tmp_path / name
        path.write_text(plan_or_text if isinstance(plan_or_text, str) else plan_or_text.dumps())
        return str(path)

    return write


@pytest.fixture
def fake_handler(monkeypatch):
    """Route every document to a fake planner package; returns it so a test can change its answers."""
    fake = types.SimpleNamespace(
        __name__="planner.fake",
        problems=[],
        EXPORT_FORMATS=("megatron", "vllm"),
    )
    fake.check = lambda plan: list(fake.problems)
    fake.explain = lambda plan: f"fake explanation of a {plan.kind} plan\n"
    fake.export = lambda plan, fmt: f"--format {fmt} --tp {plan['decision'].get('tp', 0)}"
    monkeypatch.setattr(registry, "handler", lambda plan: fake)
    return fake
