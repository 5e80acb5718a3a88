"""Bandit policies for rotting arms, each batched over N instances (vectorised numpy).

Interface: ``reset(num_instances, num_arms, seed)``, ``select() -> arms (N,)``,
``update(arms, rewards)``. Shapes: N instances, K arms (``common``); ``t`` counts the
rounds already played, so ``select`` decides round t + 1.

From Levine, Crammer and Mannor, "Rotting Bandits" (NeurIPS 2017, arXiv 1702.07274v4):

* ``SWA`` (Algorithm 1): window M = ceil(α 4^(2/3) σ^(2/3) K^(-2/3) T^(2/3)
  ln^(1/3)(√2 T)); round-robin until each arm has M pulls, then the arm with the best
  mean of its own last M rewards. Sec. 5 used α = 0.2 (our default), not the
  bound-minimising (2 max µ(1))^(-2/3).
* ``WSWA``: the doubling trick, epoch e = 0, 1, ... covering rounds 2^e .. 2^(e+1) - 1
  with a fresh SWA of horizon 2^e (App. C.2's epochs).
* ``CTOSim`` (Algorithm 2, AV case) and ``DCTOSimUCB`` (D-CTO_SIM-UCB, the variant of
  Algorithm 3 that Sec. 5 simulates: detect by Eq. 10 every round, then Eq. 12).

Baselines: ``UCB1`` (Auer et al. 2002), ``EpsilonGreedy``, ``GaussianThompson``,
``SlidingWindowUCB`` and ``DiscountedUCB`` (Garivier and Moulines 2011), ``FEWA``
(Seznec et al., AISTATS 2019).

Choices where the papers are silent (each tested in tests/bandits/test_policies.py):

* Ties of an argmax are broken uniformly at random from the instance's own stream
  ``env_rng(seed_i, "policy/ties")``; CTO_SIM first prefers the fewest pulls (as Sec. 4.1
  states); FEWA pulls a least-pulled candidate (as SMPyBandits' FEWA, which takes the
  first of them). Ramp-ups are deterministic round-robin from arm 0.
* SWA's window is at least 1 (σ = 0 would make the formula 0); an explicit ``window``
  replaces the formula. wSWA forgets the previous epoch's rewards: each epoch is a new
  SWA with its own ramp-up (the paper does not say whether rewards are reused).
* Eq. 7 and Eq. 10 ties between models go to the first θ in Θ's order. D-CTO_SIM-UCB
  pulls each arm once before its first detection (Algorithm 3's K m*_diff exploration
  has no closed form), and c_{t,s} = sqrt(8 ln(t) σ² / s) takes t = the round decided.
* UCB1: x̄_i + scale sqrt(2 ln n / N_i), n the rounds played, after one pull per arm;
  scale = 1 is Auer et al.'s [0, 1]-reward form.
* SW-UCB: x̄_τ,i + B sqrt(ξ ln(min(n, τ)) / N_τ,i); D-UCB: x̄_γ,i + 2B sqrt(ξ ln n_γ /
  N_γ,i) (Garivier and Moulines' indices, B the reward bound; we default B = 1 and
  ξ = 0.6, not read from their text here); an arm with no (discounted) pull is pulled.
  Defaults τ = 4,000 and γ = 0.999 are Sec. 5's grid-search picks for the step
  instance; ``PAPER_SWUCB_WINDOWS`` and ``PAPER_DUCB_GAMMAS`` give them per instance.
* Epsilon-greedy: one pull per arm, then with probability ε a uniform arm, else the best
  all-history mean. Gaussian Thompson: θ_i ~ N(S_i / (N_i + 1), σ² / (N_i + 1)), the
  posterior under a N(0, σ²) prior and known noise variance σ² (Agrawal and Goyal's
  form with σ = 1).
* FEWA: filter at windows h = 1, 2, ... keeping arms whose last-h mean is at least the
  best one minus 2 c(h), c(h) = sqrt(2 σ² α ln t / h) (δ_t = t^(-α), t the round
  decided); an arm left with fewer than h pulls, or a sole survivor, is pulled. Default
  α = 4 (SMPyBandits' FEWA). A round builds (N, K, H) window means, H the second most
  pulls, in at most K passes: fine for thousands of rounds, slow at T = 1e5.
* D-CTO and FEWA keep every reward (N x K x max pulls floats, grown by doubling).

Example:
  >>> policy = make_policy("swa", horizon=30_000)
  >>> policy.reset(num_instances=4, num_arms=2, seed=0)
  >>> policy.window, policy.select().tolist()
  (395, [0, 0, 0, 0])
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

import numpy as np

from rwrl.bandits.common import (BlockRandom, argmax_random_ties, check_count, check_finite,
                                 instance_seeds, make_from)
from rwrl.bandits.rotting import PAPER_SIGMA, PAPER_THETAS, PlateauDecay

#: SWA's α in every simulation of Sec. 5 (grid {0.2, ..., 1}).
PAPER_SWA_ALPHA = 0.2
#: SW-UCB's window τ (rounds) and D-UCB's discount γ chosen by Sec. 5's grid search.
PAPER_SWUCB_WINDOWS = {"rested-step": 4_000, "rested-parametric-av": 8_000,
                       "rested-parametric-anv": 16_000}
PAPER_DUCB_GAMMAS = {"rested-step": 0.999, "rested-parametric-av": 0.999999,
                     "rested-parametric-anv": 0.999999}


def swa_window(alpha: float, sigma: float, num_arms: int, horizon: int) -> int:
    """Return SWA's window M (Algorithm 1), at least 1.

    Args:
      alpha: α > 0.
      sigma: the rewards' sub-Gaussian σ (standard deviation; σ^(2/3), not σ², enters).
      num_arms: K.
      horizon: T >= 1 (rounds).
    """
    window = (alpha * 4.0 ** (2 / 3) * sigma ** (2 / 3) * num_arms ** (-2 / 3)
              * horizon ** (2 / 3) * math.log(math.sqrt(2.0) * horizon) ** (1 / 3))
    return max(1, math.ceil(window))


class Policy:
    """What every policy keeps: per-arm pulls and reward sums, the round, a tie stream."""

    def reset(self, num_instances: int, num_arms: int, seed=None) -> None:
        """Start afresh on N instances of K arms.

        Args:
          seed: an int (instance i gets ``spawn_seeds(seed, N)[i]``), a list of N seeds,
            or None.
        """
        self.num_instances = check_count("num_instances", num_instances)
        self.num_arms = check_count("num_arms", num_arms)
        self.seeds = instance_seeds(seed, self.num_instances)
        self._rows = np.arange(self.num_instances)
        self._offsets = self._rows * self.num_arms  # flat index of (i, 0) in an (N, K) array
        self._ties = BlockRandom(self.seeds, "policy/ties", (self.num_arms,), "uniform")
        self.pulls = np.zeros((self.num_instances, self.num_arms), np.int64)
        self.sums = np.zeros((self.num_instances, self.num_arms))
        self.t = 0
        self._start()

    def select(self) -> np.ndarray:
        """Return the (N,) arms to pull in round t + 1."""
        raise NotImplementedError

    def update(self, arms: np.ndarray, rewards: np.ndarray) -> None:
        """Record the (N,) rewards of the (N,) arms pulled this round."""
        arms = np.asarray(arms)
        rewards = np.asarray(rewards, np.float64)
        flat = self._offsets + arms  # flat indexing: several times faster than (rows, arms)
        self._observe(arms, rewards, flat)
        self.pulls.reshape(-1)[flat] += 1
        self.sums.reshape(-1)[flat] += rewards
        self.t += 1

    def _start(self) -> None:
        """Allocate the policy's own state (after the shared state is set)."""

    def _observe(self, arms: np.ndarray, rewards: np.ndarray, flat: np.ndarray) -> None:
        """Update the policy's own state; ``pulls`` and ``t`` are still the old ones.

        ``flat`` indexes the pulled (instance, arm) cells of a flattened (N, K) array.
        """

    def _round_robin(self, step: int) -> np.ndarray:
        return np.full(self.num_instances, step % self.num_arms)


class RewardHistory:
    """Every reward of every arm: prefix sums (N, K, capacity + 1), grown by doubling."""

    def __init__(self, num_instances: int, num_arms: int):
        self.prefix = np.zeros((num_instances, num_arms, 65))
        self._rows = np.arange(num_instances)

    def add(self, arms: np.ndarray, counts: np.ndarray, rewards: np.ndarray) -> None:
        """Append ``rewards`` as pull ``counts + 1`` of ``arms`` (counts: pulls before)."""
        if counts.max() + 2 > self.prefix.shape[2]:
            grown = np.zeros(self.prefix.shape[:2] + (2 * self.prefix.shape[2] - 1,))
            grown[..., :self.prefix.shape[2]] = self.prefix
            self.prefix = grown
        self.prefix[self._rows, arms, counts + 1] = self.prefix[self._rows, arms, counts] + rewards

    def sums_upto(self, n: np.ndarray) -> np.ndarray:
        """Return (N, K) sums of each arm's first n rewards (n: (N, K) ints)."""
        return np.take_along_axis(self.prefix, n[..., None], axis=2)[..., 0]


# -- the paper's policies ---------------------------------------------------------------
class SWA(Policy):
    """Sliding-Window Average, Algorithm 1: best mean of each arm's last M rewards.

    Args:
      horizon: T, which sets the window.
      alpha: α > 0 (Sec. 5: 0.2).
      sigma: the rewards' sub-Gaussian σ (standard deviation).
      window: M >= 1 instead of the formula.
    """

    def __init__(self, horizon: int, alpha: float = PAPER_SWA_ALPHA,
                 sigma: float = PAPER_SIGMA, window: int | None = None):
        self.horizon = check_count("horizon", horizon)
        self.alpha = check_finite("alpha", alpha, low=0.0, low_open=True)
        self.sigma = check_finite("sigma", sigma, low=0.0)
        self.fixed_window = None if window is None else check_count("window", window)

    def _start(self) -> None:
        self._begin(self.horizon)

    def _begin(self, horizon: int) -> None:
        """Start a fresh SWA run of ``horizon`` rounds: empty windows, a new ramp-up."""
        self.window = self.fixed_window or swa_window(self.alpha, self.sigma, self.num_arms,
                                                      horizon)
        self._recent = np.zeros((self.num_instances, self.num_arms, self.window))
        self._window_sums = np.zeros((self.num_instances, self.num_arms))
        self._run_pulls = np.zeros((self.num_instances, self.num_arms), np.int64)
        self._run_rounds = 0

    def select(self) -> np.ndarray:
        if self._run_rounds < self.num_arms * self.window:  # ramp-up: M pulls of each arm
            return self._round_robin(self._run_rounds)
        return argmax_random_ties(self._window_sums, self._ties.next())

    def _observe(self, arms, rewards, flat) -> None:
        run_pulls = self._run_pulls.reshape(-1)
        cell = flat * self.window + run_pulls[flat] % self.window
        recent = self._recent.reshape(-1)
        oldest = recent[cell]  # 0 until the window is full
        self._window_sums.reshape(-1)[flat] += rewards - oldest
        recent[cell] = rewards
        run_pulls[flat] += 1
        self._run_rounds += 1


class WSWA(SWA):
    """wrapper SWA (Sec. 3, unknown horizon): SWA restarted with horizons 1, 2, 4, ...

    Epoch e covers rounds 2^e .. 2^(e+1) - 1 and runs a new SWA of horizon 2^e.
    """

    def __init__(self, alpha: float = PAPER_SWA_ALPHA, sigma: float = PAPER_SIGMA):
        super().__init__(horizon=1, alpha=alpha, sigma=sigma)

    def _start(self) -> None:
        self.epoch_horizon = 1
        self._epoch_end = 1  # rounds played when the current epoch ends
        self._begin(1)

    def select(self) -> np.ndarray:
        if self.t == self._epoch_end:
            self.epoch_horizon *= 2
            self._epoch_end += self.epoch_horizon
            self._begin(self.epoch_horizon)
        return super().select()


class _ModelTables:
    """µ(n; θ) and its running sums C(n; θ) = Σ_{j<=n} µ(j; θ) for n = 0..L-1, per θ."""

    def __init__(self, decay: Callable, thetas: Sequence[float]):
        self.decay = decay
        self.thetas = np.array([check_finite("theta", t) for t in thetas])
        if self.thetas.size == 0:
            raise ValueError("thetas is empty: allowed a non-empty model set")
        self.means = self.sums = np.zeros((self.thetas.size, 0))

    def fit(self, most_pulls: int) -> None:
        """Make the tables cover n up to most_pulls + 1."""
        if most_pulls + 2 <= self.means.shape[1]:
            return
        length = max(64, 2 * (most_pulls + 2))
        n = np.arange(1, length)
        self.means = np.zeros((self.thetas.size, length))  # column 0 unused
        self.means[:, 1:] = self.decay(n[None, :], self.thetas[:, None])
        self.sums = np.zeros_like(self.means)
        self.sums[:, 1:] = np.cumsum(self.means[:, 1:], axis=1)

    def sums_at(self, n: np.ndarray) -> np.ndarray:
        """Return C(n; θ) as (N, K, |Θ|) for (N, K) ints n."""
        return np.moveaxis(self.sums[:, n], 0, -1)


class CTOSim(Policy):
    """CTO_SIM, Algorithm 2 (AV case): detect θ_i by Eq. 7, pull the best µ(N_i + 1; θ̂_i).

    Args:
      decay: the known rotting model µ(n; θ), vectorised (Sec. 5: ``PlateauDecay()``).
      thetas: the known model set Θ.
    """

    def __init__(self, decay: Callable = PlateauDecay(), thetas: Sequence[float] = PAPER_THETAS):
        self._tables = _ModelTables(decay, thetas)

    def _start(self) -> None:
        self.theta_index = np.zeros((self.num_instances, self.num_arms), np.int64)

    def select(self) -> np.ndarray:
        if self.t < self.num_arms:  # ramp-up: one pull of each arm
            return self._round_robin(self.t)
        self._tables.fit(int(self.pulls.max()))
        gaps = self.sums[..., None] - self._tables.sums_at(self.pulls)  # Y(i, t; θ), Eq. 6
        self.theta_index = np.abs(gaps).argmin(axis=-1)  # Eq. 7
        index = self._tables.means[self.theta_index, self.pulls + 1]
        best = index >= index.max(axis=1, keepdims=True)
        fewest = np.where(best, self.pulls, np.iinfo(np.int64).max)
        return argmax_random_ties(-fewest.astype(np.float64), self._ties.next())


class DCTOSimUCB(Policy):
    """D-CTO_SIM-UCB (Sec. 4.2, ANV case): Eq. 10 detection every round, then the Eq. 12 UCB.

    Args:
      decay: the known rotting model µ(n; θ), vectorised.
      thetas: the known model set Θ.
      sigma: the rewards' sub-Gaussian σ in c_{t,s} = sqrt(8 ln(t) σ² / s).
    """

    def __init__(self, decay: Callable = PlateauDecay(), thetas: Sequence[float] = PAPER_THETAS,
                 sigma: float = PAPER_SIGMA):
        self._tables = _ModelTables(decay, thetas)
        self.sigma = check_finite("sigma", sigma, low=0.0)

    def _start(self) -> None:
        self._history = RewardHistory(self.num_instances, self.num_arms)
        self.theta_index = np.zeros((self.num_instances, self.num_arms), np.int64)

    def _observe(self, arms, rewards, flat) -> None:
        self._history.add(arms, self.pulls.reshape(-1)[flat], rewards)

    def select(self) -> np.ndarray:
        if self.t < self.num_arms:  # one pull of each arm before the first detection
            return self._round_robin(self.t)
        pulls = self.pulls
        half = pulls // 2
        self._tables.fit(int(pulls.max()))
        first = self._history.sums_upto(half)
        observed = 2.0 * first - self.sums  # first half minus second half of the rewards
        modelled = 2.0 * self._tables.sums_at(half) - self._tables.sums_at(pulls)
        self.theta_index = np.abs(observed[..., None] - modelled).argmin(axis=-1)  # Eq. 9-10
        theta_sums = self._tables.sums[self.theta_index, pulls]
        constant = (self.sums - theta_sums) / pulls  # µ̂^c_i
        bonus = np.sqrt(8.0 * math.log(self.t + 1) * self.sigma ** 2 / pulls)
        index = constant + self._tables.means[self.theta_index, pulls + 1] + bonus  # Eq. 12
        return argmax_random_ties(index, self._ties.next())


# -- baselines ----------------------------------------------------------------------------
class UCB1(Policy):
    """UCB1 (Auer et al. 2002): x̄_i + scale sqrt(2 ln n / N_i) after one pull per arm."""

    def __init__(self, scale: float = 1.0):
        self.scale = check_finite("scale", scale, low=0.0)

    def select(self) -> np.ndarray:
        if self.t < self.num_arms:
            return self._round_robin(self.t)
        index = self.sums / self.pulls + self.scale * np.sqrt(2.0 * math.log(self.t) / self.pulls)
        return argmax_random_ties(index, self._ties.next())


class EpsilonGreedy(Policy):
    """ε-greedy: one pull per arm, then a uniform arm w.p. ε, else the best all-history mean."""

    def __init__(self, epsilon: float = 0.1):
        self.epsilon = check_finite("epsilon", epsilon, low=0.0, high=1.0)

    def _start(self) -> None:
        self._explore = BlockRandom(self.seeds, "policy/explore", (2,), "uniform")

    def select(self) -> np.ndarray:
        if self.t < self.num_arms:
            return self._round_robin(self.t)
        draw = self._explore.next()
        greedy = argmax_random_ties(self.sums / self.pulls, self._ties.next())
        uniform = np.minimum((draw[:, 1] * self.num_arms).astype(np.int64), self.num_arms - 1)
        return np.where(draw[:, 0] < self.epsilon, uniform, greedy)


class GaussianThompson(Policy):
    """Thompson sampling: θ_i ~ N(S_i / (N_i + 1), σ² / (N_i + 1)), pull the largest."""

    def __init__(self, sigma: float = PAPER_SIGMA):
        self.sigma = check_finite("sigma", sigma, low=0.0)

    def _start(self) -> None:
        self._normals = BlockRandom(self.seeds, "policy/posterior", (self.num_arms,), "normal")

    def select(self) -> np.ndarray:
        count = self.pulls + 1.0
        samples = self.sums / count + self.sigma / np.sqrt(count) * self._normals.next()
        return argmax_random_ties(samples, self._ties.next())


class SlidingWindowUCB(Policy):
    """SW-UCB (Garivier and Moulines 2011) over the last ``window`` rounds.

    Args:
      window: τ >= 1 rounds (Sec. 5: 4e3, 8e3, 16e3 for step, AV, ANV).
      bound: B, the rewards' bound.
      xi: ξ > 0 (the analysis needs ξ > 1/2).
    """

    def __init__(self, window: int = 4_000, bound: float = 1.0, xi: float = 0.6):
        self.window = check_count("window", window)
        self.bound = check_finite("bound", bound, low=0.0)
        self.xi = check_finite("xi", xi, low=0.0, low_open=True)

    def _start(self) -> None:
        self._arms = np.zeros((self.num_instances, self.window), np.int64)
        self._rewards = np.zeros((self.num_instances, self.window))
        self._counts = np.zeros((self.num_instances, self.num_arms), np.int64)
        self._window_sums = np.zeros((self.num_instances, self.num_arms))

    def _observe(self, arms, rewards, flat) -> None:
        slot = self.t % self.window
        if self.t >= self.window:  # round t - τ + 1 leaves the window
            leaving = self._offsets + self._arms[:, slot]
            counts, sums = self._counts.reshape(-1), self._window_sums.reshape(-1)
            counts[leaving] -= 1
            left = sums[leaving] - self._rewards[:, slot]
            sums[leaving] = np.where(counts[leaving] > 0, left, 0.0)  # no rounding residue
        self._arms[:, slot] = arms
        self._rewards[:, slot] = rewards
        self._counts.reshape(-1)[flat] += 1
        self._window_sums.reshape(-1)[flat] += rewards

    def select(self) -> np.ndarray:
        counts = np.maximum(self._counts, 1)
        rounds = max(min(self.t, self.window), 1)
        index = (self._window_sums / counts
                 + self.bound * np.sqrt(self.xi * math.log(rounds) / counts))
        index[self._counts == 0] = np.inf
        return argmax_random_ties(index, self._ties.next())


class DiscountedUCB(Policy):
    """D-UCB (Garivier and Moulines 2011): discounted means and counts, discount γ.

    Args:
      gamma: γ in (0, 1] (Sec. 5: 0.999 step, 0.999999 parametric).
      bound: B, the rewards' bound.
      xi: ξ > 0.
    """

    def __init__(self, gamma: float = 0.999, bound: float = 1.0, xi: float = 0.6):
        self.gamma = check_finite("gamma", gamma, low=0.0, high=1.0, low_open=True)
        self.bound = check_finite("bound", bound, low=0.0)
        self.xi = check_finite("xi", xi, low=0.0, low_open=True)

    def _start(self) -> None:
        self._counts = np.zeros((self.num_instances, self.num_arms))
        self._discounted_sums = np.zeros((self.num_instances, self.num_arms))

    def _observe(self, arms, rewards, flat) -> None:
        self._counts *= self.gamma
        self._discounted_sums *= self.gamma
        self._counts.reshape(-1)[flat] += 1.0
        self._discounted_sums.reshape(-1)[flat] += rewards

    def select(self) -> np.ndarray:
        pulled = self._counts > 0  # never pulled, or forgotten below the smallest float
        counts = np.where(pulled, self._counts, 1.0)
        total = np.maximum(self._counts.sum(axis=1, keepdims=True), 1.0)
        index = (self._discounted_sums / counts
                 + 2.0 * self.bound * np.sqrt(self.xi * np.log(total) / counts))
        index[~pulled] = np.inf
        return argmax_random_ties(index, self._ties.next())


class FEWA(Policy):
    """Filtering on Expanding Window Average (Seznec et al. 2019).

    Args:
      alpha: α > 0 of the confidence δ_t = t^(-α).
      sigma: the rewards' sub-Gaussian σ.
    """

    def __init__(self, alpha: float = 4.0, sigma: float = PAPER_SIGMA):
        self.alpha = check_finite("alpha", alpha, low=0.0, low_open=True)
        self.sigma = check_finite("sigma", sigma, low=0.0)

    def _start(self) -> None:
        self._history = RewardHistory(self.num_instances, self.num_arms)

    def _observe(self, arms, rewards, flat) -> None:
        self._history.add(arms, self.pulls.reshape(-1)[flat], rewards)

    def select(self) -> np.ndarray:
        """Filter window by window, jumping from one elimination to the next.

        With the surviving set fixed, the windows before the next elimination change
        nothing, so each pass computes every window's means at once (N, K, H) and jumps
        to the first window that eliminates an arm or leaves a survivor short of rewards:
        at most K passes a round instead of one per window.
        """
        uniforms = self._ties.next()
        pulls = self.pulls
        windows = np.arange(1, self._windows_needed() + 1)  # h = 1..H
        earlier = np.take_along_axis(self._history.prefix,
                                     np.maximum(pulls[..., None] - windows, 0), axis=2)
        means = (self._history.sums_upto(pulls)[..., None] - earlier) / windows  # (N, K, H)
        usable = windows <= pulls[..., None]
        confidence = 2.0 * self.sigma ** 2 * self.alpha * math.log(self.t + 1)
        margin = 2.0 * np.sqrt(confidence / windows)  # 2 c(h, δ_t)
        alive = np.ones(pulls.shape, bool)
        reached = np.ones(self.num_instances, np.int64)  # the next window to filter with
        undecided = np.ones(self.num_instances, bool)
        chosen = np.zeros(self.num_instances, np.int64)
        never = np.iinfo(np.int64).max
        while True:
            fewest = np.where(alive, pulls, never).min(axis=1)
            runs_out = fewest + 1  # the window at which a survivor has too few rewards
            counted = alive[..., None] & usable
            top = np.where(counted, means, -np.inf).max(axis=1, keepdims=True)
            drops = counted & (means < top - margin)
            in_reach = (windows >= reached[:, None]) & (windows < runs_out[:, None])
            dropping = drops.any(axis=1) & in_reach
            first_drop = np.where(dropping.any(axis=1), dropping.argmax(axis=1) + 1, never)
            decide = undecided & ((alive.sum(axis=1) == 1) | (runs_out <= first_drop))
            if decide.any():  # pull a least-pulled survivor, a tie at random
                candidates = alive & (pulls == fewest[:, None])
                picked = argmax_random_ties(np.where(candidates, 0.0, -np.inf), uniforms)
                chosen[decide] = picked[decide]
                undecided &= ~decide
                if not undecided.any():
                    return chosen
            column = np.where(undecided, first_drop - 1, 0)[:, None, None]
            dropped = np.take_along_axis(drops, column, axis=2)[..., 0]
            alive &= ~(dropped & undecided[:, None])
            reached = np.where(undecided, first_drop + 1, reached)

    def _windows_needed(self) -> int:
        """Return H: while two arms survive, the filtering stops by the second most pulls."""
        if self.num_arms == 1:
            return 1
        second_most = np.partition(self.pulls, -2, axis=1)[:, -2]
        return max(1, int(second_most.max()))


# -- the registry --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PolicyEntry:
    """A registered policy: its factory (defaults in its signature) and what it needs."""

    factory: Callable[..., Policy]
    needs_horizon: bool = False  # SWA's window depends on the horizon T


POLICIES: dict[str, PolicyEntry] = {
    "swa": PolicyEntry(SWA, needs_horizon=True),
    "wswa": PolicyEntry(WSWA),
    "cto": PolicyEntry(CTOSim),
    "d-cto": PolicyEntry(DCTOSimUCB),
    "ucb1": PolicyEntry(UCB1),
    "epsilon-greedy": PolicyEntry(EpsilonGreedy),
    "thompson": PolicyEntry(GaussianThompson),
    "sw-ucb": PolicyEntry(SlidingWindowUCB),
    "d-ucb": PolicyEntry(DiscountedUCB),
    "fewa": PolicyEntry(FEWA),
}


def make_policy(name: str, horizon: int | None = None, **params) -> Policy:
    """Return the registered policy ``name`` (not yet reset).

    Args:
      name: a key of ``POLICIES``.
      horizon: T, passed to the policies that need it (SWA).
      **params: the policy's parameters; unset ones take the class defaults.
    """
    entry = POLICIES.get(name)
    if entry is not None and entry.needs_horizon:
        if horizon is None:
            raise ValueError(f"policy {name!r} needs the horizon: pass horizon=T")
        params["horizon"] = horizon
    factories = {key: value.factory for key, value in POLICIES.items()}
    return make_from("policy", factories, name, **params)
