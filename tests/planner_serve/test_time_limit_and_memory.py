"""`plan serve --time-limit` bounds the whole solve (ILPs and simulator replays), and a model whose weights fit no
GPU is refused in the user's terms ("weights need X GiB per GPU, the device has Y GiB"), exit 3 (issue 13)."""

import json
import time

import pytest
from click.testing import CliRunner

import profiles
from cli import main
from costmodels.errors import InfeasibleError
from costmodels.hardware import ClusterSpec
from costmodels.serving import KV_MEMORY_FRACTION, InstanceShape, weight_bytes_per_gpu
from planner import plan_serving
from planner.serve import ServeOptions, ServingWorkload, check
from planner.serve.budget import VerifyBudget
from planner.serve.verify import replicate
from solvers.deadline import Deadline

GIB = 2.0 ** 30
WL = ServingWorkload(input_len=4000, output_len=500, ttft_s=0.6, tpot_s=0.02)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_budget_refuses_a_replay_the_time_left_cannot_cover():
    clock = FakeClock()
    budget = VerifyBudget(Deadline(10.0, clock=clock))

    def replay(seed: int) -> dict:
        clock.now += 3.0  # every replay takes 3 s
        return {"attainment": 0.95, "seed": seed}

    sim = replicate(budget.timed(replay), seed=0, seeds=4, requests=1000, allows=budget.allows_replay)
    # replays end at 3, 6, 9 s; at 9 s only 1 s is left, less than a replay: the fourth is refused
    assert sim["replays"] == 3 and sim["attainment_seeds"] == [0.95] * 3
    assert budget.deadline.hit and clock.now == 9.0
    assert replicate(budget.timed(replay), seed=0, seeds=4, requests=1000, allows=budget.allows_replay) is None


def test_first_replay_always_runs_and_no_limit_never_refuses():
    clock = FakeClock()
    late = VerifyBudget(Deadline(1.0, clock=clock))
    clock.now = 5.0  # already past the limit: the plan still gets its one simulated replay
    assert late.allows_replay() and not late.deadline.hit
    free = VerifyBudget(Deadline(None, clock=clock))
    free.replays, free.slowest_s = 100, 1e6
    assert free.allows_replay() and not free.deadline.hit


def test_time_limit_bounds_the_solve_and_says_so():
    model = profiles.load_model("llama3.1-70b")
    cluster = ClusterSpec.homogeneous(profiles.load_device("h100-sxm"), 16)
    limit = 0.5  # well under the unbounded solve (~2 s of CPU), which a 2 s limit no longer cut
    started = time.process_time()
    plan = plan_serving(model, cluster, WL, options=ServeOptions(time_limit_s=limit))
    cpu = time.process_time() - started
    # the process's CPU time, not the wall time: the deadline runs on the wall clock, so when other processes share
    # the cores the solve does less work by the limit, never more, while its wall time grows with the load (3.3-4.1 s
    # at a load of 5 on 2 cores). Work the deadline does not cut (pricing the candidates, ~0.2 s here; the replay in
    # flight at the limit, a replay is never cut in the middle; the write-up) fits in the margin (0.45-0.55 s of CPU
    # measured here). Unbounded, this solve takes ~2 s of CPU time, so the bound still fails when the limit is not kept.
    assert cpu <= limit * 1.1 + 0.3, cpu
    assert plan["solver"]["status"] == "time_limit" and plan["solver"]["time_limit_hit"] is True
    assert 1 <= plan["simulated"]["replays"] <= 4
    assert not [p for p in check(plan) if "simulated" not in p]


def test_cli_warns_on_stderr_when_the_limit_cuts_the_solve(tmp_path):
    out = tmp_path / "plan.json"
    r = CliRunner().invoke(main, ["plan", "serve", "--model", "llama3.1-70b", "--gpu", "h100-sxm", "--num-gpus", "16",
                                  "--isl", "4000", "--osl", "500", "--ttft-ms", "600", "--tpot-ms", "20",
                                  "--time-limit", "1.5", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "warning: the search stopped at its time limit (1.5 s)" in r.stderr
    assert json.loads(out.read_text())["solver"]["status"] == "time_limit"


def test_weights_that_fit_no_gpu_name_the_memory():
    model = profiles.load_model("llama3.1-70b")
    device = profiles.load_device("h100-sxm")
    need = weight_bytes_per_gpu(model, InstanceShape(tp=1, pp=1), "bf16") / GIB
    room = device.usable_bytes * KV_MEMORY_FRACTION / GIB
    assert need > room  # 70B parameters in BF16 are ~131 GiB
    with pytest.raises(InfeasibleError) as err:
        plan_serving(model, ClusterSpec.homogeneous(device, 1), WL)
    text = str(err.value)
    assert f"weights need {need:.1f} GiB per GPU" in text and f"the device h100-sxm has {room:.1f} GiB" in text
    assert "inf ms" not in text and err.value.details["binding"] == ["memory"]
    r = CliRunner().invoke(main, ["plan", "serve", "--model", "llama3.1-70b", "--gpu", "h100-sxm", "--num-gpus", "1",
                                  "--isl", "4000", "--osl", "500", "--ttft-ms", "600", "--tpot-ms", "20"])
    assert r.exit_code == 3 and f"weights need {need:.1f} GiB per GPU" in r.output and "Traceback" not in r.output


def test_pareto_points_share_the_plans_time_limit():
    import dataclasses

    from planner.serve.front import pareto_front

    @dataclasses.dataclass(frozen=True)
    class Request:
        workload: ServingWorkload

    def point(tpot_s: float, goodput: float) -> dict:
        return {"predicted": {"gpus": 8, "rate_rps": 1.0, "goodput_tokens_per_s_per_gpu": goodput, "ttft_s": 0.3,
                              "tpot_s": tpot_s / 2},
                "inputs": {"workload": {"tpot_s": tpot_s, "ttft_s": 0.6, "percentile": 90.0}},
                "decision": {"mode": "colocated", "groups": []}, "solver": {"status": "optimal"},
                "simulated": {"attainment": 0.95, "ttft_s": {"p90": 0.4}, "tpot_s": {"p90": tpot_s / 2}}}

    clock = FakeClock()
    deadline = Deadline(10.0, clock=clock)
    clock.now = 4.0  # the base plan took 4 s
    limits = []

    def plan_fn(request, options):
        limits.append(options.time_limit_s)
        clock.now += 4.0
        return point(request.workload.tpot_s, 100.0)

    front = pareto_front(Request(WL), ServeOptions(time_limit_s=10.0), plan_fn, point(0.02, 90.0), deadline)
    # factor 0.5 starts with 6 s left (>= 4 s); afterwards 2 s are left, so 0.75, 1.5 and 2.0 are left out
    assert limits == [6.0] and deadline.hit
    assert [p["tpot_slo_s"] for p in front] == [0.01]  # the 0.5 point beats the base on both axes
