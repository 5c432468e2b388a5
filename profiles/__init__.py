"""Profiles: hardware, model and cluster YAML shipped with parplan, loaded strictly into specs.

    load_model(ref)    profile name | model YAML path | Hugging Face config.json path (or a folder holding one)
    load_device(ref)   profile name | hardware YAML path
    load_cluster(ref)  profile name | cluster YAML path
    list_profiles()    {"clusters": [...], "hardware": [...], "models": [...]}
    show_profile(name) the resolved spec of a shipped profile as a dict (SI units), for `parplan profiles show`

Every bad input raises costmodels.errors.SpecError naming the file, the key and the valid choices.
"""

import dataclasses
import importlib.resources
import pathlib

from costmodels.errors import SpecError
from costmodels.hardware import ClusterSpec, DeviceSpec
from costmodels.model import ModelSpec
from profiles.hardware import cluster_from_mapping, device_from_mapping
from profiles.hf_config import SUPPORTED_MODEL_TYPES, model_from_hf_config
from profiles.models import model_from_mapping
from profiles.strict import read_json, read_text, read_yaml

KINDS = ("clusters", "hardware", "models")
_SUFFIXES = (".yaml", ".yml", ".json")


def _folder(kind: str):
    return importlib.resources.files("profiles") / kind


def _names(kind: str) -> list[str]:
    return sorted(p.name[:-len(".yaml")] for p in _folder(kind).iterdir() if p.name.endswith(".yaml"))


def list_profiles() -> dict[str, list[str]]:
    """Names of the shipped profiles, by kind, sorted."""
    return {kind: _names(kind) for kind in KINDS}


def _is_bare_name(ref: str) -> bool:
    return not (ref.endswith(_SUFFIXES) or "/" in ref or "\\" in ref)


def _looks_like_path(ref: str) -> bool:
    """A file suffix or a separator makes a path; so does an existing file that is not a profile name."""
    return not _is_bare_name(ref) or pathlib.Path(ref).exists()


def _read(kind: str, ref: str) -> tuple[str, str, str]:
    """(name, source, text) of a profile name or a file path."""
    if not isinstance(ref, str) or not ref:
        raise SpecError(f"expected a {kind} profile name or file path, got {ref!r}")
    if _looks_like_path(ref) and not (_is_bare_name(ref) and ref in _names(kind)):
        path = pathlib.Path(ref)
        if path.is_dir() and kind == "models":
            path = path / "config.json"
        # a config.json is named after its folder (e.g. Meta-Llama-3-8B/config.json -> Meta-Llama-3-8B)
        name = (path.resolve().parent.name or "model") if path.name == "config.json" else path.stem
        return name, str(path), read_text(path)
    if ref not in _names(kind):
        noun = {"clusters": "cluster", "hardware": "hardware", "models": "model"}[kind]
        raise SpecError(f"unknown {noun} profile {ref!r}; valid names: {', '.join(_names(kind))} "
                        "(or give a file path)")
    resource = _folder(kind) / f"{ref}.yaml"
    return ref, f"profiles/{kind}/{ref}.yaml", resource.read_text(encoding="utf-8")


def _with_source(build, source: str):
    """Run a spec constructor; errors raised by spec validation get the file name added."""
    try:
        return build()
    except SpecError as exc:
        if exc.source:
            raise
        raise SpecError(str(exc), source=source) from None


def load_model(ref: str) -> ModelSpec:
    """A ModelSpec from a profile name, a model YAML path, or a Hugging Face config.json path."""
    name, source, text = _read("models", ref)
    if source.endswith(".json"):
        config = read_json(text, source)
        return _with_source(lambda: model_from_hf_config(config, name=name, source=source), source)
    data = read_yaml(text, source)
    return _with_source(lambda: model_from_mapping(data, name=name, source=source), source)


def load_device(ref: str) -> DeviceSpec:
    """A DeviceSpec from a hardware profile name or a hardware YAML path."""
    name, source, text = _read("hardware", ref)
    data = read_yaml(text, source)
    return _with_source(lambda: device_from_mapping(data, name=name, source=source), source)


def load_cluster(ref: str) -> ClusterSpec:
    """A ClusterSpec from a cluster profile name or a cluster YAML path.

    A pool's `device` is a hardware profile name or a YAML path (relative paths are taken from the cluster
    file's folder).
    """
    name, source, text = _read("clusters", str(ref))
    data = read_yaml(text, source)
    base = pathlib.Path(source).parent

    def resolve_device(device_ref: str) -> DeviceSpec:
        if not _is_bare_name(device_ref) and not pathlib.Path(device_ref).is_absolute():
            candidate = base / device_ref
            if candidate.exists():
                return load_device(str(candidate))
        return load_device(device_ref)

    return _with_source(lambda: cluster_from_mapping(data, name=name, source=source, resolve_device=resolve_device),
                        source)


def show_profile(name: str) -> dict:
    """The resolved spec of a shipped profile: {"kind", "name", "source", "description", "spec"} (spec in SI)."""
    for kind, loader in (("hardware", load_device), ("models", load_model), ("clusters", load_cluster)):
        if name in _names(kind):
            source = f"profiles/{kind}/{name}.yaml"
            data = read_yaml((_folder(kind) / f"{name}.yaml").read_text(encoding="utf-8"), source)
            return {"kind": kind, "name": name, "source": source, "description": data.get("description", ""),
                    "spec": dataclasses.asdict(loader(name))}
    valid = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in list_profiles().items())
    raise SpecError(f"unknown profile {name!r}; valid names: {valid}")


__all__ = ["SUPPORTED_MODEL_TYPES", "list_profiles", "load_cluster", "load_device", "load_model",
           "model_from_hf_config", "show_profile"]
