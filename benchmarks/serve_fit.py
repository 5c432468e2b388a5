"""Fit the serving calibration of a device against measured medians (benchmarks/serve_fit_data.py).

    .venv/bin/python benchmarks/serve_fit.py [h100-sxm|a100-80gb]

Coordinate descent over a few physical constants (per-kernel launch floor, all-reduce hop latency,
per-iteration and per-sequence CPU overheads, prefill GEMM efficiency curve, HBM efficiency), minimising the
mean absolute relative error of prefill and decode over every measured row of that GPU (all models, all TP
degrees together, never per row). Prints the fitted values for the profile's `calibration:` block.
"""

import dataclasses
import pathlib
import statistics
import sys

sys.path[:0] = [str(pathlib.Path(__file__).resolve().parents[1]), str(pathlib.Path(__file__).resolve().parent)]

from serve_fit_data import rows  # noqa: E402

import profiles  # noqa: E402
from costmodels.model import ModelSpec  # noqa: E402
from costmodels.serving import InstanceShape, mean_decode_step_time, prefill_time  # noqa: E402

# BLOOM-176B (bigscience/bloom config.json: n_layer 70, hidden_size 14336, n_head 112, vocab 250880, GELU 4h MLP,
# tied embeddings); not shipped as a profile, used only as a second calibration model.
BLOOM = ModelSpec(name="bloom-176b", layers=70, hidden=14336, heads=112, kv_heads=112, head_dim=128, ffn=57344,
                  vocab=250880, tied_embeddings=True, gated_mlp=False, attention="mha")

FIELDS = {
    "launch_floor_s": [5e-6, 10e-6, 20e-6, 30e-6, 40e-6, 45e-6, 50e-6, 60e-6, 80e-6],
    "serving_kernel_floor_s": [2e-6, 3e-6, 4e-6, 5e-6, 6e-6, 8e-6, 10e-6],
    "serving_allreduce_efficiency": [0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.75],
    "allreduce_hop_latency_s": [3e-6, 5e-6, 7e-6, 9e-6, 11e-6, 14e-6],
    "decode_step_overhead_s": [0.5e-3, 1e-3, 2e-3, 3e-3, 4e-3, 6e-3],
    "seq_overhead_s": [0.1e-3, 0.2e-3, 0.25e-3, 0.3e-3, 0.35e-3, 0.4e-3],
    "prefill_overhead_s": [0.0, 5e-3, 10e-3, 20e-3, 30e-3, 40e-3],
    "serving_gemm_efficiency_max": [0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8],
    "serving_gemm_half_flops": [1e8, 1e9, 1e10, 3e10, 1e11, 3e11],
    "serving_hbm_efficiency": [0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9],
}


def model_of(name):
    return BLOOM if name == "bloom-176b" else profiles.load_model(name)


def errors(device, data):
    pre, dec = [], []
    for r in data:
        m = model_of(r["model"])
        shape = InstanceShape(tp=r["tp"])
        p = prefill_time(m, device, shape, batch=r["batch"], prompt_len=r["isl"])["time_s"]
        d = mean_decode_step_time(m, device, shape, batch=r["batch"], input_len=r["isl"], output_len=r["osl"])
        pre.append(abs(p / r["prefill_s"] - 1))
        dec.append(abs(d / r["decode_s"] - 1))
    return pre, dec


def loss(device, data):
    pre, dec = errors(device, data)
    return statistics.mean(pre) + statistics.mean(dec)


def fit(gpu: str):
    device = profiles.load_device(gpu)
    data = [r for r in rows() if r["gpu"] == gpu]
    best = loss(device, data)
    for _ in range(3):
        for name, grid in FIELDS.items():
            for value in grid:
                cal = dataclasses.replace(device.calibration, **{name: value})
                cand = dataclasses.replace(device, calibration=cal)
                val = loss(cand, data)
                if val < best - 1e-9:
                    best, device = val, cand
    pre, dec = errors(device, data)
    print(f"{gpu}: mean |err| prefill {statistics.mean(pre):.3f} decode {statistics.mean(dec):.3f}; "
          f"median prefill {statistics.median(pre):.3f} decode {statistics.median(dec):.3f}")
    for name in FIELDS:
        print(f"  {name}: {getattr(device.calibration, name)!r}")
    return device


if __name__ == "__main__":
    for gpu in sys.argv[1:] or ["h100-sxm", "a100-80gb"]:
        fit(gpu)
