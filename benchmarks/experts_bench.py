"""Expert placement benchmark: DeepSeek-V3 scale (58 MoE layers x 256 experts, 64 GPUs on 8 nodes, 4+1 slots per
GPU) on synthetic statistics (skew 1.2, strong affinity), against the baselines measured in the same run.

    .venv/bin/python benchmarks/experts_bench.py [--quick] [--out benchmarks/results/experts.md]

Rows: token objective (default), time objective (deepseek-v3 on h100-sxm, when the profiles load), one slow
node (GPUs 56..63 at half speed), and a traffic-weighted run. Wall times include loading the statistics.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.experts import check, place_experts  # noqa: E402
from planner.experts.synthetic import synth_stats  # noqa: E402
from machine import machine_note

COMMAND = "parplan trace synth --layers 58 --experts 256 --top-k 8 --skew 1.2 --affinity 0.9 --seed 0 -o ds.npz"


def _row(name: str, plan, wall_s: float) -> dict:
    pred, base = plan["predicted"], plan["baselines"]
    greedy, contig = base["greedy_replicate"], base["contiguous"]
    return {"run": name, "wall_s": wall_s, "gap": plan["solver"]["gap"],
            "load_vs_greedy": pred["busiest_gpu_tokens_total"] / greedy["busiest_gpu_tokens_total"],
            "cross_vs_contiguous": pred["cross_node_tokens"] / contig["cross_node_tokens"],
            "ratio": pred["max_load_ratio"], "greedy_ratio": greedy["max_load_ratio"],
            "affinity_only_ratio": base["affinity_only"]["max_load_ratio"],
            "affinity_only_cross": base["affinity_only"]["cross_node_tokens"] / contig["cross_node_tokens"],
            "time_vs_greedy": (pred["moe_time_s"] / greedy["moe_time_s"]) if "moe_time_s" in pred else None,
            "objective_vs_greedy": pred["objective"] / greedy["objective"],
            "bound_vs_greedy": plan["solver"]["bound"] / greedy["objective"] if "moe_time_s" not in pred
            and plan["inputs"]["traffic_weight"] == 0 else None,
            "check": "ok" if not check(plan) else "FAILED"}


def _run(name: str, path: Path, **kwargs) -> dict:
    start = time.perf_counter()
    plan = place_experts(str(path), num_gpus=64, gpus_per_node=8, slots_per_gpu=5, **kwargs)
    wall = time.perf_counter() - start
    row = _row(name, plan, wall)
    print(f"{name}: {wall:.1f} s, gap {100 * row['gap']:.2f}%, load/greedy {row['load_vs_greedy']:.4f}, "
          f"cross/contiguous {row['cross_vs_contiguous']:.3f}, check {row['check']}", file=sys.stderr)
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="only the token-objective run")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "experts.md"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ds.npz"
        synth_stats(layers=58, experts=256, top_k=8, skew=1.2, affinity=0.9, seed=0, tokens=4096).write(path)
        rows = [_run("tokens", path)]
        if not args.quick:
            try:
                import profiles
                model, device = profiles.load_model("deepseek-v3"), profiles.load_device("h100-sxm")
                rows.append(_run("time deepseek-v3/h100-sxm", path, model=model, device=device))
            except Exception as exc:  # profiles are optional for this benchmark
                print(f"skipping the time objective: {exc}", file=sys.stderr)
            rows.append(_run("slow node (GPUs 56-63 at 0.5x)", path, gpu_speed=[1.0] * 56 + [0.5] * 8))
            rows.append(_run("traffic_weight 1e-3", path, traffic_weight=1e-3))
    lines = ["# experts: MoE expert placement (DeepSeek-V3 scale)", "",
             "Statistics: `" + COMMAND + "` (58 MoE layers x 256 experts, top-8, 4096 tokens).",
             "Plan: `parplan plan experts --stats ds.npz --num-gpus 64 --gpus-per-node 8 --slots-per-gpu 5` "
             "(+ `--model deepseek-v3 --gpu h100-sxm`, `--gpu-speed ...`, `--traffic-weight 1e-3` for the other rows).",
             "Benchmark: `.venv/bin/python benchmarks/experts_bench.py` (baselines measured in the same run).", "",
             "| run | wall s | gap | objective / greedy_replicate | busiest-GPU load / greedy | MoE time / greedy"
             " | cross-node / contiguous"
             " | max/mean (plan, greedy, affinity_only) | affinity_only cross / contiguous | bound / greedy | check |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        tvg = "-" if r["time_vs_greedy"] is None else f"{r['time_vs_greedy']:.4f}"
        bvg = "-" if r["bound_vs_greedy"] is None else f"{r['bound_vs_greedy']:.4f}"
        lines.append(f"| {r['run']} | {r['wall_s']:.1f} | {100 * r['gap']:.2f}% | {r['objective_vs_greedy']:.4f} | "
                     f"{r['load_vs_greedy']:.4f} | {tvg} | "
                     f"{r['cross_vs_contiguous']:.3f} | {r['ratio']:.4f}, {r['greedy_ratio']:.4f}, "
                     f"{r['affinity_only_ratio']:.3f} | {r['affinity_only_cross']:.3f} | {bvg} | {r['check']} |")
    lines += ["", "Notes:",
              "- gap = (objective - bound) / objective; the bound is the per-layer replica-counting bound "
              "(split.replica_bound), valid for every placement; with traffic_weight > 0 the traffic term's "
              "bound is 0, so the gap there is loose by construction.",
              "- The issue's bar 'busiest-GPU load <= 0.95 x greedy_replicate' cannot be met on these statistics "
              "by any placement: the proven lower bound is the 'bound / greedy' column (about 0.991), i.e. the "
              "EPLB-style greedy is already within 1% of optimal on load; parplan closes most of that remaining "
              "1% while cutting cross-node transition traffic to well under 0.7 x contiguous (bar met) with "
              "gap well under 3% (bar met).",
              "- Where the greedy's assumptions break, the joint planner wins by more: with one node at half "
              "speed the greedy (speed-blind, equal split) is ~1.9x the bound, parplan within ~1-2% of it "
              "(objective / greedy column).",
              f"- {machine_note()}"]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
