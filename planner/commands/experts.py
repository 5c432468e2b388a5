"""`parplan plan experts`, `parplan trace synth` and `parplan trace stats` (routing statistics)."""

import click

from planner.commands.common import emit, output_option, progress, time_limit_option
from planner.commands.output import atomic_path


def _speeds(text: str | None):
    if text is None:
        return None
    from costmodels.errors import SpecError
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise SpecError(f"expects comma-separated numbers, got {text!r}", field="gpu_speed") from None


@click.command("experts")
@click.option("--stats", "stats_path", required=True, type=click.Path(dir_okay=False), metavar="STATS",
              help="Routing statistics (JSON or NPZ: expert_load [L][E], optional transitions [L-1][E][E]).")
@click.option("--num-gpus", type=int, required=True, metavar="G", help="GPUs in the expert-parallel group.")
@click.option("--gpus-per-node", type=int, default=8, show_default=True, metavar="K", help="GPUs per node.")
@click.option("--slots-per-gpu", type=int, required=True, metavar="S", help="Expert replicas per GPU per layer.")
@click.option("--model", "model_ref", default=None, metavar="M", help="MoE model profile (with --gpu: time objective).")
@click.option("--gpu", "gpu_ref", default=None, metavar="GPU", help="Hardware profile (with --model).")
@click.option("--gpu-speed", default=None, metavar="F1,F2,...", help="Per-GPU speed factors (heterogeneous GPUs).")
@click.option("--previous", "previous_path", default=None, type=click.Path(dir_okay=False), metavar="PLAN",
              help="The experts plan deployed now (for --max-moves).")
@click.option("--max-moves", type=int, default=None, metavar="K", help="At most K replicas copied to new GPUs.")
@click.option("--node-limit", type=int, default=None, metavar="N", help="An expert's replicas span at most N nodes.")
@click.option("--traffic-weight", type=float, default=0.0, show_default=True, metavar="W",
              help="Objective units per cross-node transition token (0: traffic only breaks ties).")
@click.option("--method", type=click.Choice(["auto", "exact", "heuristic"]), default="auto", show_default=True,
              help="Per-layer load method: exact (group bound and placement, or the MILP; within --time-limit), "
                   "heuristic, or auto (exact where cheap).")
@time_limit_option
@output_option
def plan_experts(stats_path, num_gpus, gpus_per_node, slots_per_gpu, model_ref, gpu_ref, gpu_speed, previous_path,
                 max_moves, node_limit, traffic_weight, method, time_limit_s, output):
    """Place MoE experts (with replicas) on GPUs per layer and split their tokens across replicas.

    Minimises the busiest GPU per layer (time with --model/--gpu, tokens otherwise) and keeps heavy
    layer-to-layer transitions inside a node; reports the lower bound, the gap and four baselines.
    """
    from planner.experts import explain, place_experts
    from solvers import SolverOptions

    model = device = None
    if model_ref is not None or gpu_ref is not None:
        import profiles
        from costmodels.errors import SpecError
        if model_ref is None or gpu_ref is None:
            raise SpecError("give both --model and --gpu, or neither", field="model" if model_ref is None else "gpu")
        model, device = profiles.load_model(model_ref), profiles.load_device(gpu_ref)
    plan = place_experts(stats_path, num_gpus=num_gpus, gpus_per_node=gpus_per_node, slots_per_gpu=slots_per_gpu,
                         model=model, device=device, previous=previous_path, max_moves=max_moves,
                         node_limit=node_limit, traffic_weight=traffic_weight, gpu_speed=_speeds(gpu_speed),
                         method=method, options=SolverOptions(time_limit_s=time_limit_s), progress=progress)
    emit(plan, output, explain(plan))


@click.command("synth")
@click.option("--layers", type=int, required=True, metavar="L", help="MoE layers.")
@click.option("--experts", type=int, required=True, metavar="E", help="Routed experts per layer.")
@click.option("--top-k", type=int, required=True, metavar="K", help="Experts per token.")
@click.option("--skew", type=float, default=1.0, show_default=True, metavar="Z", help="Zipf exponent of popularity.")
@click.option("--affinity", type=float, default=0.0, show_default=True, metavar="A",
              help="Probability that a routing choice stays in the token's expert group (layer-to-layer affinity).")
@click.option("--seed", type=int, default=0, show_default=True, metavar="S", help="Random seed.")
@click.option("--tokens", type=int, default=4096, show_default=True, metavar="T", help="Tokens per window.")
@click.option("--clusters", type=int, default=8, show_default=True, metavar="C", help="Expert groups per layer.")
@click.option("--windows", type=int, default=1, show_default=True, metavar="W", help="Time windows.")
@click.option("--drift", type=float, default=0.0, show_default=True, metavar="D",
              help="Fraction of experts whose popularity rank (clustered) or hidden position (drifting; default "
                   "0.3) is re-drawn each window.")
@click.option("--family", type=click.Choice(["clustered", "sliding", "permuted", "powerlaw", "drifting", "none"]),
              default="clustered", show_default=True,
              help="Routing structure: token-type clusters, sliding-window or permuted successors, power-law hot "
                   "experts, drifting successors, or none (see planner.experts.families).")
@click.option("--fanout", type=int, default=4, show_default=True, metavar="F",
              help="Successor families: a token's window spans F x top-k experts.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="Statistics file to write (.json or .npz).")
def trace_synth(layers, experts, top_k, skew, affinity, seed, tokens, clusters, windows, drift, family, fanout,
                output):
    """Write seeded synthetic routing statistics with Zipf-like skew and a routing-structure family."""
    from planner.experts.synthetic import synth_stats

    stats = synth_stats(layers=layers, experts=experts, top_k=top_k, skew=skew, affinity=affinity, seed=seed,
                        tokens=tokens, clusters=clusters, drift=drift, windows=windows, family=family, fanout=fanout)
    with atomic_path(output) as tmp:
        stats.write(tmp)
    click.echo(f"wrote {output}: {layers} layers x {experts} experts, {tokens * windows} tokens", err=True)


@click.command("stats")
@click.argument("trace_path", type=click.Path(dir_okay=False), metavar="TRACE")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="Statistics file to write (.json or .npz).")
def trace_stats(trace_path, output):
    """Aggregate a per-token top-k trace (expert_ids [L][T][K], JSON or NPZ) into routing statistics."""
    from costmodels.routing import load_trace

    stats = load_trace(trace_path)
    with atomic_path(output) as tmp:
        stats.write(tmp)
    click.echo(f"wrote {output}: {stats.layers} layers x {stats.experts} experts", err=True)


def register(groups):
    """Attach `plan experts`, `trace synth` and `trace stats`."""
    groups["plan"].add_command(plan_experts)
    groups["trace"].add_command(trace_synth)
    groups["trace"].add_command(trace_stats)
