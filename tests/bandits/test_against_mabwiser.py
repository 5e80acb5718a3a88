"""rwrl's stationary bandit policies against mabwiser's (issue 26).

Both libraries play the same stationary instance (3 arms) from the same start, one pull of
each arm in order (rwrl's own ramp-up; mabwiser is warm-started by ``fit`` on those pulls),
and the n-th pull of arm k pays the same reward in both (a table per trajectory), so
where a policy is deterministic the two must choose alike, round by round.

* UCB1, deterministic: mabwiser's index is x̄_i + alpha sqrt(2 ln n / N_i) with n its
  count of decisions fitted, rwrl's x̄_i + scale sqrt(2 ln n / N_i) with n the rounds
  played: the same formula with ``scale = alpha``. The choices must be equal.
  Differences outside this test: mabwiser scores an arm never pulled 0 (it is not pulled
  first), rwrl pulls every arm once first; ties go to the first arm in mabwiser, to a
  random one in rwrl (Gaussian rewards make ties improbable here).
* LinUCB, deterministic: mabwiser's LinUCB is Li et al.'s disjoint model, one ridge
  model per arm on a shared context c: c . theta_k + alpha sqrt(c^T A_k^-1 c). rwrl's
  LinUCB has one model per account and a feature vector per candidate. Giving rwrl
  candidate k the features e_k (x) c (c in the k-th block of K blocks of D) makes its A
  block-diagonal with blocks A_k, so the two scores are the same numbers: checked to
  1e-9, and the choices equal.
* epsilon-greedy, random: the same law in both (with probability epsilon a uniform arm,
  else the best all-history mean; mabwiser draws a uniform score per arm, which picks a
  uniform arm). The mean pull share of each arm over many trajectories must agree within
  4 standard errors; rwrl with epsilon 0.3 must not (the tolerance can tell).
* Thompson sampling, random, not the same law: mabwiser samples Beta(1 + successes,
  1 + failures) (Bernoulli rewards only), rwrl N(S_i / (N_i + 1), sigma^2 / (N_i + 1))
  (a Gaussian model). On Bernoulli arms with sigma = 0.5, the Bernoulli's largest
  standard deviation, the pull shares agree within 0.05 plus 4 standard errors.
"""

import numpy as np
import pytest

pytest.importorskip("mabwiser", reason="mabwiser is not installed (the test extra: pip install -e '.[test]')")

from mabwiser.mab import MAB, LearningPolicy  # noqa: E402

from rwrl.bandits import make_learner  # noqa: E402
from rwrl.bandits.policies import UCB1, EpsilonGreedy, GaussianThompson  # noqa: E402

ARMS = 3


def gaussian_table(seed: int, trajectories: int, rounds: int, means=(0.3, 0.5, 0.6),
                   sigma: float = 0.5) -> np.ndarray:
    """Return rewards (trajectories, arms, rounds): entry [i, k, n] pays the (n+1)-th pull of arm k."""
    rng = np.random.default_rng(seed)
    return np.asarray(means)[None, :, None] + sigma * rng.standard_normal((trajectories, ARMS, rounds))


def bernoulli_table(seed: int, trajectories: int, rounds: int, means=(0.3, 0.5, 0.6)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((trajectories, ARMS, rounds)) < np.asarray(means)[None, :, None]).astype(float)


def play_rwrl(policy, table: np.ndarray, rounds: int, seed: int = 0) -> np.ndarray:
    """Play an rwrl policy on every trajectory of ``table`` at once; return its arms (N, rounds)."""
    n = table.shape[0]
    policy.reset(n, ARMS, seed)
    rows = np.arange(n)
    arms = np.empty((n, rounds), np.int64)
    for t in range(rounds):
        if t < ARMS:  # the warm start: one pull of each arm in order, as mabwiser's fit
            chosen = np.full(n, t)
        else:
            chosen = policy.select()
        arms[:, t] = chosen
        policy.update(chosen, table[rows, chosen, policy.pulls[rows, chosen]])
    return arms


def play_mabwiser(learning_policy, table: np.ndarray, rounds: int, seed: int) -> np.ndarray:
    """Play mabwiser on one trajectory's ``table`` (arms, rounds); return its arms (rounds,)."""
    mab = MAB(list(range(ARMS)), learning_policy, seed=seed)
    pulls = np.ones(ARMS, np.int64)
    mab.fit(np.arange(ARMS), table[:, 0])
    arms = list(range(ARMS))
    for _ in range(rounds - ARMS):
        arm = int(mab.predict())
        mab.partial_fit(np.array([arm]), np.array([table[arm, pulls[arm]]]))
        pulls[arm] += 1
        arms.append(arm)
    return np.array(arms)


def shares(arms: np.ndarray) -> np.ndarray:
    """Return each trajectory's share of pulls of every arm, (N, arms)."""
    return np.stack([(arms == k).mean(axis=1) for k in range(ARMS)], axis=1)


def share_gap(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return |mean share difference| per arm and its standard error, two independent samples."""
    sa, sb = shares(a), shares(b)
    error = np.sqrt(sa.var(axis=0, ddof=1) / len(sa) + sb.var(axis=0, ddof=1) / len(sb))
    return np.abs(sa.mean(axis=0) - sb.mean(axis=0)), error


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_ucb1_chooses_as_mabwisers_ucb1_round_by_round(alpha):
    rounds, trajectories = 300, 5
    table = gaussian_table(0, trajectories, rounds)
    ours = play_rwrl(UCB1(scale=alpha), table, rounds)
    theirs = np.stack([play_mabwiser(LearningPolicy.UCB1(alpha=alpha), table[i], rounds, seed=i)
                       for i in range(trajectories)])
    np.testing.assert_array_equal(ours, theirs)
    assert len(np.unique(ours[:, ARMS:])) == ARMS  # every arm chosen after the warm start: not vacuous


def test_linucb_per_account_scores_and_chooses_as_mabwisers_disjoint_linucb():
    trajectories, rounds, features = 4, 150, 4
    rng = np.random.default_rng(1)
    contexts = rng.standard_normal((trajectories, rounds, features))
    thetas = rng.standard_normal((trajectories, ARMS, features))
    rewards = (np.einsum("ntd,nkd->ntk", contexts, thetas)
               + 0.5 * rng.standard_normal((trajectories, rounds, ARMS)))
    # candidate k of rwrl: the context in block k of ARMS blocks, zeros elsewhere
    blocks = np.zeros((trajectories, rounds, ARMS, ARMS * features))
    for k in range(ARMS):
        blocks[:, :, k, k * features:(k + 1) * features] = contexts
    learner = make_learner("per_account", trajectories, 1, ARMS * features, alpha=1.0, ridge=1.0)
    mabs = [MAB(list(range(ARMS)), LearningPolicy.LinUCB(alpha=1.0, l2_lambda=1.0), seed=i)
            for i in range(trajectories)]
    for mab in mabs:
        mab.fit(np.array([], np.int64), np.array([]), np.zeros((0, features)))
    ours = np.empty((trajectories, rounds), np.int64)
    theirs = np.empty_like(ours)
    for t in range(rounds):
        candidates = blocks[:, t][:, None]  # (N, M = 1, K, K D)
        scores = learner.scores(candidates)[:, 0]
        expected = np.array([[mab.predict_expectations(contexts[i, t][None])[k] for k in range(ARMS)]
                             for i, mab in enumerate(mabs)])
        np.testing.assert_allclose(scores, expected, rtol=1e-9, atol=1e-12)
        ours[:, t] = learner.act(candidates)[:, 0]
        theirs[:, t] = [mab.predict(contexts[i, t][None]) for i, mab in enumerate(mabs)]
        learner.update(rewards[np.arange(trajectories), t, ours[:, t]][:, None])
        for i, mab in enumerate(mabs):
            mab.partial_fit(np.array([theirs[i, t]]), np.array([rewards[i, t, theirs[i, t]]]),
                            contexts[i, t][None])
    np.testing.assert_array_equal(ours, theirs)
    assert len(np.unique(ours[:, rounds // 2:])) > 1  # the choice still depends on the context


def test_epsilon_greedy_pull_shares_agree_with_mabwisers_and_the_tolerance_tells_another_epsilon():
    rounds, trajectories = 200, 60
    table = gaussian_table(2, trajectories, rounds, means=(0.0, 0.5, 0.6))
    ours = play_rwrl(EpsilonGreedy(epsilon=0.1), table, rounds, seed=3)
    theirs = np.stack([play_mabwiser(LearningPolicy.EpsilonGreedy(epsilon=0.1), table[i], rounds,
                                     seed=100 + i) for i in range(trajectories)])
    gap, error = share_gap(ours, theirs)
    assert np.all(gap <= 4 * error), (shares(ours).mean(0), shares(theirs).mean(0), error)
    other = play_rwrl(EpsilonGreedy(epsilon=0.3), table, rounds, seed=3)
    gap, error = share_gap(other, theirs)
    assert np.any(gap > 4 * error)
    assert shares(theirs).mean(0)[0] < 0.2  # the worst arm is mostly avoided: not uniform play


def test_thompson_pull_shares_on_bernoulli_arms_agree_with_mabwisers_beta_bernoulli():
    rounds, trajectories = 200, 60
    table = bernoulli_table(4, trajectories, rounds)
    ours = play_rwrl(GaussianThompson(sigma=0.5), table, rounds, seed=5)
    theirs = np.stack([play_mabwiser(LearningPolicy.ThompsonSampling(), table[i], rounds,
                                     seed=200 + i) for i in range(trajectories)])
    gap, error = share_gap(ours, theirs)
    assert np.all(gap <= 0.05 + 4 * error), (shares(ours).mean(0), shares(theirs).mean(0), error)
    assert shares(ours).mean(0)[2] > 0.5 and shares(theirs).mean(0)[2] > 0.5  # both find the best arm
