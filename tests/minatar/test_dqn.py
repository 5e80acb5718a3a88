"""DQN and LS-DQN (rwrl.minatar.dqn): hand-computed targets and losses, MinAtar's epsilon schedule,
the refit (only the head changes; it is the per-action ridge solve of the authors' normalisation;
Adam steps reach it), the refit schedule, and one-line errors for bad settings."""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rwrl.minatar.dqn import (DQNConfig, adam_refit, dqn_target, epsilon_at, make_agent, make_config,
                              refit_inputs, ridge_refit, td_loss)
from rwrl.minatar.replay import FrameTransition

SHAPE = (10, 10, 4)
#: a small refit setting shared by the tests that build an agent (compiled once per process).
SMALL = dict(ls_every=4, target_update_period=2, replay_capacity=64, ls_batch=48, min_replay_size=8)


def _batch(n: int, seed: int = 0, num_actions: int = 6) -> FrameTransition:
    rng = np.random.default_rng(seed)
    return FrameTransition(obs_tm1=rng.random((n, *SHAPE)) < 0.2,
                           action_tm1=np.arange(n, dtype=np.int32) % num_actions,
                           reward_t=rng.normal(size=n).astype(np.float32),
                           discount_t=np.where(rng.random(n) < 0.2, 0.0, 0.99).astype(np.float32),
                           obs_t=rng.random((n, *SHAPE)) < 0.2)


def test_dqn_target_of_a_hand_made_batch():
    r_t = jnp.array([1.0, 0.5, -1.0])
    discount_t = jnp.array([0.99, 0.0, 0.5])  # the second transition ended the game
    q_t = jnp.array([[1.0, 3.0, 2.0], [5.0, 5.0, 5.0], [-2.0, -4.0, -3.0]])
    # 1 + 0.99 * 3 = 3.97; 0.5 + 0 * 5 = 0.5; -1 + 0.5 * (-2) = -2
    np.testing.assert_allclose(jax.vmap(dqn_target)(r_t, discount_t, q_t), [3.97, 0.5, -2.0], rtol=1e-6)


def _constant_q(network, params, values):
    """Params whose network outputs ``values`` for every frame: head kernel 0, bias = values."""
    head = params["params"]["Dense_1"]
    head = {"kernel": jnp.zeros_like(head["kernel"]), "bias": jnp.asarray(values, jnp.float32)}
    return {"params": {**params["params"], "Dense_1": head}}


def test_td_loss_of_a_hand_made_batch_is_the_mean_huber_of_the_td_errors():
    agent = make_agent(SHAPE, 3, make_config("dqn"))
    params = agent.init(jax.random.PRNGKey(0)).params
    online = _constant_q(agent.network, params, [0.0, 1.0, 2.0])
    target = _constant_q(agent.network, params, [1.0, 3.0, 2.0])
    batch = FrameTransition(obs_tm1=np.zeros((2, *SHAPE), bool), action_tm1=np.array([0, 2], np.int32),
                            reward_t=np.array([1.0, -1.0], np.float32),
                            discount_t=np.array([0.99, 0.0], np.float32), obs_t=np.ones((2, *SHAPE), bool))
    # y = 1 + 0.99 * 3 = 3.97 and -1 + 0 = -1; Q(s, a) = 0 and 2; TD errors -3.97 and 3;
    # Huber (delta 1) |x| - 0.5: 3.47 and 2.5; mean 2.985.
    loss = td_loss(agent.network, online, target, batch)
    np.testing.assert_allclose(loss, 2.985, rtol=1e-6)
    small = batch._replace(reward_t=np.array([-2.5, 2.2], np.float32))  # TD errors 0.47, -0.2: quadratic
    np.testing.assert_allclose(td_loss(agent.network, online, target, small),
                               (0.5 * 0.47 ** 2 + 0.5 * 0.2 ** 2) / 2, rtol=1e-5)


@pytest.mark.parametrize("frame, epsilon", [
    (0, 1.0), (4_999, 1.0),          # uniformly random while the replay warms up
    (5_000, 1.0),                    # the decay starts at 1.0
    (55_000, 0.55),                  # half way: 1 - 0.9 / 2
    (80_000, 0.325),                 # 1 - 0.9 * 0.75
    (105_000, 0.1), (5_000_000, 0.1),
])
def test_epsilon_schedule_is_minatars(frame, epsilon):
    config = DQNConfig()
    assert epsilon_at(frame, config) == pytest.approx(epsilon, abs=1e-12)
    # MinAtar's examples/dqn.py, world_dynamics, written out:
    start, n, end = 5_000, 100_000, 0.1
    expected = 1.0 if frame < start else (end if frame - start >= n else (end - 1.0) / n * (frame - start) + 1.0)
    assert epsilon_at(frame, config) == pytest.approx(expected, abs=1e-12)


def test_update_then_act_equals_update_then_act_called_apart():
    agent = make_agent(SHAPE, 6, make_config("ls-dqn", **SMALL))
    state = agent.init(jax.random.PRNGKey(1))
    batch, frames, key = _batch(32), _batch(1, seed=5).obs_t, np.array([7, 9], np.uint32)
    apart, _ = agent.update(state, batch)
    expected = agent.act(apart, frames, key, 0.3)
    fused, actions, _ = agent.update_then_act(agent.init(jax.random.PRNGKey(1)), batch, frames, key, 0.3)
    np.testing.assert_array_equal(actions, expected)
    for a, b in zip(jax.tree.leaves(apart), jax.tree.leaves(fused)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_refit_changes_only_the_head_and_copies_it_to_the_target():
    agent = make_agent(SHAPE, 6, make_config("ls-dqn", **SMALL))
    state = agent.init(jax.random.PRNGKey(2))
    state, _ = agent.update(state, _batch(32))  # the target now differs from the online network
    refitted, metrics = agent.refit(state, _batch(48, seed=3), jax.random.PRNGKey(0))
    assert agent.head_path == ("Dense_1",)
    for name in state.params["params"]:
        for leaf in ("kernel", "bias"):
            old, new = state.params["params"][name][leaf], refitted.params["params"][name][leaf]
            if name == "Dense_1":
                assert not np.array_equal(old, new), leaf
            else:
                np.testing.assert_array_equal(old, new)
    for a, b in zip(jax.tree.leaves(refitted.params), jax.tree.leaves(refitted.target_params)):
        np.testing.assert_array_equal(a, b)
    assert int(refitted.steps) == int(state.steps)
    assert float(metrics["refit_error_after"]) <= float(metrics["refit_error_before"])


def test_ridge_refit_is_the_authors_per_action_solve():
    """Per action a: (A_a / N + lambda I) w = b_a / N + lambda w_current (NeuralQLearnerShallow.lua)."""
    config = make_config("ls-dqn", **SMALL)
    agent = make_agent(SHAPE, 6, config)
    state = agent.init(jax.random.PRNGKey(3))
    batch = _batch(48, seed=4)
    refitted, _ = agent.refit(state, batch, jax.random.PRNGKey(0))
    features, targets = (np.asarray(x, np.float64) for x in refit_inputs(agent.network, state, batch))
    n, lam = len(targets), config.ls_lambda
    head, new = state.params["params"]["Dense_1"], refitted.params["params"]["Dense_1"]
    for a in range(6):
        rows = batch.action_tm1 == a
        phi = np.hstack([features[rows], np.ones((rows.sum(), 1))])
        prior = np.append(np.asarray(head["kernel"][:, a], np.float64), float(head["bias"][a]))
        w = np.linalg.solve(phi.T @ phi / n + lam * np.eye(phi.shape[1]),
                            phi.T @ targets[rows] / n + lam * prior)
        np.testing.assert_allclose(new["kernel"][:, a], w[:-1], rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(new["bias"][a], w[-1], rtol=1e-3, atol=1e-4)


def test_adam_refit_with_enough_steps_reaches_the_ridge_solution():
    rng = np.random.default_rng(0)
    n, f, actions_count, lam = 300, 5, 3, 0.5
    features = jnp.asarray(rng.normal(size=(n, f)), jnp.float32)
    actions = jnp.asarray(rng.integers(0, actions_count, n), jnp.int32)
    targets = jnp.asarray(rng.normal(size=n), jnp.float32)
    head = nn.Dense(actions_count)
    params = head.init(jax.random.PRNGKey(0), features)
    ridge = ridge_refit(params, (), features, actions, targets, lam * n, actions_count)
    adam = jax.jit(adam_refit, static_argnums=(1, 6))(params, (), features, actions, targets, lam, 3_000, 0.01)
    for leaf in ("kernel", "bias"):
        np.testing.assert_allclose(adam["params"][leaf], ridge["params"][leaf], atol=2e-3)
    few = adam_refit(params, (), features, actions, targets, lam, 5, 0.01)
    assert not np.allclose(few["params"]["kernel"], ridge["params"]["kernel"], atol=2e-3)


def test_adam_refit_on_minibatches_draws_them_from_its_key():
    rng = np.random.default_rng(1)
    n, f, lam = 300, 5, 0.5
    features = jnp.asarray(rng.normal(size=(n, f)), jnp.float32)
    actions = jnp.asarray(rng.integers(0, 3, n), jnp.int32)
    targets = jnp.asarray(rng.normal(size=n), jnp.float32)
    params = nn.Dense(3).init(jax.random.PRNGKey(0), features)
    run = jax.jit(adam_refit, static_argnums=(1, 6, 8))
    one = run(params, (), features, actions, targets, lam, 50, 0.01, 32, jax.random.PRNGKey(1))
    same = run(params, (), features, actions, targets, lam, 50, 0.01, 32, jax.random.PRNGKey(1))
    other = run(params, (), features, actions, targets, lam, 50, 0.01, 32, jax.random.PRNGKey(2))
    full = run(params, (), features, actions, targets, lam, 50, 0.01, None, None)
    np.testing.assert_array_equal(one["params"]["kernel"], same["params"]["kernel"])
    assert not np.allclose(one["params"]["kernel"], other["params"]["kernel"])
    assert not np.allclose(one["params"]["kernel"], full["params"]["kernel"])


@pytest.mark.parametrize("steps, replay_size, due", [
    (4, 48, True), (8, 64, True),     # every ls_every = 4 steps once the replay holds ls_batch = 48
    (4, 47, False),                   # the replay too small yet: skipped, not deferred
    (5, 64, False), (0, 64, False),
])
def test_refit_due_follows_ls_every_and_the_replay_size(steps, replay_size, due):
    agent = make_agent(SHAPE, 6, make_config("ls-dqn", **SMALL))
    assert agent.refit_due(steps, replay_size) is due
    assert make_agent(SHAPE, 6, make_config("dqn")).refit_due(steps, replay_size) is False


def test_named_agents():
    assert make_config("dqn").ls_every is None
    ls = make_config("ls-dqn")
    assert (ls.ls_every, ls.ls_solver, ls.ls_lambda, ls.refit_batch) == (50_000, "ridge", 1.0, 100_000)
    assert (make_config("ls-dqn-adam").ls_solver, make_config("ls-dqn-adam").ls_adam_batch) == ("adam", None)
    assert make_config("ls-dqn-adam-32").ls_adam_batch == 32
    assert dataclasses.replace(DQNConfig(), replay_capacity=500, min_replay_size=100).refit_batch == 500


@pytest.mark.parametrize("overrides, message", [
    ({"ls_every": 0}, r"^ls_every = 0: must be an integer >= 1 \(or None: no refit\)$"),
    ({"ls_every": 1500}, r"^ls_every=1500: must be a multiple of target_update_period=1000"),
    ({"ls_lambda": -1.0}, r"^ls_lambda = -1.0: must be finite and >= 0$"),
    ({"ls_lambda": float("nan")}, r"^ls_lambda = nan: must be finite and >= 0$"),
    ({"ls_solver": "svd"}, r"^ls_solver='svd': must be one of ridge, adam$"),
    ({"ls_batch": 200_000}, r"^ls_batch=200000: must be <= replay_capacity=100000"),
    ({"n_step": 3}, r"^n_step=3: this DQN learns from one-step transitions; must be 1$"),
    ({"epsilon_end": 1.5}, r"^epsilon_end=1.5: must be in \[0, 1\]$"),
    ({"learning_rate": 0.0}, r"^learning_rate=0.0: must be > 0$"),
    ({"hidden": 3}, r"^unknown DQN setting 'hidden': allowed "),
])
def test_bad_settings_are_one_line_errors(overrides, message):
    with pytest.raises(ValueError, match=message) as err:
        make_config("dqn", **overrides)
    assert "\n" not in str(err.value)


def test_unknown_agent_is_a_one_line_error():
    with pytest.raises(ValueError,
                       match=r"^unknown agent 'ddqn': allowed dqn, ls-dqn, ls-dqn-adam, ls-dqn-adam-32$"):
        make_config("ddqn")
