"""R-MPO and SR-MPO: the physics state in replay, the robust targets, the robust action, resume."""

from __future__ import annotations

import numpy as np
import pytest

from rwrl.agents.replay import NStepReplay
from tests.experiments.fakes import Killed


# ---------------------------------------------------------------- replay with physics states
def _fill(replay: NStepReplay, steps: int, rng: np.random.Generator) -> dict[int, np.ndarray]:
    """Add ``steps`` vector steps whose obs[0] names the step; return name -> its state."""
    n, states = replay.num_envs, {}
    for t in range(steps):
        ids = t * n + np.arange(n)
        obs = np.zeros((n, replay.obs_size), np.float32)
        obs[:, 0] = ids
        state = rng.normal(size=(n, replay.state_size)) * np.pi  # not representable in float32
        states.update(zip(ids.tolist(), state))
        truncated = np.full(n, t % 5 == 4)
        replay.add(obs, np.zeros((n, 1)), np.ones(n), obs + 0.5, np.zeros(n, bool), truncated,
                   state=state)
    return states


@pytest.mark.parametrize("n_step", [1, 3])
def test_the_replay_stores_the_physics_state_of_obs_tm1_exactly(n_step):
    rng = np.random.default_rng(0)
    replay = NStepReplay(100, 2, 1, num_envs=3, n_step=n_step, gamma=0.9, state_size=7)
    states = _fill(replay, 12, rng)
    batch = replay.sample(np.random.default_rng(1), 64)
    assert batch.state_tm1.dtype == np.float64
    for obs, state in zip(batch.obs_tm1, batch.state_tm1):
        np.testing.assert_array_equal(state, states[int(obs[0])])  # bit for bit

    copy = NStepReplay(100, 2, 1, num_envs=3, n_step=n_step, gamma=0.9, state_size=7)
    copy.load_state_dict(replay.state_dict())
    again = copy.sample(np.random.default_rng(1), 64)
    np.testing.assert_array_equal(again.state_tm1, batch.state_tm1)


def test_a_replay_without_states_is_unchanged_and_refuses_one():
    replay = NStepReplay(10, 2, 1, num_envs=1, n_step=1, gamma=0.9)
    replay.add(np.zeros((1, 2)), np.zeros((1, 1)), [1.0], np.zeros((1, 2)), [False], [False])
    assert replay.sample(np.random.default_rng(0), 2).state_tm1 is None
    assert "state_tm1" not in replay.state_dict()
    with pytest.raises(ValueError, match="state is given"):
        replay.add(np.zeros((1, 2)), np.zeros((1, 1)), [1.0], np.zeros((1, 2)), [False], [False],
                   state=np.zeros((1, 3)))
    stateful = NStepReplay(10, 2, 1, num_envs=1, n_step=1, gamma=0.9, state_size=3)
    with pytest.raises(ValueError, match="state is missing"):
        stateful.add(np.zeros((1, 2)), np.zeros((1, 1)), [1.0], np.zeros((1, 2)), [False], [False])
    with pytest.raises(ValueError, match="missing.*state_tm1"):
        stateful.load_state_dict(replay.state_dict())


# ---------------------------------------------------------------- the model-set targets
ATOMS = np.arange(5.0)  # support 0, 1, 2, 3, 4


def _targets():
    """Two models, discount 0.5: model 0's target is 1 + 0.5 * 4 = 3, model 1's 1 + 0.5 * {0, 2}."""
    import jax.numpy as jnp
    reward_k = jnp.array([1.0, 1.0])
    p_k = jnp.array([[0, 0, 0, 0, 1.0], [0.5, 0, 0.5, 0, 0]])
    return reward_k, jnp.float32(0.5), p_k, jnp.asarray(ATOMS, jnp.float32)


def test_the_worst_case_target_is_the_lowest_models_whole_distribution():
    from rwrl.agents.rmpo import robust_target
    target, used = robust_target(*_targets(), None)
    # model 1: atoms 1 and 2 with mass 0.5 each (mean 1.5 < 3)
    np.testing.assert_allclose(target, [0, 0.5, 0.5, 0, 0], atol=1e-6)
    np.testing.assert_array_equal(used, [0, 1])


def test_the_soft_robust_target_is_the_weighted_mixture():
    import jax.numpy as jnp
    from rwrl.agents.rmpo import robust_target
    target, _ = robust_target(*_targets(), jnp.array([0.5, 0.5]))
    np.testing.assert_allclose(target, [0, 0.25, 0.25, 0.5, 0], atol=1e-6)
    assert float(target @ ATOMS) == pytest.approx((3 + 1.5) / 2)
    target, _ = robust_target(*_targets(), jnp.array([0.75, 0.25]))
    np.testing.assert_allclose(target, [0, 0.125, 0.125, 0.75, 0], atol=1e-6)


def test_the_entropy_shift_is_minus_tau_times_the_kl_of_the_e_step_policy():
    import jax.numpy as jnp
    from rwrl.agents.dmpo import positive
    from rwrl.agents.rmpo import entropy_shift
    q = jnp.array([0.0, 1.0, 3.0])
    log_temperature = jnp.float32(0.3)
    w = np.exp(np.asarray(q) / float(positive(log_temperature)))
    w /= w.sum()
    expected = -0.2 * np.sum(w * np.log(3 * w))
    assert float(entropy_shift(q, log_temperature, 0.2)) == pytest.approx(expected, rel=1e-5)
    assert float(entropy_shift(jnp.zeros(3), log_temperature, 0.2)) == pytest.approx(0, abs=1e-6)


def test_the_robust_critic_makes_the_e_step_prefer_the_robust_action():
    """A risky action: 4 under the nominal model, 0 under the other; a safe one: 2 under both.

    One-step values (discount 0, one-hot bootstraps): the nominal critic ranks
    risky first, the worst-case target ranks safe first, and MPO's E-step
    weights follow the critic.
    """
    import jax.numpy as jnp
    from rwrl.agents.dmpo import e_step
    from rwrl.agents.rmpo import robust_target
    atoms = jnp.asarray(ATOMS, jnp.float32)
    outcomes = {"risky": [4.0, 0.0], "safe": [2.0, 2.0]}
    p_k = jnp.tile(jnp.array([1.0, 0, 0, 0, 0]), (2, 1))  # value 0 after the step
    values = {}
    for action, rewards in outcomes.items():
        worst, _ = robust_target(jnp.array(rewards), jnp.float32(0.0), p_k, atoms, None)
        nominal, _ = robust_target(jnp.array(rewards), jnp.float32(0.0), p_k, atoms, jnp.array([1.0, 0]))
        values[action] = (float(worst @ atoms), float(nominal @ atoms))
    assert values == {"risky": (0.0, 4.0), "safe": (2.0, 2.0)}
    robust_weights, _ = e_step(jnp.array([values["risky"][0], values["safe"][0]]), jnp.float32(0.0), 0.1)
    nominal_weights, _ = e_step(jnp.array([values["risky"][1], values["safe"][1]]), jnp.float32(0.0), 0.1)
    assert robust_weights[1] > 0.5 > robust_weights[0]  # robust: the safe action
    assert nominal_weights[0] > 0.5 > nominal_weights[1]  # nominal: the risky one


@pytest.mark.parametrize("overrides, match", [
    (dict(n_step=3), "n_step=3.*1-step"),
    (dict(robustness="best"), "robustness='best'"),
    (dict(values=()), "values=()"),
    (dict(weights=(1.0,)), "weights=.*3 non-negative"),
    (dict(entropy_regularization=-1.0), "entropy_regularization"),
])
def test_bad_configs_name_the_field(overrides, match):
    from rwrl.agents import make_config
    with pytest.raises(ValueError, match=match):
        make_config("rmpo", **overrides)


def test_srmpo_is_the_soft_robust_mode_and_the_model_set_must_match_the_env():
    from rwrl.agents import make_agent, make_config
    assert make_config("srmpo").robustness == "soft" and make_config("rmpo").robustness == "worst_case"
    with pytest.raises(ValueError, match="model set's task cartpole-swingup"):
        make_agent("rmpo", obs_size=24, action_size=6, batch_size=4)  # walker's sizes


# ---------------------------------------------------------------- runs: states, resume
TINY = {"batch_size": 16, "min_replay_size": 32, "samples_per_insert": 8.0, "num_samples": 4,
        "policy_hidden_sizes": (16,), "critic_hidden_sizes": (16,)}


def _config(agent: str, **changes):
    from rwrl.experiments.config import RunConfig
    fields = dict(agent=agent, env="cartpole-swingup", steps=120, num_envs=2, eval_every=60,
                  eval_episodes=1, checkpoint_every=40, env_kwargs={"time_limit": 20},
                  agent_config=TINY, report=False)
    return RunConfig(**{**fields, **changes})


def _assert_states_reproduce_the_transitions(trainer):
    """Re-stepping the nominal model from a stored state with the stored action gives obs_t."""
    from rwrl.tasks.model_set import ModelSet
    batch = trainer.replay.sample(np.random.default_rng(0), 16)
    nominal = ModelSet("cartpole", "swingup", "pole_length", [1.0], batch_size=16)
    out = nominal.step(batch.state_tm1[:, :2], batch.state_tm1[:, 2:4], batch.action_tm1,
                       batch.state_tm1[:, 4:])
    np.testing.assert_array_equal(out.obs[:, 0].astype(np.float32), batch.obs_t)


# SR-MPO is the same class in another mode; its run (a second compile) is behind the slow marker.
@pytest.mark.parametrize("agent", ["rmpo", pytest.param("srmpo", marks=pytest.mark.slow)])
def test_each_agent_resumes_after_a_kill(tmp_path, agent):
    from rwrl.experiments.run import RunHooks, is_finished, resume_run, start_run
    from rwrl.metrics.episode_file import read_rows
    steps, seen = {"n": 0}, {}

    def kill_at_70(trainer):
        steps["n"] += 1
        seen["trainer"] = trainer
        if steps["n"] == 35:  # 70 env steps: after the checkpoint at 40, mid-episode
            raise Killed()

    config = _config(agent)
    with pytest.raises(Killed):
        start_run(config, tmp_path / "run", RunHooks(on_step=kill_at_70, progress=False))
    assert not is_finished(tmp_path / "run")
    _assert_states_reproduce_the_transitions(seen["trainer"])
    summary = resume_run(tmp_path / "run", hooks=RunHooks(progress=False))
    rows = read_rows(tmp_path / "run" / "metrics.jsonl")
    assert summary["counters"]["env_steps"] == config.steps and summary["counters"]["session"] == 1
    train = [r["episode"] for r in rows if r["phase"] == "train"]
    assert train == list(range(config.steps // 20))  # every episode once, none lost
    assert any(key.startswith("learner/model_target_spread") for key in rows[-3])
