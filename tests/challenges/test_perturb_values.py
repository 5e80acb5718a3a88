"""perturb_spec['values']: domain randomization over a discrete set with the 'uniform' scheduler."""

import gymnasium
import numpy as np
import pytest

import rwrl  # noqa: F401  (registers the rwrl/ ids)

SET = [0.75, 1.0, 1.25]


def _spec(**changes):
    return {"enable": True, "param": "pole_length", "scheduler": "uniform", "values": SET, **changes}


def test_each_reset_draws_one_value_of_the_set_and_runs_on_it():
    env = gymnasium.make_vec("rwrl/cartpole-swingup-v0", num_envs=4, time_limit=2,
                             perturb_spec=_spec())
    _, info = env.reset(seed=3)
    seen = []
    for _ in range(30):  # 10 episodes per env (each autoreset is a new draw)
        seen.extend(info["perturbation"]["pole_length"].tolist())
        for i, value in enumerate(info["perturbation"]["pole_length"]):
            assert env.unwrapped.batched.get_parameter(i, "pole_length") == value
        _, _, _, _, info = env.step(np.zeros((4, 1)))
    assert set(seen) == set(SET)


def test_the_draws_are_reproducible_per_seed():
    def draws(seed):
        env = gymnasium.make("rwrl/cartpole-swingup-v0", perturb_spec=_spec())
        return [env.reset(seed=seed + i)[1]["perturbation"]["pole_length"] for i in range(8)]
    assert draws(0) == draws(0) and set(draws(0)) <= set(SET)


@pytest.mark.parametrize("changes, match", [
    (dict(values=[]), r"\['values'\] \(pole_length\) = \[\] is not allowed"),
    (dict(values=[0.75, 9.0]), r"\['values'\] \(pole_length\)\[1\]"),
    (dict(scheduler="random_walk"), "scheduler 'uniform' only, got scheduler 'random_walk'"),
    (dict(min=0.9), r"values'\] = \[0.75, 1.0, 1.25\] \(pole_length\): must lie in \[min, max\]"),
])
def test_bad_sets_name_the_field(changes, match):
    with pytest.raises(ValueError, match=match):
        gymnasium.make("rwrl/cartpole-swingup-v0", perturb_spec=_spec(**changes))
