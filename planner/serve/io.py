"""Rebuild the specs a serve plan or estimate recorded in `inputs` (dataclasses.asdict form)."""

from costmodels.errors import SpecError
from costmodels.hardware import ClusterSpec, DeviceCalibration, DeviceSpec, NodePool
from costmodels.model import MLASpec, ModelSpec, MoESpec
from costmodels.serving_constants import EngineCalibration
from planner.serve.request import ServeOptions, ServingWorkload


def _build(cls, data: dict, where: str):
    try:
        return cls(**data)
    except TypeError as exc:
        raise SpecError(f"cannot rebuild {cls.__name__}: {exc}", field=where) from None


def model_from_dict(d: dict) -> ModelSpec:
    d = dict(d)
    if d.get("mla"):
        d["mla"] = _build(MLASpec, d["mla"], "inputs.model.mla")
    if d.get("moe"):
        d["moe"] = _build(MoESpec, d["moe"], "inputs.model.moe")
    return _build(ModelSpec, d, "inputs.model")


def device_from_dict(d: dict) -> DeviceSpec:
    d = dict(d)
    d["calibration"] = _build(DeviceCalibration, d.get("calibration", {}), "inputs.device.calibration")
    d["serving_engines"] = tuple(_build(EngineCalibration, e, "inputs.device.serving_engines")
                                 for e in d.get("serving_engines", ()))
    return _build(DeviceSpec, d, "inputs.device")


def cluster_from_dict(d: dict) -> ClusterSpec:
    pools = []
    for p in d.get("pools", []):
        p = dict(p)
        p["device"] = device_from_dict(p["device"])
        pools.append(_build(NodePool, p, "inputs.cluster.pools"))
    return _build(ClusterSpec, {**d, "pools": tuple(pools)}, "inputs.cluster")


def workload_from_dict(d: dict) -> ServingWorkload:
    d = dict(d)
    d["lengths"] = tuple(tuple(p) for p in d.get("lengths", ()))
    d["lognormal"] = tuple(d.get("lognormal", ()))
    return _build(ServingWorkload, d, "inputs.workload")


def options_from_dict(d: dict) -> ServeOptions:
    d = dict(d)
    for key in ("modes", "prefill_pools", "decode_pools"):
        if key in d:
            d[key] = tuple(d[key])
    return _build(ServeOptions, d, "inputs.options")
