"""`parplan estimate train`: cost one given training configuration (the `estimate serve` command lives in
planner/commands/serve.py)."""

import click

from costmodels.errors import SpecError
from costmodels.hardware import ClusterSpec
from costmodels.parallel import RECOMPUTE_MODES, ParallelConfig, TrainingWorkload
from planner.commands.common import emit, gpu_option, gpus_per_node_option, model_option, num_gpus_option, output_option
from planner.commands.train import runtime_kwargs, runtime_options


def _default_dp(num_gpus: int, tp: int, pp: int, cp: int) -> int:
    per_replica = tp * pp * cp
    if num_gpus % per_replica:
        raise SpecError(f"{num_gpus} GPUs are not divisible by tp*pp*cp = {tp}*{pp}*{cp} = {per_replica}",
                        field="num_gpus")
    return num_gpus // per_replica


@click.command("train")
@model_option
@gpu_option
@num_gpus_option
@gpus_per_node_option
@click.option("--tp", type=int, required=True, help="Tensor-parallel degree.")
@click.option("--pp", type=int, required=True, help="Pipeline stages.")
@click.option("--dp", type=int, default=None, help="Data-parallel degree (default: N / (tp*pp*cp)).")
@click.option("--cp", type=int, default=1, show_default=True, help="Context-parallel degree.")
@click.option("--ep", type=int, default=1, show_default=True, help="Expert-parallel degree (MoE).")
@click.option("--etp", type=int, default=1, show_default=True, help="Tensor-parallel degree inside experts.")
@click.option("--vpp", type=int, default=1, show_default=True, help="Virtual pipeline chunks per GPU.")
@click.option("--mbs", type=int, required=True, help="Micro-batch size (sequences).")
@click.option("--gbs", type=int, required=True, help="Global batch size (sequences).")
@click.option("--seq", type=int, required=True, help="Sequence length (tokens).")
@click.option("--zero", type=click.IntRange(0, 3), default=1, show_default=True, help="ZeRO stage.")
@click.option("--recompute", type=click.Choice(RECOMPUTE_MODES), default="none", show_default=True,
              help="Activation recomputation: selective = the attention core (torchtitan: op-level SAC), "
                   "selective-layer = every 2nd layer fully, full = every layer.")
@click.option("--sequence-parallel/--no-sequence-parallel", default=True, show_default=True)
@click.option("--dtype", type=click.Choice(("bf16", "fp8")), default="bf16", show_default=True)
@runtime_options
@output_option
def train_command(model_ref, gpu_ref, num_gpus, gpus_per_node, tp, pp, dp, cp, ep, etp, vpp, mbs, gbs, seq, zero,
                  recompute, sequence_parallel, dtype, output, **runtime):
    """Cost one training configuration: step time, TFLOP/s, MFU, memory per GPU, breakdown."""
    from planner.train.estimate import estimate_plan, explain_estimate, validate_config
    from profiles import load_device, load_model

    model, device = load_model(model_ref), load_device(gpu_ref)
    cluster = ClusterSpec.homogeneous(device, num_gpus, gpus_per_node)
    if dp is None:
        dp = _default_dp(num_gpus, tp, pp, cp)
    workload = TrainingWorkload(global_batch=gbs, seq_len=seq, dtype=dtype, **runtime_kwargs(runtime))
    config = ParallelConfig(tp=tp, pp=pp, dp=dp, cp=cp, ep=ep, etp=etp, vpp=vpp, mbs=mbs, zero=zero,
                            recompute=recompute, sequence_parallel=sequence_parallel)
    validate_config(model, cluster, workload, config)
    plan = estimate_plan(model, cluster, workload, config)
    emit(plan, output, explain_estimate(plan).rstrip("\n"))


def register(groups):
    """Attach `estimate train`."""
    groups["estimate"].add_command(train_command)
