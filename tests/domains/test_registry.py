"""The domain registry and the task names: one source, no domain module loaded to list them."""

import subprocess
import sys

import numpy as np
import pytest

from rwrl.domains import DOMAIN_TASKS, available_tasks, domain_class, env_names
from rwrl.domains.names import domain_of, env_id, env_name, env_id_of, published_task, split_env_name
from rwrl.tasks.action_scaling import from_unit, half_range, is_unit_box, unit_mapper


@pytest.mark.parametrize("domain", sorted(DOMAIN_TASKS))
def test_the_registry_lists_each_domain_class_tasks_in_order(domain):
    assert DOMAIN_TASKS[domain] == tuple(domain_class(domain).TASKS)


def test_importing_rwrl_loads_no_domain_module_nor_dm_control():
    code = ("import sys, rwrl.core.seeding, gymnasium\n"
            "assert len([k for k in gymnasium.registry if k.startswith('rwrl/')]) == 15\n"
            "print(' '.join(m for m in ('dm_control', 'mujoco', 'rwrl.domains.cartpole', "
            "'rwrl.tasks.task', 'rwrl.envs.dm_env_adapter', 'jax', 'rwrl.video.env') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == []


def test_names_round_trip_for_every_task():
    for domain, task in available_tasks():
        name = env_name(domain, task)
        assert env_names()[name] == (domain, task)
        assert split_env_name(name) == (domain, task)
        assert env_id(domain, task) == env_id_of(name) == f"rwrl/{name}-v0"
        assert domain_of(name) == domain


def test_names_exact_cases_and_errors():
    assert env_id("manipulator", "insert_peg") == "rwrl/manipulator-insert-peg-v0"
    assert published_task("realworld_walk") == "walk" and published_task("walk") == "walk"
    with pytest.raises(ValueError, match=r"unknown env 'cartpole-swing'; allowed: \['cartpole-balance'"):
        split_env_name("cartpole-swing")


def test_action_scaling_maps_the_unit_box_onto_the_bounds():
    low, high = np.array([0.0, -3.0]), np.array([2.0, 1.0])
    # -1 -> low, 0 -> the middle, 1 -> high, per dimension.
    np.testing.assert_array_equal(from_unit(np.array([[-1.0, -1.0], [0.0, 0.0], [1.0, 1.0]]), low, high),
                                  [[0.0, -3.0], [1.0, -1.0], [2.0, 1.0]])
    np.testing.assert_array_equal(half_range(low, high), [1.0, 2.0])
    assert not is_unit_box(low, high) and is_unit_box(-np.ones(2), np.ones(2))
    unit = np.array([[0.25, -0.5]])
    assert unit_mapper(-np.ones(2), np.ones(2))(unit) is unit  # the identity, not a copy
    np.testing.assert_array_equal(unit_mapper(low, high)(unit), [[1.25, -2.0]])
