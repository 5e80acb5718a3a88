"""Bandit policies: hand-checked choices, the paper's formulas, a loop reference, seeding."""

import math

import numpy as np
import pytest
from scipy.stats import norm

from rwrl.bandits.policies import (FEWA, PAPER_DUCB_GAMMAS, PAPER_SWUCB_WINDOWS, POLICIES,
                                   SWA, UCB1, WSWA, CTOSim, DCTOSimUCB, DiscountedUCB,
                                   EpsilonGreedy, GaussianThompson, SlidingWindowUCB,
                                   make_policy, swa_window)
from rwrl.bandits.rotting import (PAPER_SIGMA, ENVS, ParametricMeans, PlateauDecay,
                                  RottingBandit, TabulatedMeans, make_env, power_decay)
from rwrl.core.seeding import spawn_seeds


def _play(policy, env, horizon, seed=0):
    """Run ``policy`` on ``env``; return (N, T) arms and (N, T) rewards."""
    env.reset(seed)
    policy.reset(env.num_instances, env.num_arms, seed)
    arms, rewards = [], []
    for _ in range(horizon):
        chosen = policy.select()
        reward = env.pull(chosen)
        policy.update(chosen, reward)
        arms.append(chosen.copy())
        rewards.append(reward)
    return np.array(arms).T, np.array(rewards).T


def _deterministic(tables, num_instances=3):
    return RottingBandit(TabulatedMeans(tables), num_instances, sigma=0.0)


def _halving(n, theta):
    """A decay with no ties between models: µ(n; θ) = θ 2^-(n-1)."""
    return np.asarray(theta) * 0.5 ** (np.asarray(n) - 1.0)


# -- the paper's window formula (Algorithm 1) ---------------------------------------------
def test_swa_window_is_the_papers_formula_with_sigma_to_the_two_thirds():
    # α = 0.2, σ² = 0.2, T = 30,000: M = 395 for K = 2, 135 for K = 10 (PAPERS.md, derived);
    # wSWA's epoch of horizon 16,384 with K = 2 gets 259.
    assert swa_window(0.2, PAPER_SIGMA, 2, 30_000) == 395
    assert swa_window(0.2, PAPER_SIGMA, 10, 30_000) == 135
    assert swa_window(0.2, PAPER_SIGMA, 2, 16_384) == 259
    by_hand = 1 * 4 ** (2 / 3) * 2 ** (2 / 3) * 8 ** (-2 / 3) * 1000 ** (2 / 3) * math.log(
        math.sqrt(2) * 1000) ** (1 / 3)  # α = 1, σ = 2, K = 8, T = 1000: 100 * 4^(1/3)...
    assert swa_window(1.0, 2.0, 8, 1000) == math.ceil(by_hand)
    assert swa_window(0.2, 0.0, 2, 1000) == 1  # σ = 0 would give 0: at least 1


def test_registry_defaults_are_the_papers_section_5_picks():
    assert make_policy("swa", horizon=30_000).alpha == 0.2
    assert make_policy("wswa").alpha == 0.2
    assert make_policy("sw-ucb").window == PAPER_SWUCB_WINDOWS["rested-step"] == 4000
    assert make_policy("d-ucb").gamma == PAPER_DUCB_GAMMAS["rested-step"] == 0.999
    assert PAPER_SWUCB_WINDOWS["rested-parametric-anv"] == 16_000
    assert PAPER_DUCB_GAMMAS["rested-parametric-av"] == 0.999999
    cto = make_policy("cto")
    assert isinstance(cto._tables.decay, PlateauDecay)
    assert cto._tables.thetas.tolist() == [0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4]


# -- exact choices on hand-checked instances (σ = 0) ---------------------------------------
def test_swa_ramps_up_round_robin_then_follows_the_last_m_rewards():
    # M = 2: rounds 1-4 pull 0, 1, 0, 1. Arm 0's window (1.0, 0.25) averages 0.625 > arm 1's
    # 0.5, so round 5 pulls arm 0 (0.25); its window (0.25, 0.25) = 0.25 < 0.5: arm 1 after.
    arms, _ = _play(SWA(horizon=10, window=2), _deterministic([[1.0, 0.25], [0.5]]), 8)
    assert arms.tolist() == [[0, 1, 0, 1, 0, 1, 1, 1]] * 3


def test_wswa_restarts_swa_with_horizons_1_2_4_8_and_forgets_the_past():
    # K = 2, α = 0.2, σ² = 0.2: M = 1 for horizons 1, 2, 4, 8 (8 gives 0.998 -> 1), 2 for 16.
    # Round 1: epoch of horizon 1, ramp-up arm 0. Rounds 2-3: ramp-up 0, 1. Rounds 4-7: ramp-up
    # 0, 1, then arm 1's last reward 1 > 0.5 twice (its 4th pull pays 0.25). Rounds 8-15:
    # ramp-up 0, 1 (0.25), then arm 0 (0.5 > 0.25). Round 16: a new ramp-up from arm 0.
    policy = WSWA()
    arms, _ = _play(policy, _deterministic([[0.5], [1, 1, 1, 0.25]]), 17)
    assert arms.tolist() == [[0, 0, 1, 0, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]] * 3
    assert (policy.epoch_horizon, policy.window) == (16, 2)


def test_ucb1_adds_sqrt_2_ln_n_over_n_i_after_one_pull_of_each_arm():
    # means 0.5 and 0.25, n = rounds played:
    # n=2: 0.5+sqrt(2ln2)=1.677 vs 0.25+1.177 -> 0; n=3: 0.5+sqrt(ln3)=1.548 vs 0.25+sqrt(2ln3)
    # =1.732 -> 1; n=4: 0.5+sqrt(ln4)=1.677 vs 0.25+1.177 -> 0; n=5: 0.5+sqrt(2ln5/3)=1.534 vs
    # 0.25+sqrt(ln5)=1.519 -> 0; n=6: 0.5+sqrt(ln6/2)=1.447 vs 0.25+sqrt(ln6)=1.589 -> 1
    arms, _ = _play(UCB1(), _deterministic([[0.5], [0.25]]), 7)
    assert arms.tolist() == [[0, 1, 0, 1, 0, 0, 1]] * 3


def test_cto_detects_the_true_models_and_then_plays_the_oracle():
    # µ(n; θ) = θ 2^-(n-1), θ* = (1, 0.75): the sorted merge 1, .75, .5, .375, ... alternates.
    model = ParametricMeans(_halving, (0.75, 1.0), num_arms=2, arm_thetas=(1.0, 0.75))
    policy = CTOSim(_halving, (0.75, 1.0))
    arms, _ = _play(policy, RottingBandit(model, 3, sigma=0.0), 8)
    assert arms.tolist() == [[0, 1, 0, 1, 0, 1, 0, 1]] * 3
    assert policy.theta_index.tolist() == [[1, 0]] * 3  # θ̂ = (1.0, 0.75)


@pytest.mark.parametrize("thetas", [(0.5, 1.5), (1.5, 0.5)])
def test_equally_close_models_go_to_the_first_theta_in_the_given_order(thetas):
    # one pull paying 1: Y(θ) = 1 - θ 2^0, so |Y| = 0.5 for θ = 0.5 and θ = 1.5 (Eq. 7);
    # Z(θ) = (0 - 1) - (0 - θ) = θ - 1 gives the same tie for D-CTO (Eq. 10).
    for policy in (CTOSim(_halving, thetas), DCTOSimUCB(_halving, thetas)):
        policy.reset(1, 1, 0)
        policy.update(np.array([0]), np.array([1.0]))
        policy.select()
        assert policy.theta_index.tolist() == [[0]]


def test_cto_breaks_equal_indices_by_fewest_pulls_then_at_random():
    # Sec. 5 plateaus: every arm's index is 1 for its first 99 pulls, so CTO_SIM cycles the
    # arms by fewest pulls, in a random order within each cycle.
    env = make_env("rested-parametric-av", num_instances=4, sigma=0.0, num_arms=3)
    env.reset(0)
    policy = CTOSim()
    policy.reset(4, 3, 0)
    orders = set()
    for t in range(3 * 99):
        arms = policy.select()
        policy.update(arms, env.pull(arms))
        assert np.all(policy.pulls.max(axis=1) - policy.pulls.min(axis=1) <= 1)
        if t % 3 == 2:
            orders.add(tuple(arms))
    assert len(orders) > 1


def test_d_cto_differencing_recovers_theta_despite_the_unknown_constant():
    # ANV arm µ(n) = 0.3 + plateau decay with θ* = 0.2: Eq. 10 (halves) finds θ* = 0.2,
    # while Eq. 7 (CTO's sums) absorbs the constant into a slower decay (the smallest θ).
    model = ParametricMeans(PlateauDecay(), num_arms=1, arm_thetas=[0.2], constants=[0.3])
    env = RottingBandit(model, 2, sigma=0.0)
    dcto, cto = DCTOSimUCB(), CTOSim()
    env.reset(0)
    dcto.reset(2, 1, 0), cto.reset(2, 1, 0)
    for _ in range(400):
        arms = np.zeros(2, np.int64)
        rewards = env.pull(arms)
        dcto.update(arms, rewards), cto.update(arms, rewards)
    dcto.select(), cto.select()
    assert dcto._tables.thetas[dcto.theta_index].tolist() == [[0.2], [0.2]]
    assert cto._tables.thetas[cto.theta_index].tolist() == [[0.1], [0.1]]


def test_fewa_with_no_noise_follows_the_last_reward_after_one_pull_of_each_arm():
    # σ = 0: c(h) = 0, so window 1 keeps only the best last reward: arm 1 (1, 1, 1) until
    # its 4th pull pays 0.25, then arm 0 (0.5) for good. Rounds 1-2: both arms, random order.
    arms, _ = _play(FEWA(sigma=0.0), _deterministic([[0.5], [1, 1, 1, 0.25]], 6), 10)
    assert np.all(np.sort(arms[:, :2], axis=1) == [0, 1])
    assert arms[:, 2:].tolist() == [[1, 1, 1, 0, 0, 0, 0, 0]] * 6
    assert len({tuple(row[:2]) for row in arms}) == 2


def test_sliding_window_ucb_pulls_an_arm_absent_from_the_window():
    # τ = 1: the other arm has no pull in the window (index +inf), so the arms alternate.
    arms, _ = _play(SlidingWindowUCB(window=1), make_env("rested-step", num_instances=3), 20)
    assert np.all(arms[:, 1:] != arms[:, :-1])


def test_epsilon_greedy_is_greedy_at_0_and_uniform_at_1():
    arms, _ = _play(EpsilonGreedy(0.0), _deterministic([[0.25], [0.5], [0.375]]), 6)
    assert arms.tolist() == [[0, 1, 2, 1, 1, 1]] * 3
    arms, _ = _play(EpsilonGreedy(1.0), _deterministic([[0.25], [0.5], [0.375]], 3000), 4)
    counts = np.bincount(arms[:, 3], minlength=3) / 3000
    np.testing.assert_allclose(counts, 1 / 3, atol=0.03)


def test_thompson_picks_an_arm_with_its_posterior_probability():
    # one pull each: arm 0 paid 1, arm 1 paid 0; σ = 1: posteriors N(0.5, 1/2), N(0, 1/2),
    # so P(arm 0) = Φ(0.5 / sqrt(1/2 + 1/2)) = 0.691.
    policy = GaussianThompson(sigma=1.0)
    policy.reset(4000, 2, seed=0)
    policy.update(np.zeros(4000, np.int64), np.ones(4000))
    policy.update(np.ones(4000, np.int64), np.zeros(4000))
    assert (policy.select() == 0).mean() == pytest.approx(norm.cdf(0.5), abs=0.03)


# -- the batched policies equal a plain loop over one instance's history -------------------
def _best(index, tol=1e-9):
    index = np.asarray(index, float)
    return set(np.flatnonzero(index >= index.max() - tol).tolist())


def _ref_ucb1(arms, rewards, k, **_):
    if len(arms) < k:
        return {len(arms)}
    n = np.array([arms.count(i) for i in range(k)])
    s = np.array([sum(r for a, r in zip(arms, rewards) if a == i) for i in range(k)])
    return _best(s / n + np.sqrt(2 * math.log(len(arms)) / n))


def _ref_swa(arms, rewards, k, window, **_):
    if len(arms) < k * window:
        return {len(arms) % k}
    last = [[r for a, r in zip(arms, rewards) if a == i][-window:] for i in range(k)]
    return _best([sum(rs) / window for rs in last])


def _ref_wswa(arms, rewards, k, **_):
    horizon = 1
    while 2 * horizon - 1 <= len(arms):  # epoch of horizon h starts after h - 1 rounds
        horizon *= 2
    start = horizon - 1
    window = swa_window(0.2, PAPER_SIGMA, k, horizon)
    return _ref_swa(arms[start:], rewards[start:], k, window)


def _model_sum(decay, n, theta):
    return sum(decay(j, theta) for j in range(1, n + 1))


def _ref_cto(arms, rewards, k, decay, thetas, **_):
    if len(arms) < k:
        return {len(arms)}
    index, pulls = [], []
    for i in range(k):
        rs = [r for a, r in zip(arms, rewards) if a == i]
        gaps = [abs(sum(rs) - _model_sum(decay, len(rs), th)) for th in thetas]  # Eq. 6-7
        index.append(decay(len(rs) + 1, thetas[int(np.argmin(gaps))]))
        pulls.append(len(rs))
    best = _best(index)
    fewest = min(pulls[i] for i in best)
    return {i for i in best if pulls[i] == fewest}


def _ref_dcto(arms, rewards, k, decay, thetas, sigma, **_):
    if len(arms) < k:
        return {len(arms)}
    t, index = len(arms) + 1, []
    for i in range(k):
        rs = [r for a, r in zip(arms, rewards) if a == i]
        n, h = len(rs), len(rs) // 2
        def z(th):  # Eq. 9
            first = sum(decay(j, th) for j in range(1, h + 1))
            second = sum(decay(j, th) for j in range(h + 1, n + 1))
            return abs((sum(rs[:h]) - sum(rs[h:])) - (first - second))
        theta = thetas[int(np.argmin([z(th) for th in thetas]))]  # Eq. 10
        constant = sum(r - decay(j + 1, theta) for j, r in enumerate(rs)) / n
        index.append(constant + decay(n + 1, theta)
                     + math.sqrt(8 * math.log(t) * sigma ** 2 / n))  # Eq. 12
    return _best(index)


def _ref_sw_ucb(arms, rewards, k, window, **_):
    recent = list(zip(arms, rewards))[-window:]
    index = []
    for i in range(k):
        rs = [r for a, r in recent if a == i]
        index.append(math.inf if not rs else sum(rs) / len(rs) + math.sqrt(
            0.6 * math.log(min(len(arms), window)) / len(rs)))
    return _best(index)


def _ref_d_ucb(arms, rewards, k, gamma, **_):
    t = len(arms)
    counts = [sum(gamma ** (t - 1 - s) for s in range(t) if arms[s] == i) for i in range(k)]
    sums = [sum(gamma ** (t - 1 - s) * rewards[s] for s in range(t) if arms[s] == i)
            for i in range(k)]
    total = sum(counts)
    return _best([math.inf if c == 0 else x / c + 2 * math.sqrt(0.6 * math.log(total) / c)
                  for x, c in zip(sums, counts)])


def _ref_fewa(arms, rewards, k, alpha, sigma, **_):
    """Seznec et al.'s loop, window by window."""
    history = [[r for a, r in zip(arms, rewards) if a == i] for i in range(k)]
    alive, h = set(range(k)), 1
    c2 = 2 * sigma ** 2 * alpha * math.log(len(arms) + 1)
    while True:
        short = {i for i in alive if len(history[i]) < h}
        if short or len(alive) == 1:
            pool = short or alive
            fewest = min(len(history[i]) for i in pool)
            return {i for i in pool if len(history[i]) == fewest}
        means = {i: sum(history[i][-h:]) / h for i in alive}
        top = max(means.values())
        alive = {i for i in alive if means[i] >= top - 2 * math.sqrt(c2 / h)}
        h += 1


def _random_tables(seed):
    rng = np.random.default_rng(seed)
    return [np.sort(rng.uniform(0, 1, 30))[::-1] for _ in range(3)]


_ANV = dict(decay=power_decay, thetas=(0.1, 0.3, 0.5))
REFERENCE_CASES = [
    ("ucb1", UCB1(), _ref_ucb1, {}),
    ("swa", SWA(horizon=100, window=3), _ref_swa, {"window": 3}),
    ("wswa", WSWA(), _ref_wswa, {}),
    ("cto", CTOSim(**_ANV), _ref_cto, _ANV),
    ("d-cto", DCTOSimUCB(sigma=0.3, **_ANV), _ref_dcto, dict(sigma=0.3, **_ANV)),
    ("sw-ucb", SlidingWindowUCB(window=7), _ref_sw_ucb, {"window": 7}),
    ("d-ucb", DiscountedUCB(gamma=0.9), _ref_d_ucb, {"gamma": 0.9}),
    ("fewa", FEWA(alpha=0.5, sigma=0.3), _ref_fewa, {"alpha": 0.5, "sigma": 0.3}),
]


@pytest.mark.parametrize("name, policy, reference, params", REFERENCE_CASES,
                         ids=[case[0] for case in REFERENCE_CASES])
def test_every_batched_choice_is_a_best_arm_of_the_loop_reference(name, policy, reference,
                                                                   params):
    if name in ("cto", "d-cto"):
        model = ParametricMeans(power_decay, (0.1, 0.3, 0.5), num_arms=3,
                                constant_high=0.5 if name == "d-cto" else 0.0)
        env = RottingBandit(model, 3, sigma=0.3)
    else:
        env = RottingBandit(TabulatedMeans(_random_tables(7)), 3, sigma=0.3)
    arms, rewards = _play(policy, env, 120, seed=5)
    for i in range(3):
        a, r = arms[i].tolist(), rewards[i].tolist()
        for t in range(len(a)):
            assert a[t] in reference(a[:t], r[:t], 3, **params), (name, i, t)


# -- seeding and the registry ----------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(POLICIES))
def test_instance_i_of_a_policy_batch_is_the_single_policy_with_the_ith_spawned_seed(name):
    def drive(policy, num_instances, seed):
        policy.reset(num_instances, 3, seed)
        choices = []
        for t in range(40):  # rewards depend only on the arm and the round
            arms = policy.select()
            policy.update(arms, np.cos(arms + 0.1 * t))
            choices.append(arms.copy())
        return np.array(choices)
    batch = drive(make_policy(name, horizon=40), 4, 9)
    for i, seed in enumerate(spawn_seeds(9, 4)):
        single = drive(make_policy(name, horizon=40), 1, [seed])
        np.testing.assert_array_equal(single[:, 0], batch[:, i])


@pytest.mark.parametrize("env_name", sorted(ENVS))
@pytest.mark.parametrize("name", sorted(POLICIES))
def test_every_policy_plays_valid_arms_on_every_instance(name, env_name):
    env = make_env(env_name, num_instances=2)
    arms, _ = _play(make_policy(name, horizon=30), env, 30)
    assert arms.dtype.kind == "i" and arms.min() >= 0 and arms.max() < env.num_arms


# -- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, params, match", [
    ("swa", {"horizon": 10, "alpha": float("nan")}, r"alpha = nan is not allowed: a finite "
                                                    r"number in \(0.0, inf\]"),
    ("swa", {"horizon": 10, "window": 0}, "window = 0 is not allowed: an integer >= 1"),
    ("swa", {"horizon": 0}, "horizon = 0 is not allowed"),
    ("sw-ucb", {"window": 0}, "window = 0 is not allowed: an integer >= 1"),
    ("sw-ucb", {"window": 2.5}, "window = 2.5 is not allowed"),
    ("d-ucb", {"gamma": 1.5}, r"gamma = 1.5 is not allowed: a finite number in \(0.0, 1.0\]"),
    ("epsilon-greedy", {"epsilon": float("inf")}, "epsilon = inf is not allowed"),
    ("thompson", {"sigma": -0.1}, "sigma = -0.1 is not allowed"),
    ("fewa", {"alpha": 0.0}, "alpha = 0.0 is not allowed"),
    ("d-cto", {"thetas": ()}, "thetas is empty"),
    ("cto", {"thetas": (0.1, float("nan"))}, "theta = nan is not allowed"),
    ("ucb1", {"window": 3}, "policy 'ucb1' takes no parameter 'window': allowed scale"),
])
def test_bad_policy_parameters_name_the_value_and_what_is_allowed(name, params, match):
    with pytest.raises(ValueError, match=match):
        make_policy(name, **params)


def test_unknown_policy_names_and_a_missing_horizon_are_refused():
    allowed = "cto, d-cto, d-ucb, epsilon-greedy, fewa, sw-ucb, swa, thompson, ucb1, wswa$"
    with pytest.raises(ValueError, match=f"unknown policy 'swb': allowed {allowed}"):
        make_policy("swb")
    with pytest.raises(ValueError, match="policy 'swa' needs the horizon"):
        make_policy("swa")
    with pytest.raises(ValueError, match="num_arms = 0 is not allowed"):
        UCB1().reset(2, 0, 0)
