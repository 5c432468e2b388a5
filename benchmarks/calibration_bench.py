"""Per-row accuracy and ranking of `estimate_training` against every training calibration row.

    .venv/bin/python benchmarks/calibration_bench.py [--dir ../shared/calibration]

Rows: ../shared/calibration/published_training_runs.csv and torchtitan_fsdp_runs.csv (published_runs.py),
costed with the calibration stored in profiles/hardware/*.yaml (fitted by benchmarks/calibrate.py --write).
Writes benchmarks/results/calibration.md: every row (published, predicted, error, memory, fits), median and
max |error|, and a ranking table per group of rows with the same model, GPU type and count and tokens per
step (predicted order of throughput against the measured order).
"""

import argparse
import csv
import itertools
import pathlib
import re
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from calibrate import DEFAULT_DIR, FAMILIES, PARAMS  # noqa: E402
from machine import machine_note  # noqa: E402
from published_runs import PUBLISHED_CSV, TITAN_CSV, device_for, load_all_rows, predict  # noqa: E402

from costmodels import ClusterSpec, ParallelConfig, TrainingWorkload, estimate_training  # noqa: E402
from profiles import load_device, load_model  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent / "results" / "calibration.md"
UNITS = {"hardware_tflops": "HW TFLOP/s", "model_tflops": "model TFLOP/s", "mfu": "MFU",
         "tokens_per_s_per_gpu": "tokens/s/GPU"}
COMMAND = ".venv/bin/python benchmarks/calibration_bench.py"


def _config(row) -> str:
    c, w = row.config, row.workload
    text = f"tp{c.tp} pp{c.pp} dp{c.dp} cp{c.cp}"
    if c.ep > 1 or row.model.moe is not None:
        text += f" ep{c.ep} etp{c.etp}"
    text += f" vpp{c.vpp} mbs{c.mbs} gbs{w.global_batch} s{w.seq_len} z{c.zero} {c.recompute}"
    extras = [w.framework, w.dtype] + [name for name, on in (("compile", w.compile), ("async-tp", w.async_tp),
                                                              ("fp8-AG", w.fp8_allgather)) if on]
    return text + " " + " ".join(extras)


def evaluate(rows, devices) -> list[dict]:
    """One record per usable row: the prediction, its error and the estimate's memory."""
    out = []
    for row in rows:
        if row.skip:
            out.append({"row": row})
            continue
        predicted, est = predict(row, device_for(row, devices))
        out.append({"row": row, "predicted": predicted, "error": predicted / row.published - 1,
                    "memory_gib": est.memory_per_gpu_bytes / 2**30, "feasible": est.feasible})
    return out


def row_table(records) -> list[str]:
    lines = ["| # | run | config | compared | published | predicted | error | peak mem GiB | fits |",
             "|---|---|---|---|---|---|---|---|---|"]
    for rec in records:
        row = rec["row"]
        idx, name = row.label.split(" ", 1)
        if row.skip:
            lines.append(f"| {idx} | {name} | | skipped: {row.skip} | | | | | |")
            continue
        name += "" if row.in_target else " (MoE, information only)"
        shown = f"{rec['predicted']:.3f}" if row.metric == "mfu" else f"{rec['predicted']:.1f}"
        lines.append(f"| {idx} | {name} | {_config(row)} | {UNITS[row.metric]} | {row.published:g} | {shown} | "
                     f"{100 * rec['error']:+.1f}% | {rec['memory_gib']:.1f} | {'yes' if rec['feasible'] else 'NO'} |")
    return lines


def sources(directory) -> dict[str, str]:
    """Row index (00-29, T00-T33) -> the `source` column: the document (and table) the figure comes from."""
    out = {}
    for name, prefix in ((PUBLISHED_CSV, ""), (TITAN_CSV, "T")):
        with open(pathlib.Path(directory) / name, newline="") as fh:
            out.update({f"{prefix}{i:02d}": rec["source"].strip() for i, rec in enumerate(csv.DictReader(fh))})
    return out


def _index(rec) -> str:
    return rec["row"].label.split(" ", 1)[0]


def short_source(source: str) -> str:
    """A source cell short enough for a table: the file name (and table) of a torchtitan document, else the text
    before the first parenthesis or quote."""
    table = re.search(r"Table \d+", source)
    path = re.search(r"[\w./-]+\.md", source)
    if path:
        return path.group(0).rsplit("/", 1)[-1] + (f" {table.group(0)}" if table else "")
    return re.split(r"[('\"]", source, maxsplit=1)[0].strip()


def document(source: str) -> str:
    """The document of a source cell (its table dropped): runs of one document share a software version."""
    return re.sub(r"\s*Table \d+.*$", "", source)


def groups(records, srcs: dict[str, str]) -> dict:
    """(source document and table, model, GPU, GPU count, tokens per step) -> records with 2+ members."""
    out: dict = {}
    for rec in records:
        row = rec["row"]
        if row.skip:
            continue
        key = (short_source(srcs[_index(rec)]), row.model.name, row.gpu_profile, row.num_gpus,
               row.workload.global_batch * row.workload.seq_len)
        out.setdefault(key, []).append(rec)
    return {k: v for k, v in sorted(out.items()) if len(v) > 1}


def cross_document_pairs(records, srcs: dict[str, str]) -> list[str]:
    """Rows of identical configuration (model, GPU, count and every costed setting) measured in two documents:
    their difference is what software versions and run-to-run noise move, which the model cannot see."""
    lines = ["| runs | configuration | documents | measured | difference |", "|---|---|---|---|---|"]
    usable = [r for r in records if not r["row"].skip]
    for a, b in itertools.combinations(usable, 2):
        ra, rb = a["row"], b["row"]
        same = (ra.model.name, ra.gpu_profile, ra.num_gpus, _config(ra)) == \
            (rb.model.name, rb.gpu_profile, rb.num_gpus, _config(rb))
        da, db = document(srcs[_index(a)]), document(srcs[_index(b)])
        if same and da != db:
            diff = rb.published / ra.published - 1
            lines.append(f"| {_index(a)} / {_index(b)} | {ra.model.name}, {ra.num_gpus} {ra.gpu_profile}, "
                         f"{_config(ra)} | {short_source(da)} / {short_source(db)} | {ra.published:g} / "
                         f"{rb.published:g} {UNITS[ra.metric]} | {100 * diff:+.1f}% |")
    return lines if len(lines) > 2 else ["(none)"]


def concordance(recs) -> tuple[int, int]:
    """(pairs ordered alike by prediction and measurement, pairs with a measured difference)."""
    good = total = 0
    for a, b in itertools.combinations(recs, 2):
        measured = a["row"].published - b["row"].published
        if measured == 0:
            continue
        total += 1
        good += (a["predicted"] - b["predicted"]) * measured > 0
    return good, total


def misordered(recs) -> str:
    """The pairs predicted in the wrong order, with the measured difference of the faster one."""
    out = []
    for a, b in itertools.combinations(recs, 2):
        fast, slow = (a, b) if a["row"].published > b["row"].published else (b, a)
        if fast["row"].published != slow["row"].published and fast["predicted"] < slow["predicted"]:
            name = (fast["row"].label.split(" ", 1)[0], slow["row"].label.split(" ", 1)[0])
            out.append(f"{name[0]} > {name[1]} by {100 * (fast['row'].published / slow['row'].published - 1):.1f} %")
    return "; ".join(out) or "-"


def _order(recs, key) -> str:
    return " > ".join(r["row"].label.split(" ", 1)[0] for r in sorted(recs, key=key, reverse=True))


def ranking_table(records, srcs: dict[str, str]) -> tuple[list[str], int, int]:
    lines = ["| group (source, model, GPU, GPUs, tokens/step) | runs, measured order (fastest first) | "
             "predicted order | pairs right | misordered (measured difference) |", "|---|---|---|---|---|"]
    right = both = 0
    for (source, model, gpu, gpus, tokens), recs in groups(records, srcs).items():
        good, total = concordance(recs)
        right += good == total
        both += 1
        lines.append(f"| {source}, {model}, {gpu}, {gpus}, {tokens} | "
                     f"{_order(recs, lambda r: r['row'].published)} | "
                     f"{_order(recs, lambda r: r['predicted'])} | {good}/{total} | {misordered(recs)} |")
    return lines, right, both


def summary(records) -> list[str]:
    scored = [r for r in records if "error" in r and r["row"].in_target]
    out = []
    for name, subset in (("all", scored), ("published_training_runs.csv", [r for r in scored
                                                                         if not r["row"].label.startswith("T")]),
                         ("torchtitan_fsdp_runs.csv", [r for r in scored if r["row"].label.startswith("T")])):
        errs = [abs(r["error"]) for r in subset]
        fits = sum(r["feasible"] for r in subset)
        out.append(f"- {name}: {len(errs)} rows, median |error| {100 * statistics.median(errs):.1f}%, "
                   f"max |error| {100 * max(errs):.1f}%, {fits}/{len(subset)} judged feasible")
    return out


def validation() -> list[str]:
    """Published figures outside ../shared/calibration/: compared, never fitted."""
    # DeepSeek-V3 technical report (arXiv 2412.19437, sec. 1): 180K H800 GPU hours per trillion training tokens,
    # on 2,048 H800 with PP16, EP64 (8 nodes), ZeRO-1, FP8 mixed precision, DualPipe overlap of dispatch/combine,
    # node-limited routing, FP8 dispatch; sequences of 4K tokens, batch 15,360 sequences (sec. 4.2).
    published = 1e12 / (180e3 * 3600)
    workload = TrainingWorkload(global_batch=15360, seq_len=4096, dtype="fp8", a2a_dedup=True, fp8_dispatch=True,
                                a2a_overlap=True)
    layout = (3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 4, 4, 4, 4, 4, 3)  # our memory-fitting layout (theirs not stated)
    config = ParallelConfig(tp=1, pp=16, dp=128, ep=64, mbs=1, zero=1, recompute="selective", stage_layers=layout)
    est = estimate_training(load_model("deepseek-v3"), ClusterSpec.homogeneous(load_device("h800"), 2048), workload,
                            config)
    err = est.tokens_per_s_per_gpu / published - 1
    return ["## Validation against published runs outside the calibration data (not fitted)", "",
            "| run | source | configuration as costed | published tokens/s/GPU | predicted | error | fits |",
            "|---|---|---|---|---|---|---|",
            f"| DeepSeek-V3, 2,048 H800 | arXiv 2412.19437: 180K H800 GPU hours per trillion tokens | tp1 pp16 dp128 "
            f"ep64 mbs1 gbs15360 s4096 zero1 selective, fp8, dispatch de-dup + FP8 + overlap, layout {list(layout)} | "
            f"{published:.0f} | {est.tokens_per_s_per_gpu:.0f} | {100 * err:+.1f}% | "
            f"{'yes' if est.feasible else 'NO'} |",
            "", "DualPipe (bidirectional pipeline overlapping computation and communication) is not modelled; the "
            "1F1B bubble the prediction uses is under a tenth of its step, so most of the gap is not explained.", ""]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=str(DEFAULT_DIR))
    args = ap.parse_args(argv)
    rows = load_all_rows(args.dir)
    devices: dict = {}
    records = evaluate(rows, devices)
    srcs = sources(args.dir)
    ranks, right, both = ranking_table(records, srcs)
    fitted = [f"- {family} ({', '.join(members)}): " + ", ".join(
        f"{p} = {getattr(devices[members[0]].calibration, p):.4g}" for p in PARAMS)
        for family, members in FAMILIES.items() if members[0] in devices]
    doc = "\n".join([
        "# Accuracy against measured training runs", "",
        f"Command: `{COMMAND}` (calibration fitted by `.venv/bin/python benchmarks/calibrate.py --write`).",
        machine_note(), "",
        "Rows: every row of `../shared/calibration/published_training_runs.csv` (numbered 00-29) and "
        "`torchtitan_fsdp_runs.csv` (T00-T33). Published rows compare the source's own figure (Megatron eq. 3 "
        "HW TFLOP/s for the 2021 rows, model TFLOP/s for the H100 README, MFU for the MoE rows) computed from "
        "the predicted step time; torchtitan rows compare tokens/s per GPU. So each error is a step-time error. "
        "MoE rows are reported, not in the target and not fitted.", "",
        "Target (issue 9): median |error| <= 5 %, max <= 15 %, every configuration judged feasible.", "",
        *summary(records), "",
        *row_table(records), "",
        "## Ranking within groups", "",
        "Groups: rows of one source document and table with the same model, GPU type, GPU count and tokens per "
        "step (the torchtitan async-TP pairs, FP8 vs BF16, compile vs eager, the context-parallel series at "
        "constant tokens, the MoE folding pairs). Rows of different documents are not compared: they ran "
        f"different software versions. {right} of {both} groups are ordered exactly as measured.", "",
        *ranks, "",
        "Identical configurations measured in two documents (the noise floor the model cannot see: software "
        "versions and run-to-run variation):", "",
        *cross_document_pairs(records, srcs), "",
        "## Fitted parameters (one set per die family, profiles/hardware/*.yaml `calibration:`)", "",
        *fitted, "",
        "A100 attention_efficiency, attention_half_work and gemm_half_flops are not fitted: they are "
        "FlashAttention-2's forward curve and the BF16 GEMM size knee measured in aiconfigurator-core's A100 kernel "
        "tables (`.venv/bin/python benchmarks/a100_kernel_fit.py`), since the A100 rows cannot tell attention from "
        "eager element-wise time and run no GEMM under 1e10 FLOPs; sdpa_attention_factor is 1 there (that curve "
        "is SDPA's kernel).", "",
        *validation(),
    ])
    print(doc)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(doc)


if __name__ == "__main__":
    main()
