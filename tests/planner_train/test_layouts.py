"""Interleaved pipeline layouts for layer counts that do not divide (61, 94, 126): the search admits them, the
virtual stages sum to the model's layers, and the Megatron export renders them with embedding and loss entries."""

import re

import pytest
from train_fixtures import tiny_cluster, tiny_model

from costmodels.parallel import ParallelConfig, TrainingWorkload
from costmodels.pipeline import virtual_stage_layers
from costmodels.training import estimate_training, even_stage_layers
from planner.train import TrainOptions, export
from planner.train.estimate import estimate_plan
from planner.train.request import TrainRequest
from planner.train.space import Shape, configs_for_shape


def test_virtual_stage_layers_by_hand():
    assert virtual_stage_layers([5, 4, 3], 2) == [[3, 2], [2, 2], [2, 1]]  # larger-first: the loss chunk is smallest
    assert virtual_stage_layers((8,), 1) == [[8]]
    with pytest.raises(ValueError, match="at least vpp=3"):
        virtual_stage_layers([4, 2], 3)


def _layout_entries(script: str) -> list[str]:
    match = re.search(r"--pipeline-model-parallel-layout '([^']*)'", script)
    assert match, script
    return match.group(1).split("|")


@pytest.mark.parametrize(("layers", "pp", "vpp"), [(61, 4, 2), (94, 4, 3), (126, 8, 2), (61, 8, 4)])
def test_interleaved_layout_for_layer_counts_that_do_not_divide(layers, pp, vpp):
    model = tiny_model(layers=layers)
    cluster = tiny_cluster(8, 8.0)
    wl = TrainingWorkload(global_batch=64, seq_len=512)
    dp = 8 // pp
    request = TrainRequest(model=model, cluster=cluster, workload=wl, options=TrainOptions(max_vpp=vpp, max_mbs=1))
    searched = configs_for_shape(request, Shape(tp=1, cp=1, pp=pp, dp=dp, ep=1, etp=1))
    assert vpp in {c.vpp for c in searched}  # layers % (pp * vpp) != 0 no longer excludes interleaving
    split = even_stage_layers(layers, pp)
    config = ParallelConfig(tp=1, pp=pp, dp=dp, vpp=vpp, mbs=1, zero=1, stage_layers=split)
    assert estimate_training(model, cluster, wl, config).feasible
    entries = _layout_entries(export(estimate_plan(model, cluster, wl, config), "megatron"))
    assert len(entries) == pp * vpp
    counts = [int(e.split("t*")[1].rstrip("mL")) for e in entries]
    assert sum(counts) == layers and min(counts) >= 1
    assert entries[0].startswith("Et*") and entries[-1].endswith("L")
    assert all("E" not in e and "L" not in e for e in entries[1:-1])
    # virtual stage v*pp + s belongs to rank s: each rank's chunks add up to its planned layers
    assert [sum(counts[v * pp + s] for v in range(vpp)) for s in range(pp)] == list(split)


def test_stage_with_fewer_layers_than_virtual_stages_is_infeasible():
    model = tiny_model(layers=6)
    est = estimate_training(model, tiny_cluster(8, 8.0), TrainingWorkload(global_batch=16, seq_len=512),
                            ParallelConfig(tp=1, pp=2, dp=4, vpp=2, mbs=1, zero=1, stage_layers=(5, 1)))
    assert not est.feasible and any("virtual stage" in r for r in est.infeasible_reasons)
