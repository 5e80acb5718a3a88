"""The loop's session state: the open episodes' partial sums survive a checkpoint exactly."""

from __future__ import annotations

import io

import numpy as np
import pytest

from rwrl.agents.history import ObservationHistory
from rwrl.experiments.loop_base import is_restorable
from rwrl.metrics.accumulator import EpisodeAccumulator
from tests.experiments.fakes import StatelessTargetVectorEnv, TargetVectorEnv


def _info(rng: np.random.Generator) -> dict:
    """A step's info with every group the accumulator keeps (2 envs, 1 constraint)."""
    return {"constraints": rng.uniform(size=(2, 1)) < 0.7, "cost": rng.uniform(size=2),
            "safety_vars": {"height": 1e6 + rng.normal(size=2), "joints": rng.normal(size=(2, 3))},
            "multiobj": rng.normal(size=(2, 2)), "perturbation": {"pole_length": rng.uniform(size=2)},
            "realtime": {"missed": rng.integers(0, 3, size=2), "latency": rng.uniform(size=2)},
            "diverged": rng.uniform(size=2) < 0.1}


def _through_npz(state: dict) -> dict:
    buffer = io.BytesIO()
    np.savez(buffer, **{f"a{i}": v for i, v in enumerate(state.values())})
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as data:
        return {name: data[f"a{i}"] for i, name in enumerate(state)}


def test_a_restored_accumulator_finishes_the_open_episodes_as_the_original():
    rng = np.random.default_rng(0)
    original = EpisodeAccumulator(2, ("c",))
    original.observe_reset(slice(None), _info(rng))
    for _ in range(5):
        original.add_step(np.array([True, rng.uniform() < 0.5]), rng.normal(size=2), _info(rng))
    restored = EpisodeAccumulator(2, ("c",))
    restored.load_state_dict(_through_npz(original.state_dict()))
    for _ in range(5):  # both go on with the same steps
        active, reward, info = np.array([True, True]), rng.normal(size=2), _info(rng)
        original.add_step(active, reward, info)
        restored.add_step(active, reward, info)
    for i in range(2):
        assert list(restored.row(i).items()) == list(original.row(i).items())
        assert len(original.row(i)) > 20  # every group is in the row


def test_a_state_of_another_shape_is_refused_naming_the_array():
    state = EpisodeAccumulator(3, ("c",)).state_dict()
    with pytest.raises(ValueError, match=r"accumulator state return: expected shape \(2,\), got \(3,\)"):
        EpisodeAccumulator(2, ("c",)).load_state_dict(state)


def test_an_env_is_restorable_when_it_and_every_env_it_wraps_have_env_state():
    assert is_restorable(TargetVectorEnv(2)) and is_restorable(ObservationHistory(TargetVectorEnv(2), 2))
    assert not is_restorable(StatelessTargetVectorEnv(2))  # a plain wrapper: its state is unknown
    # The history has env_state, the env under it has not: the stack cannot be restored.
    assert not is_restorable(ObservationHistory(StatelessTargetVectorEnv(2), 2))
