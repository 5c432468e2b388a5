"""Against experts: for every complete row of the published runs, the plan is at least as fast (same cost
model) as the published configuration, which must be inside the search space and feasible."""

import csv
import pathlib
import sys

import pytest

import profiles
from costmodels.hardware import ClusterSpec
from costmodels.parallel import TrainingWorkload
from costmodels.training import estimate_training
from planner.train import TrainOptions, check, plan_training
from planner.train.request import TrainRequest
from planner.train.space import configs_for_shape, shapes

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "benchmarks"))
from train_bench import GPU_PROFILES, published_configs, row_model  # noqa: E402

OPTIONS = TrainOptions(allow_cross_node_ep=True)


def complete_rows(shared: pathlib.Path):
    with (shared / "calibration" / "published_training_runs.csv").open() as f:
        rows = list(csv.DictReader(f))
    return [r for r in rows if r["tp"] and r["pp"] and row_model(r) is not None]


def _key(c):
    return (c.tp, c.pp, c.dp, c.cp, c.ep, c.etp, c.vpp, c.mbs, c.zero, c.recompute)


def assert_plan_beats_published(row):
    model = row_model(row)
    cluster = ClusterSpec.homogeneous(profiles.load_device(GPU_PROFILES[row["gpu"]]), int(row["num_gpus"]))
    workload = TrainingWorkload(global_batch=int(row["global_batch"]), seq_len=int(row["seq_len"]))
    request = TrainRequest(model=model, cluster=cluster, workload=workload, options=OPTIONS)
    space = {_key(c) for s in shapes(request, cluster.num_devices, cluster.primary)
             for c in configs_for_shape(request, s)}
    feasible = []
    for cfg in published_configs(row, model, workload):
        assert _key(cfg) in space, f"published configuration {cfg} is outside the search space"
        est = estimate_training(model, cluster, workload, cfg)
        if est.feasible:
            feasible.append(est)
    assert feasible, f"row {row['model']} on {row['num_gpus']} GPUs: the published configuration does not fit"
    plan = plan_training(model, cluster, workload, options=OPTIONS)
    best_published = max(e.tokens_per_s_per_gpu for e in feasible)
    assert plan["predicted"]["tokens_per_s_per_gpu"] >= best_published * (1 - 1e-8)  # plans keep 9 digits
    assert check(plan) == []


SAMPLE = ("GPT-1.7B", "GPT-76.1B", "GPT 7.1B")
"""default-suite sample (issue 17): a 2021 A100 data-parallel row, a 2021 interleaved-pipeline row on 1,024
GPUs and an H100 README tensor-parallel row; test_every_published_row (slow) runs them all"""


def test_sample_of_published_rows(shared_dir):
    rows = [r for r in complete_rows(shared_dir) if r["model"].strip() in SAMPLE]
    assert len(rows) == len(SAMPLE)
    for row in rows:
        assert_plan_beats_published(row)


@pytest.mark.slow
def test_every_published_row(shared_dir):
    for row in complete_rows(shared_dir):
        assert_plan_beats_published(row)
