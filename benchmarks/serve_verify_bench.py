"""Serve plan verification on fresh seeds (issue 17 item 2): does the accepted rate hold on replays it never saw?

    .venv/bin/python benchmarks/serve_verify_bench.py [--out benchmarks/results/serve_verify.md]

Plans Llama-3.1-70B on 16 H100 (ISL 4000, OSL 500, TTFT 600 ms, TPOT 20 ms at p90, attainment 0.9, engine vllm,
default options: 4 replays of 2,000 requests behind the accepted rate), then replays the plan at its rate on 20
fresh seeds (1000..1019) of 5,000 requests each and counts the replays with attainment >= 0.9 (target: >= 19).
"""

import argparse
import pathlib
import sys
import time

sys.path[:0] = [str(pathlib.Path(__file__).resolve().parents[1]), str(pathlib.Path(__file__).resolve().parent)]

from machine import machine_note  # noqa: E402

import profiles  # noqa: E402
from costmodels.hardware import ClusterSpec  # noqa: E402
from planner import plan_serving  # noqa: E402
from planner.serve import ServingWorkload, simulate_plan  # noqa: E402

FRESH = range(1000, 1020)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent / "results" / "serve_verify.md"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    wl = ServingWorkload(input_len=4000, output_len=500, ttft_s=0.6, tpot_s=0.02)
    plan = plan_serving(profiles.load_model("llama3.1-70b"),
                        ClusterSpec.homogeneous(profiles.load_device("h100-sxm"), 16), wl)
    plan_s = time.perf_counter() - t0
    sim = plan["simulated"]
    rate = plan["predicted"]["rate_rps"]
    fresh = [simulate_plan(plan, requests=5000, seed=s)["attainment"] for s in FRESH]
    ok = sum(a >= 0.9 for a in fresh)
    groups = "; ".join(f"{g['instances']}x {g['role']} tp{g['tp']}pp{g['pp']}" for g in plan["decision"]["groups"])
    lines = ["# serve plan verification on fresh seeds", "",
             f"Command: `.venv/bin/python benchmarks/serve_verify_bench.py`. {machine_note()}", "",
             f"Plan ({plan_s:.1f} s): mode {plan['decision']['mode']}: {groups}; rate {rate:.3f} req/s, "
             f"{plan['predicted']['goodput_tokens_per_s_per_gpu']:.1f} output tok/s/GPU.",
             f"Accepted on {sim['replays']} replays of {sim['requests']} requests: attainment {sim['attainment']:.3f}, "
             f"95% interval [{sim['attainment_interval'][0]:.3f}, {sim['attainment_interval'][1]:.3f}], "
             f"replays {', '.join(f'{a:.3f}' for a in sim['attainment_seeds'])}.", "",
             f"20 fresh seeds x 5,000 requests at {rate:.3f} req/s: {ok}/20 with attainment >= 0.9 "
             f"(target >= 19); min {min(fresh):.3f}, mean {sum(fresh) / 20:.3f}.", "",
             "| seed | attainment |", "|---|---|"] + [f"| {s} | {a:.4f} |" for s, a in zip(FRESH, fresh, strict=True)]
    pathlib.Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
