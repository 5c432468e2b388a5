"""Serve planner correctness bugs found by a user audit (issue 12): a looser SLO never gives less capacity (the decode
batch is the capacity-maximising feasible cap, not the largest), the API refuses what the CLI refuses, a search cut by
its time limit says so instead of claiming infeasibility, tiny rates plan and simulate, and the MoE routing skew is
capped at what routing allows at each expert-parallel degree (one helper for estimate and plan)."""

import numpy as np
import pytest

import profiles
from costmodels.errors import InfeasibleError, SolverError, SpecError
from costmodels.hardware import ClusterSpec
from costmodels.serving import InstanceShape, decode_step_time
from costmodels.serving_precision import max_routing_skew
from planner import plan_serving
from planner.serve import ServeOptions, ServingWorkload, simulate_plan
from planner.serve import search as search_module
from planner.serve.capacity import CapacityModel, build_candidates
from planner.serve.formulation import solve_counts
from planner.serve.simulate import Deployment, simulate
from solvers import SolverOptions

SHAPE = InstanceShape(tp=1)
QUICK = dict(simulate_requests=300, verify_seeds=2, verify_layouts=1)


def _capacities(tpot_s: float, ttft_s: float = 1.0) -> tuple[CapacityModel, dict[str, float]]:
    """qwen3-32b FP8 on one H200 (TensorRT-LLM, cached prefix, speculative decoding): the audit's case, one shape."""
    cluster = ClusterSpec.homogeneous(profiles.load_device("h200"), 1)
    wl = ServingWorkload(input_len=2000, output_len=200, ttft_s=ttft_s, tpot_s=tpot_s, prefix_len=1500)
    cm = CapacityModel(profiles.load_model("qwen3-32b"), cluster, wl,
                       ServeOptions(engine="trtllm", dtype="fp8", spec_depth=2, spec_accept=2.0))
    pool = cluster.pools[0]
    dec, intra = cm.decode(pool, SHAPE), cm.intra_gpu(pool, SHAPE)
    return cm, {"decode": dec.capacity_rps if dec else 0.0, "intra_gpu": intra.capacity_rps if intra else 0.0}


def test_looser_tpot_never_gives_less_capacity():
    """The decode step is not monotone in the batch (wave and tile quantisation): the largest batch that meets the
    TPOT gave qwen3-32b on 8 H200 9340 tok/s/GPU at TPOT 30 ms but 7980 at 45 ms. The cap is now the one with the
    most capacity among the feasible caps, so a looser TPOT (a larger feasible set) never gives less."""
    previous = None
    for tpot in (0.02, 0.025, 0.03, 0.035, 0.045, 0.06):
        _, caps = _capacities(tpot)
        if previous is not None:
            for role, rate in caps.items():
                assert rate >= previous[role], (role, tpot, rate, previous[role])
        previous = caps
    assert previous["decode"] > 0 and previous["intra_gpu"] > 0


def test_looser_ttft_never_gives_less_capacity():
    previous = None
    for ttft in (0.3, 0.6, 1.2, 2.4):
        _, caps = _capacities(0.045, ttft)
        if previous is not None:
            for role, rate in caps.items():
                assert rate >= previous[role], (role, ttft, rate, previous[role])
        previous = caps


def test_decode_cap_is_the_exact_best_feasible_one():
    """Recomputed by brute force over every cap: the chosen one has the most capacity among the caps whose steps
    all meet the TPOT, and here that is not the largest feasible cap (the old choice)."""
    from costmodels.queueing import max_offered_load

    cm, _ = _capacities(0.045)
    pool = cm.cluster.pools[0]
    cand = cm.decode(pool, SHAPE)
    limit = cm._memory_batch(pool, SHAPE)
    steps = np.array([cm.token_seconds(pool, SHAPE, float(b), cm.stats.ctx_avg) for b in range(1, limit + 1)])
    feasible = int(np.argmax(steps > cm.workload.tpot_s)) if (steps > cm.workload.tpot_s).any() else limit
    rates = [max_offered_load(b, cm.slot_q) / (cm.stats.mean_out * steps[b - 1]) for b in range(1, feasible + 1)]
    assert cand.capacity_rps == pytest.approx(max(rates), rel=1e-12)
    assert cand.max_batch == int(np.argmax(rates)) + 1 < feasible
    assert cand.tpot_s <= cm.workload.tpot_s


def test_api_refuses_what_the_cli_refuses():
    model = profiles.load_model("llama3-8b")
    cluster = ClusterSpec.homogeneous(profiles.load_device("h100-sxm"), 2)
    wl = ServingWorkload(input_len=1000, output_len=100, ttft_s=0.5, tpot_s=0.02)
    with pytest.raises(SpecError, match="options: must be a planner.serve.ServeOptions"):
        plan_serving(model, cluster, wl, options={"engine": "vllm"})
    with pytest.raises(SpecError, match="ep 2 needs an MoE model"):
        plan_serving(model, cluster, wl, options=ServeOptions(ep=2))
    with pytest.raises(SpecError, match="pareto"):
        plan_serving(model, cluster, wl, rate=2.0, options=ServeOptions(pareto=True))


def test_a_search_cut_by_the_time_limit_is_not_called_infeasible(monkeypatch):
    """1,024 H100s at --time-limit 5 exited 3 saying "...not at rate None req/s": the count ILPs got no time left and
    found nothing, which is not a proof of infeasibility."""
    model = profiles.load_model("llama3-8b")
    cluster = ClusterSpec.homogeneous(profiles.load_device("h100-sxm"), 2)
    wl = ServingWorkload(input_len=1000, output_len=100, ttft_s=0.5, tpot_s=0.02)
    monkeypatch.setattr(search_module, "solve_counts", lambda *args, **kwargs: None)  # as an ILP cut at its limit
    with pytest.raises(SolverError, match=r"time limit \(1e-06 s.*raise --time-limit") as err:
        plan_serving(model, cluster, wl, options=ServeOptions(time_limit_s=1e-6, modes=("colocated",)))
    assert "infeasib" not in str(err.value) and "None" not in str(err.value)
    with pytest.raises(InfeasibleError) as err:  # no time limit hit: the ILPs' answer stands
        plan_serving(model, cluster, wl, options=ServeOptions(modes=("colocated",)))
    assert "None" not in str(err.value)


def test_sub_millisecond_slos_print_significant_digits():
    model = profiles.load_model("llama3-8b")
    cluster = ClusterSpec.homogeneous(profiles.load_device("h100-sxm"), 2)
    wl = ServingWorkload(input_len=1000, output_len=100, ttft_s=0.5, tpot_s=2e-5)
    with pytest.raises(InfeasibleError, match=r"SLO 0\.02 ms") as err:
        plan_serving(model, cluster, wl)
    assert "SLO 0.0 ms" not in str(err.value)


@pytest.fixture(scope="module")
def disaggregated():
    model = profiles.load_model("llama3.1-8b")
    cluster = ClusterSpec.homogeneous(profiles.load_device("h100-sxm"), 2)
    wl = ServingWorkload(input_len=1000, output_len=200, ttft_s=0.5, tpot_s=0.02)
    cm = CapacityModel(model, cluster, wl, ServeOptions(modes=("disaggregated",)))
    cands = build_candidates(cm)
    return cm, {role: cands[role] for role in ("prefill", "decode")}


def test_tiny_target_rates_get_instances_of_every_role(disaggregated):
    """At a target of 1e-6 req/s the count ILP took "no prefill instance" as feasible (λ = 1e-6 within the solver's
    absolute tolerance of a zero capacity) and the simulator's router crashed with an IndexError; its rows are now in
    units of the rate."""
    cm, groups = disaggregated
    for rate in (1e-6, 1e-7):
        sol = solve_counts(cm.cluster, groups, objective="gpus", rate=rate, kv_bytes_per_req=1e6,
                           options=SolverOptions(time_limit_s=60, threads=1, seed=0))
        roles = {c.role for c, _ in sol.counts}
        assert roles == {"prefill", "decode"} and sol.rate_rps >= rate
        from planner.serve.search import _decision, groups_of

        dep = Deployment(cm, _decision("disaggregated", groups_of(sol, rate)))
        out = simulate(dep, rate=rate, requests=50, seed=0)
        assert out["attainment"] == 1.0


@pytest.fixture(scope="module")
def small_plan():
    model = profiles.load_model("llama3-8b")
    cluster = ClusterSpec.homogeneous(profiles.load_device("h100-sxm"), 1)
    wl = ServingWorkload(input_len=1000, output_len=100, ttft_s=0.5, tpot_s=0.03)
    return plan_serving(model, cluster, wl, options=ServeOptions(modes=("colocated",), **QUICK))


@pytest.mark.parametrize(("kwargs", "field"), [({"seed": -1}, "seed"), ({"requests": 10 ** 9}, "requests"),
                                               ({"requests": 0}, "requests"), ({"rate": 1e-9}, "rate")])
def test_simulate_plan_refuses_what_the_cli_refuses(small_plan, kwargs, field):
    with pytest.raises(SpecError) as err:
        simulate_plan(small_plan, **kwargs)
    assert err.value.field == field


def test_simulate_plan_still_replays(small_plan):
    out = simulate_plan(small_plan, requests=50, seed=3)
    assert out["requests"] == 50 and out["seed"] == 3


def test_routing_skew_is_capped_by_what_routing_allows():
    """The busiest of ep GPUs holds at most min(top_k, experts/ep) of a token's top_k slots: skew <= ep·min(top_k,
    experts/ep)/top_k, 1 at ep 1. The plan path applied --moe-skew at every shape (at ep 1 it multiplied the expert
    GEMMs by the skew); estimate refused it. Both now use max_routing_skew."""
    model = profiles.load_model("qwen3-30b-a3b")  # 128 experts, top-8
    device = profiles.load_device("h200")
    assert max_routing_skew(model, 1) == 1.0 and max_routing_skew(model, 4) == 4.0
    assert max_routing_skew(model, 32) == 16.0  # experts / top_k: every slot of a token on one GPU

    def step(shape: InstanceShape, skew: float) -> float:
        return decode_step_time(model, device, shape, batch=64, context_len=1000, engine="vllm", skew=skew)["time_s"]

    one = InstanceShape(tp=4, ep=1)
    assert step(one, 3.0) == step(one, 1.0)
    wide = InstanceShape(tp=4, ep=4)
    assert step(wide, 2.0) > step(wide, 1.0)  # a skew routing allows still costs
    assert step(wide, 8.0) == step(wide, 4.0)
    from planner.serve import estimate_serving

    with pytest.raises(SpecError, match=r"must be in \[1, 4\] at ep=4"):
        estimate_serving(model, device, tp=4, ep=4, batch=8, isl=1000, osl=100, moe_skew=5.0)


def test_a_large_cluster_keeps_the_time_limit():
    """1,024 H100s at --time-limit 5 ran 16 s: past the limit every further count ILP (each Dinkelbach step, every
    layout of the ranking, every other mode) still got the solver's 0.05 s floor. Past the limit they are now
    skipped (the modes left unsolved are reported as cut, not as infeasible). CPU time, as in
    test_time_limit_and_memory.py: the deadline runs on the wall clock, so load only shortens the work."""
    import time

    model = profiles.load_model("llama3.1-70b")
    cluster = ClusterSpec.homogeneous(profiles.load_device("h100-sxm"), 1024)
    wl = ServingWorkload(input_len=4000, output_len=500, ttft_s=0.6, tpot_s=0.02)
    limit = 3.0
    started = time.process_time()
    plan = plan_serving(model, cluster, wl, options=ServeOptions(time_limit_s=limit))
    assert time.process_time() - started <= limit * 1.1 + 0.3
    assert plan["solver"]["status"] == "time_limit"
    cut = [alt for alt in plan["alternatives"] if alt["why"].startswith("not simulated")]
    assert cut and not [alt for alt in plan["alternatives"] if "no SLO-feasible" in alt["why"]]


def test_colocated_only_infeasibility_names_the_slo_not_memory():
    """--modes colocated with a TPOT no batch meets said "no instance shape fits the model's weights" (the colocated
    mode prices no separate prefill and decode candidates): the message now names the binding SLO."""
    model = profiles.load_model("llama3-8b")
    cluster = ClusterSpec.homogeneous(profiles.load_device("h100-sxm"), 1)
    wl = ServingWorkload(input_len=1000, output_len=100, ttft_s=0.5, tpot_s=2e-5)
    with pytest.raises(InfeasibleError, match=r"binding: TPOT\..* \(SLO 0\.02 ms\)") as err:
        plan_serving(model, cluster, wl, options=ServeOptions(modes=("colocated",)))
    assert "weights" not in str(err.value)
