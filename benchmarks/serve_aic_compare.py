"""Step latencies side by side with NVIDIA aiconfigurator's own static estimate (validation, nothing is fitted).

    .venv/bin/python benchmarks/serve_aic_compare.py [--out benchmarks/results/serve_aic_compare.md]

aiconfigurator-core (Apache-2.0; `.venv/bin/pip install 'aiconfigurator-core==0.12.0'`, extra `aiconfigurator`)
estimates a whole prefill or decode step from its measured per-op tables; this script runs its SDK offline
(`get_database`, `get_model`, the backend's `run_static` in modes static_ctx / static_gen) and parplan's
costmodels.serving prefill_time / decode_step_time (what `estimate serve` reports) on the same points:
  Llama-3.1-70B BF16 on H100 TP 2/4/8; Qwen3-32B BF16 and FP8 (per-tensor weights, BF16 KV) on H200 TP 1/2/4/8;
  prefill of one prompt of ISL 1024-8192; one decode step of batch 1-128 after a 2048-token prompt (99 points)
for parplan's engines trtllm, vllm and sglang (each against aiconfigurator's backend of that name, at the table
versions benchmarks/aiconfigurator_tables.py reads) and legacy (against aiconfigurator's trtllm, for reference),
plus the decode steps of the Llama-3.1-8B offline rows of serve_offline.md (TensorRT-LLM, FP8 weights and KV) with
both per-op breakdowns. aiconfigurator sums GPU kernel times only; parplan adds CPU-side step overheads
(overhead_s), so both the whole step and parplan's GPU work alone are compared.
"""

import argparse
import logging
import math
import pathlib
import statistics
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from aiconfigurator_tables import DEVICES, ENGINE_VERSIONS, VERSION  # noqa: E402
from machine import machine_note  # noqa: E402

import profiles  # noqa: E402
from costmodels.serving import InstanceShape, decode_step_time, prefill_time  # noqa: E402

AIC_MODELS = {"llama3.1-70b": "meta-llama/Meta-Llama-3.1-70B", "qwen3-32b": "Qwen/Qwen3-32B",
              "llama3.1-8b": "meta-llama/Meta-Llama-3.1-8B"}
"""parplan model profile -> the model configuration aiconfigurator ships (HuggingFace id)"""
PREFILL_ISL = (1024, 2048, 4096, 8192)
DECODE_BATCH = (1, 4, 16, 64, 128)
DECODE_CONTEXT = 2048
"""prompt tokens before the decode step"""
ENGINES = ("trtllm", "vllm", "sglang", "legacy")
REFERENCE_BACKEND = {"legacy": "trtllm"}
"""parplan engine -> aiconfigurator backend it is compared with (default: the same name)"""
PARTS = ("gemm", "attention", "elementwise", "allreduce", "lm_head", "other")
AIC_PART_OF = (("logits_gemm", "lm_head"), ("_gemm", "gemm"), ("attention", "attention"), ("_ar", "allreduce"),
               ("add_norm", "elementwise"), ("act_", "elementwise"), ("embedding", "elementwise"))
"""aiconfigurator op name (context_... / generation_...) containing the key -> part, first match wins"""


@dataclass(frozen=True, slots=True)
class Config:
    model: str
    device: str
    dtype: str
    tp: int
    kv_dtype: str = "bf16"


@dataclass(frozen=True, slots=True)
class Point:
    config: Config
    phase: str
    """"prefill" (one prompt of `tokens`) or "decode" (one step of `batch` sequences after `tokens`)"""
    batch: int
    tokens: int


CONFIGS = ([Config("llama3.1-70b", "h100-sxm", "bf16", tp) for tp in (2, 4, 8)]
           + [Config("qwen3-32b", "h200", dtype, tp) for dtype in ("bf16", "fp8") for tp in (1, 2, 4, 8)])


def points(configs: Sequence[Config] = CONFIGS) -> list[Point]:
    """The static points: per config, prefill at each PREFILL_ISL (batch 1), decode at each DECODE_BATCH."""
    out = []
    for c in configs:
        out += [Point(c, "prefill", 1, isl) for isl in PREFILL_ISL]
        out += [Point(c, "decode", b, DECODE_CONTEXT) for b in DECODE_BATCH]
    return out


def aic_parts(ops_ms: dict[str, float]) -> dict[str, float]:
    """aiconfigurator's per-op latencies (ms, keys like "generation_qkv_gemm") summed into PARTS, in seconds."""
    out = dict.fromkeys(PARTS, 0.0)
    for name, ms in ops_ms.items():
        part = next((p for key, p in AIC_PART_OF if key in name), "other")
        out[part] += ms * 1e-3
    return out


def parplan_parts(step: dict[str, float]) -> dict[str, float]:
    """A parplan step breakdown (costmodels.serving) in PARTS (GPU work only), seconds."""
    out = dict.fromkeys(PARTS, 0.0)
    out.update(gemm=step["gemm_s"], attention=step["attention_s"], elementwise=step["elementwise_s"],
               allreduce=step["allreduce_s"] + step["alltoall_s"], lm_head=step["lm_head_s"],
               other=step["pipeline_p2p_s"])
    return out


def gpu_work_s(step: dict[str, float]) -> float:
    """A parplan step without its CPU-side terms (overhead_s, an eager engine's launch_bound_s)."""
    return step["time_s"] - step.get("overhead_s", 0.0) - step.get("launch_bound_s", 0.0)


def ratio_summary(ratios: Iterable[float]) -> tuple[int, float, float]:
    """(count, median ratio, worst ratio: the one farthest from 1 on a log scale)."""
    rs = list(ratios)
    return len(rs), statistics.median(rs), max(rs, key=lambda r: abs(math.log(r)))


class Aic:
    """aiconfigurator's static estimate, one model/database per (backend, device, model, dtypes, tp), offline."""

    def __init__(self) -> None:
        from aiconfigurator_core.sdk import common
        from aiconfigurator_core.sdk.backends.factory import get_backend
        from aiconfigurator_core.sdk.perf_database import get_database

        self.common, self.get_backend, self.get_database = common, get_backend, get_database
        self.cache: dict[tuple[str, Config], Any] = {}

    def _model(self, backend: str, c: Config) -> Any:
        from aiconfigurator_core.sdk.config import ModelConfig
        from aiconfigurator_core.sdk.models import get_model

        cm = self.common
        mc = ModelConfig(tp_size=c.tp, gemm_quant_mode=cm.GEMMQuantMode["bfloat16" if c.dtype == "bf16" else "fp8"],
                         kvcache_quant_mode=cm.KVCacheQuantMode["bfloat16" if c.kv_dtype == "bf16" else "fp8"],
                         fmha_quant_mode=cm.FMHAQuantMode.bfloat16)
        return get_model(AIC_MODELS[c.model], mc, backend)

    def step_ms(self, backend: str, p: Point) -> dict[str, float]:
        """Per-op latencies (ms) of the point's step: static_ctx of one prompt, or one static_gen step (osl 2)."""
        from aiconfigurator_core.sdk.config import RuntimeConfig

        key = (backend, p.config)
        if key not in self.cache:
            db = self.get_database(DEVICES[p.config.device], backend, ENGINE_VERSIONS[backend])
            self.cache[key] = (self._model(backend, p.config), db, self.get_backend(backend))
        model, db, be = self.cache[key]
        if p.phase == "prefill":
            summary = be.run_static(model, db, RuntimeConfig(batch_size=p.batch, isl=p.tokens, osl=1), "static_ctx")
            return dict(summary.get_context_latency_dict())
        summary = be.run_static(model, db, RuntimeConfig(batch_size=p.batch, isl=p.tokens, osl=2), "static_gen",
                                stride=1)
        return dict(summary.get_generation_latency_dict())


def parplan_step(p: Point, engine: str) -> dict[str, float]:
    """parplan's step for the point (costmodels.serving, as `estimate serve` prices it)."""
    c = p.config
    model, device, shape = profiles.load_model(c.model), profiles.load_device(c.device), InstanceShape(tp=c.tp)
    kw: dict[str, Any] = dict(engine=engine, dtype=c.dtype, kv_dtype=c.kv_dtype)
    if p.phase == "prefill":
        return prefill_time(model, device, shape, batch=p.batch, prompt_len=p.tokens, **kw)
    return decode_step_time(model, device, shape, batch=p.batch, context_len=p.tokens, **kw)


@dataclass(frozen=True, slots=True)
class Row:
    point: Point
    engine: str
    aic_s: float
    step_s: float
    gpu_s: float


def compare(aic: Aic, pts: Sequence[Point], engines: Sequence[str] = ENGINES) -> list[Row]:
    rows = []
    for p in pts:
        for eng in engines:
            ours = parplan_step(p, eng)
            ref = sum(aic.step_ms(REFERENCE_BACKEND.get(eng, eng), p).values()) * 1e-3
            rows.append(Row(p, eng, ref, ours["time_s"], gpu_work_s(ours)))
    return rows


def summary_lines(rows: Sequence[Row]) -> list[str]:
    lines = ["| engine (vs aiconfigurator) | device | phase | points | step median | step worst | "
             "GPU work median | GPU work worst |", "|---|---|---|---|---|---|---|---|"]
    groups = [(dev, phase) for dev in sorted({r.point.config.device for r in rows}) for phase in ("prefill", "decode")]
    for eng in ENGINES:
        for dev, phase in [*groups, ("all", "all")]:
            sel = [r for r in rows if r.engine == eng and dev in ("all", r.point.config.device)
                   and phase in ("all", r.point.phase)]
            if not sel:
                continue
            n, med, worst = ratio_summary(r.step_s / r.aic_s for r in sel)
            _, gmed, gworst = ratio_summary(r.gpu_s / r.aic_s for r in sel)
            lines.append(f"| {eng} ({REFERENCE_BACKEND.get(eng, eng)}) | {dev} | {phase} | {n} | {med:.2f} | "
                         f"{worst:.2f} | {gmed:.2f} | {gworst:.2f} |")
    return lines


def point_lines(rows: Sequence[Row]) -> list[str]:
    """One line per point: aiconfigurator's step (ms) and parplan's step / GPU-work ratios per engine."""
    head = "| model | dtype | device | TP | phase | batch | tokens | " + " | ".join(
        f"aic {e} ms | {e} step/GPU" for e in ENGINES[:3]) + " | legacy step |"
    lines = [head, "|" + "---|" * (7 + 2 * 3 + 1)]
    by_point: dict[Point, dict[str, Row]] = {}
    for r in rows:
        by_point.setdefault(r.point, {})[r.engine] = r
    for p, per in by_point.items():
        c = p.config
        cells = [f"{per[e].aic_s * 1e3:.2f} | {per[e].step_s / per[e].aic_s:.2f}/{per[e].gpu_s / per[e].aic_s:.2f}"
                 for e in ENGINES[:3]]
        lines.append(f"| {c.model} | {c.dtype} | {c.device} | {c.tp} | {p.phase} | {p.batch} | {p.tokens} | "
                     + " | ".join(cells) + f" | {per['legacy'].step_s / per['legacy'].aic_s:.2f} |")
    return lines


def offline_points() -> list[tuple[Point, int, int]]:
    """The decode steps of the Llama-3.1-8B offline rows (serve_offline.md): parplan's running decodes D at the
    mean context ISL + OSL/2, FP8 weights and KV cache, TP 1; with the row's ISL and OSL."""
    from serve_offline_bench import PUBLISHED

    from planner.serve import estimate_serving

    out = []
    for model, gpu, tp, isl, osl, _ in PUBLISHED:
        if model != "llama3.1-8b":
            continue
        plan = estimate_serving(profiles.load_model(model), profiles.load_device(gpu), tp=tp, batch=1, isl=isl,
                                osl=osl, engine="trtllm", dtype="fp8", kv_dtype="fp8", offline=True)
        decodes = round(plan["predicted"]["offline_decode_batch"])
        out.append((Point(Config(model, gpu, "fp8", tp, "fp8"), "decode", decodes, isl + osl // 2), isl, osl))
    return out


def offline_lines(aic: Aic) -> list[str]:
    """Per-part decomposition of the 8B offline decode steps: parplan (trtllm) vs aiconfigurator (trtllm), ms."""
    lines = ["| GPU | ISL/OSL | D | context | " + " | ".join(f"{p} ours/aic" for p in PARTS)
             + " | CPU overhead ours | step ours/aic | ratio |", "|" + "---|" * (4 + len(PARTS) + 3)]
    for p, isl, osl in offline_points():
        ours = parplan_step(p, "trtllm")
        mine, ref = parplan_parts(ours), aic_parts(aic.step_ms("trtllm", p))
        cells = " | ".join(f"{mine[k] * 1e3:.2f}/{ref[k] * 1e3:.2f}" for k in PARTS)
        total = sum(ref.values())
        cpu = ours["time_s"] - gpu_work_s(ours)
        lines.append(f"| {p.config.device} | {isl}/{osl} | {p.batch} | {p.tokens} | {cells} | {cpu * 1e3:.2f} | "
                     f"{ours['time_s'] * 1e3:.2f}/{total * 1e3:.2f} | {ours['time_s'] / total:.2f} |")
    return lines


def report(rows: Sequence[Row], offline: Sequence[str]) -> list[str]:
    versions = ", ".join(f"{e} {v}" for e, v in ENGINE_VERSIONS.items())
    return ["# parplan vs aiconfigurator's own step estimate (validation, not fitted)", "",
            f"Command: `.venv/bin/python benchmarks/serve_aic_compare.py`. {machine_note()}", "",
            f"aiconfigurator-core {VERSION} (its SDK run offline: `run_static`, modes static_ctx / static_gen with "
            f"stride 1), tables {versions}. Nothing here is fitted: parplan's serving constants come from the "
            "per-op tables (benchmarks/serve_engine_fit.py), aiconfigurator interpolates the same tables and adds "
            "its own model of the ops; `legacy` is compared with aiconfigurator's trtllm. Ratio = parplan / "
            "aiconfigurator; step = parplan's whole step, GPU work = without its CPU-side overhead_s (and an eager "
            "engine's launch bound), which aiconfigurator does not model. Worst = farthest from 1. Known modelling "
            "difference: aiconfigurator prices every FP8 GEMM from its table row, which includes the kernel "
            "quantising the input; parplan leaves out the quantisations an engine fuses into the producing kernel "
            "for the model's family (costmodels/serving_fusions.py; TensorRT-LLM: attention output and activation "
            "for Qwen3 and Llama, Llama's norms too at TP > 1 and hidden > 4096), and TensorRT-LLM's FP8 rows "
            "quantise with a dynamic scale (an amax pass, 7-9 µs per GEMM at m <= 256 on H200) where a static-scale "
            "checkpoint runs the quantise kernel alone (benchmarks/aic_quant_tables.py).", "",
            f"Points: Llama-3.1-70B BF16 on H100 TP 2/4/8; Qwen3-32B BF16 and FP8 (per-tensor, BF16 KV) on H200 "
            f"TP 1/2/4/8; prefill of one prompt of ISL {'/'.join(map(str, PREFILL_ISL))}; one decode step of batch "
            f"{'/'.join(map(str, DECODE_BATCH))} after {DECODE_CONTEXT} prompt tokens ({len(rows) // len(ENGINES)} "
            "points).", "", "## Summary", "", *summary_lines(rows), "",
            "## Llama-3.1-8B offline decode steps (TensorRT-LLM, FP8 weights and KV, TP 1)", "",
            "D = running decodes parplan's offline estimate holds (serve_offline.md), at the mean context ISL + "
            "OSL/2; parts in ms, parplan / aiconfigurator (elementwise: norms, activation, embedding).", "",
            *offline, "", "## Per point", "", "Per engine: aiconfigurator's step (ms) and parplan step/GPU-work "
            "ratios.", "", *point_lines(rows)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(HERE / "results" / "serve_aic_compare.md"))
    args = ap.parse_args()
    try:
        aic = Aic()
    except ImportError:
        print(f"skipped: needs aiconfigurator-core (.venv/bin/pip install 'aiconfigurator-core=={VERSION}')")
        return 0
    logging.disable(logging.WARNING)  # aiconfigurator logs every table it loads
    rows = compare(aic, points())
    text = "\n".join(report(rows, offline_lines(aic))) + "\n"
    pathlib.Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
