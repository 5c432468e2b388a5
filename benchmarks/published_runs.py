"""Published training runs (../shared/calibration/published_training_runs.csv) as estimate inputs.

Each dense row becomes (ModelSpec, ClusterSpec, TrainingWorkload, ParallelConfig) plus the published
figure and the convention it was computed in:
  * Narayanan et al. 2021 (Table 1) and the Megatron-LM README 175B row: TFLOP/s per GPU under the paper's
    eq. 3, F = 96·B·s·L·h²·(1 + s/6h + V/16Lh), which counts the recompute forward ("hardware" FLOPs).
  * Megatron-LM README H100 table: model TFLOP/s per GPU under 72·B·s·L·h²·(1 + s/6h + V/12Lh)
    (no recompute in those runs; the MFU column is the same number divided by 989 TFLOP/s).
  * rows that only give MFU: compared as MFU.
The predicted figure is the published FLOP count divided by the PREDICTED step time, so the comparison
is a comparison of step times in the source's own FLOP convention.

Unstated settings (issue #2): vocabulary 51,200 for the GPT rows of the 2021 paper, micro-batch 1,
no recompute, ZeRO 1 (distributed optimizer), no virtual pipeline. GPT rows are `gpt2` configs (MHA,
4h GELU MLP). Embeddings: tied for the 2021 rows (their parameter counts match one embedding matrix,
e.g. 36·12·4096² + 51200·4096 = 7.46B for "7.5B"), untied for the H100 README rows (their counts match
two, e.g. 30·12·4096² + 2·131072·4096 = 7.11B for "7.1B"). The H100 rows ran with
--tp-comm-overlap --overlap-grad-reduce --overlap-param-gather; the 2021 rows without (no such flags
existed) — this is carried by each device's fitted tp_overlap / dp_overlap, not per row.
"""

import csv
import dataclasses
import pathlib

from costmodels import ClusterSpec, ParallelConfig, TrainingWorkload, estimate_training
from costmodels.flops import megatron_formula_flops, step_flops
from profiles import load_device, load_model, model_from_hf_config

CALIBRATION_DIR = pathlib.Path(__file__).resolve().parents[2] / "shared" / "calibration"
PUBLISHED_CSV, TITAN_CSV = "published_training_runs.csv", "torchtitan_fsdp_runs.csv"
TITAN_GPUS = {"H100 Grand Teton": "h100-96gb-500w", "H200": "h200", "A100-SXM4-80": "a100-80gb"}
"""torchtitan rows' GPU column (prefix) -> hardware profile"""
TITAN_MODELS = {"llama3.1-8b": "llama3.1-8b", "llama3.1-70b": "llama3.1-70b", "llama3.1-405b": "llama3-405b",
                "llama3-8b": "llama3-8b", "llama3-70b": "llama3-70b", "llama2-13b": "llama2-13b",
                "llama2-70b": "llama2-70b"}
GPU_PROFILES = {"A100-SXM4-80GB": "a100-80gb", "A100": "a100-80gb", "H100": "h100-sxm", "H100-80GB": "h100-sxm"}
PAPER_VOCAB = 51200
MOE_PROFILES = {"Mixtral-8x22B": "mixtral-8x22b", "Qwen2-57B-A14B": "qwen2-57b-a14b"}
"""MoE rows whose architecture is a shipped profile (the others name no architecture)"""


@dataclasses.dataclass(frozen=True)
class Row:
    """One CSV row made ready for estimation (or the reason it cannot be)."""

    label: str
    gpu_profile: str
    metric: str
    """hardware_tflops (recompute counted), model_tflops, mfu, or tokens_per_s_per_gpu"""
    published: float
    model: object = None
    num_gpus: int = 0
    workload: object = None
    config: object = None
    skip: str = ""
    in_target: bool = True
    """dense rows count towards the accuracy target; MoE rows are reported for information"""

    def __str__(self):
        return self.label


def _int(v, default=None):
    v = (v or "").strip()
    return int(float(v)) if v else default


def _recompute(text: str) -> str:
    text = (text or "").strip().lower()
    if text.startswith("full"):
        return "full"
    if text.startswith("selective (layer)"):  # torchtitan selective_ac_option "2": every 2nd layer fully
        return "selective-layer"
    if text.startswith("selective"):  # Megatron selective, torchtitan "selective (op)": op-level SAC
        return "selective"
    return "none"


def _row(rec: dict, index: int) -> Row:
    label = f"{index:02d} {rec['model']} ({rec['num_gpus']} {rec['gpu']})"
    profile = GPU_PROFILES.get(rec["gpu"].strip())
    tp, pp = _int(rec["tp"]), _int(rec["pp"])
    mfu, tflops = rec["mfu_percent"].strip(), rec["achieved_tflops_per_gpu"].strip()
    base = dict(label=label, gpu_profile=profile or rec["gpu"])
    if "Parallel Folding" in rec["source"] or "expert" in rec["notes"].lower():
        name = MOE_PROFILES.get(rec["model"].strip())
        if name is None:
            return Row(**base, metric="", published=0.0, skip="MoE row without a stated architecture")
        return _moe_row(rec, base, name)
    if tp is None or pp is None or not rec["layers"].strip():
        return Row(**base, metric="", published=0.0, skip="tp/pp or the architecture not stated")
    paper_2021 = "2104.04473" in rec["source"] or rec["model"].strip() == "GPT-3 175B"
    vocab = _int(rec["vocab"], PAPER_VOCAB if paper_2021 else None)
    hidden = _int(rec["hidden"])
    config_json = {"model_type": "gpt2", "n_layer": _int(rec["layers"]), "n_embd": hidden,
                   "n_head": _int(rec["heads"]), "n_inner": _int(rec["ffn"], 4 * hidden), "vocab_size": vocab,
                   "n_positions": _int(rec["seq_len"]), "tie_word_embeddings": paper_2021}
    model = model_from_hf_config(config_json, name=rec["model"].strip(), source="published_training_runs.csv")
    gpus = _int(rec["num_gpus"])
    cp = _int(rec["cp"], 1)
    dp = _int(rec["dp"], gpus // (tp * pp * cp))
    mbs = _int(rec["micro_batch"], 1)
    # the 2021 stack had no FlashAttention (scores through HBM) and no TP-communication overlap
    workload = TrainingWorkload(global_batch=_int(rec["global_batch"]), seq_len=_int(rec["seq_len"]), dtype="bf16",
                                flash_attention=not paper_2021, async_tp=not paper_2021)
    config = ParallelConfig(tp=tp, pp=pp, dp=dp, cp=cp, vpp=_int(rec["vpp"], 1), mbs=mbs, zero=1,
                            recompute=_recompute(rec["recompute"]), sequence_parallel=not paper_2021)
    if paper_2021 or "COUNTS the recompute" in rec["notes"]:
        metric, published = "hardware_tflops", float(tflops)
    elif tflops:
        metric, published = "model_tflops", float(tflops)
    else:
        metric, published = "mfu", float(mfu) / 100
    return Row(label=label, gpu_profile=profile, metric=metric, published=published, model=model, num_gpus=gpus,
               workload=workload, config=config)


def _moe_row(rec: dict, base: dict, profile: str) -> Row:
    """MoE Parallel Folding rows (information only): MCore without folding shards experts by tp (ETP = tp),
    with folding ETP = 1; micro-batch 1, no recompute, ZeRO 1 (unstated)."""
    tp, pp, cp, dp, ep = (_int(rec[k], 1) for k in ("tp", "pp", "cp", "dp", "ep"))
    etp = 1 if "Folding" in rec["notes"] else tp
    workload = TrainingWorkload(global_batch=_int(rec["global_batch"]), seq_len=_int(rec["seq_len"]))
    config = ParallelConfig(tp=tp, pp=pp, cp=cp, dp=dp, ep=ep, etp=etp, mbs=1, zero=1)
    label = base["label"] + (" folding" if etp == 1 else " MCore")
    return Row(**{**base, "label": label}, metric="mfu", published=float(rec["mfu_percent"]) / 100,
               model=load_model(profile), num_gpus=_int(rec["num_gpus"]), workload=workload, config=config,
               in_target=False)


def load_rows(csv_path) -> list[Row]:
    with open(pathlib.Path(csv_path), newline="") as fh:
        return [_row(rec, i) for i, rec in enumerate(csv.DictReader(fh))]


def load_all_rows(directory=CALIBRATION_DIR) -> list[Row]:
    """Every training calibration row: published_training_runs.csv, then torchtitan_fsdp_runs.csv."""
    directory = pathlib.Path(directory)
    return load_rows(directory / PUBLISHED_CSV) + load_torchtitan_rows(directory / TITAN_CSV)


def _titan_row(rec: dict, index: int) -> Row:
    """One torchtitan row: FSDP2 (ZeRO 3 over dp_shard x cp), TP, PP, CP; compile, Float8, async TP as run."""
    gpu = rec["gpu"].strip()
    profile = next(p for key, p in TITAN_GPUS.items() if gpu.startswith(key))
    gpus, tp, pp, cp = (_int(rec[k], 1) for k in ("num_gpus", "tp", "pp", "cp"))
    dp = _int(rec["dp_shard"], 1) * _int(rec["dp_replicate"], 1)
    local, gbs = _int(rec["local_batch"]), _int(rec["global_batch"])
    schedule = rec["pp_schedule"].strip()
    # torchtitan of 2024-12 (9dec370, pipelining_utils.build_pipeline_schedule) splits the local batch into
    # pipeline_parallel_microbatches, default pipeline_parallel_degree, micro-batches
    mbs = local // pp
    model = load_model(TITAN_MODELS[rec["model"].strip()])
    # its generated split points give the first and last of the pp x 2 virtual stages one layer less, the
    # ones between the extra layers: per rank that is the even split with the extras on the inner ranks
    vpp = 2 if schedule == "Interleaved1F1B" else 1
    float8 = rec["float8"].strip()
    recompute = _recompute(rec["recompute"])
    workload = TrainingWorkload(global_batch=gbs, seq_len=_int(rec["seq_len"]),
                                dtype="fp8" if float8.startswith("tensorwise") else "bf16", framework="torchtitan",
                                compile=rec["compile"].strip() == "yes", async_tp=rec["async_tp"].strip() == "yes",
                                fp8_allgather="all-gather" in float8)
    config = ParallelConfig(tp=tp, pp=pp, dp=dp, cp=cp, vpp=vpp, mbs=mbs, zero=3 if dp * cp > 1 else 0,
                            recompute=recompute, sequence_parallel=tp > 1)
    label = (f"T{index:02d} {rec['model'].strip()} ({gpus} {profile}) {rec['notes'].split(';')[0].strip()}")
    return Row(label=label, gpu_profile=profile, metric="tokens_per_s_per_gpu",
               published=float(rec["tokens_per_s_per_gpu"]), model=model, num_gpus=gpus, workload=workload,
               config=config)


def load_torchtitan_rows(csv_path) -> list[Row]:
    with open(pathlib.Path(csv_path), newline="") as fh:
        return [_titan_row(rec, i) for i, rec in enumerate(csv.DictReader(fh))]


def predict(row: Row, device):
    """(predicted figure in the row's convention, TrainingEstimate) on `device`."""
    cluster = ClusterSpec.homogeneous(device, row.num_gpus)
    est = estimate_training(row.model, cluster, row.workload, row.config)
    b, s = row.workload.global_batch, row.workload.seq_len
    if not row.in_target:  # MoE: Megatron's general count (GQA, gated MLP, top-k experts), no causal halving
        flops = step_flops(row.model, b, s, "none", causal=False)
    elif row.metric == "hardware_tflops":
        flops = megatron_formula_flops(row.model, b, s, full_recompute=row.config.recompute == "full")
    else:
        flops = megatron_formula_flops(row.model, b, s, full_recompute=False)
    if row.metric == "tokens_per_s_per_gpu":
        return est.tokens_per_s_per_gpu, est
    tflops = flops / est.step_time_s / row.num_gpus / 1e12
    if row.metric == "mfu":
        return tflops * 1e12 / device.peak_flops_per_s(row.workload.dtype), est
    return tflops, est


def device_for(row: Row, devices: dict):
    if row.gpu_profile not in devices:
        devices[row.gpu_profile] = load_device(row.gpu_profile)
    return devices[row.gpu_profile]
