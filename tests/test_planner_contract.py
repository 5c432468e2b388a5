"""The planner contract: all four entry points have the PlanEntry shape, return checked plans of their kind,
agree byte for byte with the public API, and build their solver block in the one place (planner.contract)."""

import inspect
import typing

import pytest

import planner
from costmodels.hardware import ClusterSpec, DeviceSpec
from costmodels.model import ModelSpec
from costmodels.parallel import TrainingWorkload
from planner import registry
from planner.contract import SOLVER_KEYS, SOLVER_STATUSES, PlanEntry, solver_block
from planner.experts.request import ExpertRequest
from planner.experts.synthetic import synth_stats
from planner.plan import Plan
from planner.scatter.request import ScatterOptions, ScatterRequest
from planner.schema_check import schema_problems
from planner.serve.request import ServeOptions, ServeRequest, ServingWorkload
from planner.train.request import TrainRequest
from solvers.result import SolverOptions

MODEL = ModelSpec(name="tiny", layers=4, hidden=512, heads=8, kv_heads=4, head_dim=64, ffn=1536, vocab=4096)
DEVICE = DeviceSpec(name="toy", bf16_flops_per_s=100e12, fp8_flops_per_s=0.0, hbm_bytes=8 * 2**30,
                    hbm_bytes_per_s=1e12, devices_per_node=4, intra_node_bytes_per_s=100e9,
                    inter_node_bytes_per_s=10e9)
CLUSTER = ClusterSpec.homogeneous(DEVICE, 8, 4)
SOLVE = SolverOptions(time_limit_s=60.0, threads=1, seed=0)


def _requests() -> dict[str, tuple[object, object]]:
    """A small request and options for every planner."""
    stats = synth_stats(layers=2, experts=8, top_k=2, skew=1.0, affinity=0.5, seed=3, tokens=512)
    serve_wl = ServingWorkload(input_len=512, output_len=64, ttft_s=2.0, tpot_s=0.2, rate_per_s=2.0)
    return {
        "train": (TrainRequest(model=MODEL, cluster=CLUSTER, workload=TrainingWorkload(global_batch=16, seq_len=512)),
                  SOLVE),
        "experts": (ExpertRequest(stats=stats, num_gpus=4, gpus_per_node=4, slots_per_gpu=3), SOLVE),
        "serve": (ServeRequest(model=MODEL, cluster=CLUSTER, workload=serve_wl, objective="gpus"),
                  ServeOptions(simulate_requests=200, max_pp=1, engine="modern")),
        "scatter": (ScatterRequest(lengths=(4096, 512, 300, 2000, 128, 900), model=MODEL, cluster=CLUSTER),
                    ScatterOptions()),
    }


@pytest.fixture(scope="module")
def plans() -> dict[str, tuple[Plan, list[str]]]:
    out = {}
    for name, (request, options) in _requests().items():
        messages: list[str] = []
        out[name] = (registry.INFO[name].entry()(request, options, progress=messages.append), messages)
    return out


def test_the_registry_lists_the_four_planners():
    assert registry.PLANNERS == ("train", "experts", "serve", "scatter")


@pytest.mark.parametrize("name", registry.PLANNERS)
def test_entry_point_has_the_contract_signature(name):
    info = registry.INFO[name]
    entry = info.entry()
    assert entry.__name__ == "plan" and entry.__module__ == f"planner.{name}.plan"
    params = list(inspect.signature(entry).parameters.values())
    assert [(p.name, p.kind) for p in params] == [
        ("request", inspect.Parameter.POSITIONAL_OR_KEYWORD), ("options", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        ("progress", inspect.Parameter.KEYWORD_ONLY)]
    assert params[2].default is None
    hints = typing.get_type_hints(entry)
    assert hints["request"] is info.request_type()
    assert hints["options"] is info.options_type()
    assert hints["return"] is Plan
    protocol_params = list(inspect.signature(PlanEntry.__call__).parameters)[1:]
    assert [p.name for p in params] == protocol_params


@pytest.mark.parametrize("name", registry.PLANNERS)
def test_entry_point_returns_a_checked_plan_of_its_kind(name, plans):
    plan, messages = plans[name]
    assert isinstance(plan, Plan) and plan.kind == name
    assert schema_problems(plan.doc) == []
    assert registry.handler(plan).check(plan) == []  # the planner's independent verifier
    solver = plan["solver"]
    assert set(SOLVER_KEYS) <= set(solver) and solver["status"] in SOLVER_STATUSES
    assert solver["time_limit_hit"] is False
    assert messages and all(isinstance(m, str) and m for m in messages)


def test_public_api_gives_the_entry_points_bytes(plans):
    reqs = _requests()
    train_req = reqs["train"][0]
    assert planner.plan_training(train_req.model, train_req.cluster, train_req.workload).dumps() == \
        plans["train"][0].dumps()
    experts_req = reqs["experts"][0]
    assert planner.place_experts(experts_req.stats, num_gpus=4, gpus_per_node=4, slots_per_gpu=3,
                                 options=SOLVE).dumps() == plans["experts"][0].dumps()
    serve_req, serve_opts = reqs["serve"]
    assert planner.plan_serving(MODEL, CLUSTER, serve_req.workload, objective="gpus",
                                options=serve_opts).dumps() == plans["serve"][0].dumps()
    scatter_req = reqs["scatter"][0]
    assert planner.scatter_sequences(scatter_req.lengths, model=MODEL, cluster=CLUSTER).dumps() == \
        plans["scatter"][0].dumps()


def test_public_api_hides_no_signature():
    for name in planner.__all__:
        value = getattr(planner, name)
        if not callable(value) or isinstance(value, type):
            continue
        kinds = {p.kind for p in inspect.signature(value).parameters.values()}
        assert inspect.Parameter.VAR_POSITIONAL not in kinds, name
        assert inspect.Parameter.VAR_KEYWORD not in kinds or name == "make_plan", name


def test_solver_block_recomputes_the_gap_and_reports_a_time_limit():
    block = solver_block(backend="highs", status="feasible", objective=2.0, bound=1.5, gap=0.9, nodes=7)
    assert block["gap"] == pytest.approx(0.25) and block["nodes"] == 7 and block["time_limit_hit"] is False
    hit = solver_block(backend="highs", status="feasible", objective=2.0, bound=None, time_limit_hit=True)
    assert hit["status"] == "time_limit" and hit["time_limit_hit"] is True and hit["gap"] is None


def test_solver_block_rejects_unknown_statuses():
    with pytest.raises(ValueError, match="unknown solver status 'done'"):
        solver_block(backend="highs", status="done", objective=1.0, bound=1.0)
