"""Install every dependency at the lower bound pyproject.toml declares, in a fresh venv, and run a smoke test.

Usage: python3 benchmarks/min_versions.py [--keep DIR] [--override NAME==VERSION ...] [--work-tree]

Reads the `>=` bound of each runtime dependency and of the `test` extra from pyproject.toml, creates a new
virtual environment in a temporary folder (or DIR), installs exactly those versions (wheels only), installs
the committed tree (`git archive HEAD`; `--work-tree`: the working tree as it is) without dependencies, then
runs SMOKE_TESTS (the solver layer, the four planners' contract, the typed round trip) and one CLI plan.
It writes benchmarks/results/min_versions.md with the versions, the command and the outcome, and exits
non-zero when an install or the smoke test fails. It needs the package registry and a few minutes, so CI
does not run it; run it after changing a lower bound.
`--override` tries another version of one package (e.g. to find the real minimum).
"""

import argparse
import re
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SMOKE_TESTS = ["tests/solvers", "tests/test_planner_contract.py", "tests/test_roundtrip.py"]
CLI_SMOKE = ["plan", "train", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "8", "--gbs", "64",
             "--seq", "2048"]


def lower_bounds(pyproject: Path) -> dict[str, str]:
    """name -> the version of its `>=` bound, for the runtime dependencies and the test extra."""
    project = tomllib.loads(pyproject.read_text())["project"]
    specs = list(project["dependencies"]) + list(project["optional-dependencies"]["test"])
    out = {}
    for spec in specs:
        match = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(?:\[[^]]*\])?\s*([^;#]*)", spec)
        if match is None:
            raise SystemExit(f"pyproject.toml: cannot read dependency {spec!r}")
        name, constraint = match.group(1), match.group(2)
        bound = re.search(r">=\s*([0-9][^,\s]*)", constraint)
        if bound is None:
            raise SystemExit(f"pyproject.toml: dependency {spec!r} has no lower bound (>=)")
        out[name] = bound.group(1)
    return out


def run(cmd: list[str], log: list[str], cwd: Path, tail_lines: int = 15) -> bool:
    """Run `cmd`; the log keeps the command and the last `tail_lines` lines of its output (pip warnings dropped)."""
    log.append("$ " + " ".join(cmd))
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    lines = [ln for ln in (proc.stdout + proc.stderr).strip().splitlines() if not ln.startswith("WARNING: ")]
    tail = lines[-tail_lines:]
    log.extend(tail)
    return proc.returncode == 0


def _head() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()


def write_report(pins: dict[str, str], ok: bool, log: list[str], seconds: float) -> Path:
    out = ROOT / "benchmarks" / "results" / "min_versions.md"
    lines = ["## Minimum dependency versions", "",
             "Command: `python3 benchmarks/min_versions.py` (fresh venv, every dependency at its declared lower "
             f"bound, wheels only; Python {sys.version.split()[0]}).", "",
             "| package | version |", "|---|---|", *[f"| {k} | {v} |" for k, v in sorted(pins.items())], "",
             f"Outcome: **{'smoke test passed' if ok else 'FAILED'}** in {seconds:.0f} s.", "", "```",
             *log, "```", ""]
    out.write_text("\n".join(lines))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="create the venv here and keep it")
    parser.add_argument("--override", action="append", default=[], metavar="NAME==VERSION")
    parser.add_argument("--work-tree", action="store_true", help="test the working tree instead of HEAD")
    args = parser.parse_args()
    pins = lower_bounds(ROOT / "pyproject.toml")
    for item in args.override:
        name, _, version = item.partition("==")
        if name not in pins or not version:
            raise SystemExit(f"--override {item!r}: expected NAME==VERSION with NAME in {sorted(pins)}")
        pins[name] = version
    started = time.perf_counter()
    log: list[str] = []
    with tempfile.TemporaryDirectory(prefix="parplan-minver-") as tmp:
        venv = args.keep or Path(tmp) / "venv"
        py = str(venv / "bin" / "python")
        tree = ROOT if args.work_tree else Path(tmp) / "tree"
        if not args.work_tree:
            tree.mkdir()
            archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
            log.append(f"tested: git archive HEAD ({_head()})")
        ok = (run([sys.executable, "-m", "venv", str(venv)], log, tree)
              and run([py, "-m", "pip", "install", "-q", "--only-binary=:all:",
                       *[f"{k}=={v}" for k, v in sorted(pins.items())]], log, tree)
              and run([py, "-m", "pip", "install", "-q", "--no-deps", "."], log, tree)
              and run([py, "-m", "pip", "list", "--format=freeze"], log, tree, tail_lines=200)
              and run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *SMOKE_TESTS], log, tree)
              and run([str(venv / "bin" / "parplan"), *CLI_SMOKE], log, tree))
    report = write_report(pins, ok, log, time.perf_counter() - started)
    print(f"{'ok' if ok else 'FAILED'}: wrote {report}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
