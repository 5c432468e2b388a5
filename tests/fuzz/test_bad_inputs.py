"""A table of bad inputs across every command: each exits with the expected code and a message naming the
problem, prints no traceback, and leaves an existing output file exactly as it was (issue 13)."""

import pytest
from fuzz_cli import invoke

SC = ["plan", "scatter", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "8", "--lengths", "{lengths_txt}"]
ET = ["estimate", "train", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "8", "--tp", "2", "--pp", "1",
      "--mbs", "1", "--gbs", "8", "--seq", "4096"]
ES = ["estimate", "serve", "--model", "llama3-8b", "--gpu", "h100-sxm", "--tp", "1", "--batch", "8", "--isl", "512",
      "--osl", "128"]
PS = ["plan", "serve", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "8", "--isl", "1024", "--osl",
      "256", "--ttft-ms", "1000", "--tpot-ms", "50"]
PT = ["plan", "train", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "8", "--gbs", "64", "--seq", "4096"]
PE = ["plan", "experts", "--stats", "{stats_json}", "--num-gpus", "4", "--slots-per-gpu", "3"]
TL = ["trace", "lengths", "--mean", "1000", "--max", "4096", "--count", "10"]
TS = ["trace", "synth", "--layers", "2", "--experts", "8", "--top-k", "2"]
VA = ["validate", "{scatter_json}"]
DI = ["diff", "{scatter_json}", "{scatter2_json}"]
EX = ["export", "{scatter_json}", "--format", "json"]
SI = ["simulate", "{scatter_json}"]
O = ["-o", "{out}"]

BASES = {"plan scatter": SC, "estimate train": ET, "estimate serve": ES, "plan experts": PE, "trace lengths": TL,
         "trace synth": TS, "validate": VA, "diff": DI, "export": EX, "simulate": SI, "plan serve": PS,
         "plan train": PT}

ROWS: list[tuple[str, list[str], int, str]] = []
for name, base in BASES.items():  # output paths checked before any work, for every command
    ROWS += [
        (f"{name}: -o in a missing directory", base + ["-o", "{dir}/nodir/x.json"], 2, "does not exist"),
        (f"{name}: -o under a file", base + ["-o", "{lengths_txt}/x.json"], 2, "is a file, not a directory"),
        (f"{name}: -o ''", base + ["-o", ""], 2, "output path is empty"),
        (f"{name}: -o a directory", base + ["-o", "{dir}"], 2, "is a directory"),
    ]
for name in ("plan scatter", "estimate train", "estimate serve", "trace lengths", "validate", "diff", "export"):
    ROWS.append((f"{name}: -o /dev/full", BASES[name] + ["-o", "/dev/full"], 2, "cannot write /dev/full"))
ROWS += [  # an output equal to an input
    ("plan scatter: -o = --lengths", SC + ["-o", "{lengths_txt}"], 2, "same file as the input --lengths"),
    ("validate: -o = PLAN", ["validate", "{scatter_json}", "-o", "{scatter_json}"], 2, "same file as the input PLAN"),
    ("export: -o = PLAN", EX + ["-o", "{scatter_json}"], 2, "same file as the input PLAN"),
    ("diff: -o = B", DI + ["-o", "{scatter2_json}"], 2, "same file as the input B"),
    ("simulate: -o = PLAN", SI + ["-o", "{scatter_json}"], 2, "same file as the input PLAN"),
    ("plan experts: -o = --stats", PE + ["-o", "{stats_json}"], 2, "same file as the input --stats"),
    ("plot: -o = PLAN", ["plot", "{scatter_json}", "-o", "{scatter_json}"], 2, "same file as the input PLAN"),
    ("plot: -o in a missing directory", ["plot", "{scatter_json}", "-o", "{dir}/nodir/x.png"], 2, "does not exist"),
    ("plan scatter: -o = --gpu YAML", SC[:5] + ["{hw_bytes_yaml}"] + SC[6:] + ["-o", "{hw_bytes_yaml}"], 2,
     "same file as the input --gpu"),
]
ROWS += [  # degrees >= 1, finite numbers, positive times: named by the flag, in the unit typed
    ("estimate train --tp 0", ET + ["--tp", "0"] + O, 2, "--tp must be >= 1, got 0"),
    ("estimate train --pp 0", ET + ["--pp", "0"] + O, 2, "--pp must be >= 1, got 0"),
    ("estimate train --cp 0", ET + ["--cp", "0"] + O, 2, "--cp must be >= 1, got 0"),
    ("estimate train --mbs 0", ET + ["--mbs", "0"] + O, 2, "--mbs must be >= 1"),
    ("estimate train --gbs -1", ET + ["--gbs", "-1"] + O, 2, "--gbs must be >= 1, got -1"),
    ("estimate train --seq 0", ET + ["--seq", "0"] + O, 2, "--seq must be >= 1"),
    ("estimate train --num-gpus 0", ET + ["--num-gpus", "0"] + O, 2, "--num-gpus must be >= 1"),
    ("estimate train --gpus-per-node 0", ET + ["--gpus-per-node", "0"] + O, 2, "--gpus-per-node must be >= 1"),
    ("estimate train --moe-skew nan", ET + ["--moe-skew", "nan"] + O, 2, "--moe-skew"),
    ("estimate train --tp 3 (32 heads)", ET + ["--tp", "3"] + O, 2, "tp"),
    ("estimate serve --tp 0", ES + ["--tp", "0"] + O, 2, "--tp must be >= 1"),
    ("estimate serve --batch 0", ES + ["--batch", "0"] + O, 2, "--batch must be >= 1"),
    ("estimate serve --isl 0", ES + ["--isl", "0"] + O, 2, "--isl must be >= 1"),
    ("estimate serve --moe-skew inf", ES + ["--moe-skew", "inf"] + O, 2, "--moe-skew must be a finite number"),
    ("plan scatter --num-gpus 0", SC + ["--num-gpus", "0"] + O, 2, "--num-gpus must be >= 1"),
    ("plan scatter --gpus-per-node 0", SC + ["--gpus-per-node", "0"] + O, 2, "--gpus-per-node must be >= 1"),
    ("plan scatter --tp 0", SC + ["--tp", "0"] + O, 2, "--tp must be >= 1"),
    ("plan scatter --time-limit 0", SC + ["--time-limit", "0"] + O, 2, "--time-limit must be > 0, got 0"),
    ("plan scatter --time-limit -1", SC + ["--time-limit", "-1"] + O, 2, "--time-limit must be > 0, got -1"),
    ("plan scatter --time-limit nan", SC + ["--time-limit", "nan"] + O, 2, "--time-limit must be a finite number"),
    ("plan scatter --time-limit inf", SC + ["--time-limit", "inf"] + O, 2, "--time-limit must be a finite number"),
    ("plan serve --ttft-ms inf", PS + ["--ttft-ms", "inf"] + O, 2, "--ttft-ms must be a finite number, got inf"),
    ("plan serve --ttft-ms nan", PS + ["--ttft-ms", "nan"] + O, 2, "--ttft-ms must be a finite number"),
    ("plan serve --tpot-ms -1", PS + ["--tpot-ms", "-1"] + O, 2, "--tpot-ms must be > 0, got -1"),
    ("plan serve --rate inf --objective gpus", PS + ["--rate", "inf", "--objective", "gpus"] + O, 2,
     "--rate must be a finite number"),
    ("plan serve --rate 0", PS + ["--rate", "0"] + O, 2, "--rate must be > 0"),
    ("plan serve --lognormal nan 1 5 1", PS + ["--lognormal", "nan", "1", "5", "1"] + O, 2,
     "--lognormal must be a finite number"),
    ("plan serve --attainment nan", PS + ["--attainment", "nan"] + O, 2, "--attainment must be a finite number"),
    ("plan serve --percentile inf", PS + ["--percentile", "inf"] + O, 2, "--percentile must be a finite number"),
    ("plan serve --requests 0", PS + ["--requests", "0"] + O, 2, "--requests must be >= 1"),
    ("plan serve --osl -5", PS + ["--osl", "-5"] + O, 2, "--osl must be >= 1, got -5"),
    ("plan serve --gpus-per-node 0", PS + ["--gpus-per-node", "0"] + O, 2, "--gpus-per-node must be >= 1"),
    ("plan serve --time-limit nan", PS + ["--time-limit", "nan"] + O, 2, "--time-limit must be a finite number"),
    ("plan train --num-gpus 0", PT + ["--num-gpus", "0"] + O, 2, "--num-gpus must be >= 1"),
    ("plan train --gbs 0", PT + ["--gbs", "0"] + O, 2, "--gbs must be >= 1"),
    ("plan train --time-limit inf", PT + ["--time-limit", "inf"] + O, 2, "--time-limit must be a finite number"),
    ("plan train --gpus-per-node 0", PT + ["--gpus-per-node", "0"] + O, 2, "--gpus-per-node must be >= 1"),
    ("plan experts --num-gpus 0", PE + ["--num-gpus", "0"] + O, 2, "--num-gpus must be >= 1"),
    ("plan experts --slots-per-gpu 0", PE + ["--slots-per-gpu", "0"] + O, 2, "--slots-per-gpu must be >= 1"),
    ("plan experts --time-limit nan", PE + ["--time-limit", "nan"] + O, 2, "--time-limit must be a finite number"),
    ("plan experts --traffic-weight inf", PE + ["--traffic-weight", "inf"] + O, 2,
     "--traffic-weight must be a finite number"),
    ("simulate --rate nan", SI + ["--rate", "nan"] + O, 2, "--rate must be a finite number"),
    ("simulate --rate -1", SI + ["--rate", "-1"] + O, 2, "--rate must be > 0, got -1"),
    ("simulate --requests 0", SI + ["--requests", "0"] + O, 2, "--requests must be >= 1"),
    ("trace lengths --count 0", TL + ["--count", "0"] + O, 2, "--count must be >= 1"),
    ("trace lengths --mean nan", TL + ["--mean", "nan"] + O, 2, "--mean must be a finite number"),
    ("trace lengths --max 0", TL + ["--max", "0"] + O, 2, "--max must be >= 1"),
    ("trace lengths --shape inf", TL + ["--shape", "inf"] + O, 2, "--shape must be a finite number"),
    ("trace synth --layers 0", TS + ["--layers", "0"] + O, 2, "--layers must be >= 1"),
    ("trace synth --top-k 0", TS + ["--top-k", "0"] + O, 2, "--top-k must be >= 1"),
    ("trace synth --skew nan", TS + ["--skew", "nan"] + O, 2, "--skew must be a finite number"),
]
ROWS += [  # files that cannot be read as what they should be
    ("plan scatter --lengths binary", SC[:-1] + ["{binary_bin}"] + O, 2, "not UTF-8"),
    ("plan scatter --lengths empty", SC[:-1] + ["{empty_txt}"] + O, 2, "no sequence lengths"),
    ("plan scatter --lengths words", SC[:-1] + ["{words_txt}"] + O, 2, "not an integer length"),
    ("plan scatter --lengths negative", SC[:-1] + ["{negative_txt}"] + O, 2, "positive integers"),
    ("plan scatter --lengths 2.5", SC[:-1] + ["{float_txt}"] + O, 2, "2.5"),
    ("plan scatter --lengths bad JSON", SC[:-1] + ["{badjson_json}"] + O, 2, "malformed JSON"),
    ("plan scatter --lengths missing", SC[:-1] + ["{dir}/missing.txt"] + O, 2, "missing.txt"),
    ("plan serve --lengths binary", PS + ["--lengths", "{binary_bin}"] + O, 2, "not UTF-8"),
    ("plan experts --stats binary", ["plan", "experts", "--stats", "{binary_bin}", "--num-gpus", "4",
                                     "--slots-per-gpu", "3"] + O, 2, "binary.bin"),
    ("plan experts --stats bad JSON", ["plan", "experts", "--stats", "{badjson_json}", "--num-gpus", "4",
                                       "--slots-per-gpu", "3"] + O, 2, "malformed JSON"),
    ("validate binary", ["validate", "{binary_bin}"] + O, 2, "not UTF-8"),
    ("validate bad JSON", ["validate", "{badjson_json}"] + O, 2, "malformed JSON"),
    ("validate not a plan", ["validate", "{notaplan_json}"] + O, 2, "notaplan.json"),
    ("validate NaN in JSON", ["validate", "{plan_nan_json}"] + O, 2, "NaN"),
    ("validate missing", ["validate", "{dir}/missing.json"] + O, 2, "missing.json"),
    ("diff binary", ["diff", "{binary_bin}", "{scatter_json}"] + O, 2, "not UTF-8"),
    ("explain binary", ["explain", "{binary_bin}"], 2, "not UTF-8"),
    ("export binary", ["export", "{binary_bin}", "--format", "json"] + O, 2, "not UTF-8"),
    ("simulate binary", ["simulate", "{binary_bin}"] + O, 2, "not UTF-8"),
    ("--gpu YAML with hbm_gib in bytes", SC[:5] + ["{hw_bytes_yaml}"] + SC[6:] + O, 2, "hbm_gib"),
    ("--gpu YAML with an unknown key", SC[:5] + ["{hw_unknown_yaml}"] + SC[6:] + O, 2, "warp_drive"),
    ("--gpu YAML with .nan", SC[:5] + ["{hw_nan_yaml}"] + SC[6:] + O, 2, "bf16_tflops: must be a finite number"),
    ("--gpu YAML malformed", SC[:5] + ["{hw_tabs_yaml}"] + SC[6:] + O, 2, "hw_tabs.yaml"),
    ("--gpu unknown profile", SC[:5] + ["h900"] + SC[6:] + O, 2, "h100-sxm"),
    ("--model unknown profile", SC[:3] + ["llama9-1t"] + SC[4:] + O, 2, "llama3-8b"),
    ("--model binary file", SC[:3] + ["{binary_bin}"] + SC[4:] + O, 2, "binary.bin"),
    ("profiles show unknown", ["profiles", "show", "nosuch-profile"], 2, "nosuch-profile"),
]
ROWS += [  # diff gates that cannot silently pass; export/simulate check the plan first
    ("diff --fail-on categorical:+2%", DI + ["--fail-on", "decision.sp_style:+2%"] + O, 2,
     "decision.sp_style:changed"),
    ("diff --fail-on list:+2%", DI + ["--fail-on", "decision.degree_multiset:+2%"] + O, 2, "not a number"),
    ("diff --fail-on PATH:changed", DI + ["--fail-on", "decision.sp_style:changed"], 1, "FAIL decision.sp_style"),
    ("diff --fail-on +changed", DI + ["--fail-on", "decision.sp_style:+changed"] + O, 2, "takes no sign"),
    ("diff --fail-on garbage", DI + ["--fail-on", "step_time"] + O, 2, "cannot parse"),
    ("diff --fail-on unknown path", DI + ["--fail-on", "predicted.nothing:+1%"] + O, 2, "in neither plan"),
    ("diff --fail-on decision.recompute:+2%", ["diff", "{estimate_json}", "{estimate_full_json}", "--fail-on",
                                                "decision.recompute:+2%"] + O, 2, "decision.recompute:changed"),
    ("diff --fail-on decision.recompute:changed", ["diff", "{estimate_json}", "{estimate_full_json}", "--fail-on",
                                                   "decision.recompute:changed"], 1, "FAIL decision.recompute"),
    ("export a hand-edited tp=3 estimate", ["export", "{estimate_tp3_json}", "--format", "megatron"] + O, 2,
     "not a valid estimate plan"),
    ("plan train 70B on 3 GPUs suggests a count the CLI accepts",
     ["plan", "train", "--model", "llama3-70b", "--gpu", "h100-sxm", "--num-gpus", "3", "--gbs", "64", "--seq",
      "4096"] + O, 3, "the smallest GPU count that fits is 16"),
    ("export a hand-edited degree 3", ["export", "{scatter_tp3_json}", "--format", "json"] + O, 2, "degree 3"),
    ("export a hand-edited 128-rank group", ["export", "{scatter_128_json}", "--format", "json"] + O, 2, "rank"),
    ("export an unknown format", EX[:3] + ["nope"] + O, 2, "valid: json"),
    ("simulate a hand-edited plan", ["simulate", "{scatter_tp3_json}"] + O, 2, "degree 3"),
    ("simulate a scatter plan", SI + O, 2, "serve"),
    ("plan serve 70B on one GPU names the weights", PS[:3] + ["llama3.1-70b"] + PS[4:7] + ["1"] + PS[8:] + O, 3,
     "weights need 131.4 GiB per GPU, the device h100-sxm has 70.2 GiB"),
    ("plan serve --time-limit 1 stops and warns", PS + ["--time-limit", "1"], 0, "stopped at its time limit (1 s)"),
]


def _fill(args: list[str], files: dict[str, str], out: str) -> list[str]:
    return [a.format(out=out, **files) for a in args]


def test_the_table_is_large_and_ids_unique() -> None:
    assert len(ROWS) >= 80
    assert len({row[0] for row in ROWS}) == len(ROWS)


@pytest.mark.parametrize(("case", "args", "code", "fragment"), ROWS, ids=[row[0] for row in ROWS])
def test_bad_input(case: str, args: list[str], code: int, fragment: str, files: dict[str, str], sentinel) -> None:
    result = invoke(_fill(args, files, str(sentinel)))
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == code, f"{case}: exit {result.exit_code}\n{result.output}"
    assert fragment.lower() in result.output.lower(), f"{case}: {fragment!r} not in\n{result.output}"
    assert sentinel.read_text() == "previous good output\n", f"{case} changed the existing output file"
    assert sorted(p.name for p in sentinel.parent.iterdir()) == ["out.json"], "temporary files left behind"
