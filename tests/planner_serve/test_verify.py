"""The acceptance rule over independent replays (planner.serve.verify), worked by hand."""

import math

import pytest

from planner.serve.verify import accepted, replicate


def _runs(values):
    return lambda seed: {"attainment": values[seed], "seed": seed}


def test_interval_by_hand():
    # four replays 0.95, 0.93, 0.94, 0.96: mean 0.945, sample sd 0.012910, t(0.95, 3) = 2.353
    sim = replicate(_runs([0.95, 0.93, 0.94, 0.96]), seed=0, seeds=4, requests=5000)
    sd = math.sqrt(((0.005) ** 2 + 0.015 ** 2 + 0.005 ** 2 + 0.015 ** 2) / 3)
    assert sim["attainment"] == pytest.approx(0.945)
    assert sim["attainment_interval"][0] == pytest.approx(0.945 - 2.353 * sd / 2)
    assert sim["attainment_seeds"] == [0.95, 0.93, 0.94, 0.96] and sim["seed"] == 0 and sim["replays"] == 4
    assert accepted(sim, 0.9) and not accepted(sim, 0.935)


def test_identical_replays_keep_binomial_width():
    # all replays 0.91 on 600 requests: sd floor sqrt(0.91·0.09/600) = 0.011683; lower 0.91 - 2.353·0.011683/2
    sim = replicate(_runs([0.91] * 4), seed=0, seeds=4, requests=600)
    assert sim["attainment_interval"][0] == pytest.approx(0.91 - 2.353 * math.sqrt(0.91 * 0.09 / 600) / 2)
    assert not accepted(sim, 0.9)


def test_one_bad_replay_rejects():
    sim = replicate(_runs([0.97, 0.96, 0.97, 0.85]), seed=0, seeds=4, requests=2000)
    assert sim["attainment"] > 0.9 and not accepted(sim, 0.9)
