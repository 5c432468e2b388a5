"""`parplan plan train`: the fastest hybrid-parallel training strategy that fits."""

import click

from costmodels.parallel import RECOMPUTE_MODES
from planner.commands.common import emit, gpus_per_node_option, model_option, output_option, progress, time_limit_option


def runtime_options(command):
    """The framework and kernel/communication options of a training run (`estimate train`, `plan train`)."""
    from costmodels.framework import FRAMEWORKS

    options = [
        click.option("--framework", type=click.Choice(FRAMEWORKS), default="megatron", show_default=True,
                     help="Training framework: fixes what each ZeRO stage means, the overlaps, what can run."),
        click.option("--compile/--no-compile", "compile_", default=False, show_default=True,
                     help="torch.compile (torchtitan): fused element-wise kernels."),
        click.option("--async-tp/--no-async-tp", default=None,
                     help="Overlap TP communication with GEMMs (torchtitan async TP, Megatron --tp-comm-overlap); "
                          "default: the framework's (on for megatron, off for torchtitan)."),
        click.option("--fp8-allgather", is_flag=True, help="FSDP all-gathers FP8 weights (with --dtype fp8)."),
        click.option("--moe-skew", type=click.FloatRange(min=1.0), default=1.0, show_default=True,
                     help="MoE routing imbalance: tokens of the busiest EP rank over the mean (1 = balanced)."),
        click.option("--a2a-dedup", is_flag=True, help="MoE dispatch sends a token once per node (DeepEP)."),
        click.option("--fp8-dispatch", is_flag=True, help="MoE dispatch in FP8 with block scales."),
        click.option("--a2a-overlap", is_flag=True, help="MoE dispatch/combine overlap another micro-batch."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def runtime_kwargs(kw: dict) -> dict:
    """TrainingWorkload fields from the runtime_options values (removed from `kw`)."""
    out = {name: kw.pop(name) for name in ("framework", "async_tp", "fp8_allgather", "moe_skew", "a2a_dedup",
                                           "fp8_dispatch", "a2a_overlap")}
    out["compile"] = kw.pop("compile_")
    return out


def resolve_request_specs(model_ref, gpu_ref, num_gpus, gpus_per_node, cluster_ref, gbs, seq, dtype, **runtime):
    """(model, cluster, workload) from CLI references, through the profile loader."""
    import profiles
    from costmodels.errors import SpecError
    from costmodels.hardware import ClusterSpec
    from costmodels.parallel import TrainingWorkload

    model = profiles.load_model(model_ref)
    if cluster_ref is not None:
        if gpu_ref is not None or num_gpus is not None:
            raise SpecError("give either --cluster or --gpu with --num-gpus, not both", field="cluster")
        cluster = profiles.load_cluster(cluster_ref)
    else:
        if gpu_ref is None or num_gpus is None:
            raise SpecError("give --gpu and --num-gpus, or --cluster", field="gpu")
        cluster = ClusterSpec.homogeneous(profiles.load_device(gpu_ref), num_gpus, gpus_per_node)
    return model, cluster, TrainingWorkload(global_batch=gbs, seq_len=seq, dtype=dtype, **runtime)


@click.command("train")
@model_option
@click.option("--gpu", "gpu_ref", default=None, metavar="G", help="Hardware profile name or hardware YAML path.")
@click.option("--num-gpus", type=int, default=None, metavar="N", help="GPUs to use.")
@gpus_per_node_option
@click.option("--cluster", "cluster_ref", default=None, metavar="CLUSTER",
              help="Cluster profile name or YAML (several pools = heterogeneous); replaces --gpu/--num-gpus.")
@click.option("--gbs", type=int, required=True, metavar="GB", help="Global batch size in sequences.")
@click.option("--seq", type=int, required=True, metavar="S", help="Sequence length in tokens.")
@click.option("--dtype", type=click.Choice(["bf16", "fp16", "fp8"]), default="bf16", show_default=True,
              help="GEMM compute dtype.")
@click.option("--allow-cross-node-tp", is_flag=True, help="Let TP groups span nodes.")
@click.option("--allow-cross-node-ep", is_flag=True, help="Let EP groups span nodes.")
@click.option("--objective", type=click.Choice(["expected", "robust"]), default="expected", show_default=True,
              help="expected: fastest predicted step time; robust: fastest 90th-percentile step time from the "
                   "calibration residuals of each strategy's regime.")
@click.option("--recompute", "recompute_modes", multiple=True,
              type=click.Choice(RECOMPUTE_MODES),
              help="Recompute modes to search (repeatable; default: every mode the framework's current version "
                   "runs; torchtitan's selective-layer, a v0.2.2 mode, only when asked for alone).")
@runtime_options
@time_limit_option
@output_option
def plan_train(model_ref, gpu_ref, num_gpus, gpus_per_node, cluster_ref, gbs, seq, dtype, allow_cross_node_tp,
               allow_cross_node_ep, objective, recompute_modes, time_limit_s, output, **runtime):
    """Plan TP/PP/DP/CP/EP/ETP, VPP, micro-batch, ZeRO, recompute and the layer split for one training job.

    Exit 3 when nothing fits (the message says what binds and the smallest GPU count that would fit).
    """
    from planner.train import TrainOptions, explain, plan_training

    model, cluster, workload = resolve_request_specs(model_ref, gpu_ref, num_gpus, gpus_per_node, cluster_ref,
                                                     gbs, seq, dtype, **runtime_kwargs(runtime))
    modes = {"recompute_modes": tuple(recompute_modes)} if recompute_modes else {}
    options = TrainOptions(allow_cross_node_tp=allow_cross_node_tp, allow_cross_node_ep=allow_cross_node_ep,
                           objective=objective, **modes)
    plan = plan_training(model, cluster, workload, options=options, time_limit_s=time_limit_s, progress=progress)
    emit(plan, output, explain(plan))


def register(groups):
    """Attach `plan train`."""
    groups["plan"].add_command(plan_train)
