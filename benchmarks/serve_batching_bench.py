"""Batched prefill up to a token budget (issue 12 item 4): sustained prefill throughput and TTFT of one prefill
instance with and without batching, analytic model (planner/serve/batching.py) against the simulator.

    .venv/bin/python benchmarks/serve_batching_bench.py [--out benchmarks/results/serve_batching.md]

Llama-3.1-70B BF16 on H100-SXM, engine vllm, prefill instances 1x TP2, 2x TP2 behind one router queue, 1x TP8;
plus Qwen3-30B-A3B with attention DP 4 (tp1 dp4 ep4). ISL 500 and 4000, TTFT SLO 600 ms at p90. Budget 1 = one
prompt per step; 8192 = vLLM's default on H100. Columns: step time of one prompt and of a full step (K prompts),
peak throughput c·K/S(K) (req/s), analytic SLO capacity (largest rate whose predicted p90 TTFT <= SLO), simulated
sustained rate (largest rate on a 2 % grid whose simulated p90 TTFT <= SLO, 2 seeds x 3,000 requests), and the
p90 TTFT at 0.8x the analytic capacity (analytic / simulated). TTFT here = prefill wait + step + KV transfer.
"""

import argparse
import pathlib
import sys
import time

sys.path[:0] = [str(pathlib.Path(__file__).resolve().parents[1]), str(pathlib.Path(__file__).resolve().parent)]

import numpy as np  # noqa: E402
from machine import machine_note  # noqa: E402

import profiles  # noqa: E402
from costmodels.hardware import ClusterSpec  # noqa: E402
from costmodels.serving import InstanceShape  # noqa: E402
from planner import plan_serving  # noqa: E402
from planner.serve.capacity import CapacityModel  # noqa: E402
from planner.serve.request import ServeOptions, ServingWorkload  # noqa: E402
from planner.serve.simulate import Deployment, replay_prefill, simulate  # noqa: E402

SLO_S = 0.6
CASES = [("llama3.1-70b", InstanceShape(tp=2), 1), ("llama3.1-70b", InstanceShape(tp=2), 2),
         ("llama3.1-70b", InstanceShape(tp=8), 1), ("qwen3-30b-a3b", InstanceShape(tp=1, dp=4, ep=4), 1)]


def _sim_p90(cm, pool, shape, instances: int, rate: float, seeds: int = 2, n: int = 3000) -> float:
    ttft = [replay_prefill(cm, pool, shape, instances=instances, rate=rate, requests=n, seed=s) for s in range(seeds)]
    return float(np.mean([np.percentile(t[n // 10:], 90) for t in ttft]))


def row(model_name: str, shape: InstanceShape, instances: int, isl: int, budget: int) -> str:
    model = profiles.load_model(model_name)
    cluster = ClusterSpec.homogeneous(profiles.load_device("h100-sxm"), 16, 8)
    pool = cluster.pools[0]
    wl = ServingWorkload(input_len=isl, output_len=200, ttft_s=SLO_S, tpot_s=0.05)
    cm = CapacityModel(model, cluster, wl, ServeOptions(engine="vllm", prefill_token_budget=budget))
    cand = cm.prefill(pool, pool, shape)
    table = cm.prefill_table(pool, shape)
    k = table.most(isl)
    s1, sk = table.step(1, isl), table.step(k, isl)
    cap = cand.group_rps(instances)
    grid = [cap * f for f in np.arange(0.5, 1.6, 0.02)]
    sustained = 0.0
    for r in grid:
        if _sim_p90(cm, pool, shape, instances, r) > SLO_S:
            break
        sustained = r
    ttft_a = cand.ttft_quantile_s(0.8 * cap, 0.9, servers=instances)
    ttft_s = _sim_p90(cm, pool, shape, instances, 0.8 * cap)
    name = f"{instances}x tp{shape.tp}" + (f" dp{shape.dp} ep{shape.ep}" if shape.dp > 1 else "")
    peak = instances * k / sk
    return (f"| {model_name} {name} | {isl} | {budget} | {k} | {s1 * 1e3:.1f} | {sk * 1e3:.1f} | {peak:.2f} | "
            f"{peak * isl:.0f} | {cap:.2f} | {sustained:.2f} | {sustained / cap - 1:+.0%} | "
            f"{ttft_a * 1e3:.0f} / {ttft_s * 1e3:.0f} |")


def plan_rows() -> list[str]:
    """Whole plans (Llama-3.1-70B, 16 H100, OSL 500, TTFT 600 ms, TPOT 20 ms at p90, engine vllm): vLLM's default
    budget, one prompt per step (budget = ISL) and auto (the budget with the most SLO capacity per prefill group)."""
    model = profiles.load_model("llama3.1-70b")
    cluster = ClusterSpec.homogeneous(profiles.load_device("h100-sxm"), 16)
    rows = []
    for isl in (500, 4000):
        wl = ServingWorkload(input_len=isl, output_len=500, ttft_s=SLO_S, tpot_s=0.02)
        for budget in (None, isl, "auto"):
            t0 = time.perf_counter()
            plan = plan_serving(model, cluster, wl, options=ServeOptions(prefill_token_budget=budget))
            took = time.perf_counter() - t0
            d, p, sim = plan["decision"], plan["predicted"], plan["simulated"]
            groups = " + ".join(f"{g['instances']}x {g['role']} tp{g['tp']}pp{g['pp']}" for g in d["groups"])
            used = sorted({g.get("prefill_token_budget", 0) for g in d["groups"] if g.get("prefill_token_budget")})
            rows.append(f"| {isl} | {budget or 'default'} ({', '.join(map(str, used)) or '-'}) | {d['mode']}: "
                        f"{groups} | {p['rate_rps']:.3f} | {p['goodput_tokens_per_s_per_gpu']:.1f} | "
                        f"{sim['attainment']:.3f} | {took:.1f} |")
    return rows


COLOCATED = [("llama3.1-70b", 8, 128, 128), ("llama3.1-70b", 8, 500, 200), ("llama3.1-70b", 8, 4000, 500),
             ("llama3-8b", 1, 128, 128), ("llama3-8b", 1, 4000, 200)]
"""colocated cases: (model, tp, ISL, OSL) on one H100-SXM instance, TTFT 600 ms / TPOT 50 ms at p90, engine vllm"""


def _colocated_sim(dep, rate: float, seeds: int = 2, n: int = 1500) -> tuple[float, float]:
    sims = [simulate(dep, rate=rate, requests=n, seed=s) for s in range(seeds)]
    return float(np.mean([s["attainment"] for s in sims])), float(np.mean([s["ttft_s"]["p90"] for s in sims]))


def colocated_row(model_name: str, tp: int, isl: int, osl: int, budget: int | None) -> str:
    """Analytic colocated capacity (planner/serve/colocated.py) against the simulator's sustained rate: the largest
    rate on a 4 % grid whose mean attainment over 2 seeds x 1,500 requests is >= 0.9."""
    model = profiles.load_model(model_name)
    cluster = ClusterSpec.homogeneous(profiles.load_device("h100-sxm"), 8, 8)
    pool, shape = cluster.pools[0], InstanceShape(tp=tp)
    wl = ServingWorkload(input_len=isl, output_len=osl, ttft_s=SLO_S, tpot_s=0.05)
    cm = CapacityModel(model, cluster, wl, ServeOptions(engine="vllm", prefill_token_budget=budget))
    cand = cm.colocated(pool, shape)
    queue = cm.colocated_queue(pool, shape, cand.chunk_tokens)
    rate_p = queue.max_rate(0.9, SLO_S)
    dep = Deployment(cm, {"mode": "colocated", "groups": [dict(cand.to_json(), instances=1, load_rps=1.0)]})
    cap, sustained = cand.capacity_rps, 0.0
    for f in np.arange(0.5, 1.6, 0.04):
        if _colocated_sim(dep, cap * f)[0] < 0.9:
            break
        sustained = cap * f
    ttft_s = _colocated_sim(dep, 0.8 * cap)[1]
    binding = "prefill" if rate_p <= cap * (1 + 1e-9) else "decode"
    return (f"| {model_name} tp{tp} | {isl}/{osl} | {budget or 'default (8192)'} | {cand.chunk_tokens} | "
            f"{cand.max_batch} | {rate_p:.2f} | {cap:.2f} ({binding}) | {sustained:.2f} | {sustained / cap - 1:+.0%} | "
            f"{queue.ttft_s(0.8 * cap, 0.9) * 1e3:.0f} / {ttft_s * 1e3:.0f} |")


def colocated_lines() -> list[str]:
    rows = [colocated_row(m, tp, isl, osl, budget) for m, tp, isl, osl in COLOCATED for budget in (1, None)]
    return ["", "## Colocated chunked prefill: several prompts per chunk", "",
            "One colocated instance on H100-SXM, engine vllm, TTFT 600 ms / TPOT 50 ms at p90, Poisson arrivals, "
            "fixed ISL/OSL. Budget 1: each C-token iteration carries one prompt's tokens (legacy behaviour); the "
            "default (vLLM batches prompts): the iteration's C tokens come from the queued prompts in FCFS order. "
            "Analytic: planner/serve/colocated.py (M/G/1 token server, iterations at the load's decode batch); "
            "λ_P = prompt-side SLO rate, capacity = min(λ_P, λ_D) and the side that binds. Simulated: "
            "planner/serve/simulate.py `_run_colocated`, largest rate on a 4 % grid (from 0.5x capacity) whose mean "
            "attainment over 2 seeds x 1,500 requests is >= 0.9. p90 TTFT at 0.8x capacity: analytic / simulated.",
            "", "| instance | ISL/OSL | budget | C | B_max | λ_P req/s | analytic capacity req/s | simulated sustained "
            "req/s | sim vs analytic | p90 TTFT at 0.8x cap ms |", "|---|---|---|---|---|---|---|---|---|---|"] + rows


INTRA_GPU = [("llama2-13b", "legacy", 2, 8, 2000, 300, 1.5, 0.05), ("llama3.1-70b", "vllm", 8, 2, 500, 500, 0.6, 0.02)]
"""intra-GPU cases: (model, engine, tp, instances, ISL, OSL, TTFT SLO s, TPOT SLO s) on H100-SXM"""


def intra_gpu_lines() -> list[str]:
    """Predicted (per-instance M/G/1, Poisson) against simulated (weighted round-robin routing) p90 TTFT of whole
    intra-GPU groups at fractions of the analytic capacity."""
    rows = []
    for model_name, engine, tp, n, isl, osl, ttft, tpot in INTRA_GPU:
        model = profiles.load_model(model_name)
        cluster = ClusterSpec.homogeneous(profiles.load_device("h100-sxm"), tp * n, 8)
        wl = ServingWorkload(input_len=isl, output_len=osl, ttft_s=ttft, tpot_s=tpot)
        cm = CapacityModel(model, cluster, wl, ServeOptions(engine=engine))
        cand = cm.intra_gpu(cluster.pools[0], InstanceShape(tp=tp))
        dep = Deployment(cm, {"mode": "intra_gpu", "groups": [dict(cand.to_json(), instances=n, load_rps=1.0)]})
        for f in (0.5, 0.8, 1.0):
            sims = [simulate(dep, rate=n * cand.capacity_rps * f, requests=2000, seed=s) for s in range(2)]
            sim = float(np.mean([x["ttft_s"]["p90"] for x in sims]))
            pred = cand.ttft_quantile_s(cand.capacity_rps * f, cm.q)
            rows.append(f"| {model_name} {engine} {n}x tp{tp} | {isl}/{osl} | {cand.prefill_share:.3f} | "
                        f"{n * cand.capacity_rps:.2f} | {f:.1f} | {pred * 1e3:.0f} | {sim * 1e3:.0f} | "
                        f"{pred / sim:.2f} | {np.mean([x['attainment'] for x in sims]):.3f} |")
    return ["", "## Intra-GPU (semi-PD): predicted vs simulated TTFT", "",
            "Whole intra-GPU groups on H100-SXM. The prefill share moves up to BW_SATURATION_SHARE (0.5) when the "
            "prefill rate crosses the decode rate below it (the decode rate does not depend on the share there). "
            "Predicted: per-instance M/G/1 with Poisson arrivals (planner/serve/capacity.py); simulated: requests "
            "routed to instances by weighted round-robin (the KV stays on the instance), 2 seeds x 2,000 requests. "
            "Round-robin makes each instance's arrivals smoother than Poisson (Erlang-n), which the prediction "
            "does not credit.", "",
            "| group | ISL/OSL | share | analytic capacity req/s | x capacity | predicted p90 TTFT ms | simulated p90 "
            "TTFT ms | predicted / simulated | simulated attainment |", "|---|---|---|---|---|---|---|---|---|"] + rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent / "results" / "serve_batching.md"))
    ap.add_argument("--colocated-only", action="store_true",
                    help="only the colocated and intra-GPU sections (printed, not written)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    if args.colocated_only:
        print("\n".join(colocated_lines() + intra_gpu_lines()))
        return
    rows = [row(m, shape, n, isl, budget) for m, shape, n in CASES for isl in (500, 4000) for budget in (1, 8192)]
    plans = plan_rows()
    colocated = colocated_lines() + intra_gpu_lines()
    lines = ["# batched prefill up to a token budget", "",
             f"Command: `.venv/bin/python benchmarks/serve_batching_bench.py` ({time.perf_counter() - t0:.0f} s). "
             f"{machine_note()}", "",
             "Prefill instances (one, or two behind one router queue) on H100-SXM, engine vllm, TTFT SLO 600 ms at "
             "p90, Poisson arrivals, fixed ISL. K = prompts per step (budget // ISL, at least 1); S(1), S(K) = step "
             "of one / K prompts; peak = c·K/S(K). "
             "Analytic capacity: planner/serve/batching.py (M/G/(c·k) per batch cap k, best cap); simulated: the "
             "exact batch server of planner/serve/simulate.py, largest rate on a 2 % grid with p90 TTFT <= SLO.", "",
             "| instance | ISL | budget | K | S(1) ms | S(K) ms | peak req/s | peak prompt tok/s | analytic SLO "
             "capacity req/s | simulated sustained req/s | sim vs analytic | p90 TTFT at 0.8x cap ms (analytic / "
             "simulated) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"] + rows + [
             "", "Whole plans, Llama-3.1-70B on 16 H100-SXM, OSL 500, TTFT 600 ms / TPOT 20 ms at p90, engine vllm "
             "(`plan_serving`, default options): vLLM's default budget, budget = ISL (one prompt per step) and auto. "
             "The rate is the verified one (simulator replays accept it); goodput = rate x OSL / GPUs.", "",
             "| ISL | budget (used) | plan | rate req/s | goodput tok/s/GPU | simulated attainment | plan s |",
             "|---|---|---|---|---|---|---|"] + plans + colocated
    pathlib.Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
