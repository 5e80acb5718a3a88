"""LinUCB learners: hand-checked choices, delay bookkeeping, windows, a reference loop."""

import numpy as np
import pytest

from rwrl.bandits.contextual import FollowerBandit
from rwrl.bandits.linear import (LEARNERS, LinUCB, LinUCBConfig, interval95, make_learner,
                                 run_learner)

# Two candidates, the same every step: x0 = (1, 0), x1 = (0, 2) (|x0| = 1, |x1| = 2).
X = np.array([[1.0, 0.0], [0.0, 2.0]])


def _contexts(num_accounts: int = 1, x: np.ndarray = X) -> np.ndarray:
    return np.broadcast_to(x, (1, num_accounts) + x.shape).copy()


def _play(learner: LinUCB, thetas: np.ndarray, steps: int, x: np.ndarray = X) -> list:
    """Run noise-free steps (delay 0): account m earns x . thetas[m]; return the choices."""
    choices = []
    contexts = _contexts(len(thetas), x)
    for _ in range(steps):
        actions = learner.act(contexts)
        chosen = x[actions[0]]  # (M, D)
        learner.update(np.einsum("md,md->m", chosen, thetas)[None])
        choices.append(actions[0].tolist())
    return choices


def test_per_account_choices_by_hand():
    """alpha = 1, ridge = 1, theta = (1, 0.25): x0 earns 1, x1 earns 0.5.

    Step 0: A = I, theta_hat = 0: scores |x| = (1, 2) -> x1; then A = diag(1, 5), b = (0, 1).
    Step 1: theta_hat = (0, 1/5): x0 1, x1 2/5 + sqrt(4/5) = 1.294 -> x1; A = diag(1, 9).
    Step 2: x1 4/9 + sqrt(4/9) = 1.111 -> x1; A = diag(1, 13), b = (0, 3).
    Step 3: x1 6/13 + sqrt(4/13) = 1.016 -> x1; A = diag(1, 17), b = (0, 4).
    Step 4: x1 8/17 + sqrt(4/17) = 0.956 < 1 -> x0 (reward 1); A = diag(2, 17), b = (1, 4).
    Step 5: x0 1/2 + sqrt(1/2) = 1.207 > 0.956 -> x0.
    """
    learner = make_learner("per_account", 1, 1, 2)
    assert _play(learner, np.array([[1.0, 0.25]]), 6) == [[1], [1], [1], [1], [0], [0]]
    np.testing.assert_allclose(learner.xx[0, 0], np.diag([2.0, 16.0]))
    # after step 5: A = diag(3, 17), b = (2, 4)
    np.testing.assert_allclose(learner.model()[0][0, 0], [2 / 3, 4 / 17])


def test_greedy_ties_go_to_the_lowest_index():
    learner = make_learner("per_account", 1, 1, 2, alpha=0.0)
    assert learner.act(_contexts()).tolist() == [[0]]  # all estimates 0: a tie


def test_pooled_choices_by_hand_show_the_pooling_bias():
    """Two accounts, one model. Account 0 earns (1, 0.5) on (x0, x1), account 1 (0, 2).

    Step 0: both choose x1 (width 2 > 1); A = I + 2 diag(0, 4) = diag(1, 9),
    b = (0, 2 * 0.5 + 2 * 2) = (0, 5): theta_hat = (0, 5/9) for both accounts.
    From then on x1 scores 2 theta_2 + width > 1 for both (theta_2 -> 0.625, the
    accounts' average), so account 0 keeps x1 (0.5) although x0 (1) is its best;
    per-account models send account 0 to x0 at step 4 (the case above).
    """
    thetas = np.array([[1.0, 0.25], [0.0, 1.0]])
    pooled = make_learner("pooled", 1, 2, 2)
    pooled.act(_contexts(2))
    pooled.update(np.array([[0.5, 2.0]]))
    np.testing.assert_allclose(pooled.model()[0][0], [[0.0, 5 / 9], [0.0, 5 / 9]])
    np.testing.assert_allclose(pooled.model()[1][0, 0], np.diag([1.0, 9.0]))
    assert _play(pooled, thetas, 10) == [[1, 1]] * 10
    per_account = make_learner("per_account", 1, 2, 2)
    assert _play(per_account, thetas, 6) == [[1, 1]] * 4 + [[0, 1]] * 2


def test_shrinkage_estimates_by_hand():
    """shrinkage = 1, ridge = 1, the pooled case's first step (both chose x1).

    Pooled: theta_p = (0, 5/9). Account 0: S = diag(0, 4), b = (0, 1):
    theta_0 = (I + S)^-1 (b + theta_p) = (0, (1 + 5/9) / 5) = (0, 14/45);
    account 1: b = (0, 4): theta_1 = (0, (4 + 5/9) / 5) = (0, 41/45).
    Step 1, account 0: x0 scores 0 + 1, x1 2 * 14/45 + sqrt(4/5) = 1.517 -> x1.
    """
    learner = make_learner("shrinkage", 1, 2, 2, shrinkage=1.0)
    assert learner.act(_contexts(2)).tolist() == [[1, 1]]
    learner.update(np.array([[0.5, 2.0]]))
    np.testing.assert_allclose(learner.model()[0][0], [[0.0, 14 / 45], [0.0, 41 / 45]])
    np.testing.assert_allclose(learner.scores(_contexts(2))[0, 0],
                               [1.0, 28 / 45 + np.sqrt(4 / 5)])


@pytest.mark.parametrize("window, xx, xr", [
    # step 0 chooses x1 = (0, 2) (reward 0.5), step 1 chooses (3, 0) (width 3, reward 3)
    (1, np.diag([9.0, 0.0]), [9.0, 0.0]),  # only step 1's observation is kept
    (2, np.diag([9.0, 4.0]), [9.0, 1.0]),
    (None, np.diag([9.0, 4.0]), [9.0, 1.0]),
])
def test_window_keeps_the_last_observations(window, xx, xr):
    learner = make_learner("per_account", 1, 1, 2, window=window)
    theta = np.array([[1.0, 0.25]])
    assert _play(learner, theta, 1) == [[1]]
    # step 1: x0 = (3, 0) scores 0 + sqrt(9) = 3 > x1's 2/5 + sqrt(4/5) -> x0, reward 3
    assert _play(learner, theta, 1, x=np.array([[3.0, 0.0], [0.0, 2.0]])) == [[0]]
    np.testing.assert_allclose(learner.xx[0, 0], xx)
    np.testing.assert_allclose(learner.xr[0, 0], xr)


def test_window_one_after_many_steps_holds_only_the_last():
    learner = make_learner("windowed", 1, 1, 2, window=1)
    rng = np.random.default_rng(0)
    for _ in range(30):
        contexts = rng.normal(size=(1, 1, 3, 2))
        actions = learner.act(contexts)
        reward = rng.normal(size=(1, 1))
        learner.update(reward)
    last = contexts[0, 0, actions[0, 0]]
    np.testing.assert_allclose(learner.xx[0, 0], np.outer(last, last), atol=1e-12)
    np.testing.assert_allclose(learner.xr[0, 0], last * reward[0, 0], atol=1e-12)


def test_a_delayed_reward_updates_the_model_with_the_context_it_was_chosen_under():
    learner = make_learner("per_account", 1, 1, 2, delay=2)
    contexts = [_contexts(x=np.array([[1.0, 0.0], [0.0, 2.0]])),  # chooses (0, 2)
                _contexts(x=np.array([[5.0, 0.0], [0.0, 1.0]])),  # chooses (5, 0)
                _contexts(x=np.array([[0.0, 0.0], [1.0, 1.0]]))]  # chooses (1, 1)
    nan = np.full((1, 1), np.nan)
    assert learner.act(contexts[0]).tolist() == [[1]]
    learner.update(nan)
    assert learner.act(contexts[1]).tolist() == [[0]]  # nothing learnt yet: widest
    learner.update(nan)
    np.testing.assert_array_equal(learner.xx, 0.0)
    learner.act(contexts[2])
    learner.update(np.array([[7.0]]))  # step 0's reward, two steps late
    np.testing.assert_array_equal(learner.xx[0, 0], np.diag([0.0, 4.0]))
    np.testing.assert_array_equal(learner.xr[0, 0], [0.0, 14.0])
    learner.act(contexts[0])
    learner.update(np.array([[1.0]]))  # step 1's reward goes with (5, 0)
    np.testing.assert_array_equal(learner.xx[0, 0], np.diag([25.0, 4.0]))
    np.testing.assert_array_equal(learner.xr[0, 0], [5.0, 14.0])


@pytest.mark.parametrize("delay", [0, 1, 4])
def test_with_the_simulator_a_reward_reaches_the_model_exactly_delay_steps_later(delay):
    """Noise 0: after step t the model holds x_s x_s^T and x_s mu_s of steps s <= t - delay."""
    env = FollowerBandit(num_envs=2, num_accounts=2, num_candidates=3, num_features=2,
                         noise_std=0.0, drift=0.1, delay=delay)
    learner = make_learner("per_account", 2, 2, 2, delay=delay)
    contexts = env.reset(3)
    sent_x, sent_r = [], []
    for t in range(10):
        expected = env.expected_rewards()
        actions = learner.act(contexts)
        sent_x.append(np.take_along_axis(contexts, actions[..., None, None], 2)[:, :, 0])
        sent_r.append(np.take_along_axis(expected, actions[..., None], -1)[..., 0])
        rewards, contexts = env.step(actions)
        learner.update(rewards)
        arrived = range(t - delay + 1)
        xx = sum((np.einsum("nmd,nme->nmde", sent_x[s], sent_x[s]) for s in arrived),
                 np.zeros((2, 2, 2, 2)))
        xr = sum((sent_x[s] * sent_r[s][..., None] for s in arrived), np.zeros((2, 2, 2)))
        np.testing.assert_allclose(learner.xx, xx, atol=1e-12)
        np.testing.assert_allclose(learner.xr, xr, atol=1e-12)
        assert (learner.num_observed == max(0, t - delay + 1)).all()


def test_mismatched_delays_are_caught():
    learner = make_learner("per_account", 1, 1, 2, delay=1)
    learner.act(_contexts())
    with pytest.raises(ValueError, match=r"a reward arrived after 1 actions, before the "
                                          r"learner's delay=1"):
        learner.update(np.array([[1.0]]))
    learner = make_learner("per_account", 1, 1, 2, delay=0)
    learner.act(_contexts())
    with pytest.raises(ValueError, match=r"rewards must be finite .* delay=0"):
        learner.update(np.array([[np.nan]]))
    env = FollowerBandit(num_envs=1, num_accounts=1, num_features=2, delay=2)
    with pytest.raises(ValueError, match=r"learner delay=0 is not the simulator's delay=2"):
        run_learner(env, make_learner("pooled", 1, 1, 2), steps=3)


def _reference_choices(config: LinUCBConfig, history, contexts) -> tuple[np.ndarray, np.ndarray]:
    """One instance, straight from the definitions: history[m] = list of (x, r) kept."""
    d = contexts.shape[-1]
    window = config.window or len(history[0]) or 1
    kept = [h[-window:] if h else [] for h in history]

    def ridge_fit(pairs, lam, prior):
        a = lam * np.eye(d) + sum((np.outer(x, x) for x, _ in pairs), np.zeros((d, d)))
        b = lam * prior + sum((x * r for x, r in pairs), np.zeros(d))
        return np.linalg.inv(a) @ b, np.linalg.inv(a)

    everyone = [pair for h in kept for pair in h]
    theta_pool, inv_pool = ridge_fit(everyone, config.ridge, np.zeros(d))
    choices, thetas = [], []
    for m, pairs in enumerate(kept):
        if config.sharing == "pooled":
            theta, inv = theta_pool, inv_pool
        elif config.sharing == "per_account":
            theta, inv = ridge_fit(pairs, config.ridge, np.zeros(d))
        else:
            theta, inv = ridge_fit(pairs, config.shrinkage, theta_pool)
        score = [x @ theta + config.alpha * np.sqrt(x @ inv @ x) for x in contexts[m]]
        choices.append(int(np.argmax(score)))
        thetas.append(theta)
    return np.array(choices), np.array(thetas)


@pytest.mark.parametrize("config", [
    LinUCBConfig(sharing="pooled", alpha=0.5),
    LinUCBConfig(sharing="per_account", alpha=0.5, ridge=2.0),
    LinUCBConfig(sharing="per_account", window=3),
    LinUCBConfig(sharing="shrinkage", shrinkage=3.0, window=4),
    LinUCBConfig(sharing="pooled", window=2, alpha=0.0),
])
def test_the_batched_learner_equals_a_loop_over_instances_from_the_definitions(config):
    n, m, delay = 3, 2, 1
    env = FollowerBandit(num_envs=n, num_accounts=m, num_candidates=4, num_features=3,
                         noise_std=0.5, drift=0.05, delay=delay)
    learner = LinUCB(config, n, m, 3, delay=delay)
    contexts = env.reset(8)
    history = [[[] for _ in range(m)] for _ in range(n)]
    pending = []
    for _ in range(15):
        theta, _ = learner.model()
        actions = learner.act(contexts)
        for i in range(n):
            ref_choices, ref_theta = _reference_choices(config, history[i], contexts[i])
            np.testing.assert_array_equal(actions[i], ref_choices)
            np.testing.assert_allclose(theta[i], ref_theta, atol=1e-9)
        pending.append(np.take_along_axis(contexts, actions[..., None, None], 2)[:, :, 0])
        rewards, contexts = env.step(actions)
        learner.update(rewards)
        if not np.isnan(rewards).all():
            x = pending.pop(0)
            for i in range(n):
                for j in range(m):
                    history[i][j].append((x[i, j], rewards[i, j]))


def test_pooling_wins_without_spread_and_per_account_wins_with_a_large_one():
    """Seeded behaviour: with identical accounts pooling has M times the data and no bias;
    with accounts far from their mean its bias dominates after a few hundred steps."""
    def final_regret(name, spread):
        env = FollowerBandit(num_envs=4, num_accounts=5, num_candidates=5, num_features=3,
                             account_spread=spread, noise_std=1.0, delay=2)
        learner = make_learner(name, 4, 5, 3, delay=2)
        return run_learner(env, learner, steps=300, seed=0).cumulative_regret[-1].mean()

    assert final_regret("pooled", 0.0) < final_regret("per_account", 0.0)
    assert final_regret("per_account", 1.5) < final_regret("pooled", 1.5)


def test_a_window_beats_all_history_under_fast_drift():
    def final_regret(window):
        env = FollowerBandit(num_envs=4, num_accounts=3, num_candidates=5, num_features=3,
                             noise_std=0.5, drift=0.15, delay=1)
        learner = make_learner("per_account", 4, 3, 3, delay=1, window=window)
        return run_learner(env, learner, steps=400, seed=1).cumulative_regret[-1].mean()

    # drift 0.15: the weights' correlation halves in about 60 steps
    assert final_regret(30) < 0.8 * final_regret(None)


def test_run_learner_curves_and_interval():
    env = FollowerBandit(num_envs=3, num_accounts=2, num_features=2, delay=1)
    result = run_learner(env, make_learner("per_account", 3, 2, 2, delay=1), steps=20, seed=5)
    assert result.cumulative_regret.shape == result.prediction_mse.shape == (20, 3)
    assert (np.diff(result.cumulative_regret, axis=0) >= 0).all()
    np.testing.assert_array_equal(result.cumulative_regret[-1], env.cumulative_regret)
    mean, half = interval95(np.array([1.0, 2.0, 3.0, 4.0]))
    # s = sqrt(5/3) = 1.291: half-width 1.96 * 1.291 / 2 = 1.265
    assert mean == 2.5 and half == pytest.approx(1.96 * np.sqrt(5 / 3) / 2)


def test_every_registered_learner_runs_and_learns():
    """Registry-wide: every learner's regret per step falls from the first to the last fifth."""
    for name in LEARNERS:
        env = FollowerBandit(num_envs=4, num_accounts=3, num_features=3, delay=1,
                             account_spread=0.3)
        regret = run_learner(env, make_learner(name, 4, 3, 3, delay=1), 250, 2).cumulative_regret
        early, late = regret[49].mean(), (regret[-1] - regret[-51]).mean()
        assert late < 0.6 * early, name


@pytest.mark.parametrize("call, match", [
    (lambda: make_learner("thompson", 1, 1, 2),
     r"unknown learner 'thompson': allowed per_account, pooled, shrinkage, windowed"),
    (lambda: make_learner("windowed", 1, 1, 2, window=0),
     r"window = 0 is not allowed: an integer >= 1"),
    (lambda: make_learner("pooled", 1, 1, 2, alpha=float("nan")),
     r"alpha = nan is not allowed: a finite number in \[0.0, inf\]"),
    (lambda: make_learner("pooled", 1, 1, 2, ridge=0.0),
     r"ridge = 0.0 is not allowed: a finite number in \(0.0, inf\]"),
    (lambda: make_learner("shrinkage", 1, 1, 2, shrinkage=float("inf")),
     r"shrinkage = inf is not allowed"),
    (lambda: make_learner("pooled", 1, 1, 2, delay=-1),
     r"delay = -1 is not allowed: an integer >= 0"),
    (lambda: make_learner("pooled", 1, 1, 2, windw=3),
     r"learner 'pooled' takes no parameter 'windw': allowed alpha, ridge, sharing, "
     r"shrinkage, window"),
    (lambda: LinUCBConfig(sharing="hierarchical"),
     r"sharing = 'hierarchical' is not allowed: one of pooled, per_account, shrinkage"),
    (lambda: make_learner("pooled", 1, 1, 2).act(np.zeros((1, 1, 3, 4))),
     r"contexts of shape \(1, 1, 3, 4\) are not allowed: give \(1, 1, K, 2\)"),
])
def test_bad_input_raises_one_line_errors(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "\n" not in str(info.value)
