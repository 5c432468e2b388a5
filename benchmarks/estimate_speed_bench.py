"""How fast the training cost model evaluates configurations through the Python API.

    .venv/bin/python benchmarks/estimate_speed_bench.py [--n 10000]

Enumerates configurations of llama3-70b on 64 H100-SXM (gbs 256, seq 4096) — tp, pp, cp, dp, vpp, mbs,
ZeRO stage, recompute, sequence parallelism (over 10,000 distinct ones, including structurally
impossible ones such as vpp not dividing the stage's layers, which are rejected with reasons) — and
times `costmodels.estimate_training` on the first `n` of them end to end (fresh process, caches cold). Target
(issue #2): 10,000 evaluations in <= 2 s on the 2-core CI machine. Results go to stdout and
benchmarks/results/estimate_speed.md.
"""

import argparse
import itertools
import pathlib
import time

from machine import machine_note

from costmodels import ClusterSpec, ParallelConfig, TrainingWorkload, estimate_training
from profiles import load_device, load_model

OUT = pathlib.Path(__file__).resolve().parent / "results" / "estimate_speed.md"


def configurations(num_gpus: int, workload: TrainingWorkload):
    out = []
    for tp, pp, cp, vpp, mbs, zero, recompute, sp in itertools.product(
            (1, 2, 4, 8), (1, 2, 4, 8, 16), (1, 2, 4), (1, 2, 4, 5), (1, 2, 4, 8), (0, 1, 2, 3),
            ("none", "selective", "full"), (True, False)):
        if num_gpus % (tp * pp * cp) or (vpp > 1 and pp == 1) or (sp and tp == 1):
            continue
        dp = num_gpus // (tp * pp * cp)
        if workload.global_batch % (dp * mbs):
            continue
        out.append(ParallelConfig(tp=tp, pp=pp, dp=dp, cp=cp, vpp=vpp, mbs=mbs, zero=zero, recompute=recompute,
                                  sequence_parallel=sp))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    model, device = load_model("llama3-70b"), load_device("h100-sxm")
    cluster = ClusterSpec.homogeneous(device, 64)
    workload = TrainingWorkload(global_batch=256, seq_len=4096)
    configs = configurations(64, workload)
    feasible = rejected = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for i in range(args.n):
        est = estimate_training(model, cluster, workload, configs[i % len(configs)])
        feasible += est.feasible
        rejected += est.step_time_s == 0.0
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    per = elapsed / args.n * 1e6
    line = (f"{args.n} evaluations ({len(configs)} distinct configurations enumerated; of those evaluated "
            f"{feasible} fit, {args.n - feasible - rejected} overflow memory, {rejected} structurally rejected) in "
            f"{elapsed:.3f} s wall ({cpu:.3f} s CPU) = {per:.1f} us per configuration (target <= 2 s for 10,000)")
    print(line)
    if not args.no_write:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text("# estimate_training speed\n\n"
                       "Command: `.venv/bin/python benchmarks/estimate_speed_bench.py`\n\n"
                       f"{machine_note()}\n\n"
                       f"llama3-70b on 64 x h100-sxm, gbs 256, seq 4096: {line}.\n")


if __name__ == "__main__":
    main()
