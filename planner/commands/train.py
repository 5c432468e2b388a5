"""`parplan plan train`: the fastest hybrid-parallel training strategy that fits."""

import click

from planner.commands.common import (emit, gpus_per_node_option, model_option, output_option, progress,
                                     time_limit_option)


def resolve_request_specs(model_ref, gpu_ref, num_gpus, gpus_per_node, cluster_ref, gbs, seq, dtype):
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
    return model, cluster, TrainingWorkload(global_batch=gbs, seq_len=seq, dtype=dtype)


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
@time_limit_option
@output_option
def plan_train(model_ref, gpu_ref, num_gpus, gpus_per_node, cluster_ref, gbs, seq, dtype, allow_cross_node_tp,
               allow_cross_node_ep, time_limit_s, output):
    """Plan TP/PP/DP/CP/EP/ETP, VPP, micro-batch, ZeRO, recompute and the layer split for one training job.

    Exit 3 when nothing fits (the message says what binds and the smallest GPU count that would fit).
    """
    from planner.train import TrainOptions, explain, plan_training

    model, cluster, workload = resolve_request_specs(model_ref, gpu_ref, num_gpus, gpus_per_node, cluster_ref,
                                                     gbs, seq, dtype)
    options = TrainOptions(allow_cross_node_tp=allow_cross_node_tp, allow_cross_node_ep=allow_cross_node_ep)
    plan = plan_training(model, cluster, workload, options=options, time_limit_s=time_limit_s, progress=progress)
    emit(plan, output, explain(plan))


def register(groups):
    """Attach `plan train`."""
    groups["plan"].add_command(plan_train)
