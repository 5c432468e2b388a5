"""`parplan profiles list` and `parplan profiles show NAME`: the shipped hardware, model and cluster profiles."""

import json

import click

import profiles as profile_store
from profiles.params import count_parameters

GB, GIB, TB = 1e9, 2**30, 1e12


def register(groups):
    """Attach the `profiles` group to the root command."""
    groups["root"].add_command(profiles_group)


@click.group("profiles")
def profiles_group():
    """List and show the shipped hardware, model and cluster profiles."""


@profiles_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the names as JSON.")
def list_command(as_json: bool):
    """Names of the shipped profiles, by kind."""
    names = profile_store.list_profiles()
    if as_json:
        click.echo(json.dumps(names, indent=2, sort_keys=True))
        return
    for kind in sorted(names):
        click.echo(f"{kind}:")
        for name in names[kind]:
            click.echo(f"  {name}")


@profiles_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the resolved spec as JSON (SI units).")
def show_command(name: str, as_json: bool):
    """The resolved spec of profile NAME, with units."""
    shown = profile_store.show_profile(name)
    if as_json:
        click.echo(json.dumps(shown, indent=2, sort_keys=True))
        return
    click.echo(f"{shown['name']} ({shown['kind']}, {shown['source']})")
    if shown["description"]:
        click.echo(shown["description"])
    lines = {"hardware": _device_lines, "models": _model_lines, "clusters": _cluster_lines}[shown["kind"]](name)
    for label, value in lines:
        click.echo(f"  {label:<28} {value}" if value != "" else f"  {label}")


def _g(x: float) -> str:
    return f"{x:.6g}"


def _device_lines(name: str) -> list[tuple[str, str]]:
    d = profile_store.load_device(name)
    c = d.calibration
    rows = [
        ("bf16 peak (dense)", f"{_g(d.bf16_flops_per_s / TB)} TFLOP/s"),
        ("fp8 peak (dense)", f"{_g(d.fp8_flops_per_s / TB)} TFLOP/s" if d.fp8_flops_per_s else "none (uses bf16)"),
        ("memory", f"{_g(d.hbm_bytes / GIB)} GiB ({_g(d.hbm_bytes / GB)} GB)"),
        ("memory bandwidth", f"{_g(d.hbm_bytes_per_s / TB)} TB/s"),
        ("devices per node", str(d.devices_per_node)),
        ("intra-node link", f"{_g(d.intra_node_bytes_per_s / GB)} GB/s per device, per direction"),
        ("inter-node NIC", f"{_g(d.inter_node_bytes_per_s / GB)} GB/s per device, per direction"),
        ("latency intra / inter node", f"{_g(d.intra_node_latency_s * 1e6)} / {_g(d.inter_node_latency_s * 1e6)} us"),
        ("memory reserve", f"{_g(d.memory_reserve_bytes / GIB)} GiB"),
        ("cost per device-hour", _g(d.cost_per_hour) if d.cost_per_hour else "unknown"),
        (f"calibration ({c.source})", ""),
    ]
    rows += [(f"  {field}", _g(getattr(c, field))) for field in c.__dataclass_fields__ if field != "source"]
    return rows


def _model_lines(name: str) -> list[tuple[str, str]]:
    m = profile_store.load_model(name)
    params = count_parameters(m)
    rows = [
        ("layers", str(m.layers)),
        ("hidden", str(m.hidden)),
        ("attention", f"{m.attention}: {m.heads} heads, {m.kv_heads} kv heads, head_dim {m.head_dim}"),
        ("dense MLP", f"ffn {m.ffn}, {'gated (SwiGLU)' if m.gated_mlp else 'two-matrix (GELU)'}"),
        ("vocabulary", f"{m.vocab}{', tied embeddings' if m.tied_embeddings else ''}"),
        ("max position", str(m.max_position) if m.max_position else "unknown"),
    ]
    if m.mla is not None:
        a = m.mla
        rows.append(("mla", f"q_lora_rank {a.q_lora_rank}, kv_lora_rank {a.kv_lora_rank}, qk_nope_head_dim "
                            f"{a.qk_nope_head_dim}, qk_rope_head_dim {a.qk_rope_head_dim}, v_head_dim {a.v_head_dim}"))
    if m.moe is not None:
        e = m.moe
        shared = f", {e.shared_experts} shared (ffn {e.shared_expert_ffn or e.expert_ffn})" if e.shared_experts else ""
        rows.append(("moe", f"{e.experts} experts, top-{e.top_k}, expert ffn {e.expert_ffn}{shared}"))
        rows.append(("moe layers", f"{m.moe_layers} of {m.layers} (first {e.first_dense_layers} dense, "
                                   f"every {e.layer_freq} after)"))
    if m.mtp_layers:
        rows.append(("mtp modules", f"{m.mtp_layers} ({params.mtp / 1e9:.2f}e9 parameters)"))
    rows.append(("parameters", f"{params.total / 1e9:.2f}e9 total, {params.active / 1e9:.2f}e9 active per token"))
    return rows


def _cluster_lines(name: str) -> list[tuple[str, str]]:
    c = profile_store.load_cluster(name)
    rows = [("devices", f"{c.num_devices} in {len(c.pools)} pool(s)")]
    for p in c.pools:
        links = f"intra-node {_g(p.intra_node_bytes_per_s / GB)} GB/s, NIC {_g(p.inter_node_bytes_per_s / GB)} GB/s"
        rows.append((f"pool {p.name}", f"{p.nodes} x {p.devices_per_node} {p.device.name}, {links}"))
    between = (f"{_g(c.inter_pool_bytes_per_s / GB)} GB/s per device" if c.inter_pool_bytes_per_s
               else "the slower pool's NIC")
    rows.append(("between pools", between))
    return rows
