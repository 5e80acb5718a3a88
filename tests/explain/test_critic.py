"""The Q function of a run's own critic: equal to the critic computed by hand; VIPER's weights from it."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from rwrl.agents import AGENTS, make_agent
from rwrl.datasets.behaviour_policies import load_policy, resolve_checkpoint
from rwrl.explain.critic import CRITICS, WITHOUT_CRITIC, critic_q, load_critic
from rwrl.tasks.action_scaling import to_unit
from rwrl.explain.explain_run import ExplainError, ExplainSettings, resolve_weights
from rwrl.explain.viper import Q_GAP_CANDIDATES, q_gap_weigher, q_gap_weights
from rwrl.tasks.action_scaling import from_unit
from tests.tiny_run import train_tiny_run

UNIT_LOW, UNIT_HIGH = np.array([-1.0]), np.array([1.0])  # cartpole's action box


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return train_tiny_run(tmp_path_factory.mktemp("critic") / "run", policy_hidden_sizes=(8,))


def softmax_mean(logits: np.ndarray, atoms: np.ndarray) -> np.ndarray:
    """sum_k softmax(logits)_k z_k in float64, with numpy: the reference for every Q below."""
    logits = np.asarray(logits, np.float64)
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (p / p.sum(axis=-1, keepdims=True)) @ atoms


def states_and_actions(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, size=(n, 1))
    actions[:2, 0] = [-1.0, 1.0]  # the box's corners
    return rng.normal(size=(n, 5)).astype(np.float32), actions.astype(np.float32)


def test_the_q_function_is_the_checkpoints_critic_computed_by_hand(tiny_run):
    from rwrl.distill.runs import load_teacher  # the other path that rebuilds a run's agent and state

    checkpoint = resolve_checkpoint(tiny_run)
    q = load_critic(checkpoint, 5, UNIT_LOW, UNIT_HIGH)
    teacher = load_teacher(tiny_run)
    config = json.loads((tiny_run / "config.json").read_text())["agent"]
    # the atoms from the run's config, not from the agent: z_k = v_min + k (v_max - v_min) / (K - 1)
    atoms = np.linspace(config["v_min"], config["v_max"], config["num_atoms"])
    # 1030 pairs: more than one zero-padded batch of 1024 (the last one holds 6)
    obs, actions = states_and_actions(1030)
    logits = teacher.agent.networks.critic.apply(teacher.state.critic_params, obs, actions)
    expected = softmax_mean(logits, atoms)
    assert q.agent == "d4pg" and q.estimates == CRITICS["d4pg"]
    np.testing.assert_allclose(q(obs, actions), expected, rtol=1e-6, atol=1e-5)
    # the online critic, not the target one: 600 steps of learning made them differ here
    target = softmax_mean(teacher.agent.networks.critic.apply(
        teacher.state.target_critic_params, obs[:8], actions[:8]), atoms)
    assert not np.allclose(target, expected[:8], rtol=0, atol=1e-7)


def test_env_scaled_actions_are_mapped_back_to_the_critics_unit_box(tiny_run):
    low, high = np.array([0.0]), np.array([4.0])
    unit = load_critic(resolve_checkpoint(tiny_run), 5, UNIT_LOW, UNIT_HIGH)
    scaled = load_critic(resolve_checkpoint(tiny_run), 5, low, high)
    obs, actions = states_and_actions(16)
    # env action 0 is unit -1, env action 4 is unit +1: the same Q
    np.testing.assert_allclose(scaled(obs, from_unit(actions, low, high)), unit(obs, actions), rtol=1e-6)
    np.testing.assert_allclose(to_unit(np.array([[0.0], [1.0], [4.0]]), low, high), [[-1.0], [-0.5], [1.0]])


def test_q_gap_weights_of_the_run_critic_are_non_negative_with_mean_one(tiny_run):
    checkpoint = resolve_checkpoint(tiny_run)
    critic = load_critic(checkpoint, 5, UNIT_LOW, UNIT_HIGH)
    teacher = load_policy(checkpoint)
    obs, _ = states_and_actions(300, seed=1)
    weigh = q_gap_weigher(critic, UNIT_LOW, UNIT_HIGH, seed=3)
    weights = weigh(obs[:200], teacher(obs[:200]))
    assert weights.shape == (200,) and weights.min() >= 0
    assert weights.mean() == pytest.approx(1.0, abs=1e-12)
    assert weights.std() > 0.1  # the critic does tell states apart: these are not uniform weights
    # the remembered gaps (VIPER re-weighs the aggregated set) equal a fresh computation
    # with the same K = 64 candidates, drawn as q_gap_weigher draws them
    candidates = np.random.default_rng(3).uniform(UNIT_LOW, UNIT_HIGH, size=(Q_GAP_CANDIDATES, 1))
    np.testing.assert_allclose(weights, q_gap_weights(critic, obs[:200], teacher(obs[:200]), candidates),
                               rtol=1e-12)
    np.testing.assert_allclose(weigh(obs, teacher(obs)), q_gap_weights(critic, obs, teacher(obs), candidates),
                               rtol=1e-12)


def test_every_registered_agent_is_declared_with_or_without_a_critic():
    assert set(CRITICS) | set(WITHOUT_CRITIC) == set(AGENTS)
    assert not set(CRITICS) & set(WITHOUT_CRITIC)


@pytest.mark.parametrize("name", sorted(CRITICS))
def test_every_declared_critic_is_a_c51_critic_over_the_configs_atoms(name):
    agent = make_agent(name, 5, 1, policy_hidden_sizes=(4,), critic_hidden_sizes=(4,))
    state = agent.init(jax.random.PRNGKey(1))
    # learned-looking parameters: the initial output layer is near zero (near-uniform probabilities)
    leaves, tree = jax.tree_util.tree_flatten(state.critic_params)
    keys = jax.random.split(jax.random.PRNGKey(2), len(leaves))
    params = jax.tree_util.tree_unflatten(tree, [jax.random.normal(k, x.shape) for k, x in zip(keys, leaves)])
    obs, actions = states_and_actions(6)
    config = agent.config
    atoms = np.linspace(config.v_min, config.v_max, config.num_atoms)
    expected = softmax_mean(agent.networks.critic.apply(params, obs, actions), atoms)
    q = critic_q(agent.networks.critic, params, agent.networks.q_atoms, batch=4)
    np.testing.assert_allclose(q(obs, actions), expected, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("requested, agent, used", [
    (None, "d4pg", "q-gap"), (None, "rcd4pg", "q-gap"), (None, "dmpo", "q-gap"), (None, "bc", "uniform"),
    (None, "iql", "uniform"), ("uniform", "d4pg", "uniform"), ("q-gap", "metal", "q-gap")])
def test_the_default_weights_are_q_gap_where_the_agent_has_a_critic(requested, agent, used):
    assert resolve_weights(requested, agent) == used


@pytest.mark.parametrize("agent, why", [("bc", "has no critic"), ("iql", "scalar twin")])
def test_q_gap_weights_without_a_critic_are_refused_in_one_line(agent, why):
    with pytest.raises(ExplainError, match=f"agent '{agent}' gives no Q function .*{why}") as err:
        resolve_weights("q-gap", agent)
    assert "\n" not in str(err.value)


def test_bad_weights_are_refused_naming_the_field_and_the_allowed_values():
    with pytest.raises(ExplainError, match="weights = 'qgap': allowed q-gap, uniform"):
        ExplainSettings(weights="qgap")


def test_a_distilled_student_whose_critic_was_never_trained_defaults_to_uniform_and_refuses_q_gap():
    assert resolve_weights(None, "d4pg", distilled=True) == "uniform"
    assert resolve_weights("uniform", "d4pg", distilled=True) == "uniform"
    with pytest.raises(ExplainError, match="a distilled student .* whose critic was never trained"):
        resolve_weights("q-gap", "d4pg", distilled=True)
