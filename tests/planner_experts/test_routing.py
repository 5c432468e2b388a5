"""RoutingStats files, trace aggregation and the synthetic generator."""

import json

import numpy as np
import pytest

from costmodels.errors import SpecError
from costmodels.routing import RoutingStats, load_stats, load_trace, stats_from_ids
from planner.experts.synthetic import synth_ids, synth_stats


def test_trace_aggregation_by_hand():
    # layer 0: token 0 -> {0, 1}, token 1 -> {1, 2}; layer 1: token 0 -> {2, 0}, token 1 -> {1, 2}
    ids = [[[0, 1], [1, 2]], [[2, 0], [1, 2]]]
    stats = stats_from_ids(ids, 3)
    assert stats.expert_load.tolist() == [[1, 2, 1], [1, 1, 2]]
    # pairs: token 0 adds (0,2),(0,0),(1,2),(1,0); token 1 adds (1,1),(1,2),(2,1),(2,2)
    want = np.zeros((3, 3))
    for a, b in [(0, 2), (0, 0), (1, 2), (1, 0), (1, 1), (1, 2), (2, 1), (2, 2)]:
        want[a, b] += 1
    assert np.array_equal(stats.transitions[0], want)


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_round_trip_keeps_digest(tmp_path, suffix):
    stats = synth_stats(layers=3, experts=8, top_k=2, skew=1.0, affinity=0.5, seed=3, tokens=64, windows=2, drift=0.2)
    path = tmp_path / f"s{suffix}"
    stats.write(path)
    again = load_stats(path)
    assert again.digest() == stats.digest()
    assert again.window_load.shape == (2, 3, 8)


@pytest.mark.parametrize("doc, field", [
    ({"expert_load": [[1, -2]]}, "expert_load"),
    ({"expert_load": [[1, 2], [3]]}, "expert_load"),
    ({"expert_load": [[1, 2], [3, 4]], "transitions": [[[1, 2, 3]]]}, "transitions"),
    ({"expert_load": [[1, 2]], "extra": 1}, "extra"),
    ({}, "expert_load"),
])
def test_bad_stats_name_the_field(tmp_path, doc, field):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SpecError) as err:
        load_stats(path)
    assert err.value.field == field


def test_trace_file_and_duplicate_ids(tmp_path):
    path = tmp_path / "t.npz"
    np.savez(path, expert_ids=np.array([[[0, 1]], [[1, 1]]]))
    with pytest.raises(SpecError, match="distinct"):
        load_trace(path)
    np.savez(path, expert_ids=np.array([[[0, 1]], [[1, 2]]]), num_experts=4)
    assert load_trace(path).expert_load.tolist() == [[1, 1, 0, 0], [0, 1, 1, 0]]


def test_synth_is_seeded_and_affinity_concentrates_transitions():
    a = synth_ids(layers=2, experts=16, top_k=2, skew=1.0, affinity=0.9, seed=5, tokens=200, clusters=4)
    b = synth_ids(layers=2, experts=16, top_k=2, skew=1.0, affinity=0.9, seed=5, tokens=200, clusters=4)
    assert np.array_equal(a, b)
    assert all(len(set(row)) == 2 for row in a.reshape(-1, 2))

    def top_share(affinity):
        t = synth_stats(layers=2, experts=16, top_k=2, skew=0.5, affinity=affinity, seed=1, tokens=2000,
                        clusters=4).transitions[0]
        # mass of each row's 4 largest destinations (a group has 4 experts)
        return np.sort(t, axis=1)[:, -4:].sum() / t.sum()

    assert top_share(0.95) > top_share(0.0) + 0.2


def test_in_memory_stats_validate_shapes():
    with pytest.raises(SpecError) as err:
        RoutingStats(expert_load=np.ones((2, 3)), window_load=np.ones((2, 2, 3)))
    assert err.value.field == "window_load"
