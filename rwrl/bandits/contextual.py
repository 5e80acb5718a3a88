"""Follower acquisition as a delayed, drifting contextual bandit: a simulator.

After Levine, Mann and Mannor, "Actively Learning to Attract Followers on Twitter"
(2015, arXiv 1504.04114). **The paper ran on live Twitter and released no data and no
simulator**: this module is a synthetic stand-in built from what its abstract states, and
every modelling choice below that the abstract does not give is ours. What was read of the
paper (abstract and the first lines of its introduction, shared/papers/PAPERS.md
section 2) states: follower acquisition through normative behaviour, formalised as a
contextual bandit; the action is retweeting content, each tweet comes with context; reward
signals "based on the change in followers"; a month-long experiment with 60 agents;
findings (1) aggregating experience across agents can adversely impact prediction accuracy
and (2) the Twitter community's response to different actions is non-stationary. Not
found: the features, the reward's exact definition and window, the learners, the split of
the 60 agents, any numbers.

The model (shape convention: N simulator instances, M accounts each, K candidate tweets
per account and step, D context features; arrays are (N, M, K, D) and so on):

* Accounts. Each instance has M accounts (the paper's agents), each with a linear reward
  model theta[n, m] = mean[n] + account_spread * dev[n, m]: the weights are drawn around
  a shared, per-instance mean (mean ~ N(0, I_D), dev ~ N(0, I_D)), so a model pooled
  over the accounts learns M times faster but is biased for each account by
  account_spread * dev (choice: this is how finding (1) can arise at all).
* Actions. Every step each account chooses one of K candidate tweets to retweet (the
  paper's action; K and the candidate stream are ours). A candidate is described by D
  features drawn i.i.d. N(0, I_D / D) per step (choice: abstract standardised
  features standing for what a tweet's context might carry, such as topic, hashtags,
  media, the source's popularity; the paper's features were not found). With this scale
  the expected reward x . theta has variance |theta|^2 / D, about 1 + account_spread^2.
* Reward: the change in the account's followers caused by its retweet, with expected
  value x . theta (it may be negative: unfollows). Choice: the realised reward is that
  value plus Gaussian noise of standard deviation noise_std, not an integer count; a
  count model (difference of two Poisson counts, gains minus losses) would make the mean
  non-linear or the noise depend on the mean, and the paper's definition was not found.
  A follower change common to every candidate (the account's background growth) is left
  out: it changes neither the best choice nor the regret.
* Delay: the reward of the action chosen at step t is measured ``delay`` steps later and
  arrives from the step call of step t + delay (delay = 0: the same call). Before the
  first arrival a step returns NaN rewards. The reward is fixed when the action is
  chosen (the weights of step t); followers gained in between under drifted weights are
  not modelled, nor are overlapping rewards of successive retweets.
* Drift (finding (2)): every step the shared mean and every account's deviation take an
  AR(1) step, mean <- c mean + drift xi, dev <- c dev + drift zeta with
  c = sqrt(1 - drift^2) and xi, zeta ~ N(0, I): the weights keep their prior
  distribution while their correlation over t steps decays as (1 - drift^2)^(t / 2)
  (half-life about 1.39 / drift^2 steps). drift = 0 keeps them fixed exactly. Choice:
  a slow smooth drift; the kind of non-stationarity the paper saw was not found.
* Regret: against the oracle that knows the current weights, per account and step
  max_k x_k . theta - x_chosen . theta (expected rewards, no noise), summed over the
  accounts and steps into ``cumulative_regret`` (N,).

Seeding and random numbers: ``reset(seed)`` seeds instance i with
``spawn_seeds(seed, N)[i]`` (or takes a list of N seeds), so instance i of a batch
behaves exactly as a single instance reset with ``[spawn_seeds(seed, N)[i]]``. The
initial weights come from ``env_rng(seed_i, "follower-weights")``; per-step contexts,
reward noise and drift innovations from a counter-based stream (``CounterRandom``) in a
fixed order that does not depend on the actions or on drift, so two learners (or two
drift rates) run on one seed see the same candidate tweets and the same noise: paired
comparisons.

What this simulator can speak to: whether, for accounts whose responses differ around a
common mean, pooling across accounts beats per-account models early and loses later, in
regret and in prediction error; and how a learner that weighs all history equally fares
against a windowed one when responses drift. What it cannot speak to: the size of either
effect on Twitter (the spread and drift rates are knobs, not estimates), which features
of a tweet attract followers, network effects (virality, followers of followers, accounts
of one community sharing an audience), credit assignment among overlapping rewards,
daily cycles or abrupt changes, and anything about bots or normative behaviour.

Example:
  >>> env = FollowerBandit(num_envs=2, num_accounts=3, num_candidates=4, num_features=5,
  ...                      delay=1)
  >>> contexts = env.reset(seed=0)
  >>> contexts.shape, env.expected_rewards().shape
  ((2, 3, 4, 5), (2, 3, 4))
  >>> rewards, contexts = env.step(np.zeros((2, 3), int))
  >>> bool(np.isnan(rewards).all())  # the first reward arrives one step later
  True
  >>> rewards, contexts = env.step(np.zeros((2, 3), int))
  >>> rewards.shape, bool(np.isfinite(rewards).all())
  ((2, 3), True)
"""

from __future__ import annotations

import collections
import math

import numpy as np

from rwrl.bandits.common import check_count, check_finite, instance_seeds
from rwrl.core.seeding import CounterRandom, env_rng, stream_key


def oracle_regret(expected: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Return each account's regret for one step against the oracle.

    Args:
      expected: (N, M, K) expected reward of every candidate under the current weights.
      actions: (N, M) chosen candidate indices.

    Returns:
      (N, M): max_k expected[n, m, k] - expected[n, m, actions[n, m]], >= 0.
    """
    chosen = np.take_along_axis(expected, actions[..., None], axis=-1)[..., 0]
    return expected.max(axis=-1) - chosen


class FollowerBandit:
    """N independent follower-acquisition simulators, M accounts each (module docstring).

    Args:
      num_envs: N instances.
      num_accounts: M accounts per instance (the paper ran 60 agents).
      num_candidates: K candidate tweets per account and step.
      num_features: D context features per candidate.
      account_spread: how far account weights lie from the shared mean, >= 0 (0: all
        accounts alike, pooling is unbiased).
      noise_std: standard deviation of the reward noise, in followers, >= 0.
      drift: per-step innovation of the weights' AR(1) drift, in [0, 1]; 0: stationary.
      delay: steps between an action and the arrival of its reward, >= 0.
    """

    def __init__(self, num_envs: int, num_accounts: int = 10, num_candidates: int = 5,
                 num_features: int = 5, account_spread: float = 0.5, noise_std: float = 1.0,
                 drift: float = 0.0, delay: int = 0):
        self.num_envs = check_count("num_envs", num_envs)
        self.num_accounts = check_count("num_accounts", num_accounts)
        self.num_candidates = check_count("num_candidates", num_candidates)
        self.num_features = check_count("num_features", num_features)
        self.account_spread = check_finite("account_spread", account_spread, 0.0)
        self.noise_std = check_finite("noise_std", noise_std, 0.0)
        self.drift = check_finite("drift", drift, 0.0, 1.0)
        self.delay = check_count("delay", delay, 0)
        self._started = False

    def reset(self, seed=None) -> np.ndarray:
        """Draw new weights and the first candidates of every instance.

        Args:
          seed: a non-negative int (instance i gets ``spawn_seeds(seed, N)[i]``), a list
            of N such ints (one per instance), or None (fresh entropy).

        Returns:
          (N, M, K, D) contexts of the first step's candidates.
        """
        seeds = instance_seeds(seed, self.num_envs)
        n, m, d = self.num_envs, self.num_accounts, self.num_features
        self.mean = np.empty((n, d))
        self.deviation = np.empty((n, m, d))
        for i, s in enumerate(seeds):
            rng = env_rng(s, "follower-weights")
            self.mean[i] = rng.normal(size=d)
            self.deviation[i] = rng.normal(size=(m, d))
        self._rng = CounterRandom(n)  # a fresh one: its draw index restarts too
        self._rng.reset(np.arange(n), [stream_key(s, "follower-steps") for s in seeds])
        self.t = 0
        self._arrivals: collections.deque[np.ndarray] = collections.deque()
        self.cumulative_regret = np.zeros(n)
        self.last_regret = np.zeros((n, m))
        self.contexts = self._draw_contexts()
        self._started = True
        return self.contexts.copy()

    def _draw_contexts(self) -> np.ndarray:
        shape = (self.num_accounts, self.num_candidates, self.num_features)
        return self._rng.normal(shape) / math.sqrt(self.num_features)

    # -- the model -------------------------------------------------------------------------
    @property
    def weights(self) -> np.ndarray:
        """(N, M, D) current reward weights of every account."""
        return self.mean[:, None, :] + self.account_spread * self.deviation

    def expected_rewards(self) -> np.ndarray:
        """Return (N, M, K) expected follower change of each current candidate (the oracle's)."""
        self._check_started()
        return np.einsum("nmkd,nmd->nmk", self.contexts, self.weights)

    def step(self, actions) -> tuple[np.ndarray, np.ndarray]:
        """Retweet the chosen candidates; return the rewards arriving now and the next candidates.

        Args:
          actions: (N, M) integers in [0, K): each account's chosen candidate.

        Returns:
          rewards: (N, M) follower changes caused by the actions of step t - delay (NaN
            while t < delay: nothing has arrived yet).
          contexts: (N, M, K, D) the candidates of step t + 1.
        """
        self._check_started()
        actions = self._check_actions(actions)
        expected = self.expected_rewards()
        self.last_regret = oracle_regret(expected, actions)
        self.cumulative_regret += self.last_regret.sum(axis=1)
        chosen = np.take_along_axis(expected, actions[..., None], axis=-1)[..., 0]

        self._rng.next_step()
        # fixed draw order, whatever the actions and the drift: contexts, noise, drift
        next_contexts = self._draw_contexts()
        noise = self._rng.normal((self.num_accounts,))
        xi = self._rng.normal((self.num_features,))
        zeta = self._rng.normal((self.num_accounts, self.num_features))

        self._arrivals.append(chosen + self.noise_std * noise)
        if self.drift > 0.0:
            keep = math.sqrt(1.0 - self.drift ** 2)
            self.mean = keep * self.mean + self.drift * xi
            self.deviation = keep * self.deviation + self.drift * zeta
        self.contexts = next_contexts
        self.t += 1
        if len(self._arrivals) > self.delay:
            rewards = self._arrivals.popleft()
        else:
            rewards = np.full((self.num_envs, self.num_accounts), np.nan)
        return rewards, self.contexts.copy()

    def _check_started(self) -> None:
        if not self._started:
            raise ValueError("FollowerBandit has not been reset: call reset(seed) first")

    def _check_actions(self, actions) -> np.ndarray:
        shape = (self.num_envs, self.num_accounts)
        arr = np.asarray(actions)
        if arr.shape != shape or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"actions of shape {arr.shape} and dtype {arr.dtype} are not "
                             f"allowed: give integers of shape {shape}")
        if arr.size and (arr.min() < 0 or arr.max() >= self.num_candidates):
            raise ValueError(f"action {int(arr.min() if arr.min() < 0 else arr.max())} is out "
                             f"of range: allowed [0, {self.num_candidates - 1}]")
        return arr.astype(np.int64)
