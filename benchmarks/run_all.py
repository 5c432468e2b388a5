"""Run every benchmark script, then assemble benchmarks/RESULTS.md from benchmarks/results/*.md.

Usage: .venv/bin/python benchmarks/run_all.py [--only NAME ...] [--assemble-only]
Each benchmarks/<area>_bench.py writes its own section to benchmarks/results/<area>.md with the
command that produced it; this script runs them one after another (never in parallel, so timings are
not disturbed by each other) and concatenates the sections in a fixed order.
"""

import argparse
import pathlib
import platform
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
ORDER = ("calibration", "confidence", "confidence_refit", "estimate_speed", "train", "experts", "serve",
         "serve_engines", "serve_engines_b200", "serve_gemm_scatter", "serve_hopper_bounds",
         "serve_aic_compare", "serve_fp8", "serve_fp8_step", "serve_layouts",
         "serve_offline", "serve_verify", "serve_batching", "scatter", "sweep", "min_versions")


def scripts(only: list[str]) -> list[pathlib.Path]:
    found = sorted(HERE.glob("*_bench.py"), key=lambda p: (ORDER.index(p.stem[:-6]) if p.stem[:-6] in ORDER
                                                          else len(ORDER), p.name))
    return [p for p in found if not only or p.stem[:-6] in only]


def assemble() -> None:
    sections = sorted((HERE / "results").glob("*.md"),
                      key=lambda p: (ORDER.index(p.stem) if p.stem in ORDER else len(ORDER), p.name))
    header = ("# Benchmark results\n\n"
              "Assembled by `python benchmarks/run_all.py` from `benchmarks/results/*.md`; each section names the "
              "command that produced it. Machine: the project's CI/dev machine (2 cores, 24 GiB, no GPU), "
              f"Python {platform.python_version()}.\n\n")
    body = "\n".join(p.read_text().rstrip() + "\n" for p in sections)
    (HERE / "RESULTS.md").write_text(header + body)
    print(f"wrote {HERE / 'RESULTS.md'} from {len(sections)} sections")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=[], help="benchmark areas to run (default: all)")
    parser.add_argument("--assemble-only", action="store_true", help="only rebuild RESULTS.md")
    args = parser.parse_args()
    failed = []
    if not args.assemble_only:
        for script in scripts(args.only):
            print(f"== {script.name}", flush=True)
            if subprocess.run([sys.executable, str(script)], cwd=HERE.parent).returncode != 0:
                failed.append(script.name)
    assemble()
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
