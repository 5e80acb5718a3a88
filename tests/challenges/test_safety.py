"""Safety: constraint selection, safety_coeff, action_roc, user constraints; multiobj mix."""

import numpy as np
import pytest

from rwrl.challenges.stage import Frame
from rwrl.challenges.multiobj import MultiObjective, Objective, SafetyObjective
from tests.challenges.challenge_probe import ProbeTask, challenge_env


def step_once(env, action):
    env.reset(np.arange(env.num_envs), list(range(env.num_envs)))
    return env.step(np.asarray(action, float))


@pytest.mark.parametrize("coeff, action, expected", [
    # small_action: max |a| < 0.5 c.
    (1.0, 0.4, True), (0.5, 0.4, False), (0.5, 0.2, True), (0.0, 0.0, False),
])
def test_safety_coeff_scales_the_builtin_limits(coeff, action, expected):
    env = challenge_env(ProbeTask(1, nu=1), safety_spec={"constraints": ["small_action"],
                                                        "safety_coeff": coeff})
    _, _, _, info = step_once(env, [[action]])
    assert env.constraint_names == ("small_action",)
    assert info["constraints"].tolist() == [[expected]]
    assert info["cost"].tolist() == [0.0 if expected else 1.0]


def test_default_constraints_and_observation_entry():
    env = challenge_env(ProbeTask(2, nu=1), safety_spec={"enable": True})
    assert env.constraint_names == ("small_action", "early")
    assert env.observation_spec["constraints"] == ((2,), np.dtype(bool))
    obs, _, _, info = step_once(env, [[0.9], [0.1]])
    np.testing.assert_array_equal(obs["constraints"], [[False, True], [True, True]])
    np.testing.assert_array_equal(info["constraints"], obs["constraints"])
    np.testing.assert_array_equal(info["cost"], [1.0, 0.0])
    off = challenge_env(ProbeTask(1, nu=1), safety_spec={"observations": False})
    assert "constraints" not in off.observation_spec


def test_info_keys_and_shapes_are_the_same_on_reset_and_step():
    env = challenge_env(ProbeTask(2, nu=1), safety_spec={"constraints": ["early", "action_roc"]})
    _, info0 = env.reset(np.arange(2), [0, 1])
    _, _, _, info1 = env.step(np.zeros((2, 1)))
    assert info0.keys() == info1.keys()
    assert info0["constraints"].shape == info1["constraints"].shape == (2, 2)
    assert info0["cost"].dtype == info1["cost"].dtype == np.float64


def test_action_roc_uses_the_previous_executed_action():
    # ProbeDomain.ACTION_ROC_LIMIT = 1: satisfied while every |a_t - a_{t-1}| < c.
    env = challenge_env(ProbeTask(1, nu=2), safety_spec={"constraints": ["action_roc"],
                                                        "safety_coeff": 0.5})
    env.reset(np.array([0]), [0])
    actions = [[0.9, 0.0], [0.5, 0.0], [-0.2, 0.0], [-0.2, 0.45], [-0.2, -0.1]]
    flags = [env.step(np.array([a]))[3]["constraints"][0, 0] for a in actions]
    # first step: no previous action; then changes 0.4, 0.7, 0.45, 0.55 against c * 1 = 0.5
    assert flags == [True, True, False, True, False]


def test_user_constraints_are_functions_of_safety_vars():
    def counter_even(sv):
        return sv["counter"] % 2 == 0
    env = challenge_env(ProbeTask(1, nu=1), safety_spec={
        "constraints": {"early_constraint": None, "counter_even": counter_even}})
    assert env.constraint_names == ("early", "counter_even")
    env.reset(np.array([0]), [0])
    flags = [env.step(np.zeros((1, 1)))[3]["constraints"][0].tolist() for _ in range(3)]
    assert flags == [[True, False], [True, True], [True, False]]


def test_constraint_observation_is_delayed_with_the_observation():
    env = challenge_env(ProbeTask(1, nu=1), safety_spec={"constraints": ["early"],
                                                        "safety_coeff": 0.2},
                       delay_spec={"observations": 1})
    env.reset(np.array([0]), [0])
    seen, now = [], []
    for _ in range(4):  # early: counter < 2
        obs, _, _, info = env.step(np.zeros((1, 1)))
        seen.append(bool(obs["constraints"][0, 0]))
        now.append(bool(info["constraints"][0, 0]))
    assert now == [True, False, False, False]
    assert seen == [True, True, False, False]


@pytest.mark.parametrize("flags, reward, coeff, expected", [
    # r' = (1 - a) r + a s, s = satisfied / K
    ([[True, True]], 0.2, 0.0, 0.2),
    ([[True, False]], 1.0, 0.5, 0.75),
    ([[False, False]], 1.0, 1.0, 0.0),
    ([[True, True, False, True]], 0.0, 0.4, 0.3),
])
def test_multiobj_safety_formula(flags, reward, coeff, expected):
    mix = MultiObjective(SafetyObjective(), reward=True, coeff=coeff)
    frame = Frame(info={"constraints": np.array(flags), "safety_vars": {}})
    mixed, vector = mix(np.array([reward]), frame), frame.info["multiobj"]
    assert mixed[0] == pytest.approx(expected)
    np.testing.assert_allclose(vector, [[reward, np.mean(flags)]])


def test_multiobj_in_the_pipeline_mixes_then_delays_the_reward():
    env = challenge_env(ProbeTask(1, nu=1), safety_spec={"constraints": ["small_action"]},
                       multiobj_spec={"reward": True, "coeff": 0.5, "observed": True},
                       delay_spec={"rewards": 1})
    env.reset(np.array([0]), [0])
    out = [env.step(np.array([[a]])) for a in (0.0, 0.9, 0.0)]
    # base rewards 1, 2, 3; s = 1, 0, 1; mixed 1, 1, 2; delayed by one: 1, 1, 1
    assert [o[1][0] for o in out] == [1.0, 1.0, 1.0]
    np.testing.assert_array_equal(out[1][0]["multiobj"], [[2.0, 0.0]])  # not delayed
    np.testing.assert_array_equal(out[2][3]["multiobj"], [[3.0, 1.0]])


def test_user_objective():
    class Speed(Objective):
        num_objectives = 2

        def values(self, reward, constraints, safety_vars):
            return np.stack([safety_vars["counter"], -safety_vars["counter"]], axis=1)

    env = challenge_env(ProbeTask(1, nu=1), multiobj_spec={"objective": Speed, "reward": True,
                                                          "coeff": 0.5, "observed": True})
    obs, reward, _, _ = step_once(env, [[0.0]])
    np.testing.assert_array_equal(obs["multiobj"], [[1.0, 1.0, -1.0]])
    assert reward[0] == 0.5  # 0.5 * 1 + 0.5 * mean(1, -1)
