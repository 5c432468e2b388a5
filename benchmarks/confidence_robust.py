"""Robust vs expected choice of `plan train` on the benchmark cases (a section of benchmarks/results/confidence.md).

Each case is planned twice, with TrainOptions(objective="expected") and ("robust"); the table shows both
choices, their expected step times and their 90th-percentile step times (the upper end of the 80 % interval),
and whether the robust winner is proven over the whole space (planner/confidence/robust.py).
"""

import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import profiles  # noqa: E402
from costmodels.hardware import ClusterSpec  # noqa: E402
from costmodels.model import ModelSpec  # noqa: E402
from costmodels.parallel import TrainingWorkload  # noqa: E402
from planner.train import TrainOptions, plan_training  # noqa: E402


def gpt_1t() -> ModelSpec:
    return ModelSpec(name="gpt-1t", layers=128, hidden=25600, heads=160, kv_heads=160, head_dim=160, ffn=102400,
                     vocab=51200, gated_mlp=False, attention="mha", tied_embeddings=True)


CASES = (  # label, model, gpu, gpus, gbs, seq, workload options
    ("Llama-3-8B, 16 x H100", "llama3-8b", "h100-sxm", 16, 32, 4096, {}),
    ("Llama-3-8B, 64 x H100, torchtitan", "llama3-8b", "h100-sxm", 64, 256, 8192, {"framework": "torchtitan"}),
    ("Llama-3-70B, 64 x H100", "llama3-70b", "h100-sxm", 64, 256, 4096, {}),
    ("Llama-3-70B, 1024 x H100", "llama3-70b", "h100-sxm", 1024, 1024, 8192, {}),
    ("Llama-3-70B, 64 x A100-80GB", "llama3-70b", "a100-80gb", 64, 128, 4096, {}),
    ("Llama-3-8B, 64 x A100-80GB, torchtitan", "llama3-8b", "a100-80gb", 64, 64, 8192, {"framework": "torchtitan"}),
    ("Mixtral-8x22B, 128 x H100", "mixtral-8x22b", "h100-sxm", 128, 256, 4096, {}),
    ("Llama-3-8B, 32 x H200, torchtitan FP8", "llama3-8b", "h200", 32, 64, 8192,
     {"framework": "torchtitan", "dtype": "fp8"}),
    ("Llama-3-70B, 64 x B200 (no rows)", "llama3-70b", "b200", 64, 256, 4096, {}),
    ("GPT 1T, 3072 x A100-80GB", gpt_1t, "a100-80gb", 3072, 3072, 2048, {}),
)


def _strategy(d: dict) -> str:
    return (f"tp{d['tp']} pp{d['pp']} dp{d['dp']} cp{d['cp']} ep{d['ep']} vpp{d['vpp']} mbs{d['mbs']} z{d['zero']} "
            f"{d['recompute']}")


def _plan(case, objective: str):
    label, model_ref, gpu, gpus, gbs, seq, extra = case
    model = model_ref() if callable(model_ref) else profiles.load_model(model_ref)
    cluster = ClusterSpec.homogeneous(profiles.load_device(gpu), gpus)
    workload = TrainingWorkload(global_batch=gbs, seq_len=seq, **extra)
    return plan_training(model, cluster, workload, options=TrainOptions(objective=objective), time_limit_s=120)


def robust_lines() -> list[str]:
    rows = ["| case | expected choice | robust choice | step s (exp / rob) | p90 step s (exp / rob) | "
            "robust: expected-time cost | robust: p90 gain | proven | plan s (exp / rob) |",
            "|---|---|---|---|---|---|---|---|---|"]
    differ = []
    for case in CASES:
        t0 = time.perf_counter()
        e = _plan(case, "expected")
        t1 = time.perf_counter()
        r = _plan(case, "robust")
        t2 = time.perf_counter()
        ep, rp = e["predicted"], r["predicted"]
        e90, r90 = ep["interval"]["step_time_s"]["high"], rp["interval"]["step_time_s"]["high"]
        same = e["decision"] == r["decision"]
        cost, gain = rp["step_time_s"] / ep["step_time_s"] - 1, 1 - r90 / e90
        if not same:
            differ.append((cost, gain))
        rows.append(f"| {case[0]} | {_strategy(e['decision'])} | {'same' if same else _strategy(r['decision'])} | "
                    f"{ep['step_time_s']:.4g} / {rp['step_time_s']:.4g} | {e90:.4g} / {r90:.4g} | {cost:+.2%} | "
                    f"{gain:+.2%} | {'yes' if r['solver']['robust']['proven'] else 'no'} | "
                    f"{t1 - t0:.1f} / {t2 - t1:.1f} |")
        print(rows[-1], flush=True)
    if differ:
        costs, gains = [c for c, _ in differ], [g for _, g in differ]
        summary = (f"The robust choice differs from the expected one in **{len(differ)} of {len(CASES)} cases**; "
                   f"there it is {statistics.median(costs):+.2%} slower in expectation (median; max "
                   f"{max(costs):+.2%}) and its 90th-percentile step time is {statistics.median(gains):.2%} lower "
                   f"(median; max {max(gains):.2%}).")
    else:
        summary = f"The robust choice equals the expected one in all {len(CASES)} cases."
    return ["## Robust vs expected choice (`plan train --objective robust`)", "",
            "Each case planned with the default objective (fastest expected step time) and with `--objective robust` "
            "(fastest 90th-percentile step time: the upper end of each strategy's 80 % interval, which depends on "
            "its regime: framework and ZeRO stage, data-parallel scale, context, device). Cost = how much slower the "
            "robust choice is in expectation; gain = how much lower its 90th-percentile step time is.", "",
            summary, "", *rows, ""]
