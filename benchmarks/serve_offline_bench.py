"""Offline batch throughput (`estimate serve --offline`, engine trtllm) against published TensorRT-LLM numbers.

    .venv/bin/python benchmarks/serve_offline_bench.py [--out benchmarks/results/serve_offline.md]

Validation only, nothing is fitted to these rows. Source: TensorRT-LLM "Performance Overview"
(docs/source/performance/perf-overview.md, NVIDIA/TensorRT-LLM commit 00f37686, trtllm-bench throughput, PyTorch
backend, ModelOpt FP8 checkpoints; Total Output Throughput, divided here by the GPUs). Llama-3.3-70B has the
Llama-3.1-70B architecture (profile llama3.1-70b). Our side: FP8 weights and FP8 KV cache (ModelOpt FP8
checkpoints quantize the KV cache), the engine's fitted kernel constants, KV_MEMORY_FRACTION 0.90 (NVIDIA ran
0.90-0.95).
"""

import argparse
import pathlib
import statistics
import sys

sys.path[:0] = [str(pathlib.Path(__file__).resolve().parents[1]), str(pathlib.Path(__file__).resolve().parent)]

from machine import machine_note  # noqa: E402

import profiles  # noqa: E402
from planner.serve import estimate_serving  # noqa: E402

PUBLISHED = [
    # (model profile, gpu, tp, isl, osl, total output tokens/s)
    ("llama3.1-70b", "h100-sxm", 2, 128, 128, 6378), ("llama3.1-70b", "h100-sxm", 2, 128, 2048, 6651),
    ("llama3.1-70b", "h100-sxm", 2, 128, 4096, 4199), ("llama3.1-70b", "h100-sxm", 2, 500, 2000, 5222),
    ("llama3.1-70b", "h100-sxm", 2, 1000, 1000, 4205), ("llama3.1-70b", "h100-sxm", 2, 1000, 2000, 4146),
    ("llama3.1-70b", "h100-sxm", 2, 2048, 128, 762), ("llama3.1-70b", "h100-sxm", 2, 2048, 2048, 3082),
    ("llama3.1-70b", "h100-sxm", 2, 5000, 500, 898),
    ("llama3.1-70b", "h200", 1, 128, 128, 3803), ("llama3.1-70b", "h200", 1, 128, 2048, 4336),
    ("llama3.1-70b", "h200", 1, 128, 4096, 2872), ("llama3.1-70b", "h200", 1, 500, 2000, 3666),
    ("llama3.1-70b", "h200", 1, 1000, 1000, 2909), ("llama3.1-70b", "h200", 1, 1000, 2000, 2994),
    ("llama3.1-70b", "h200", 1, 2048, 128, 442), ("llama3.1-70b", "h200", 1, 2048, 2048, 2003),
    ("llama3.1-70b", "h200", 1, 5000, 500, 566),
    ("llama3.1-8b", "h100-sxm", 1, 128, 128, 28312), ("llama3.1-8b", "h100-sxm", 1, 128, 2048, 22714),
    ("llama3.1-8b", "h100-sxm", 1, 128, 4096, 14325), ("llama3.1-8b", "h100-sxm", 1, 500, 2000, 17660),
    ("llama3.1-8b", "h100-sxm", 1, 1000, 1000, 15220), ("llama3.1-8b", "h100-sxm", 1, 1000, 2000, 13899),
    ("llama3.1-8b", "h100-sxm", 1, 2048, 128, 3450), ("llama3.1-8b", "h100-sxm", 1, 2048, 2048, 9305),
    ("llama3.1-8b", "h100-sxm", 1, 5000, 500, 3459),
    ("llama3.1-8b", "h200", 1, 128, 128, 27911), ("llama3.1-8b", "h200", 1, 128, 2048, 26221),
    ("llama3.1-8b", "h200", 1, 128, 4096, 18027), ("llama3.1-8b", "h200", 1, 500, 2000, 20770),
    ("llama3.1-8b", "h200", 1, 1000, 1000, 17744), ("llama3.1-8b", "h200", 1, 1000, 2000, 16828),
    ("llama3.1-8b", "h200", 1, 2048, 128, 3538), ("llama3.1-8b", "h200", 1, 2048, 2048, 12194),
    ("llama3.1-8b", "h200", 1, 5000, 500, 3902),
]
SHORT_ISL = 128
"""rows at or below this ISL are summarised separately (the prompts most of a mixed step's budget can batch)"""


def _ours(model: str, gpu: str, tp: int, isl: int, osl: int, budget: int | None) -> dict:
    plan = estimate_serving(profiles.load_model(model), profiles.load_device(gpu), tp=tp, batch=1, isl=isl, osl=osl,
                            engine="trtllm", dtype="fp8", kv_dtype="fp8", offline=True, prefill_token_budget=budget)
    return plan["predicted"]


def _summary(label: str, ratios: list[float]) -> str:
    errors = sorted(abs(r - 1) for r in ratios)
    return (f"{label}: median |ours / published - 1| = {statistics.median(errors):.1%}, max {errors[-1]:.1%} "
            f"(median ratio {statistics.median(ratios):.2f}) over {len(ratios)} rows.")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent / "results" / "serve_offline.md"))
    args = ap.parse_args()
    lines = ["# offline throughput vs published TensorRT-LLM numbers (validation, not fitted)", "",
             f"Command: `.venv/bin/python benchmarks/serve_offline_bench.py`. {machine_note()}", "",
             "Published: TensorRT-LLM perf-overview.md (NVIDIA/TensorRT-LLM 00f37686), FP8, trtllm-bench throughput. "
             "Ours: `estimate serve --engine trtllm --dtype fp8 --kv-dtype fp8 --offline`, with mixed steps at the "
             "engine's token budget (8192: each step carries the running decodes and whole prompts up to the "
             "budget, planner/serve/offline.py) and, for comparison, `--prefill-token-budget 1` (one prompt per "
             "prefill step between decode steps, the model before batching). Llama-3.3-70B rows use the "
             "llama3.1-70b profile (same architecture). D = running decodes per step, p/F = prompts per step. The "
             "engine's per-sequence CPU work (an estimate: no table measures it) overlaps the GPU step "
             "(costmodels.serving.cpu_overhead_s, TensorRT-LLM's overlap scheduler); per-op decomposition of the "
             "8B decode steps against aiconfigurator: serve_aic_compare.md.", "",
             "| model | GPU | TP | ISL/OSL | published tok/s/GPU | ours (mixed) | ours / published | "
             "one prompt/step | ratio | B | D | p/F |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    mixed, single, short_mixed, short_single = [], [], [], []
    for model, gpu, tp, isl, osl, total in PUBLISHED:
        ours, old = _ours(model, gpu, tp, isl, osl, None), _ours(model, gpu, tp, isl, osl, 1)
        published = total / tp
        new_r = ours["offline_output_tokens_per_s_per_gpu"] / published
        old_r = old["offline_output_tokens_per_s_per_gpu"] / published
        mixed.append(new_r)
        single.append(old_r)
        if isl <= SHORT_ISL:
            short_mixed.append(new_r)
            short_single.append(old_r)
        lines.append(f"| {model} | {gpu} | {tp} | {isl}/{osl} | {published:,.0f} | "
                     f"{ours['offline_output_tokens_per_s_per_gpu']:,.0f} | {new_r:.2f} | "
                     f"{old['offline_output_tokens_per_s_per_gpu']:,.0f} | {old_r:.2f} | {ours['offline_batch']} | "
                     f"{ours['offline_decode_batch']:.0f} | {ours['offline_prompts_per_step']:.2f} |")
    lines += ["", _summary("Mixed steps, all rows", mixed), "",
              _summary("One prompt per prefill step, all rows", single), "",
              _summary(f"Mixed steps, ISL {SHORT_ISL}", short_mixed), "",
              _summary(f"One prompt per prefill step, ISL {SHORT_ISL}", short_single)]
    pathlib.Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
