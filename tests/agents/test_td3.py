"""TD3: the clipped double-Q target, target smoothing, delayed policy steps, the LS refit, a real run."""

from __future__ import annotations

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from rwrl.agents import make_agent, make_config
from rwrl.agents import shallow
from rwrl.agents.td3 import clipped_double_q_target, smoothed_target_action, target_actions, td_targets, twin_q
from rwrl.agents.types import Transition
from rwrl.cli.app import app
from rwrl.metrics.episode_file import read_rows
from tests.agents.test_agents import evaluate, train_point_mass

OBS, ACT, B = 3, 2, 8
SMALL = dict(policy_hidden_sizes=(16, 16), critic_hidden_sizes=(16, 16), batch_size=B)


def random_batch(seed: int, batch_size: int = B) -> Transition:
    rng = np.random.default_rng(seed)
    return Transition(
        obs_tm1=rng.normal(size=(batch_size, OBS)).astype(np.float32),
        action_tm1=rng.uniform(-1, 1, (batch_size, ACT)).astype(np.float32),
        reward_t=rng.uniform(0, 1, batch_size).astype(np.float32),
        discount_t=rng.choice([0.0, 0.99], batch_size).astype(np.float32),
        obs_t=rng.normal(size=(batch_size, OBS)).astype(np.float32))


@functools.cache
def small_agent(**overrides):
    """One small agent per setting, shared by the tests so that each compiles once."""
    return make_agent("td3", OBS, ACT, **{**SMALL, **overrides})


def leaves_equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_the_defaults_are_the_authors_repository_s():
    config = make_config("td3")
    assert (config.policy_hidden_sizes, config.critic_hidden_sizes) == ((256, 256), (256, 256))
    assert (config.policy_learning_rate, config.critic_learning_rate, config.batch_size) == (3e-4, 3e-4, 256)
    assert (config.sigma, config.target_noise, config.target_noise_clip) == (0.1, 0.2, 0.5)
    assert (config.policy_delay, config.target_polyak, config.discount, config.n_step) == (2, 0.005, 0.99, 1)
    assert config.replay_ratio == 1.0  # one learner step per env step
    assert config.ls_every is None  # the shallow refit is off unless asked for


def test_clipped_double_q_target_on_a_hand_made_batch():
    r_t = jnp.array([1.0, 0.5, 2.0, 0.0])
    discount_t = jnp.array([0.99, 0.0, 0.9, 0.99])  # the second terminated: no bootstrap
    q_t = jnp.array([[3.0, 5.0], [10.0, -1.0], [-2.0, -4.0], [7.0, 7.0]])
    y = jax.vmap(clipped_double_q_target)(r_t, discount_t, q_t)
    # 1 + 0.99 * min(3, 5); 0.5 + 0 * (-1); 2 + 0.9 * min(-2, -4); 0 + 0.99 * 7
    np.testing.assert_allclose(y, [3.97, 0.5, -1.6, 6.93], rtol=1e-6)


def test_td_targets_take_the_smaller_target_critic_of_the_target_policy_s_action():
    agent = make_agent("td3", OBS, ACT, **SMALL, target_noise=0.0)
    state = agent.init(jax.random.PRNGKey(0))
    # different online and target networks, so that using the wrong ones would show
    state, _ = agent.update(state, random_batch(0), jax.random.PRNGKey(1))
    state, _ = agent.update(state, random_batch(1), jax.random.PRNGKey(2))
    batch = random_batch(2)
    networks = agent.networks
    a_t = networks.policy.apply(state.target_policy_params, batch.obs_t)
    q = [networks.critic.apply(jax.tree.map(lambda x: x[i], state.target_critic_params), batch.obs_t, a_t)
         for i in range(2)]
    expected = batch.reward_t + batch.discount_t * np.minimum(q[0], q[1])
    y = td_targets(networks, agent.config, state.target_policy_params, state.target_critic_params, batch,
                   jax.random.PRNGKey(3))
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    assert not np.allclose(q[0], q[1])  # two critics, initialised apart


def test_target_smoothing_noise_is_clipped_and_the_action_kept_in_the_box():
    # a, noise, clip 0.5: 0.2 + clip(0.7) = 0.7; -0.9 + (-0.1) = -1.0; 0.95 + 0.3 -> 1.0 (the box)
    np.testing.assert_allclose(smoothed_target_action(jnp.array([0.2, -0.9, 0.95]), jnp.array([0.7, -0.1, 0.3]),
                                                      0.5), [0.7, -1.0, 1.0], rtol=1e-6)
    # with a huge noise stddev, every target action lies within 0.5 of the target policy's
    agent = make_agent("td3", OBS, ACT, **SMALL, target_noise=10.0)
    state = agent.init(jax.random.PRNGKey(0))
    obs_t = np.random.default_rng(0).normal(size=(512, OBS)).astype(np.float32)
    a_t = np.asarray(agent.networks.policy.apply(state.target_policy_params, obs_t))
    smoothed = np.asarray(target_actions(agent.networks, agent.config, state.target_policy_params, obs_t,
                                         jax.random.PRNGKey(1)))
    shift = smoothed - a_t
    assert np.abs(a_t).max() < 0.1  # the initial policy sits near the box's centre: no box clipping
    assert np.abs(shift).max() <= 0.5 + 1e-6
    # N(0, 10**2) exceeds 0.5 in 96 % of draws: nearly every shift is at the clip
    assert np.mean(np.isclose(np.abs(shift), 0.5, atol=1e-6)) > 0.9


def test_the_policy_and_targets_move_every_policy_delay_steps_only():
    agent = small_agent(policy_delay=3)
    state = agent.init(jax.random.PRNGKey(0))
    tau = agent.config.target_polyak
    for step in range(1, 7):
        before = state
        state, metrics = agent.update(state, random_batch(step), jax.random.PRNGKey(step))
        assert not leaves_equal(state.critic_params, before.critic_params), step  # every step
        assert np.isfinite(float(metrics["policy_loss"]))
        if step % 3:
            assert leaves_equal(state.policy_params, before.policy_params), step
            assert leaves_equal(state.policy_opt_state, before.policy_opt_state), step
            assert leaves_equal(state.target_policy_params, before.target_policy_params), step
            assert leaves_equal(state.target_critic_params, before.target_critic_params), step
        else:
            assert not leaves_equal(state.policy_params, before.policy_params), step
            # Polyak: target <- target + tau (online - target), the online networks after this step's update
            for new, old, online in ((state.target_policy_params, before.target_policy_params, state.policy_params),
                                     (state.target_critic_params, before.target_critic_params,
                                      state.critic_params)):
                jax.tree.map(lambda n, o, p: np.testing.assert_allclose(n, o + tau * (p - o), rtol=1e-5,
                                                                        atol=1e-7), new, old, online)
    assert int(state.steps) == 6


def test_acting_explores_with_sigma_and_evaluates_deterministically():
    agent = small_agent()
    state = agent.init(jax.random.PRNGKey(0))
    obs = np.random.default_rng(0).normal(size=(4096, OBS))
    greedy = agent.act(state, obs, jax.random.PRNGKey(1), explore=False)
    np.testing.assert_array_equal(greedy, agent.act(state, obs, jax.random.PRNGKey(2), explore=False))
    explored = agent.act(state, obs, jax.random.PRNGKey(1), explore=True)
    assert explored.shape == (4096, ACT) and explored.dtype == np.float32
    assert np.abs(explored).max() <= 1.0
    assert np.std(explored - greedy) == pytest.approx(0.1, rel=0.05)  # sigma, clipping negligible here


@pytest.mark.parametrize("overrides, message", [
    (dict(ls_every=0), r"ls_every = 0: must be an integer >= 1 \(or None: no refit\)"),
    (dict(ls_every=4, ls_batch=32, ls_lambda=-1.0), r"ls_lambda = -1.0: must be finite and >= 0"),
    (dict(ls_every=4, ls_batch=12), r"ls_batch=12: must be a multiple of batch_size=8"),
    (dict(ls_every=4, ls_batch=40), r"ls_batch=40: must be at most ls_every \* batch_size = 32, .*"),
    (dict(policy_delay=0), r"policy_delay=0: must be an integer >= 1"),
    (dict(target_polyak=0.0), r"target_polyak=0.0: must be in \(0, 1\]"),
    (dict(target_noise=-0.1), r"target_noise=-0.1: must be >= 0"),
    (dict(sigma=-1.0), r"sigma=-1.0: must be >= 0"),
])
def test_config_errors_are_one_line_naming_the_field(overrides, message):
    with pytest.raises(ValueError, match=f"^{message}$") as err:
        make_config("td3", **SMALL, **overrides)
    assert "\n" not in str(err.value)


def test_learns_the_point_mass():
    toy = dict(policy_hidden_sizes=(64, 64), critic_hidden_sizes=(64, 64), batch_size=64, discount=0.9,
               min_replay_size=256, policy_learning_rate=1e-3, critic_learning_rate=1e-3, sigma=0.2)
    agent, state = train_point_mass("td3", 1200, **toy)
    untrained, trained = evaluate(agent, agent.init(jax.random.PRNGKey(0))), evaluate(agent, state)
    # Untrained about 5.0 (the initial policy barely moves the mass); the best possible is about 9.6.
    assert untrained < 6.0 and trained > 9.0, (untrained, trained)


# --- The least-squares refit (LS-DQN) ------------------------------------------------------------

LS = dict(ls_every=3, ls_batch=2 * B, ls_lambda=0.5)
HEAD = "Dense_0"  # the critic's last Dense: its Q head, on top of the LayerNormMLP torso


def split_head(critic_params):
    """Return (the twin's heads, everything else) of stacked critic parameters."""
    inner = dict(critic_params["params"])
    return inner.pop(HEAD), inner


def numpy_ridge(phi, y, w0, lam):
    """(Phi^T Phi + lam I)^{-1} (Phi^T y + lam w0) in float64: the reference solve."""
    phi, y, w0 = (np.asarray(a, np.float64) for a in (phi, y, w0))
    return np.linalg.solve(phi.T @ phi + lam * np.eye(phi.shape[1]), phi.T @ y + lam * w0)


def test_the_refit_changes_only_the_critics_heads_at_every_ls_every_th_update():
    plain, refitting = small_agent(), small_agent(**LS)
    off, on = plain.init(jax.random.PRNGKey(0)), refitting.init(jax.random.PRNGKey(0))
    assert off.refit_batch is None and on.refit_batch.obs_tm1.shape == (2 * B, OBS)
    for step in range(1, 4):
        batch, key = random_batch(step), jax.random.PRNGKey(step)
        off, _ = plain.update(off, batch, key)
        on, _ = refitting.update(on, batch, key)
        # the last ls_batch / batch_size = 2 batches, the newest written over the oldest
        slot = (step - 1) % 2
        np.testing.assert_array_equal(on.refit_batch.obs_tm1[slot * B:(slot + 1) * B], batch.obs_tm1)
        if step < 3:  # no refit yet: the same learner as without it, bit for bit
            assert leaves_equal(on[:7], off[:7]), step
    # update 3 refits: the heads differ from the plain learner's, and nothing else does
    heads_on, torso_on = split_head(on.critic_params)
    heads_off, torso_off = split_head(off.critic_params)
    assert leaves_equal(torso_on, torso_off)
    assert leaves_equal((on.policy_params, on.target_policy_params, on.target_critic_params, on.policy_opt_state,
                         on.critic_opt_state, on.steps),
                        (off.policy_params, off.target_policy_params, off.target_critic_params,
                         off.policy_opt_state, off.critic_opt_state, off.steps))
    assert not np.allclose(heads_on["kernel"], heads_off["kernel"])
    # each head is the ridge solve toward the TD3 target of the refit batch (the plain learner's
    # state is the refitting one's just before its refit), over [features, 1], prior at the old head
    networks, config = refitting.networks, refitting.config
    _, refit_key = jax.random.split(jax.random.PRNGKey(3))
    y = td_targets(networks, config, off.target_policy_params, off.target_critic_params, on.refit_batch, refit_key)
    for i in range(2):
        params = jax.tree.map(lambda x: x[i], off.critic_params)
        features, path = shallow.head_features(networks.critic, params, on.refit_batch.obs_tm1,
                                               on.refit_batch.action_tm1)
        assert path == (HEAD,) and features.shape == (2 * B, 16)
        phi = np.concatenate([features, np.ones((2 * B, 1))], axis=1)
        w0 = np.append(heads_off["kernel"][i, :, 0], heads_off["bias"][i])
        expected = numpy_ridge(phi, y, w0, 0.5 * 2 * B)  # ls_lambda per transition, times ls_batch
        np.testing.assert_allclose(heads_on["kernel"][i, :, 0], expected[:-1], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(heads_on["bias"][i], expected[-1:], rtol=1e-4, atol=1e-5)
    # a refit is a better fit of the refit batch's targets than the head it replaced
    q_on = twin_q(networks.critic, on.critic_params, on.refit_batch.obs_tm1, on.refit_batch.action_tm1)
    q_off = twin_q(networks.critic, off.critic_params, on.refit_batch.obs_tm1, on.refit_batch.action_tm1)
    assert np.all(np.mean((q_on - y) ** 2, axis=1) < np.mean((q_off - y) ** 2, axis=1))


def test_the_refit_comes_at_every_ls_every_th_update_only():
    plain, refitting = small_agent(), small_agent(**LS)
    state = refitting.init(jax.random.PRNGKey(0))
    refitted = []
    for step in range(1, 10):
        batch, key = random_batch(step), jax.random.PRNGKey(step)
        # the same step without the refit: the plain learner from the same state
        without, _ = plain.update(state._replace(refit_batch=None), batch, key)
        state, _ = refitting.update(state, batch, key)
        assert leaves_equal(split_head(state.critic_params)[1], split_head(without.critic_params)[1]), step
        assert leaves_equal(state[:1] + state[2:7], without[:1] + without[2:7]), step
        if not leaves_equal(split_head(state.critic_params)[0], split_head(without.critic_params)[0]):
            refitted.append(step)
    assert refitted == [3, 6, 9]


def test_fused_updates_with_the_refit_equal_sequential_ones():
    agent = small_agent(**LS)
    batches = [random_batch(k) for k in range(4)]
    stacked = Transition(*(np.stack(x) for x in zip(*(b[:5] for b in batches))))
    keys = np.asarray(jax.random.split(jax.random.PRNGKey(1), 4))
    sequential = agent.init(jax.random.PRNGKey(0))
    fused = jax.tree.map(np.array, sequential)  # a copy: update_many donates its input
    for k in range(4):  # a refit at the third
        sequential, _ = agent.update(sequential, batches[k], keys[k])
    fused, _ = agent.update_many(fused, stacked, keys)
    # Not bit for bit, unlike the steps without a refit (test_fused_updates.py): XLA compiles the
    # Cholesky solve inside the scan differently, a few ulps apart (1.5e-8 on heads of about 0.1).
    jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-6), jax.device_get(fused),
                 jax.device_get(sequential))
    assert int(fused.steps) == 4


# --- A real run ----------------------------------------------------------------------------------


def _run(out, steps: int, *extra: str):
    return CliRunner().invoke(app, [
        "run", "--agent", "td3", "--env", "cartpole-swingup", "--steps", str(steps), "--num-envs", "2",
        "--eval-every", "80", "--eval-episodes", "1", "--checkpoint-every", "80", "--env-kwarg", "time_limit=40",
        "--agent-config", "batch_size=16", "--agent-config", "min_replay_size=32",
        "--agent-config", "samples_per_insert=16.0", "--agent-config", "policy_hidden_sizes=[16]",
        "--agent-config", "critic_hidden_sizes=[16]", "--agent-config", "ls_every=4",
        "--agent-config", "ls_batch=32", "--no-progress", "--out", str(out), *extra])


def _without_wall_clock(rows):
    return [{k: v for k, v in row.items() if k != "wall_time"} for row in rows]


@pytest.mark.slow  # 10-23 s; the refit has unit tests here, every run's resume tests/experiments
def test_rwrl_run_trains_td3_with_the_refit_and_resumes_to_the_uninterrupted_rows(tmp_path):
    whole = _run(tmp_path / "whole", 240)
    assert whole.exit_code == 0, whole.output
    first = _run(tmp_path / "split", 160)
    assert first.exit_code == 0, first.output
    resumed = CliRunner().invoke(app, ["run", "--resume", str(tmp_path / "split"), "--steps", "240",
                                       "--no-progress"])
    assert resumed.exit_code == 0 and "done: 240 env steps" in resumed.output, resumed.output
    config = json.loads((tmp_path / "whole" / "config.json").read_text())
    assert config["agent"]["ls_every"] == 4 and config["agent"]["target_noise"] == 0.2
    rows = read_rows(tmp_path / "whole" / "metrics.jsonl")
    # 6 training episodes of 40 steps, 4 evaluations of 1 episode (at 0, 80, 160, 240 steps);
    # 2 updates per vector step (2 envs, one per env step) once replay holds 32, at the 16th of
    # 120 + 2 autoreset vector steps: 107 x 2
    assert len(rows) == 240 // 40 + 4 and rows[-1]["updates"] == 214
    assert all(np.isfinite(rows[-1][f"learner/{m}"]) for m in ("critic_loss", "policy_loss"))
    # the checkpoint holds the refit batch, the optimisers and the steps: the rows repeat exactly
    assert _without_wall_clock(read_rows(tmp_path / "split" / "metrics.jsonl")) == _without_wall_clock(rows)
