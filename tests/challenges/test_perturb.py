"""Perturbation schedulers: bounds, drift, cycling, coverage, saw wave; per-env application."""

import numpy as np
import pytest

from rwrl.challenges.perturb import SCHEDULERS, step_scheduler
from tests.challenges.challenge_probe import ProbeTask, challenge_env

START, LO, HI, STD = 1.0, 0.5, 2.0, 0.1


def sequence(name, n=400, start=START, seed=0):
    rng, x, sign, out = np.random.default_rng(seed), start, 1.0, []
    for _ in range(n):
        x, sign = step_scheduler(name, x, sign, rng, start=start, lo=LO, hi=HI, std=STD)
        out.append(x)
    return np.array(out)


@pytest.mark.parametrize("name", SCHEDULERS)
def test_every_scheduler_stays_in_bounds(name):
    seq = sequence(name)
    assert np.all((seq >= LO) & (seq <= HI))


def test_constant_stays_at_start():
    np.testing.assert_array_equal(sequence("constant", 10), np.full(10, START))


def test_random_walk_moves_both_ways():
    steps = np.diff(sequence("random_walk", 50))
    assert (steps > 0).any() and (steps < 0).any()


@pytest.mark.parametrize("name, sign", [("drift_pos", 1), ("drift_neg", -1)])
def test_drift_is_monotone_until_the_bound(name, sign):
    seq = sequence(name, 100)
    assert np.all(sign * np.diff(seq) >= 0)
    assert seq[-1] == (HI if sign > 0 else LO)  # clipped at the bound it drifts to


@pytest.mark.parametrize("name, sign", [("cyclic_pos", 1), ("cyclic_neg", -1)])
def test_cyclic_returns_to_start_on_reaching_the_bound(name, sign):
    seq = sequence(name, 200)
    back = np.flatnonzero(sign * np.diff(seq) < 0) + 1  # every move against the drift
    assert len(back) >= 2
    np.testing.assert_array_equal(seq[back], START)
    assert np.all(sign * (seq - START) >= 0)


def test_uniform_covers_the_range():
    seq = sequence("uniform", 400)
    counts, _ = np.histogram(seq, bins=5, range=(LO, HI))
    assert counts.min() > 40  # 80 expected per bin


def test_saw_wave_accumulates_and_reverses_at_each_bound():
    seq = sequence("saw_wave", 400)
    direction = np.sign(np.diff(seq))
    turns = np.flatnonzero(direction[1:] * direction[:-1] < 0) + 1
    assert len(turns) >= 4  # it keeps sweeping between the bounds
    np.testing.assert_array_equal(np.isin(seq[turns], (LO, HI)), True)  # turns only at bounds
    # Between turns it accumulates: monotone runs span most of the range.
    assert np.ptp(seq[turns[0]:turns[1] + 1]) == HI - LO


def test_perturbation_applies_per_env_every_period_at_reset():
    task = ProbeTask(3, nu=1)
    env = challenge_env(task, perturb_spec={"scheduler": "uniform", "period": 2,
                                           "min": 0.5, "max": 2.0})
    values = []
    for episode in range(4):
        _, info = env.reset(np.arange(3), [10, 11, 12] if episode == 0 else [None] * 3)
        values.append(info["perturbation"]["pole_length"])
        np.testing.assert_array_equal(task.values["pole_length"], values[-1])
    values = np.array(values)
    # Stepped at episodes 0 and 2 (period 2), held at 1 and 3; envs differ.
    np.testing.assert_array_equal(values[1], values[0])
    np.testing.assert_array_equal(values[3], values[2])
    assert np.all(values[2] != values[0]) and len(set(values[0])) == 3
    # The next step's observation reflects the new value (counter += pole_length).
    obs, _, _, info = env.step(np.zeros((3, 1)))
    np.testing.assert_allclose(obs["counter"][:, 0], values[3])
    np.testing.assert_array_equal(info["perturbation"]["pole_length"], values[3])


def test_perturbation_of_env_i_matches_a_single_env_with_its_seed():
    vector = challenge_env(ProbeTask(3, nu=1), perturb_spec={"scheduler": "random_walk"})
    single = challenge_env(ProbeTask(1, nu=1), perturb_spec={"scheduler": "random_walk"})
    for episode in range(5):
        seeds = [5, 6, 7] if episode == 0 else [None] * 3
        _, vinfo = vector.reset(np.arange(3), seeds)
        _, sinfo = single.reset(np.array([0]), [seeds[1]])
        assert vinfo["perturbation"]["pole_length"][1] == sinfo["perturbation"]["pole_length"][0]
