"""`parplan plan scatter` (per-batch SP groups) and `parplan trace lengths` (synthetic length batches)."""

import json
import time

import click

from planner.commands.common import (
    emit,
    gpu_option,
    gpus_per_node_option,
    model_option,
    num_gpus_option,
    progress,
    warn,
    write_output,
)
from solvers.deadline import TIME_LIMIT_STATUS


@click.command("scatter")
@model_option
@gpu_option
@num_gpus_option
@gpus_per_node_option
@click.option("--lengths", "lengths_path", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="One length per line (one batch), or a JSON list of lengths or of batches.")
@click.option("--sp-style", type=click.Choice(["ulysses", "ring", "hybrid"]), default="ulysses", show_default=True,
              help="Sequence-parallel style.")
@click.option("--degrees", type=click.Choice(["any", "pow2"]), default="any", show_default=True,
              help="Allowed group degrees.")
@click.option("--method", type=click.Choice(["exact", "milp"]), default="exact", show_default=True,
              help="exact: multiset enumeration with bounds; milp: FlexSP-style bucketed MILP.")
@click.option("--tp", type=int, default=1, show_default=True, metavar="T", help="Tensor-parallel degree per SP rank.")
@click.option("--zero", type=click.IntRange(0, 3), default=None, metavar="Z",
              help="ZeRO stage (default: smallest whose weights+optimizer take at most half of HBM).")
@click.option("--time-limit", "time_limit_s", type=float, default=10.0, show_default=True, metavar="SEC",
              help="Wall-clock limit per batch.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              help="Write the plan JSON (one line per batch when there are several) to FILE ('-' = stdout).")
def plan_scatter(model_ref, gpu_ref, num_gpus, gpus_per_node, lengths_path, sp_style, degrees, method, tp, zero,
                 time_limit_s, output):
    """Choose SP group degrees, their ranks and each group's sequences for a batch of mixed lengths.

    Exit 3 names a sequence that does not fit even on the largest group, with the memory it needs.
    """
    import profiles
    from costmodels.hardware import ClusterSpec
    from planner.plan import canonicalize
    from planner.scatter import batches_summary, explain, scatter_sequences
    from planner.scatter.lengths import read_batches

    batches = read_batches(lengths_path)
    model = profiles.load_model(model_ref)
    cluster = ClusterSpec.homogeneous(profiles.load_device(gpu_ref), num_gpus, gpus_per_node)
    plans = []
    for k, batch in enumerate(batches):
        started = time.perf_counter()
        plans.append(scatter_sequences(batch, model=model, cluster=cluster, sp_style=sp_style, degrees=degrees,
                                       tp=tp, zero=zero, method=method, time_limit_s=time_limit_s,
                                       progress=progress))
        progress(f"batch {k}: {len(batch)} sequences planned in {time.perf_counter() - started:.3f} s")
        if plans[-1]["solver"]["status"] == TIME_LIMIT_STATUS:
            warn(f"batch {k}: the search stopped at its time limit ({time_limit_s:g} s); the plan is the best "
                 f"found so far (gap {_pct(plans[-1]['solver'].get('gap'))}) and may differ from run to run — "
                 f"raise --time-limit for a reproducible plan")
    if len(plans) == 1:
        emit(plans[0], output, explain(plans[0]))
        return
    summary = batches_summary(plans)
    lines = "".join(json.dumps(canonicalize(p.doc), sort_keys=True, separators=(",", ":")) + "\n" for p in plans)
    text = _summary_text(summary)
    if output is None:
        for k, p in enumerate(plans):
            click.echo(f"batch {k}: step {p['predicted']['step_time_s'] * 1e3:.1f} ms, gap "
                       f"{(p['solver'].get('gap') or 0) * 100:.2f}%, groups {p['decision']['degree_multiset']}")
        click.echo(text)
    else:
        if output != "-":
            click.echo(text, err=True)
        write_output(lines, output, f"wrote {output} ({len(plans)} plans, JSON lines)")


def _pct(gap: float | None) -> str:
    return "unknown" if gap is None else f"{gap * 100:.2f}%"


def _summary_text(summary: dict) -> str:
    static = summary["static_total_step_time_s"]
    line = f"{summary['batches']} batches: total {summary['total_step_time_s']:.3f} s"
    if static is not None:
        line += f" vs static best {static:.3f} s (speedup {summary['speedup_vs_static']:.3f}x)"
    if summary["max_gap"] is not None:
        line += f", max gap {summary['max_gap'] * 100:.2f}%"
    return line


@click.command("lengths")
@click.option("--dist", type=click.Choice(["lognormal", "pareto"]), default="lognormal", show_default=True)
@click.option("--mean", type=float, required=True, metavar="M", help="Mean length before clipping (tokens).")
@click.option("--max", "max_len", type=int, required=True, metavar="X", help="Longest allowed length (tokens).")
@click.option("--count", type=int, required=True, metavar="N", help="Sequences per batch.")
@click.option("--seed", type=int, default=0, show_default=True, metavar="S", help="numpy Generator seed.")
@click.option("--batches", type=int, default=1, show_default=True, metavar="B", help="Number of batches.")
@click.option("--shape", type=float, default=None, metavar="P",
              help="lognormal sigma (default 2.0) or pareto tail index (default 1.5).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              help="Write the lengths (one per line, or a JSON list of batches) to FILE ('-' = stdout).")
def trace_lengths(dist, mean, max_len, count, seed, batches, shape, output):
    """Synthetic sequence lengths for `plan scatter --lengths`."""
    import numpy as np

    from planner.scatter.lengths import synthetic_batches

    data = synthetic_batches(dist=dist, mean=mean, max_len=max_len, count=count, seed=seed, batches=batches,
                             shape=shape)
    text = "".join(f"{n}\n" for n in data[0]) if batches == 1 else json.dumps(data) + "\n"
    if output is None:
        flat = np.concatenate([np.asarray(b) for b in data])
        click.echo(f"{batches} batch(es) x {count} sequences ({dist}, seed {seed}): mean {flat.mean():.0f}, "
                   f"p50 {np.percentile(flat, 50):.0f}, p99 {np.percentile(flat, 99):.0f}, max {flat.max()} tokens")
    else:
        write_output(text, output)


def register(groups):
    """Attach `plan scatter` and `trace lengths`."""
    groups["plan"].add_command(plan_scatter)
    groups["trace"].add_command(trace_lengths)
