"""Expert placement benchmark: DeepSeek-V3 scale (58 MoE layers x 256 experts, 64 GPUs on 8 nodes, 4+1 slots per
GPU) on synthetic statistics, against the baselines measured in the same run.

    .venv/bin/python benchmarks/experts_bench.py [--quick] [--out benchmarks/results/experts.md]

Table 1 (one row per routing-structure family of `parplan trace synth --family`, skew 1.2, affinity 0.9):
cross-node traffic against contiguous and affinity-only, busiest-GPU load against the proven bound and
against greedy_replicate, whether affinity was found, wall time. Table 2 (clustered family): token
objective, time objective (deepseek-v3 on h100-sxm), one slow node, a traffic-weighted run.
--quick: table 1 only. Wall times include loading the statistics.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import machine_note

from planner.experts import check, place_experts  # noqa: E402
from planner.experts.affinity import traffic_lower_bound  # noqa: E402
from planner.experts.synthetic import synth_stats  # noqa: E402

COMMAND = "parplan trace synth --layers 58 --experts 256 --top-k 8 --skew 1.2 --affinity 0.9 --seed 0 -o ds.npz"
GPUS_PER_NODE = 8
LOAD_SLACK = 0.01
"""the target's load tolerance: busiest GPU within 1 % of the layer bound"""
FAMILIES = ("clustered", "sliding", "permuted", "powerlaw", "drifting", "none")


def _family_stats(family: str):
    """DeepSeek-V3-scale statistics of one family (drifting: 4 windows of 1024 tokens)."""
    drifting = family == "drifting"
    return synth_stats(layers=58, experts=256, top_k=8, skew=1.2, affinity=0.9, seed=0, family=family,
                       tokens=1024 if drifting else 4096, windows=4 if drifting else 1)


def _family_row(family: str, tmp: Path) -> dict:
    path = tmp / f"{family}.npz"
    stats = _family_stats(family)
    stats.write(path)
    start = time.perf_counter()
    plan = place_experts(str(path), num_gpus=64, gpus_per_node=GPUS_PER_NODE, slots_per_gpu=5)
    wall = time.perf_counter() - start
    pred, base, bound = plan["predicted"], plan["baselines"], plan["solver"]["bound"]
    contig = base["contiguous"]["cross_node_tokens"]
    node_cap = GPUS_PER_NODE * np.asarray(pred["layer_max_gpu_tokens"])
    lower = traffic_lower_bound(stats.transitions, stats.expert_load, node_cap)
    slack = GPUS_PER_NODE * (1 + LOAD_SLACK) * np.asarray(pred["layer_bound"])  # any plan within the 1 % target
    lower_slack = traffic_lower_bound(stats.transitions, stats.expert_load, slack)
    row = {"lower_vs_contiguous": lower / contig, "cross_vs_lower": pred["cross_node_tokens"] / lower,
           "lower_slack_vs_contiguous": lower_slack / contig,
           "family": family, "wall_s": wall, "cross_vs_contiguous": pred["cross_node_tokens"] / contig,
           "cross_vs_affinity_only": pred["cross_node_tokens"] / base["affinity_only"]["cross_node_tokens"],
           "affinity_only_vs_contiguous": base["affinity_only"]["cross_node_tokens"] / contig,
           "load_vs_bound": pred["busiest_gpu_tokens_total"] / bound,
           "greedy_vs_bound": base["greedy_replicate"]["busiest_gpu_tokens_total"] / bound,
           "affinity_found": pred["affinity_found"], "check": "ok" if not check(plan) else "FAILED"}
    print(f"{family}: {wall:.1f} s, cross/contiguous {row['cross_vs_contiguous']:.3f} (lower bound "
          f"{row['lower_vs_contiguous']:.3f}), load/bound "
          f"{row['load_vs_bound']:.5f}, affinity {row['affinity_found']}, check {row['check']}", file=sys.stderr)
    return row


def _family_table(rows: list[dict]) -> list[str]:
    lines = ["| family | wall s | cross-node / contiguous | / affinity_only | affinity_only / contiguous"
             " | traffic lower bound / contiguous | cross-node / lower bound | lower bound at 1.01 x load bound"
             " / contiguous | busiest-GPU load / bound | greedy_replicate / bound | affinity found | check |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['family']} | {r['wall_s']:.1f} | {r['cross_vs_contiguous']:.3f} | "
                     f"{r['cross_vs_affinity_only']:.3f} | {r['affinity_only_vs_contiguous']:.3f} | "
                     f"{r['lower_vs_contiguous']:.3f} | {r['cross_vs_lower']:.3f} | "
                     f"{r['lower_slack_vs_contiguous']:.3f} | "
                     f"{r['load_vs_bound']:.5f} | {r['greedy_vs_bound']:.4f} | {r['affinity_found']} | {r['check']} |")
    return lines


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
    plan = place_experts(str(path), num_gpus=64, gpus_per_node=GPUS_PER_NODE, slots_per_gpu=5, **kwargs)
    wall = time.perf_counter() - start
    row = _row(name, plan, wall)
    print(f"{name}: {wall:.1f} s, gap {100 * row['gap']:.2f}%, load/greedy {row['load_vs_greedy']:.4f}, "
          f"cross/contiguous {row['cross_vs_contiguous']:.3f}, check {row['check']}", file=sys.stderr)
    return row


def _run_table(rows: list[dict]) -> list[str]:
    lines = ["| run | wall s | gap | objective / greedy_replicate | busiest-GPU load / greedy | MoE time / greedy"
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
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="only the family table")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "experts.md"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        families = [_family_row(f, Path(tmp)) for f in FAMILIES]
        path = Path(tmp) / "clustered.npz"
        if not args.quick:
            rows.append(_run("tokens", path))
            try:
                import profiles
                model, device = profiles.load_model("deepseek-v3"), profiles.load_device("h100-sxm")
                rows.append(_run("time deepseek-v3/h100-sxm", path, model=model, device=device))
            except Exception as exc:  # profiles are optional for this benchmark
                print(f"skipping the time objective: {exc}", file=sys.stderr)
            rows.append(_run("slow node (GPUs 56-63 at 0.5x)", path, gpu_speed=[1.0] * 56 + [0.5] * 8))
            rows.append(_run("traffic_weight 1e-3", path, traffic_weight=1e-3))
    lines = ["# experts: MoE expert placement (DeepSeek-V3 scale)", "",
             "Statistics: `parplan trace synth --layers 58 --experts 256 --top-k 8 --skew 1.2 --affinity 0.9 --seed 0 "
             "--family F -o F.npz` (4096 tokens; drifting: `--tokens 1024 --windows 4`).",
             "Plan: `parplan plan experts --stats F.npz --num-gpus 64 --gpus-per-node 8 --slots-per-gpu 5` "
             "(default method auto, time limit 60 s).",
             "Benchmark: `.venv/bin/python benchmarks/experts_bench.py` (baselines measured in the same run).", "",
             "## Per routing-structure family", ""] + _family_table(families)
    if rows:
        lines += ["", "## Clustered family: objectives, heterogeneous GPUs, traffic weight", "",
                  "(+ `--model deepseek-v3 --gpu h100-sxm`, `--gpu-speed ...`, `--traffic-weight 1e-3` for the rows "
                  "after the first)", ""] + _run_table(rows)
    lines += ["", "Notes:",
              "- bound = sum over layers of each layer's proven bound: the group (component) bound of "
              "planner/experts/groups.py, which equals the layer optimum on identical GPUs (E <= (S-1) G + 1 here: "
              "the token average); busiest-GPU load / bound = 1 means every layer is optimal.",
              "- traffic lower bound: planner/experts/affinity.py traffic_lower_bound, valid for every placement "
              "whose nodes serve at most gpus_per_node x the plan's busiest-GPU tokens in each layer (so for every "
              "placement at least as load-balanced as the plan): per layer boundary, each expert keeps on its node "
              "at most the fractional knapsack of its transitions into one node's capacity (taken by rows and by "
              "columns, the smaller); slot and piece limits are ignored, so it is loose. A lower bound above 0.6 x "
              "contiguous proves the 0.6 target unreachable for that family at this load balance. "
              "The column 'at 1.01 x load bound' takes node capacity gpus_per_node x 1.01 x each layer's load "
              "bound: no placement within "
              "the 1 % load target can go below it.",
              "- affinity_only ignores load: its busiest GPU is far above the bound.",
              "- affinity found: the plan's cross-node share of the transitions is below 0.95 x that of a random "
              "balanced assignment (1 - 1/8); when it is not, the load-optimal layers are kept.",
              f"- {machine_note()}"]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
