"""Train planner benchmark: plan quality against published expert configurations, and search speed.

Usage: .venv/bin/python benchmarks/train_bench.py [--skip-published] [--skip-speed] [--brute-cap SEC]
Writes benchmarks/results/train.md.

Quality: for every complete row of ../shared/calibration/published_training_runs.csv (degrees given and the
architecture buildable), the planner plans for the row's model, GPU, GPU count, global batch and sequence
length; the published configuration is costed by the same model (fields the source leaves blank, e.g.
micro-batch or recompute, take their best value for the published degrees). Both predicted throughputs
and their ratio are reported.
MoE plans: the three MoE cases of issue 9 with their decision and largest time parts.
Speed: wall and CPU time of plan_training on the three scale targets beside a brute-force baseline that costs
every enumerated strategy with costmodels.training.estimate_training (even split), measured in the same run
(capped; beyond the cap the rate is extrapolated and marked so).
"""

import argparse
import csv
import itertools
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import machine_note  # noqa: E402

import profiles  # noqa: E402
from costmodels.hardware import ClusterSpec  # noqa: E402
from costmodels.model import ModelSpec  # noqa: E402
from costmodels.parallel import ParallelConfig, TrainingWorkload  # noqa: E402
from costmodels.training import estimate_training, even_stage_layers  # noqa: E402
from planner.train import TrainOptions, plan_training  # noqa: E402
from planner.train.request import TrainRequest  # noqa: E402
from planner.train.space import configs_for_shape, shapes  # noqa: E402

CSV = ROOT.parent / "shared" / "calibration" / "published_training_runs.csv"
OUT = ROOT / "benchmarks" / "results" / "train.md"
GPU_PROFILES = {"A100-SXM4-80GB": "a100-80gb", "A100": "a100-80gb", "H100": "h100-sxm", "H100-80GB": "h100-sxm"}
MOE_PROFILES = {"Mixtral-8x22B": "mixtral-8x22b", "Qwen2-57B-A14B": "qwen2-57b-a14b"}


def _int(v):
    return int(float(v)) if v not in ("", None) else None


def gpt_model(row) -> ModelSpec:
    h, heads = _int(row["hidden"]), _int(row["heads"])
    return ModelSpec(name=row["model"], layers=_int(row["layers"]), hidden=h, heads=heads, kv_heads=heads,
                     head_dim=h // heads, ffn=_int(row["ffn"]) or 4 * h, vocab=_int(row["vocab"]) or 51200,
                     gated_mlp=False, attention="mha", tied_embeddings=True, source="published_training_runs.csv")


def row_model(row) -> ModelSpec | None:
    name = row["model"]
    if name in MOE_PROFILES:
        return profiles.load_model(MOE_PROFILES[name])
    if name.startswith("GPT") and row["layers"] and row["hidden"] and row["heads"]:
        return gpt_model(row)
    return None


def published_configs(row, model: ModelSpec, workload: TrainingWorkload) -> list[ParallelConfig]:
    """The published configuration; blank fields enumerate their plausible values."""
    tp, pp, cp, dp = _int(row["tp"]), _int(row["pp"]), _int(row["cp"]) or 1, _int(row["dp"])
    ep = _int(row["ep"]) or 1
    folding = "w/ Folding" in row["notes"]
    etp = 1 if (model.moe is None or folding) else tp  # MCore before folding: experts use the attention tp
    vpps = [_int(row["vpp"])] if row["vpp"] else [1, 2, 3, 4]
    mbss = [_int(row["micro_batch"])] if row["micro_batch"] else [1, 2, 4, 8]
    recs = ["full"] if row["recompute"].startswith("full") else ["none", "selective", "full"]
    zero = 0 if "2021" in row["source"] or "GPT-3 Example" in row["source"] else 1  # DDP then, distopt later
    out = []
    for vpp, mbs, rec in itertools.product(vpps, mbss, recs):
        if workload.global_batch % (dp * mbs):
            continue
        if vpp > 1 and (pp == 1 or model.layers % (pp * vpp) or (workload.global_batch // (dp * mbs)) % pp):
            continue
        out.append(ParallelConfig(tp=tp, pp=pp, dp=dp, cp=cp, ep=ep, etp=etp, vpp=vpp, mbs=mbs, zero=zero,
                                  recompute=rec, sequence_parallel=tp > 1 and ("2024" in row["source"] or
                                                                               model.moe is not None),
                                  stage_layers=even_stage_layers(model.layers, pp)))
    return out


def quality(rows) -> list[str]:
    lines = ["| row | model | GPUs | published config (best completion) | published tok/s/GPU | planned config | "
             "planned tok/s/GPU | ratio | plan s |", "|---|---|---|---|---|---|---|---|---|"]
    for i, row in enumerate(rows):
        model = row_model(row)
        if model is None or not row["tp"] or not row["pp"]:
            continue
        device = profiles.load_device(GPU_PROFILES[row["gpu"]])
        gpus = _int(row["num_gpus"])
        cluster = ClusterSpec.homogeneous(device, gpus)
        workload = TrainingWorkload(global_batch=_int(row["global_batch"]), seq_len=_int(row["seq_len"]))
        best_pub = None
        for cfg in published_configs(row, model, workload):
            est = estimate_training(model, cluster, workload, cfg)
            if est.feasible and (best_pub is None or est.step_time_s < best_pub[1].step_time_s):
                best_pub = (cfg, est)
        started = time.perf_counter()
        plan = plan_training(model, cluster, workload, options=TrainOptions(allow_cross_node_ep=True))
        elapsed = time.perf_counter() - started
        d, p = plan["decision"], plan["predicted"]
        planned = (f"tp{d['tp']} pp{d['pp']} dp{d['dp']} cp{d['cp']} ep{d['ep']} etp{d['etp']} vpp{d['vpp']} "
                   f"mbs{d['mbs']} z{d['zero']} {d['recompute']}")
        if best_pub is None:
            pub, pub_tok, ratio = "infeasible in the cost model", "-", "-"
        else:
            c, est = best_pub
            pub = (f"tp{c.tp} pp{c.pp} dp{c.dp} cp{c.cp} ep{c.ep} etp{c.etp} vpp{c.vpp} mbs{c.mbs} z{c.zero} "
                   f"{c.recompute}")
            pub_tok = f"{est.tokens_per_s_per_gpu:.1f}"
            ratio = f"{p['tokens_per_s_per_gpu'] / est.tokens_per_s_per_gpu:.3f}"
        lines.append(f"| {i + 2} | {row['model']} | {gpus} | {pub} | {pub_tok} | {planned} | "
                     f"{p['tokens_per_s_per_gpu']:.1f} | {ratio} | {elapsed:.2f} |")
        print(lines[-1], flush=True)
    return lines


def brute_force_time(request: TrainRequest, cap_s: float) -> tuple[float, int, bool]:
    """(seconds, strategies, extrapolated) to cost every enumerated strategy with estimate_training."""
    pool = request.cluster.primary
    configs = [c for s in shapes(request, request.cluster.num_devices, pool) for c in configs_for_shape(request, s)]
    started, done = time.perf_counter(), 0
    for c in configs:
        estimate_training(request.model, request.cluster, request.workload,
                          ParallelConfig(**{**_fields(c),
                                            "stage_layers": even_stage_layers(request.model.layers, c.pp)}))
        done += 1
        if time.perf_counter() - started > cap_s:
            break
    elapsed = time.perf_counter() - started
    return elapsed * len(configs) / done, len(configs), done < len(configs)


def _fields(c: ParallelConfig) -> dict:
    return {k: getattr(c, k) for k in ("tp", "pp", "dp", "cp", "ep", "etp", "vpp", "mbs", "zero", "recompute",
                                       "sequence_parallel")}


def gpt_1t() -> ModelSpec:
    return ModelSpec(name="gpt-1t", layers=128, hidden=25600, heads=160, kv_heads=160, head_dim=160, ffn=102400,
                     vocab=51200, gated_mlp=False, attention="mha", tied_embeddings=True)


SPEED_CASES = (
    ("Llama-3-70B, 1024 x H100, gbs 1024 x 8192", lambda: profiles.load_model("llama3-70b"), "h100-sxm", 1024, 1024,
     8192, 3.0),
    ("GPT 1T, 3072 x A100-80GB, gbs 3072 x 2048", gpt_1t, "a100-80gb", 3072, 3072, 2048, 10.0),
    ("DeepSeek-V3, 2048 x H800, gbs 15360 x 4096", lambda: profiles.load_model("deepseek-v3"), "h800", 2048,
     15360, 4096, 20.0),
)
DEEPSEEK_RUN = dict(dtype="fp8", a2a_dedup=True, fp8_dispatch=True, a2a_overlap=True)
"""the options DeepSeek-V3's own run used (arXiv 2412.19437): FP8, node-level de-dup, FP8 dispatch, overlap"""
MOE_CASES = (  # issue 9: plans whose EP, ZeRO and CP the breakdown justifies; (options, cross-node EP)
    ("mixtral-8x22b", "h100-sxm", 128, 256, 4096, {}, False),
    ("qwen3-235b-a22b", "h100-sxm", 256, 2048, 4096, {}, False),
    ("deepseek-v3", "h800", 2048, 15360, 4096, {}, False),
    ("deepseek-v3", "h800", 2048, 15360, 4096, DEEPSEEK_RUN, True),
)


def moe_plans() -> list[str]:
    lines = ["| model | GPUs | options | plan | step s | MFU | memory GiB | largest time parts (s per step) | "
             "vs Megatron rule |", "|---|---|---|---|---|---|---|---|---|"]
    for name, gpu, gpus, gbs, seq, run, cross_ep in MOE_CASES:
        cluster = ClusterSpec.homogeneous(profiles.load_device(gpu), gpus)
        workload = TrainingWorkload(global_batch=gbs, seq_len=seq, **run)
        plan = plan_training(profiles.load_model(name), cluster, workload,
                             options=TrainOptions(allow_cross_node_ep=cross_ep))
        shown = " ".join(k for k in run if k != "dtype") + (" fp8" if run else "")
        shown += " cross-node EP" if cross_ep else ""
        d, p = plan["decision"], plan["predicted"]
        parts = sorted(p["breakdown"]["time_s"].items(), key=lambda kv: -kv[1])[:5]
        base = plan["baselines"]["megatron_rule"]
        lines.append(f"| {name} | {gpus} {gpu} | {shown or 'defaults'} | tp{d['tp']} pp{d['pp']} dp{d['dp']} "
                     f"cp{d['cp']} ep{d['ep']} etp{d['etp']} vpp{d['vpp']} mbs{d['mbs']} zero{d['zero']} "
                     f"{d['recompute']} | "
                     f"{p['step_time_s']:.2f} | {100 * p['mfu']:.1f}% | {p['memory_per_gpu_bytes'] / 2**30:.1f} | "
                     + ", ".join(f"{k} {v:.2f}" for k, v in parts)
                     + f" | {base.get('plan_speedup', 0):.2f}x |")
        print(lines[-1], flush=True)
    return lines


def speed(cap_s: float) -> list[str]:
    lines = ["| case | target s | plan s (wall) | plan s (CPU) | strategies | costed | brute force s "
             "(estimate_training each) | speedup |", "|---|---|---|---|---|---|---|---|"]
    for label, make_model, gpu, gpus, gbs, seq, target in SPEED_CASES:
        model = make_model()
        cluster = ClusterSpec.homogeneous(profiles.load_device(gpu), gpus)
        workload = TrainingWorkload(global_batch=gbs, seq_len=seq)
        started, cpu = time.perf_counter(), time.process_time()
        plan = plan_training(model, cluster, workload)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        search = plan["solver"]["search"]
        brute, count, extrapolated = brute_force_time(TrainRequest(model=model, cluster=cluster, workload=workload),
                                                      cap_s)
        mark = " (extrapolated)" if extrapolated else ""
        lines.append(f"| {label} | {target:g} | {elapsed:.2f} | {cpu:.2f} | {count} | {search['evaluated']} | "
                     f"{brute:.1f}{mark} | {brute / elapsed:.1f}x |")
        print(lines[-1], flush=True)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-published", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--brute-cap", type=float, default=60.0, help="seconds of brute force per case before "
                        "extrapolating")
    args = parser.parse_args()
    out = ["## train: hybrid-parallel training planner", "",
           f"Command: `.venv/bin/python benchmarks/train_bench.py`. {machine_note()}", ""]
    if not args.skip_published:
        with CSV.open() as f:
            rows = list(csv.DictReader(f))
        out += ["### Planned vs published configurations (same cost model)", "",
                "Ratio = planned / published predicted tokens/s/GPU (>= 1 means the plan is at least as fast). "
                "Blank fields of a published row (micro-batch, recompute, vpp) take their best value. "
                "Rows without tp/pp or without a buildable architecture are left out.", ""]
        out += quality(rows) + [""]
    out += ["### MoE plans (issue 9)", "",
            "Default options (megatron, bf16, EP and TP inside a node). The largest time parts are what `explain` "
            "shows; they justify the EP, ZeRO and CP choice.", ""]
    out += moe_plans() + [""]
    if not args.skip_speed:
        out += ["### Search speed", "", "Brute force = costing every enumerated strategy (even split) with "
                "`estimate_training`, the same space the planner searches with bounds.", ""]
        out += speed(args.brute_cap) + [""]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(out) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
