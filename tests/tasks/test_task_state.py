"""The task's snapshot and its pieces: seeds, generators, physics rows, parameters, checks."""

import numpy as np
import pytest

from rwrl.core.seeding import (env_rng, generators_array, generators_from_array, seeds_array,
                               seeds_from_array)
from rwrl.domains import DOMAIN_TASKS, DOMAINS
from rwrl.core.env_state import check_env_state, flatten_tree, unflatten_tree
from rwrl.tasks.task import BatchedTask


def test_seeds_round_trip_through_words():
    seeds = [None, 0, 2**64 - 1, 2**200 + 7]
    rows = seeds_array(seeds)
    assert rows.dtype == np.uint64 and rows.shape == (4, 5)
    assert seeds_from_array(rows) == seeds


def test_a_seed_too_large_for_a_snapshot_is_named():
    with pytest.raises(ValueError, match=r"seed 1157.* of env 1 does not fit a snapshot"):
        seeds_array([1, 2**256])


def test_generators_round_trip_mid_stream():
    rng = env_rng(5, "task")
    rng.normal(size=3)
    rng.integers(0, 10, dtype=np.uint32)  # leaves half a 64-bit word buffered (has_uint32)
    rows = generators_array([rng, None])
    restored, missing = generators_from_array(rows)
    assert missing is None
    np.testing.assert_array_equal(restored.integers(0, 10, 4, dtype=np.uint32),
                                  rng.integers(0, 10, 4, dtype=np.uint32))
    np.testing.assert_array_equal(restored.normal(size=5), rng.normal(size=5))


def test_a_generator_other_than_pcg64_is_refused():
    with pytest.raises(ValueError, match="generator of env 0 is MT19937"):
        generators_array([np.random.Generator(np.random.MT19937(0))])


@pytest.mark.parametrize("domain", list(DOMAINS))
def test_the_physics_fields_are_the_whole_state_row(domain):
    task = BatchedTask(domain, DOMAIN_TASKS[domain][0], 2)
    fields = task.physics.state_fields()
    assert sum(v[0].size for v in fields.values()) == task.physics.state.shape[1]


def test_a_restored_task_runs_the_perturbed_models_again():
    task = BatchedTask("cartpole", "swingup", 2)
    task.reset(np.arange(2), [0, 1])
    task.set_parameter(1, "pole_length", 2.0)
    task.set_parameter(1, "pole_mass", 0.5)
    fresh = BatchedTask("cartpole", "swingup", 2)
    fresh.restore_env_state(task.env_state())
    assert fresh.get_parameter(1, "pole_length") == 2.0
    assert fresh.get_parameter(1, "pole_mass") == 0.5
    assert fresh.physics.env_model(0) is fresh.physics.model  # nominal stays shared
    np.testing.assert_array_equal(fresh.physics.env_model(1).body_mass,
                                  task.physics.env_model(1).body_mass)
    actions = np.full((2, 1), 0.5)
    np.testing.assert_array_equal(fresh.step(actions)[0], task.step(actions)[0])


# -- check_env_state ---------------------------------------------------------------------
MINE = {"task/name": np.array("cartpole-swingup"), "task/steps": np.zeros(2, np.int64)}


@pytest.mark.parametrize("given, pattern", [
    ({**MINE, "task/name": np.array("walker-walk")},
     r"'task/name' = walker-walk, expected cartpole-swingup"),
    ({"task/name": MINE["task/name"]}, r"key 'task/steps' is missing \(1 missing\)"),
    ({**MINE, "task/more": np.zeros(1)}, r"key 'task/more' is not expected \(1 extra\)"),
    ({**MINE, "task/steps": np.zeros(3, np.int64)},
     r"'task/steps': shape \(3,\) int64, expected \(2,\) int64"),
    ({**MINE, "task/steps": np.zeros(2)}, r"'task/steps': shape \(2,\) float64, expected"),
    ({**MINE, "task/steps": [0, 0]}, r"'task/steps' is a list: expected a numpy array"),
    ([1, 2], r"env state is a list: expected a dict of 2 arrays"),
])
def test_check_env_state_names_the_key_and_what_is_expected(given, pattern):
    with pytest.raises(ValueError, match=pattern):
        check_env_state(MINE, given)


def test_an_info_tree_round_trips_through_flat_keys():
    info = {"cost": np.zeros(2), "realtime": {"latency": np.ones(2), "missed": np.zeros(2, int)}}
    flat = flatten_tree(info)
    assert sorted(flat) == ["cost", "realtime/latency", "realtime/missed"]
    back = unflatten_tree(flat)
    assert sorted(back["realtime"]) == ["latency", "missed"]
    np.testing.assert_array_equal(back["realtime"]["latency"], np.ones(2))
