"""Colocated chunked prefill with several prompts per chunk (planner/serve/colocated.py, simulate._run_colocated):
hand-computed iterations, budget 1 = one prompt per iteration, analytic TTFT against the simulator."""

import math

import numpy as np
import pytest

import profiles
from costmodels.hardware import ClusterSpec
from costmodels.serving import InstanceShape
from planner.serve.capacity import CapacityModel
from planner.serve.colocated import ColocatedQueue
from planner.serve.request import ServeOptions, ServingWorkload
from planner.serve.simulate import Deployment, _run_colocated, simulate

SHAPE = InstanceShape(tp=1)


@pytest.fixture(scope="module")
def cluster():
    return ClusterSpec.homogeneous(profiles.load_device("h100-sxm"), 8, 8)


def _setup(cluster, isl: int, osl: int, budget, tpot: float = 0.05, chunk: int = 0):
    wl = ServingWorkload(input_len=isl, output_len=osl, ttft_s=0.6, tpot_s=tpot)
    cm = CapacityModel(profiles.load_model("llama3-8b"), cluster, wl,
                       ServeOptions(engine="vllm", prefill_token_budget=budget))
    cand = cm.colocated(cluster.pools[0], SHAPE)
    group = dict(cand.to_json(), instances=1, load_rps=1.0, chunk_tokens=chunk or cand.chunk_tokens)
    dep = Deployment(cm, {"mode": "colocated", "groups": [group]})
    return cm, cand, dep


def test_packed_iteration_by_hand(cluster):
    """Three 128-token prompts arrive together (no decode: OSL 1). Packed, one C-token iteration carries all three
    (C >= 384); one prompt per iteration, they finish after 1, 2 and 3 iterations of m(0, C)."""
    for budget, ends in ((None, [1, 1, 1]), (1, [1, 2, 3])):
        cm, cand, dep = _setup(cluster, 128, 1, budget, chunk=512)
        eng = dep.decode[0][0]
        assert eng.chunk == 512 and eng.pack == (budget is None)
        m0 = cm.mixed_seconds(cluster.pools[0], SHAPE, 0.0, 0.0, eng.chunk)
        first, finish = _run_colocated(eng, np.zeros(3), np.full(3, 128.0), np.ones(3))
        assert first == pytest.approx(np.array(ends) * m0, rel=1e-9) and (finish == first).all()


def test_long_prompt_then_packed_rest(cluster):
    """A prompt of 1.5 chunks and a short one: packed, the first iteration is the long prompt's first chunk, the
    second its rest plus the short prompt (both done after 2 iterations); unpacked the short one needs a third."""
    cm, _, dep = _setup(cluster, 128, 1, None)
    eng = dep.decode[0][0]
    c = eng.chunk
    li = np.array([1.5 * c, 0.25 * c])
    m0 = cm.mixed_seconds(cluster.pools[0], SHAPE, 0.0, 0.0, c)
    first, _ = _run_colocated(eng, np.zeros(2), li, np.ones(2))
    assert first == pytest.approx([2 * m0, 2 * m0], rel=1e-9)
    eng.pack = False
    first, _ = _run_colocated(eng, np.zeros(2), li, np.ones(2))
    assert first == pytest.approx([2 * m0, 3 * m0], rel=1e-9)


def test_queue_iteration_and_units(cluster):
    cm, cand, _ = _setup(cluster, 128, 128, None)
    q = cm.colocated_queue(cluster.pools[0], SHAPE, cand.chunk_tokens)
    assert q.units == pytest.approx(128 / cand.chunk_tokens)  # packed: L/C iterations' worth per prompt
    assert q.iteration_s(0.0) == pytest.approx(q.times[0])  # no load: a lone chunk, no decodes
    # saturated: every iteration is a prompt iteration carrying 1/u prompts, each decoding E[O] - 1 iterations
    running = min(q.batch_max, 127 / q.units[0])
    assert q.iteration_s(1e9) == pytest.approx(np.interp(running, q.grid, q.times))
    assert q.floor_s() == pytest.approx(math.ceil(128 / cand.chunk_tokens) * q.times[0])
    cm1, cand1, _ = _setup(cluster, 128, 128, 1)
    q1 = cm1.colocated_queue(cluster.pools[0], SHAPE, cand.chunk_tokens)
    assert q1.units == pytest.approx(1.0)  # one prompt per iteration: ⌈L/C⌉
    assert cand.capacity_rps > 1.2 * cand1.capacity_rps  # short prompts: packing raises the SLO capacity


def test_fixed_point_by_hand():
    """m(N) = 10 ms + N · 0.1 ms, d(N) = 5 ms + N · 0.1 ms, E[O] = 101, one 1-iteration prompt per request, λ = 20/s:
    the engine runs 20 prompt iterations per second and fills the rest with decode-only ones."""
    q = ColocatedQueue.build(lambda n: 0.010 + 1e-4 * n, lambda n: 0.005 + 1e-4 * n, chunk=512, batch_max=1000,
                             mean_out=101.0, fresh=np.array([512.0]), fresh_q=512.0, pack=True)
    running = 1000.0
    for _ in range(200):
        m, d = 0.010 + 1e-4 * running, 0.005 + 1e-4 * running
        running = 20 * 100 / (20 + (1 - 20 * m) / d)
    assert q.iteration_s(20.0) == pytest.approx(0.010 + 1e-4 * running, rel=0.02)  # 8 steps from above


@pytest.mark.parametrize("isl, osl, tol", [(4000, 200, 0.10), (128, 128, 0.35)])
def test_analytic_ttft_tracks_simulator(cluster, isl, osl, tol):
    """p90 TTFT at 0.8x the analytic capacity: the queue model against the simulator (2 seeds x 1,500 requests)
    within tol (long prompts: 10 %; short prompts, a few ms of TTFT: 35 %); both meet the SLO at capacity."""
    cm, cand, dep = _setup(cluster, isl, osl, None, tpot=0.1 if isl > 1000 else 0.05)
    q = cm.colocated_queue(cluster.pools[0], SHAPE, cand.chunk_tokens)
    rate = 0.8 * cand.capacity_rps
    sims = [simulate(dep, rate=rate, requests=1500, seed=s) for s in range(2)]
    simulated = float(np.mean([s["ttft_s"]["p90"] for s in sims]))
    assert q.ttft_s(rate, 0.9) == pytest.approx(simulated, rel=tol)
    at_cap = simulate(dep, rate=cand.capacity_rps, requests=1500, seed=0)
    assert at_cap["ttft_s"]["p90"] <= 0.6 * 1.05


def test_colocated_plan_from_cli_and_api(cluster, tmp_path):
    """plan serve --modes colocated (vLLM, ISL 128): the CLI writes the API's plan, validate recomputes its
    capacities, and packing prompts gives a higher rate than one prompt per iteration (--prefill-token-budget 1)."""
    import json

    from click.testing import CliRunner

    from cli import main
    from planner import plan_serving
    from planner.serve import check

    args = ["plan", "serve", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "8", "--isl", "128",
            "--osl", "128", "--ttft-ms", "600", "--tpot-ms", "50", "--engine", "vllm", "--modes", "colocated",
            "--requests", "300", "--verify-seeds", "2", "--verify-layouts", "1"]
    rates = {}
    for budget in ("1", None):
        out = tmp_path / f"plan_{budget}.json"
        r = CliRunner().invoke(main, args + (["--prefill-token-budget", budget] if budget else []) + ["-o", str(out)])
        assert r.exit_code == 0, r.output
        doc = json.loads(out.read_text())
        assert doc["decision"]["mode"] == "colocated"
        assert CliRunner().invoke(main, ["validate", str(out)]).exit_code == 0
        rates[budget] = sum(g["capacity_rps"] * g["instances"] for g in doc["decision"]["groups"])
    assert rates[None] > 1.2 * rates["1"]
    wl = ServingWorkload(input_len=128, output_len=128, ttft_s=0.6, tpot_s=0.05)
    plan = plan_serving(profiles.load_model("llama3-8b"), cluster, wl,
                        options=ServeOptions(engine="vllm", modes=("colocated",), simulate_requests=300,
                                             verify_seeds=2, verify_layouts=1))
    assert check(plan) == []
    assert sum(g["capacity_rps"] * g["instances"] for g in plan["decision"]["groups"]) == pytest.approx(rates[None])


def test_candidate_ttft_is_the_queue_at_capacity(cluster):
    cm, cand, _ = _setup(cluster, 4000, 200, None, tpot=0.1)
    q = cm.colocated_queue(cluster.pools[0], SHAPE, cand.chunk_tokens)
    assert cand.ttft_quantile_s(cand.capacity_rps, 0.9) == pytest.approx(q.ttft_s(cand.capacity_rps, 0.9), rel=1e-9)
    assert cand.ttft_floor_s == pytest.approx(q.floor_s())
