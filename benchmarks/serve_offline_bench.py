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
    ("llama3.1-70b", "h100-sxm", 2, 500, 2000, 5222), ("llama3.1-70b", "h100-sxm", 2, 1000, 1000, 4205),
    ("llama3.1-70b", "h100-sxm", 2, 2048, 2048, 3082), ("llama3.1-70b", "h100-sxm", 2, 5000, 500, 898),
    ("llama3.1-70b", "h200", 1, 500, 2000, 3666), ("llama3.1-70b", "h200", 1, 1000, 1000, 2909),
    ("llama3.1-70b", "h200", 1, 2048, 2048, 2003), ("llama3.1-70b", "h200", 1, 5000, 500, 566),
    ("llama3.1-8b", "h100-sxm", 1, 500, 2000, 17660), ("llama3.1-8b", "h100-sxm", 1, 1000, 1000, 15220),
    ("llama3.1-8b", "h100-sxm", 1, 2048, 2048, 9305), ("llama3.1-8b", "h100-sxm", 1, 5000, 500, 3459),
    ("llama3.1-8b", "h200", 1, 500, 2000, 20770), ("llama3.1-8b", "h200", 1, 1000, 1000, 17744),
    ("llama3.1-8b", "h200", 1, 2048, 2048, 12194), ("llama3.1-8b", "h200", 1, 5000, 500, 3902),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent / "results" / "serve_offline.md"))
    args = ap.parse_args()
    lines = ["# offline throughput vs published TensorRT-LLM numbers (validation, not fitted)", "",
             f"Command: `.venv/bin/python benchmarks/serve_offline_bench.py`. {machine_note()}", "",
             "Published: TensorRT-LLM perf-overview.md (NVIDIA/TensorRT-LLM 00f37686), FP8, trtllm-bench throughput. "
             "Ours: `estimate serve --engine trtllm --dtype fp8 --kv-dtype fp8 --offline`. Llama-3.3-70B rows use the "
             "llama3.1-70b profile (same architecture).", "",
             "| model | GPU | TP | ISL/OSL | published tok/s/GPU | ours tok/s/GPU | ours / published | batch |",
             "|---|---|---|---|---|---|---|---|"]
    ratios = []
    for model, gpu, tp, isl, osl, total in PUBLISHED:
        plan = estimate_serving(profiles.load_model(model), profiles.load_device(gpu), tp=tp, batch=1, isl=isl,
                                osl=osl, engine="trtllm", dtype="fp8", kv_dtype="fp8", offline=True)
        ours = plan["predicted"]["offline_output_tokens_per_s_per_gpu"]
        published = total / tp
        ratios.append(ours / published)
        lines.append(f"| {model} | {gpu} | {tp} | {isl}/{osl} | {published:,.0f} | {ours:,.0f} | "
                     f"{ours / published:.2f} | {plan['predicted']['offline_batch']} |")
    errors = sorted(abs(r - 1) for r in ratios)
    lines += ["", f"Median |ours / published - 1| = {statistics.median(errors):.1%}, max {errors[-1]:.1%} "
              f"over {len(ratios)} rows."]
    pathlib.Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
