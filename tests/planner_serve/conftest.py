"""Fixtures shared by the serving planner tests."""

import pytest

import profiles
from costmodels.hardware import ClusterSpec
from costmodels.serving import InstanceShape
from planner.serve.capacity import CapacityModel
from planner.serve.request import ServeOptions, ServingWorkload


@pytest.fixture(scope="module")
def llama8b_intra_gpu():
    """(capacity model, pool, TP 1 shape) of Llama-3-8B on 8 H100 at ISL 2000 / OSL 300, TTFT 1.5 s / TPOT 50 ms,
    legacy engine: a small case for intra-GPU and round-robin queueing checks."""
    model = profiles.load_model("llama3-8b")
    cluster = ClusterSpec.homogeneous(profiles.load_device("h100-sxm"), 8)
    wl = ServingWorkload(input_len=2000, output_len=300, ttft_s=1.5, tpot_s=0.05)
    cm = CapacityModel(model, cluster, wl, ServeOptions(engine="legacy"))
    return cm, cluster.pools[0], InstanceShape(tp=1)
