"""Fixtures for the fuzz suite: small valid inputs made once per session through the CLI (in-process)."""

import json
import pathlib

import pytest
from fuzz_cli import invoke

LENGTHS = [1000, 2000, 500, 3000, 800, 1200]


@pytest.fixture(scope="session")
def files(tmp_path_factory) -> dict[str, str]:
    """Name -> path of the valid and broken inputs that the table's rows refer to as {name}."""
    d = tmp_path_factory.mktemp("fuzz-inputs")
    out: dict[str, str] = {"dir": str(d)}

    def put(name: str, data: str | bytes) -> None:
        path = d / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        out[name.replace(".", "_").replace("-", "_")] = str(path)

    put("lengths.txt", "".join(f"{n}\n" for n in LENGTHS))
    put("binary.bin", bytes(range(256)) * 4)
    put("empty.txt", "")
    put("words.txt", "ten\ntwenty\n")
    put("negative.txt", "100\n-5\n")
    put("float.txt", "100\n2.5\n")
    put("badjson.json", "[1, 2,")
    put("notaplan.json", json.dumps({"hello": 1}))
    put("plan_nan.json", '{"kind": "scatter", "schema_version": 1, "x": NaN}')
    put("hw_bytes.yaml", "bf16_tflops: 989\nhbm_gib: 85899345920\nhbm_tb_per_s: 3.35\ndevices_per_node: 8\n"
                         "intra_node_gb_per_s: 450\nnic_gb_per_s: 50\n")
    put("hw_unknown.yaml", "bf16_tflops: 989\nhbm_gib: 80\nhbm_tb_per_s: 3.35\ndevices_per_node: 8\n"
                           "intra_node_gb_per_s: 450\nnic_gb_per_s: 50\nwarp_drive: 1\n")
    put("hw_nan.yaml", "bf16_tflops: .nan\nhbm_gib: 80\nhbm_tb_per_s: 3.35\ndevices_per_node: 8\n"
                       "intra_node_gb_per_s: 450\nnic_gb_per_s: 50\n")
    put("hw_tabs.yaml", "bf16_tflops: [989\n")
    put("serve_lengths.csv", "input,output\n100,20\n200,30\n")
    scatter = d / "scatter.json"
    res = invoke(["plan", "scatter", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "8", "--lengths",
                  out["lengths_txt"], "-o", scatter])
    assert res.exit_code == 0, res.output
    out["scatter_json"] = str(scatter)
    scatter2 = d / "scatter2.json"
    res = invoke(["plan", "scatter", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "8", "--lengths",
                  out["lengths_txt"], "--sp-style", "ring", "-o", scatter2])
    assert res.exit_code == 0, res.output
    out["scatter2_json"] = str(scatter2)
    doc = json.loads(scatter.read_text())
    doc["decision"]["groups"][0]["degree"] = 3
    put("scatter_tp3.json", json.dumps(doc))
    doc = json.loads(scatter.read_text())
    doc["decision"]["groups"][0]["ranks"] = list(range(128))
    put("scatter_128.json", json.dumps(doc))
    estimate = d / "estimate.json"
    res = invoke(["estimate", "train", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "8", "--tp", "2",
                  "--pp", "1", "--mbs", "1", "--gbs", "8", "--seq", "4096", "-o", estimate])
    assert res.exit_code == 0, res.output
    out["estimate_json"] = str(estimate)
    full = d / "estimate_full.json"
    res = invoke(["estimate", "train", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "8", "--tp", "2",
                  "--pp", "1", "--mbs", "1", "--gbs", "8", "--seq", "4096", "--recompute", "full", "-o", full])
    assert res.exit_code == 0, res.output
    out["estimate_full_json"] = str(full)
    doc = json.loads(estimate.read_text())
    doc["decision"]["tp"] = 3
    put("estimate_tp3.json", json.dumps(doc))
    stats = d / "stats.json"
    res = invoke(["trace", "synth", "--layers", "2", "--experts", "8", "--top-k", "2", "--tokens", "256", "-o", stats])
    assert res.exit_code == 0, res.output
    out["stats_json"] = str(stats)
    experts = d / "experts.json"
    res = invoke(["plan", "experts", "--stats", stats, "--num-gpus", "4", "--slots-per-gpu", "3", "-o", experts])
    assert res.exit_code == 0, res.output
    out["experts_json"] = str(experts)
    return out


@pytest.fixture
def sentinel(tmp_path) -> pathlib.Path:
    """An existing output file with known content: a failed run must leave it exactly as it was."""
    path = tmp_path / "out.json"
    path.write_text("previous good output\n")
    return path
