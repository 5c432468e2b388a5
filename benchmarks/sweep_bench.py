"""Sweep executors: one 500-scenario training sweep run three times, on 1 local worker, on 2 local workers,
and on a local Ray cluster of 2 CPUs. Reports wall time, speed-up over 1 worker, and checks that the three
runs wrote the same plan bytes for every scenario.

Usage: .venv/bin/python benchmarks/sweep_bench.py [--limit N]   (writes benchmarks/results/sweep.md)
`--limit N` keeps the first N scenarios (a quick trial; the results file says so). The three runs take
minutes each: the script hashes the source it runs (costmodels, planner, profiles, solvers) before and after,
so a byte comparison is only claimed when nobody edited that code meanwhile (run it from a `git archive`
snapshot on a shared working tree).
"""

import argparse
import hashlib
import json
import os
import pathlib
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from machine import machine_note  # noqa: E402

from planner.sweep import SweepOptions, expand, load_grid, run_sweep  # noqa: E402

GRID = """\
planner: train
axes:
  model: [llama3-8b, llama2-7b, qwen3-32b, llama3-70b, llama2-70b]
  gpu: [h100-sxm, a100-80gb, h200, b200, mi300x]
  num_gpus: [8, 16, 32, 64]
  seq: [1024, 2048, 4096, 8192, 16384]
fixed:
  gbs: 256
"""
RUNS = (("local, 1 worker", SweepOptions(workers=1)), ("local, 2 workers", SweepOptions(workers=2)),
        ("Ray, local cluster of 2 CPUs", SweepOptions(ray=True, ray_cpus=2)))


SOURCES = ("costmodels", "planner", "profiles", "solvers")


def source_digest(root: pathlib.Path) -> str:
    """sha256 over the .py/.yaml/.json files the planners run from."""
    h = hashlib.sha256()
    for top in SOURCES:
        for path in sorted((root / top).rglob("*")):
            if path.suffix in (".py", ".yaml", ".json") and "__pycache__" not in path.parts:
                h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def differences(a: dict[str, bytes], b: dict[str, bytes]) -> list[str]:
    """'digest: sections' for each scenario whose plan bytes differ (top-level sections that differ)."""
    out = []
    for digest in sorted(set(a) | set(b)):
        if a.get(digest) != b.get(digest):
            x, y = (json.loads(v) if v else {} for v in (a.get(digest), b.get(digest)))
            sections = sorted(k for k in set(x) | set(y) if x.get(k) != y.get(k))
            out.append(f"{digest[:12]}: {', '.join(sections) or 'missing'}")
    return out


def _limited(grid_path: pathlib.Path, limit: int | None) -> pathlib.Path:
    """The grid, cut to its first `limit` scenarios by a filter on the axes (same digests)."""
    if limit is None:
        return grid_path
    keep = expand(load_grid(grid_path))[:limit]
    allowed = sorted({tuple(s.values[k] for k in ("model", "gpu", "num_gpus", "seq")) for s in keep})
    text = GRID + "filters:\n  - \"[model, gpu, num_gpus, seq] in " + repr([list(a) for a in allowed]) + "\"\n"
    path = grid_path.with_name("limited.yaml")
    path.write_text(text)
    return path


def _run_all(grid: pathlib.Path, folder: pathlib.Path) -> list[dict]:
    results = []
    for i, (name, options) in enumerate(RUNS):
        start = time.perf_counter()
        result = run_sweep(grid, folder / f"run{i}" / "results.csv", options=options)
        wall = time.perf_counter() - start
        plans = {r["digest"]: (result.plans_dir / r["plan_file"]).read_bytes() for r in result.rows
                 if r.get("plan_file")}
        statuses = {s: sum(r["status"] == s for r in result.rows) for s in ("ok", "infeasible", "error")}
        results.append({"name": name, "wall": wall, "busy": sum(r["wall_s"] for r in result.rows),
                        "statuses": statuses, "plans": plans, "rows": len(result.rows), "load": os.getloadavg()[0]})
        print(f"{name}: {wall:.1f} s, {statuses}", flush=True)
    return results


def _verdict(results: list[dict], same_source: bool) -> tuple[bool, list[str]]:
    diffs = [d for r in results[1:] for d in differences(results[0]["plans"], r["plans"])]
    if not same_source:
        return False, ["The source changed while the runs went on (someone edited the tree): plan bytes are not "
                       "comparable in this run; re-run from a snapshot."]
    if not diffs:
        return True, ["Plan bytes identical across the three runs for every scenario: yes (source unchanged "
                      "during the runs)."]
    return False, [f"Plan bytes identical across the three runs: NO, {len(diffs)} differ "
                   f"(first: {'; '.join(diffs[:5])})."]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="run only the first N scenarios")
    args = parser.parse_args()
    note, root = machine_note(), HERE.parent
    before = source_digest(root)
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        (folder / "grid.yaml").write_text(GRID)
        results = _run_all(_limited(folder / "grid.yaml", args.limit), folder)
    ok, verdict = _verdict(results, source_digest(root) == before)
    base = results[0]["wall"]
    limit = "" if args.limit is None else f" --limit {args.limit}"
    lines = ["## Sweep executors (benchmarks/sweep_bench.py)", "",
             f"Command: `.venv/bin/python benchmarks/sweep_bench.py{limit}`", "", note,
             f"Source digest (costmodels, planner, profiles, solvers): `{before[:16]}`.", "",
             f"A training sweep of {results[0]['rows']} scenarios (5 dense models x 5 GPU types x 4 cluster sizes x "
             "5 sequence lengths, global batch 256" + ("" if args.limit is None else f"; first {args.limit} only")
             + "), run three times from scratch.", "",
             "| executor | wall time (s) | speed-up vs 1 worker | sum of scenario times (s) | ok | infeasible "
             "| error | 1-min load at the end |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        st = r["statuses"]
        lines.append(f"| {r['name']} | {r['wall']:.1f} | {base / r['wall']:.2f}x | {r['busy']:.1f} | {st['ok']} | "
                     f"{st['infeasible']} | {st['error']} | {r['load']:.1f} |")
    lines += ["", *verdict,
              "Wall time includes starting the worker processes (spawn) or the Ray cluster. 'Sum of scenario times' "
              "adds each scenario's own wall time: about 2x the wall time when two workers are both busy, and a "
              "scenario slows down when other work shares the 2 cores (see the load). Infeasible scenarios (e.g. a "
              "70B model on 8 GPUs) are results, not failures: their row says what binds."]
    out = HERE / "results" / "sweep.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
