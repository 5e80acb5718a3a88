"""Perturbable parameters of every domain: range checks and nominal sharing."""

import pytest

from rwrl.domains import DOMAINS, domain_class
from rwrl.tasks.task import BatchedTask

PARAMS = [(d, p) for d in DOMAINS for p in domain_class(d)(next(iter(domain_class(d).TASKS)))
          .perturb_params()]


@pytest.fixture(scope="module")
def tasks():
    return {d: BatchedTask(d, next(iter(domain_class(d).TASKS)), 2) for d in DOMAINS}


@pytest.mark.parametrize("domain,name", PARAMS, ids=[f"{d}-{p}" for d, p in PARAMS])
def test_out_of_range_values_raise_naming_the_range_and_change_nothing(tasks, domain, name):
    task = tasks[domain]
    param = task.params[name]
    span = param.max - param.min
    for bad in (param.max + 0.1 * span, param.min - 0.1 * span, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=rf"{name}.*\[{param.min}, {param.max}\]"):
            task.set_parameter(1, name, bad)
        assert task.physics.env_model(1) is task.physics.model
        assert task.get_parameter(1, name) == param.start


@pytest.mark.parametrize("domain,name", PARAMS, ids=[f"{d}-{p}" for d, p in PARAMS])
def test_a_value_gives_env_i_a_model_of_its_own_and_nominal_restores_the_shared_one(
        tasks, domain, name):
    task = tasks[domain]
    param = task.params[name]
    task.set_parameter(1, name, param.max)
    assert task.physics.env_model(1) is not task.physics.model
    assert task.physics.env_model(0) is task.physics.model
    assert task.get_parameter(1, name) == param.max
    task.set_parameter(1, name, param.start)
    assert task.physics.env_model(1) is task.physics.model


def test_unknown_parameter_and_env_raise(tasks):
    task = tasks["walker"]
    with pytest.raises(ValueError, match=r"unknown parameter 'wing_span'.*thigh_length"):
        task.set_parameter(0, "wing_span", 1.0)
    with pytest.raises(ValueError, match=r"env_id 5 out of range \[0, 1\]"):
        task.set_parameter(5, "thigh_length", 0.3)
    with pytest.raises(ValueError, match="unknown parameter"):
        task.get_parameter(0, "wing_span")
