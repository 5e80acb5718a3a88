"""The constrained agents (RC-D4PG, fixed-lambda shaping, MetaL) and the costs that feed them."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rwrl.agents import d4pg, make_agent, make_config, metal, rcd4pg
from rwrl.agents.replay import NStepReplay
from rwrl.agents.types import Transition
from rwrl.storage import checkpoint as ckpt
from rwrl.experiments.loop import episode_cost, step_cost
from rwrl.experiments.run import RunHooks, resume_run, start_run
from rwrl.metrics.episode_file import read_rows
from tests.experiments.fakes import Killed, fake_env_factory, kill_after, tiny_config

GAMMA = 0.5  # a power of two: every expected sum is exact in float32


# --- the per-step cost in the replay and the loop ------------------------------


def test_replay_sums_costs_like_rewards_and_defaults_to_zero():
    replay = NStepReplay(capacity=20, obs_size=1, action_size=1, num_envs=1, n_step=2, gamma=GAMMA)
    obs = [[0.0], [1.0], [2.0], [3.0]]
    costs = [1.0, 0.0, 2.0]
    for t in range(3):
        replay.add(np.array([obs[t]]), np.zeros((1, 1)), np.array([10.0]), np.array([obs[t + 1]]),
                   np.array([False]), np.array([t == 2]), cost=np.array([costs[t]]))
    d = replay.state_dict()
    by_obs = {float(o[0]): float(c) for o, c in zip(d["obs_tm1"], d["cost_t"])}
    # Step 0: 1 + 0.5 * 0 = 1; step 1: 0 + 0.5 * 2 = 1 (truncated window, 2 steps);
    # step 2: 2 (one step left at truncation). Rewards follow the same sums: 15, 15, 10.
    assert by_obs == {0.0: 1.0, 1.0: 1.0, 2.0: 2.0}
    assert sorted(d["reward_t"].tolist()) == [10.0, 15.0, 15.0]
    batch = replay.sample(np.random.default_rng(0), 8)
    assert batch.cost_t.shape == (8,) and batch.cost_t.dtype == np.float32
    # Without a cost argument (every agent before the constrained ones) costs are 0.
    plain = NStepReplay(capacity=20, obs_size=1, action_size=1, num_envs=1, n_step=2, gamma=GAMMA)
    plain.add(np.zeros((1, 1)), np.zeros((1, 1)), np.ones(1), np.ones((1, 1)), np.array([True]), np.array([False]))
    assert plain.sample(np.random.default_rng(0), 2).cost_t.tolist() == [0.0, 0.0]


def test_replay_state_from_before_costs_restores_with_zero_costs():
    replay = NStepReplay(capacity=10, obs_size=1, action_size=1, num_envs=1, n_step=1, gamma=GAMMA)
    replay.add(np.zeros((1, 1)), np.zeros((1, 1)), np.ones(1), np.ones((1, 1)), np.array([True]),
               np.array([False]), cost=np.array([3.0]))
    old = {k: v for k, v in replay.state_dict().items() if k not in ("cost_t", "pending_cost")}
    restored = NStepReplay(capacity=10, obs_size=1, action_size=1, num_envs=1, n_step=1, gamma=GAMMA)
    restored.load_state_dict(old)
    assert len(restored) == 1 and restored.sample(np.random.default_rng(0), 1).cost_t.tolist() == [0.0]
    with pytest.raises(ValueError, match="cost has shape"):
        replay.add(np.zeros((1, 1)), np.zeros((1, 1)), np.ones(1), np.ones((1, 1)), np.array([True]),
                   np.array([False]), cost=np.zeros(2))


def test_step_cost_is_info_cost_or_one_named_constraint():
    info = {"cost": np.array([2.0, 0.0, 1.0]),
            "constraints": np.array([[False, False], [True, True], [True, False]])}
    names = ("slider_pos", "slider_accel")
    np.testing.assert_array_equal(step_cost(info, names, None), [2.0, 0.0, 1.0])
    np.testing.assert_array_equal(step_cost(info, names, "slider_pos"), [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(step_cost(info, names, "slider_accel"), [1.0, 0.0, 1.0])
    row = {"cost": 30.0, "length": 100, "violation_rate/slider_pos": 0.25}
    assert episode_cost(row, None) == pytest.approx(0.3)
    assert episode_cost(row, "slider_pos") == 0.25


# --- the Lagrange multiplier and the estimate of J_C ----------------------------

# One configuration per agent for every test below (each compiles once): tiny networks,
# the 1-step task of ``one_step_batch``, beta = 0.25.
TINY = dict(policy_hidden_sizes=(16,), critic_hidden_sizes=(16,), batch_size=64, n_step=1, discount=0.9,
            v_min=-5.0, v_max=5.0, sigma=0.2, target_update_period=1, cost_buffer_size=64,
            policy_learning_rate=3e-3, critic_learning_rate=1e-2, cost_threshold=0.25, cost_estimate="mean")
SETTINGS = {"rcd4pg": dict(lagrange_learning_rate=0.01),
            "fixed": dict(mode="fixed", lagrange_init=2.0),
            "metal": dict(lagrange_learning_rate=0.02, meta_learning_rate=1e-2),
            "metal-optimiser": dict(lagrange_learning_rate=0.02, meta_learning_rate=1e-2,
                                    meta_gradient_through="optimiser", meta_step="adam")}


@functools.cache
def tiny_agent(setting: str):
    """The agent of ``SETTINGS[setting]``, shared by the tests so that each compiles once."""
    name = {"fixed": "rcd4pg", "metal-optimiser": "metal"}.get(setting, setting)
    return make_agent(name, 1, 1, **TINY, **SETTINGS[setting])


def one_step_batch(actions: np.ndarray) -> Transition:
    """The toy task as a batch of 1-step episodes (discount 0): r = 1 - (a - 1)^2 / 4, c = (a + 1) / 2."""
    a = np.asarray(actions, np.float32).reshape(-1)
    obs = np.ones((len(a), 1), np.float32)
    return Transition(obs_tm1=obs, action_tm1=a[:, None], reward_t=1.0 - (a - 1.0) ** 2 / 4.0,
                      discount_t=np.zeros_like(a), obs_t=obs, cost_t=(a + 1.0) / 2.0)


def test_lagrange_update_hand_computed_and_projected_at_zero():
    # 0.5 + 0.1 * (0.3 - 0.1) = 0.52: J_C above beta raises lambda.
    assert float(rcd4pg.lagrange_update(0.5, 0.1, 0.3, 0.1)) == pytest.approx(0.52)
    # 0.5 + 0.1 * (0.0 - 0.1) = 0.49: below beta lowers it.
    assert float(rcd4pg.lagrange_update(0.5, 0.1, 0.0, 0.1)) == pytest.approx(0.49)
    # 0.01 + 0.1 * (0.0 - 0.5) = -0.04, projected onto lambda >= 0.
    assert float(rcd4pg.lagrange_update(0.01, 0.1, 0.0, 0.5)) == 0.0


def test_the_cost_ring_keeps_the_newest_episodes():
    state = tiny_agent("rcd4pg").init(jax.random.PRNGKey(0))
    state = state._replace(episode_costs=jnp.zeros(2))  # a ring of P = 2
    assert [float(x) for x in rcd4pg.cost_estimate(state)] == [0.0, 0.0]  # nothing seen: unknown
    state = rcd4pg.observe_episodes(state, np.array([0.1, 0.5, 0.75], np.float32))
    cost, episodes = rcd4pg.cost_estimate(state)
    assert float(cost) == pytest.approx((0.5 + 0.75) / 2) and int(episodes) == 2
    state = rcd4pg.observe_episodes(state, np.array([0.25], np.float32))  # overwrites 0.5
    assert float(rcd4pg.cost_estimate(state)[0]) == pytest.approx((0.75 + 0.25) / 2)


def test_the_agent_updates_lambda_from_the_episodes_it_is_shown():
    agent = tiny_agent("rcd4pg")  # alpha_1 = 0.01, beta = 0.25
    state = agent.init(jax.random.PRNGKey(0))
    batch = one_step_batch(np.linspace(-1, 1, 64))
    state, metrics = agent.update(state, batch, jax.random.PRNGKey(1))
    # No episode has finished: J_C is unknown and lambda stays at lagrange_init = 0.
    assert float(metrics["lambda"]) == 0.0 and float(metrics["cost_episodes"]) == 0.0
    # J_C = (0.5 + 0.7 + 0.9) / 3 = 0.7, psi = 0.45, lambda = 0 + 0.01 * 0.45 = 0.0045.
    state = agent.observe_episodes(state, np.array([0.5, 0.7, 0.9]))
    state, metrics = agent.update(state, batch, jax.random.PRNGKey(1))
    assert float(metrics["cost_estimate"]) == pytest.approx(0.7)
    assert float(metrics["overshoot"]) == pytest.approx(0.45)
    assert float(metrics["lambda"]) == pytest.approx(0.0045) == float(state.lagrange)
    # Below the threshold lambda falls, then stops at 0: 61 episodes of cost 0 make
    # J_C = 2.1 / 64 = 0.0328125, so lambda steps by 0.01 * (0.0328125 - 0.25) = -0.002171875:
    # 0.0045 -> 0.002328125 -> 0.00015625 -> max(0, -0.002015625) = 0.
    state = agent.observe_episodes(state, np.zeros(61))
    lambdas = []
    for _ in range(3):
        state, metrics = agent.update(state, batch, jax.random.PRNGKey(1))
        lambdas.append(float(metrics["lambda"]))
    assert float(metrics["cost_estimate"]) == pytest.approx(2.1 / 64)
    assert lambdas == pytest.approx([0.002328125, 0.00015625, 0.0], abs=1e-7)
    assert lambdas[-1] == 0.0 and float(metrics["overshoot"]) == 0.0


def test_fixed_mode_keeps_lambda_and_shapes_the_critic_target():
    fixed, learned = tiny_agent("fixed"), tiny_agent("rcd4pg")
    batch = one_step_batch(np.linspace(-1, 1, 64))
    state = fixed.observe_episodes(fixed.init(jax.random.PRNGKey(0)), np.ones(4))
    for _ in range(3):
        state, metrics = fixed.update(state, batch, jax.random.PRNGKey(1))
    assert float(metrics["lambda"]) == 2.0 and float(metrics["overshoot"]) == pytest.approx(0.75)
    # The same networks and batch: the learned agent's first step has lambda = 0 (no episode
    # seen), the fixed one's lambda = 2. The targets differ, so the critic losses differ.
    _, fixed_metrics = fixed.update(fixed.init(jax.random.PRNGKey(0)), batch, jax.random.PRNGKey(1))
    _, plain_metrics = learned.update(learned.init(jax.random.PRNGKey(0)), batch, jax.random.PRNGKey(1))
    assert float(plain_metrics["lambda"]) == 0.0
    assert float(fixed_metrics["critic_loss"]) != pytest.approx(float(plain_metrics["critic_loss"]))
    with pytest.raises(ValueError, match="mode='soft'"):
        make_config("rcd4pg", mode="soft")
    with pytest.raises(ValueError, match="MetaL learns lambda"):
        make_config("metal", mode="fixed")
    with pytest.raises(ValueError, match="lagrange_learning_rate=0.0"):
        make_config("rcd4pg", lagrange_learning_rate=0.0)
    with pytest.raises(ValueError, match="no cost_t"):
        rcd4pg.shaped(batch._replace(cost_t=None), 1.0)


# --- the critic's atoms hold every shaped return ------------------------------------


def test_the_default_support_holds_the_worst_shaped_return_and_lambda_stays_within_its_bound():
    from rwrl.agents import distributional
    config = make_config("rcd4pg")  # r in [0, 1], c in [0, 1], lambda in [0, 5], discount 0.99
    # [(0 - 5 * 1) / 0.01, 1 / 0.01] = [-500, 100], widened by 5 % of 600 on each side.
    assert (config.v_min, config.v_max) == pytest.approx((-530.0, 130.0))
    assert config.num_atoms == 101
    # The worst case: every step r = 0 and c = 1 at lambda = 5, whose return is the fixed
    # point of G = -5 + 0.99 G, -500. A point mass there projected onto the atoms keeps its
    # mean (inside the support the projection is exact in the mean); acme's [-150, 150],
    # the support before, clipped it to -150.
    worst = (config.reward_min - config.max_lagrange * config.max_cost) / (1 - config.discount)
    for (low, high, atoms), mean in [((config.v_min, config.v_max, config.num_atoms), -500.0),
                                     ((-150.0, 150.0, 51), -150.0)]:
        support = distributional.categorical_support(low, high, atoms)
        probs = distributional.categorical_projection(jnp.array([worst]), jnp.ones(1), support)
        assert float(jnp.sum(probs * support)) == pytest.approx(mean, abs=1e-3)
    # lambda cannot pass max_lagrange, however far J_C lies above beta
    agent = make_agent("rcd4pg", 1, 1, **{**TINY, "v_min": None, "v_max": None, "cost_threshold": 0.0},
                       max_lagrange=2.0, lagrange_learning_rate=100.0)
    state = agent.observe_episodes(agent.init(jax.random.PRNGKey(0)), np.ones(3))
    state, metrics = agent.update(state, one_step_batch(np.linspace(-1, 1, 64)), jax.random.PRNGKey(1))
    assert float(metrics["lambda"]) == 2.0
    # explicit atoms are the user's; a lambda start above its bound is refused
    assert make_config("rcd4pg", v_min=-150.0, v_max=150.0).v_min == -150.0
    with pytest.raises(ValueError, match="lagrange_init=6.0: must be <= max_lagrange=5.0"):
        make_config("rcd4pg", mode="fixed", lagrange_init=6.0)
    with pytest.raises(ValueError, match="max_cost=0.0"):
        make_config("rcd4pg", max_cost=0.0)


def test_the_paper_estimate_of_j_c_samples_one_episode_of_the_buffer():
    agent = tiny_agent("rcd4pg")
    state = agent.observe_episodes(agent.init(jax.random.PRNGKey(0)), np.array([0.5, 0.7, 0.9]))
    key = jax.random.PRNGKey(3)
    index = int(jax.random.randint(key, (), 0, 3))
    cost, episodes = rcd4pg.cost_estimate(state, "sample", key)
    assert float(cost) == pytest.approx([0.5, 0.7, 0.9][index]) and int(episodes) == 3
    drawn = {round(float(rcd4pg.cost_estimate(state, "sample", jax.random.PRNGKey(k))[0]), 4) for k in range(40)}
    assert drawn == {0.5, 0.7, 0.9}  # only filled entries, every one of them
    assert [float(x) for x in rcd4pg.cost_estimate(agent.init(key), "sample", key)] == [0.0, 0.0]
    assert make_config("rcd4pg").cost_estimate == "sample"
    with pytest.raises(ValueError, match="cost_estimate='median'"):
        make_config("rcd4pg", cost_estimate="median")


# --- MetaL's meta-gradient --------------------------------------------------------


def _float64(tree):
    return jax.tree.map(lambda x: x.astype(np.float64) if np.issubdtype(x.dtype, np.floating) else x, tree)


@pytest.mark.parametrize("through", ["sgd", "optimiser"])
def test_meta_gradient_matches_finite_differences(through):
    # "sgd": J' after the paper's plain critic step (the default); "optimiser": after the
    # agent's own clipped-Adam step. Either way dJ'/dalpha_1 is exact for its inner step.
    agent = tiny_agent("metal") if through == "sgd" else tiny_agent("metal-optimiser")
    rng = np.random.default_rng(0)
    state = agent.observe_episodes(agent.init(jax.random.PRNGKey(0)), np.array([0.6, 0.4]))  # J_C = 0.5
    for i in range(3):  # a few steps first, so that Adam's moments are not at their start
        state, _ = agent.update(state, one_step_batch(rng.uniform(-1, 1, 64)), jax.random.PRNGKey(i))
    assert float(state.lagrange) > 0  # lambda' is off the projection: the gradient can flow
    batch = one_step_batch(rng.uniform(-1, 1, 64))._replace(
        discount_t=np.full(64, 0.9, np.float32), obs_t=rng.normal(size=(64, 1)).astype(np.float32))
    losses = d4pg.make_losses(agent.networks, agent.config)
    with jax.enable_x64(True):  # float32 would drown a central difference in rounding
        state64, batch64 = _float64(state), _float64(batch)
        train, validate = metal.split_batch(batch64, agent.config.validation_fraction)
        outer = jax.jit(jax.value_and_grad(lambda x: metal.outer_loss(
            losses, agent.optimisers, agent.config, state64, train, validate, jax.random.PRNGKey(0), x)[0]))
        x0 = np.float64(state.lagrange_learning_rate)
        h = 1e-4 * x0
        grad = float(outer(x0)[1])
        finite = (float(outer(x0 + h)[0]) - float(outer(x0 - h)[0])) / (2 * h)
    assert grad != 0.0
    assert grad == pytest.approx(finite, rel=1e-3, abs=1e-12), (grad, finite)


def test_the_plain_meta_step_is_alpha_minus_rate_times_gradient_within_bounds():
    config = make_config("metal", meta_learning_rate=0.5, lagrange_learning_rate=1e-3,
                         min_lagrange_learning_rate=1e-4, max_lagrange_learning_rate=1e-2)
    optimiser = metal.make_meta_optimiser(config)
    state = optimiser.init(jnp.zeros((), jnp.float32))
    step = functools.partial(metal.meta_update, optimiser, config)
    # 1e-3 - 0.5 * 1e-3 = 5e-4; 1e-3 - 0.5 * (-4e-3) = 3e-3; a step below 1e-4 stops there.
    assert float(step(jnp.float32(1e-3), jnp.float32(1e-3), state)[0]) == pytest.approx(5e-4)
    assert float(step(jnp.float32(1e-3), jnp.float32(-4e-3), state)[0]) == pytest.approx(3e-3)
    assert float(step(jnp.float32(1e-3), jnp.float32(1.0), state)[0]) == pytest.approx(1e-4)
    assert float(step(jnp.float32(1e-3), jnp.float32(-1.0), state)[0]) == pytest.approx(1e-2)
    # the paper's step is the default; Adam on log alpha_1 an option with its own rate
    assert make_config("metal").meta_step == "sgd" and make_config("metal").meta_learning_rate == 0.02
    assert make_config("metal", meta_step="adam").meta_learning_rate == 1e-3
    with pytest.raises(ValueError, match="meta_step='lion'"):
        make_config("metal", meta_step="lion")
    with pytest.raises(ValueError, match="meta_gradient_through='x'"):
        make_config("metal", meta_gradient_through="x")


def test_meta_gradient_is_zero_where_lambda_is_projected_at_zero():
    agent = tiny_agent("metal")
    state = agent.observe_episodes(agent.init(jax.random.PRNGKey(0)), np.zeros(2))  # J_C = 0 < beta
    state, metrics = agent.update(state, one_step_batch(np.linspace(-1, 1, 64)), jax.random.PRNGKey(0))
    assert float(metrics["lambda"]) == 0.0 and float(metrics["meta_gradient"]) == 0.0
    # Adam's step on a zero gradient is zero: alpha_1 is unchanged.
    assert float(state.lagrange_learning_rate) == pytest.approx(0.02)


# --- reaching the constraint on a toy task whose optimum is known -------------------


def train_bandit(agent, steps: int, seed: int = 0):
    """Train on the 1-step task of ``one_step_batch``, 64 exploring episodes per update.

    Return (state, greedy action, mean exploring cost over the last 100 updates).
    """
    keys = jax.random.split(jax.random.PRNGKey(seed), 2 * steps)
    state, obs, costs = agent.init(keys[0]), np.ones((64, 1), np.float32), []
    for i in range(steps):
        batch = one_step_batch(agent.act(state, obs, keys[2 * i], explore=True))
        state = agent.observe_episodes(state, batch.cost_t)  # each 1-step episode's average cost
        state, _ = agent.update(state, batch, keys[2 * i + 1])
        costs.append(float(np.mean(batch.cost_t)))
    greedy = float(agent.act(state, obs[:1], keys[0], explore=False)[0, 0])
    return state, greedy, float(np.mean(costs[-100:]))


# The task: reward 1 - (a - 1)^2 / 4 (best at a = 1), cost (a + 1) / 2, threshold
# beta = 0.25. The constraint (a + 1) / 2 <= 0.25 binds at a* = -0.5, where
# d/da [r - lambda c] = -(a - 1) / 2 - lambda / 2 = 0 gives lambda* = 1 - a* = 1.5.
def test_rcd4pg_reaches_the_constraint_on_a_bandit():
    state, greedy, cost = train_bandit(tiny_agent("rcd4pg"), 1000)
    # Unconstrained D4PG goes to a = 1 (cost 1); RC-D4PG settles at the constrained optimum.
    assert greedy == pytest.approx(-0.5, abs=0.15), greedy
    assert cost == pytest.approx(0.25, abs=0.07), cost
    assert float(state.lagrange) == pytest.approx(1.5, abs=0.4), float(state.lagrange)


def test_metal_outer_loss_on_the_unshaped_reward_slows_lambda_while_the_constraint_is_violated():
    # The outer loss fits the critic to the unshaped reward, which a smaller lambda' serves
    # better: while J_C > beta, dJ'/dalpha_1 = dJ'/dlambda' (J_C - beta) > 0 and the plain
    # meta step lowers alpha_1, here to its floor, so lambda stays far below RC-D4PG's 1.5
    # and the greedy action far above the constrained optimum -0.5.
    state, greedy, cost = train_bandit(tiny_agent("metal"), 200)
    assert float(state.lagrange_learning_rate) == pytest.approx(1e-6)  # min_lagrange_learning_rate
    assert 0 < float(state.lagrange) < 0.5, float(state.lagrange)
    assert greedy > 0.0 and cost > 0.5, (greedy, cost)


# --- kill and resume ------------------------------------------------------------------


# MetaL's state holds RC-D4PG's and more, so its run checks the restore of both in the
# default suite; RC-D4PG's own run is behind the slow marker.
@pytest.mark.parametrize("name", [pytest.param("rcd4pg", marks=pytest.mark.slow), "metal"])
def test_a_killed_run_resumes_with_its_multiplier(tmp_path, name):
    agent_config = {"policy_hidden_sizes": (16,), "critic_hidden_sizes": (16,), "batch_size": 16,
                    "min_replay_size": 32, "samples_per_insert": 4.0, "cost_buffer_size": 4,
                    "cost_constraint": "positive_action", "lagrange_learning_rate": 0.05}
    config = tiny_config(agent=name, agent_config=agent_config, steps=240, eval_every=120, save_replay=True)
    hooks = dict(env_factory=fake_env_factory, progress=False)
    with pytest.raises(Killed):
        start_run(config, tmp_path / "run", RunHooks(**hooks, on_step=kill_after(40)))
    assert len(ckpt.list_checkpoints(tmp_path / "run" / "checkpoints")) >= 2  # killed after step 0's
    summary = resume_run(tmp_path / "run", hooks=RunHooks(**hooks))
    rows = read_rows(tmp_path / "run" / "metrics.jsonl")
    assert summary["counters"]["env_steps"] == 240
    train = [r for r in rows if r["phase"] == "train"]
    assert [r["episode"] for r in train] == list(range(len(train))) == list(range(24))
    # The ring of episode costs came back with the checkpoint (and the replay with it, so
    # learning goes on at once): every row after the first updates has 4 episodes behind
    # J_C, those right after the kill too, before any episode of the new session ended;
    # a resume that lost the ring would show 0 there.
    resumed_at = max(r["env_steps"] for r in train if r["episode"] < 12)
    after = [r for r in train if r["env_steps"] > resumed_at]
    assert after and all(r["learner/cost_episodes"] == 4 for r in after)
    assert all(r.get("learner/cost_episodes", 4) == 4 for r in train)
    last_eval = [r for r in rows if r["phase"] == "eval"][-1]
    for column in ("lambda", "lambda_learning_rate", "cost_estimate", "overshoot"):
        assert f"learner/{column}" in last_eval
    assert last_eval["learner/lambda"] > 0  # the fake env's policy starts near a = 0: half violate


def test_a_run_names_its_domains_constraint_or_refuses_a_cost_beyond_the_atoms(tmp_path):
    from rwrl.experiments.config import ConfigError
    from rwrl.experiments.run import make_agent_for
    small = {"policy_hidden_sizes": (16,), "critic_hidden_sizes": (16,), "batch_size": 16}
    # With no cost_constraint, a constrained agent learns under its domain's default one.
    walker = tiny_config(agent="metal", env="walker-walk", agent_config=small)
    assert make_agent_for(walker, 3, 1).config.cost_constraint == "joint_velocity"
    assert make_agent_for(tiny_config(agent="rcd4pg", env="cartpole-swingup", agent_config=small),
                          3, 1).config.cost_constraint == "slider_pos"
    # A domain without one (the fake env here) counts its 2 constraints: beyond max_cost = 1.
    hooks = RunHooks(env_factory=fake_env_factory, progress=False)
    with pytest.raises((ConfigError, ValueError), match=r"max_cost=1.0: info\['cost'\] counts up to 2 "
                       r"violated constraints here.*small_action, positive_action\) or set max_cost=2"):
        start_run(tiny_config(agent="rcd4pg", agent_config=small, steps=40), tmp_path / "run", hooks)
    summary = start_run(tiny_config(agent="rcd4pg", agent_config={**small, "max_cost": 2.0}, steps=40),
                        tmp_path / "run2", hooks)
    assert summary["counters"]["env_steps"] == 40
