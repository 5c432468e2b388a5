"""Regenerate the README's figures (run by `make figures`): the example capacity sweep's charts and one
picture per plan kind, all from plans parplan makes here (nothing drawn by hand).

Usage: .venv/bin/python benchmarks/figures/make_figures.py   (writes benchmarks/figures/*.png)
"""

import json
import pathlib
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

from planner.plots import plot_plan  # noqa: E402
from planner.plots.figure import save  # noqa: E402
from planner.plots.sweep_charts import charts  # noqa: E402
from planner.sweep import SweepOptions, run_sweep  # noqa: E402

DPI = 60
"""pixels per inch of the checked-in PNGs (small files; `parplan plot` uses 100)"""
PLANS = {
    "plot_train.png": ["estimate", "train", "--model", "llama3-70b", "--gpu", "h100-sxm", "--num-gpus", "64",
                       "--tp", "8", "--pp", "4", "--mbs", "1", "--gbs", "64", "--seq", "4096",
                       "--recompute", "selective"],
    "plot_experts.png": ["plan", "experts", "--stats", "{stats}", "--num-gpus", "16", "--gpus-per-node", "4",
                         "--slots-per-gpu", "3"],
    "plot_serve.png": ["plan", "serve", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "16",
                       "--isl", "2048", "--osl", "256", "--ttft-ms", "1000", "--tpot-ms", "50", "--requests", "500"],
    "plot_scatter.png": ["plan", "scatter", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "16",
                         "--lengths", "{lengths}"],
}


def parplan(*args: str) -> str:
    done = subprocess.run([sys.executable, str(REPO / "cli.py"), *args], capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"parplan {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        result = run_sweep(HERE / "capacity.yaml", folder / "results.csv", options=SweepOptions(workers=2))
        for i, (title, fig) in enumerate(charts(result.planner, result.rows, result.axes)):
            save(fig, HERE / f"sweep_{i}.png", DPI)
            print(f"wrote sweep_{i}.png: {title}")
        parplan("trace", "synth", "--layers", "8", "--experts", "32", "--top-k", "4", "--skew", "1.4", "--affinity",
                "0.6", "-o", str(folder / "stats.json"))
        parplan("trace", "lengths", "--mean", "4000", "--max", "32768", "--count", "32",
                "-o", str(folder / "lengths.txt"))
        for name, args in PLANS.items():
            args = [a.format(stats=folder / "stats.json", lengths=folder / "lengths.txt") for a in args]
            plot_plan(json.loads(parplan(*args, "-o", "-")), HERE / name, DPI)
            print(f"wrote {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
