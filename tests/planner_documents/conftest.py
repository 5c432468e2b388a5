"""Fixtures for the plan-document tests: small synthetic plans of every kind and a fake planner handler."""

import types

import pytest

from planner import registry
from planner.plan import make_plan

SOLVER = {"backend": "highs", "backend_version": "1.7.0", "status": "optimal", "objective": 1.25, "bound": 1.2,
          "gap": 0.04}
_SERVE_ROLE = {"tp": 2, "pp": 1, "ep": 1, "dp": 1, "pool": "h100", "dest_pool": "h100", "instances": 1,
               "instances_total": 1, "max_batch": 1, "chunk_tokens": 0, "prefill_share": 1.0}
_SERVE_GROUP = {"role": "prefill", "pool": "h100", "dest_pool": "h100", "tp": 2, "pp": 1, "ep": 1, "dp": 1, "gpus": 2,
                "instances": 1, "capacity_rps": 4.0, "load_rps": 2.0, "max_batch": 1, "chunk_tokens": 0,
                "prefill_share": 1.0, "ttft_floor_s": 0.2, "tpot_s": 0.0}
DECISIONS = {  # complete decisions of each kind (planner/decisions.py types; the schema checks every field)
    "train": {"framework": "megatron", "tp": 4, "pp": 2, "dp": 2, "cp": 1, "ep": 1, "etp": 1, "edp": 2, "vpp": 1,
              "mbs": 1, "microbatches": 8, "zero": 1, "recompute": "selective", "sequence_parallel": True,
              "stage_layers": [16, 16], "stage_pools": None},
    "experts": {"layers": [{"gpu_experts": [[0, 1], [2, 3]],
                            "token_share": [[0, 0, 1.0], [1, 0, 1.0], [2, 1, 1.0], [3, 1, 1.0]]}],
                "num_gpus": 2, "gpus_per_node": 2, "slots_per_gpu": 2},
    "serve": {"mode": "disaggregated",
              "groups": [_SERVE_GROUP, {**_SERVE_GROUP, "role": "decode", "tp": 4, "gpus": 4, "max_batch": 64}],
              "prefill": _SERVE_ROLE, "decode": {**_SERVE_ROLE, "tp": 4, "max_batch": 64}, "colocated": None,
              "intra_gpu": None},
    "scatter": {"sp_style": "ulysses", "tp": 1, "zero": 1, "degree_multiset": [2, 2],
                "groups": [{"degree": 2, "gpus": 2, "ranks": [0, 1], "spans_nodes": False, "sequences": [1],
                            "time_s": 1.25},
                           {"degree": 2, "gpus": 2, "ranks": [2, 3], "spans_nodes": False, "sequences": [0, 2],
                            "time_s": 1.2}]},
}


CONFIDENCE = {"interval": {"level": 0.8, "step_time_s": {"low": 1.2, "high": 1.3}}, "extrapolated": [],
              "regime": {"key": "train/dense/bf16/megatron-zero1/dp<=8/ctx<=4k/h100", "target": "train",
                         "arch": "dense", "dtype": "bf16", "framework": "megatron-zero1", "scale": "dp<=8",
                         "context": "ctx<=4k", "family": "h100", "matched": "train/dense/bf16/*/*/*/h100", "rows": 9,
                         "median_error": -0.01, "ratio_p10": 0.95, "ratio_p90": 1.06, "bias_log": 0.0,
                         "half_width_log": 0.04, "prior": False}}


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
    if kind in ("train", "serve", "estimate"):  # planner/confidence fields (required by the schema for these)
        sections["predicted"].update(CONFIDENCE)
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
