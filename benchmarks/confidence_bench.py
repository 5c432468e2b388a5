"""Calibration residuals per regime, leave-one-out coverage of the 80 % intervals, robust vs expected choice.

    .venv/bin/python benchmarks/confidence_bench.py [--loo leverage|refit|none] [--refit-sample K] [--no-robust]

Writes planner/confidence/residuals.json (the package data every estimate's interval comes from) and
benchmarks/results/confidence.md. The training rows' leave-one-out errors come from each row's leverage in
its family's linearised fit (seconds; benchmarks/confidence_loo.py), checked against K true refits; --loo refit
refits every row (about a minute each); --loo none stores in-sample errors (a quick look; never ship that).
"""

import argparse
import json
import math
import pathlib
import statistics
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from confidence_residuals import families, serve_records, train_records  # noqa: E402
from machine import machine_note  # noqa: E402

from planner.confidence.coverage import coverage, held_out  # noqa: E402
from planner.confidence.distribution import LEVEL, MIN_ROWS, from_log_errors  # noqa: E402
from planner.confidence.residuals import FORMAT, table_from_json  # noqa: E402
from planner.plan import dumps_canonical  # noqa: E402

DATA = HERE.parent / "planner" / "confidence" / "residuals.json"
OUT = HERE / "results" / "confidence.md"


def residuals_document(records: list[dict], loo: str) -> dict:
    records = sorted(records, key=lambda r: (r["target"], r["metric"], r["source"], r["label"]))
    command = "benchmarks/confidence_bench.py" + ("" if loo == "leverage" else f" --loo {loo}")
    return {"format": FORMAT, "generated_by": command, "level": LEVEL, "families": families(), "rows": records}


def regime_table(table) -> list[str]:
    lines = ["| target | regime (family / framework / scale / context / arch / dtype) | rows | median error | "
             "p10-p90 predicted/measured | 80% half-width |", "|---|---|---|---|---|---|"]
    groups: dict = {}
    for r in table.rows:
        groups.setdefault((r.target, r.family, r.framework, r.scale, r.context, r.arch, r.dtype), []).append(r)
    for key in sorted(groups):
        errs = [r.log_error for r in groups[key]]
        if len(errs) < 2:
            lines.append(f"| {key[0]} | {' / '.join(key[1:])} | 1 | {math.exp(errs[0]) - 1:+.1%} | - | - |")
            continue
        d = from_log_errors(errs)
        lines.append(f"| {key[0]} | {' / '.join(key[1:])} | {d.rows} | {d.median_error:+.1%} | {d.p10:.3f}-{d.p90:.3f} "
                     f"| x{math.exp(d.half_width):.3f} |")
    return lines


def coverage_section(table, target: str, loo_only: bool) -> tuple[list[str], float, int]:
    verdicts = held_out(table, target, loo_only=loo_only)
    lines = ["| row | metric | error | 80% interval of the error | inside | extrapolated |",
             "|---|---|---|---|---|---|"]
    for v in verdicts:
        lines.append(f"| {v.label} | {v.metric} | {math.exp(v.log_error) - 1:+.1%} | "
                     f"{math.exp(v.low) - 1:+.1%} .. {math.exp(v.high) - 1:+.1%} | {'yes' if v.covered else 'NO'} | "
                     f"{'yes' if v.extrapolated else ''} |")
    return lines, coverage(verdicts), len(verdicts)


LOO_TEXT = {"leverage": "leave-one-out errors by each row's leverage in its family's linearised fit "
                        "(benchmarks/confidence_loo.py)",
            "refit": "leave-one-out errors by true refits (calibrate.fit_device without the row)",
            "none": "in-sample errors (--loo none: a quick look, never ship this file)"}


def refit_check(table, sample: int) -> list[str]:
    """True refits of `sample` rows spread over the leave-one-out rows, against the stored (leverage) errors."""
    import published_runs
    from confidence_loo import refit_error
    from confidence_residuals import fit_profile, fitted_groups, training_rows

    from planner.confidence.regimes import family_of

    rows = training_rows()
    stored = {r.label: r.log_error for r in table.rows if r.target == "train" and r.loo}
    fitted = [(f, r) for f, members in sorted(fitted_groups(rows).items()) for _, r in members if r.label in stored]
    step = max(1, len(fitted) // max(sample, 1))
    lines = ["| row | leverage LOO error | refit LOO error | difference |", "|---|---|---|---|"]
    devices: dict = {}
    for family, row in fitted[::step][:sample]:
        members = [r for _, r in fitted_groups(rows)[family_of(row.gpu_profile, table.families)]]
        for r in members:
            published_runs.device_for(r, devices)
        residual = refit_error(row, [o for o in members if o is not row], devices, fit_profile(family))
        true = residual if row.metric.endswith("_s") else -residual
        lines.append(f"| {row.label} | {math.exp(stored[row.label]) - 1:+.1%} | {math.exp(true) - 1:+.1%} | "
                     f"{(stored[row.label] - true) * 100:+.1f} points |")
        print(lines[-1], flush=True)
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loo", choices=("leverage", "refit", "none"), default="leverage",
                    help="how the training rows' leave-one-out errors are computed (refit: about a minute per row)")
    ap.add_argument("--refit-sample", type=int, default=3, metavar="K",
                    help="true refits of K rows to check the leverage errors (0: none)")
    ap.add_argument("--no-robust", action="store_true", help="skip the robust-vs-expected planner comparison")
    args = ap.parse_args(argv)
    note = machine_note()
    started = time.perf_counter()
    records = train_records(loo=None if args.loo == "none" else args.loo) + serve_records()
    doc = residuals_document(records, args.loo)
    DATA.write_text(dumps_canonical(doc))
    table = table_from_json(json.loads(DATA.read_text()))
    train_lines, train_cov, n_train = coverage_section(table, "train", loo_only=args.loo != "none")
    serve_lines, serve_cov, n_serve = coverage_section(table, "serve", loo_only=False)
    fit_s = time.perf_counter() - started
    check = refit_check(table, args.refit_sample) if args.loo == "leverage" and args.refit_sample else []
    robust_lines = [] if args.no_robust else robust_section()
    abs_train = [abs(math.exp(r.fit_error) - 1) for r in table.rows if r.target == "train"]
    text = "\n".join([
        "# Confidence: calibration residuals, held-out coverage, robust choice",
        "",
        f"Command: `.venv/bin/python {doc['generated_by']}` ({fit_s:.0f} s for the residuals). {note}",
        "",
        "Every estimate and plan states an 80 % interval for its headline metric, the regime that supports it and "
        "why it is extrapolated (planner/confidence/). Errors are ln(predicted / measured) of the step time "
        "(training) and of prefill / decode-step latency (serving, the calibrated `legacy` engine). A regime needs "
        f"{MIN_ROWS} rows; with fewer, dimensions are relaxed (context, scale, framework, dtype, arch) within the "
        "device family; a family with fewer rows, and any extrapolated estimate, uses the wider prior.",
        "",
        f"Training rows: {len(abs_train)}, {n_train} of them with {LOO_TEXT[args.loo]}; in sample (shipped fit) "
        f"median |error| {statistics.median(abs_train):.1%}, max {max(abs_train):.1%}.",
        "",
        "## Held-out coverage of the 80 % interval (training)",
        "",
        f"**{train_cov:.0%} of {n_train} rows inside their 80 % interval** (target >= 70 %). Each row's interval "
        "comes from the other rows only; its error is the leave-one-out error.",
        "",
        *train_lines,
        "",
        *(["## Leverage vs true refit (sample)", "",
           f"The leave-one-out errors above are linearised; {len(check) - 2} rows refitted for real "
           "(calibrate.fit_device without the row) for comparison:", "", *check, ""] if check else []),
        "## Coverage on serving rows (in sample: the serving fit saw these rows)",
        "",
        f"{serve_cov:.0%} of {n_serve} prefill/decode records inside the interval built from the other records.",
        "",
        "## Residuals by regime",
        "",
        *regime_table(table),
        "",
        *robust_lines,
    ])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text + "\n")
    print(text)
    return 0


def robust_section() -> list[str]:
    """Robust vs expected choice on the benchmark cases (filled in by confidence_robust.py)."""
    from confidence_robust import robust_lines

    return robust_lines()


if __name__ == "__main__":
    sys.exit(main())
