"""Linear contextual learners for the follower bandit: LinUCB pooled, per account, windowed.

LinUCB is Li, Chu, Langford and Schapire (2010, "A contextual-bandit approach to
personalized news article recommendation", Algorithm 1, disjoint model): ridge estimate
theta = A^-1 b with A = ridge I + sum x x^T and b = sum x r, and the candidate scored
x . theta + alpha sqrt(x^T A^-1 x) is chosen (ties: the lowest index). Neither mabwiser
nor contextualbandits is installed here, so it is written by hand, on (N, M, ...) arrays:
N instances, M accounts, K candidates, D features.

What is shared between the accounts of an instance (``sharing``):

* ``"pooled"``: one model for all M accounts (the paper's "aggregating experience across
  agents"); A and b sum every account's observations.
* ``"per_account"``: one model per account, nothing shared. With no window this is the
  stationary learner of the non-stationarity comparison: it weighs all history equally.
* ``"shrinkage"``: each account's estimate is shrunk toward the pooled one,
  theta_m = (shrinkage I + S_m)^-1 (b_m + shrinkage theta_pooled), with S_m, b_m the
  account's own sums and theta_pooled the pooled ridge estimate; its width uses
  (shrinkage I + S_m)^-1 and ignores the pooled estimate's own uncertainty. shrinkage
  -> 0 gives per-account least squares, -> infinity the pooled model.

Paper vs choice: the paper (Levine, Mann, Mannor 2015, arXiv 1504.04114) compares
aggregated experience against per-agent experience; its learner, features and
hyperparameters were not found (only the abstract could be read). So ``pooled`` against
``per_account`` is the comparison its finding (1) names, and ``shrinkage`` is our own
middle ground (a standard hierarchical-ridge estimator), not the paper's method.

``window`` (W): the model keeps only each account's last W observations (a sliding
window; the oldest leaves A and b as the newest enters), for drift; None keeps all. The
pooled model's window is then the last W steps of every account.

Delay: ``act`` remembers each step's chosen features; ``update`` receives the rewards
arriving now (NaN while none have arrived) and adds them with the features chosen
``delay`` calls of ``act`` earlier, the context they were chosen under.

Example:
  >>> learner = make_learner("per_account", num_envs=1, num_accounts=1, num_features=2)
  >>> contexts = np.array([[[[1.0, 0.0], [0.0, 2.0]]]])  # (N, M, K, D)
  >>> learner.act(contexts)  # untrained: the widest candidate, |x| = 2
  array([[1]])
  >>> learner.update(np.array([[0.5]]))
  >>> learner.model()[0]  # theta = (I + diag(0, 4))^-1 (0, 2 * 0.5)
  array([[[0. , 0.2]]])
"""

from __future__ import annotations

import collections
import dataclasses
import math

import numpy as np

from rwrl.bandits.common import check_count, check_finite

SHARINGS = ("pooled", "per_account", "shrinkage")


@dataclasses.dataclass(frozen=True)
class LinUCBConfig:
    """A LinUCB learner's settings (validated on construction).

    Attributes:
      sharing: "pooled", "per_account" or "shrinkage" (module docstring).
      window: keep each account's last W >= 1 observations; None keeps all.
      alpha: UCB width multiplier, >= 0 (0: greedy on the ridge estimate).
      ridge: ridge lambda > 0 of the pooled and per-account models' A = lambda I + ...
      shrinkage: strength > 0 of the pull toward the pooled estimate ("shrinkage" only).
    """

    sharing: str = "per_account"
    window: int | None = None
    alpha: float = 1.0
    ridge: float = 1.0
    shrinkage: float = 10.0

    def __post_init__(self):
        if self.sharing not in SHARINGS:
            raise ValueError(f"sharing = {self.sharing!r} is not allowed: one of "
                             f"{', '.join(SHARINGS)}")
        if self.window is not None:
            object.__setattr__(self, "window", check_count("window", self.window))
        object.__setattr__(self, "alpha", check_finite("alpha", self.alpha, 0.0))
        object.__setattr__(self, "ridge", check_finite("ridge", self.ridge, 0.0, low_open=True))
        object.__setattr__(self, "shrinkage",
                           check_finite("shrinkage", self.shrinkage, 0.0, low_open=True))


#: the named learners; ``make_learner(name, ..., **overrides)`` changes any field.
LEARNERS: dict[str, LinUCBConfig] = {
    "pooled": LinUCBConfig(sharing="pooled"),
    "per_account": LinUCBConfig(sharing="per_account"),
    "windowed": LinUCBConfig(sharing="per_account", window=200),
    "shrinkage": LinUCBConfig(sharing="shrinkage", shrinkage=10.0),
}


def make_learner(name: str, num_envs: int, num_accounts: int, num_features: int,
                 delay: int = 0, **overrides) -> "LinUCB":
    """Return the registered learner ``name`` for a batch, fields of its config overridden.

    Example: ``make_learner("windowed", 4, 10, 5, delay=3, window=100)``.
    """
    if name not in LEARNERS:
        raise ValueError(f"unknown learner {name!r}: allowed {', '.join(sorted(LEARNERS))}")
    fields = {f.name for f in dataclasses.fields(LinUCBConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"learner {name!r} takes no parameter {unknown[0]!r}: allowed "
                         f"{', '.join(sorted(fields))}")
    config = dataclasses.replace(LEARNERS[name], **overrides)
    return LinUCB(config, num_envs, num_accounts, num_features, delay)


class LinUCB:
    """LinUCB for N instances of M accounts each, with delayed rewards (module docstring).

    Args:
      config: the learner's settings.
      num_envs: N.
      num_accounts: M.
      num_features: D.
      delay: steps between an action and its reward, >= 0 (the simulator's delay).
    """

    def __init__(self, config: LinUCBConfig, num_envs: int, num_accounts: int,
                 num_features: int, delay: int = 0):
        self.config = config
        self.num_envs = check_count("num_envs", num_envs)
        self.num_accounts = check_count("num_accounts", num_accounts)
        self.num_features = check_count("num_features", num_features)
        self.delay = check_count("delay", delay, 0)
        self.reset()

    def reset(self) -> None:
        """Forget every observation and every pending action."""
        n, m, d = self.num_envs, self.num_accounts, self.num_features
        #: (N, M, D, D) sum of x x^T of each account's kept observations.
        self.xx = np.zeros((n, m, d, d))
        #: (N, M, D) sum of x r of each account's kept observations.
        self.xr = np.zeros((n, m, d))
        #: (N, M) number of observations added so far (windowed ones included).
        self.num_observed = np.zeros((n, m), np.int64)
        self._pending: collections.deque[np.ndarray] = collections.deque()
        w = self.config.window
        if w is not None:
            self._ring_x = np.zeros((w, n, m, d))
            self._ring_r = np.zeros((w, n, m))
        self._added = 0  # steps of observations added (the ring's write position)

    # -- the model -------------------------------------------------------------------------
    def model(self) -> tuple[np.ndarray, np.ndarray]:
        """Return each account's estimate theta (N, M, D) and the A (N, M, D, D) of its width."""
        eye = np.eye(self.num_features)
        cfg = self.config
        if cfg.sharing == "per_account":
            a = cfg.ridge * eye + self.xx
            return _solve(a, self.xr), a
        a_pool = cfg.ridge * eye + self.xx.sum(axis=1)
        theta_pool = _solve(a_pool, self.xr.sum(axis=1))
        if cfg.sharing == "pooled":
            shape = (self.num_envs, self.num_accounts, self.num_features)
            return (np.broadcast_to(theta_pool[:, None], shape),
                    np.broadcast_to(a_pool[:, None], shape + (self.num_features,)))
        a = cfg.shrinkage * eye + self.xx
        return _solve(a, self.xr + cfg.shrinkage * theta_pool[:, None]), a

    def predict(self, contexts: np.ndarray) -> np.ndarray:
        """Return (N, M, K) estimated expected rewards x . theta of the candidates."""
        theta, _ = self.model()
        return np.einsum("nmkd,nmd->nmk", self._check_contexts(contexts), theta)

    def scores(self, contexts: np.ndarray) -> np.ndarray:
        """Return (N, M, K) upper confidence scores x . theta + alpha sqrt(x^T A^-1 x)."""
        contexts = self._check_contexts(contexts)
        theta, a = self.model()
        a_inv_x = np.linalg.solve(a, np.swapaxes(contexts, -1, -2))  # (N, M, D, K)
        width = np.sqrt(np.maximum(np.einsum("nmkd,nmdk->nmk", contexts, a_inv_x), 0.0))
        return np.einsum("nmkd,nmd->nmk", contexts, theta) + self.config.alpha * width

    def act(self, contexts: np.ndarray) -> np.ndarray:
        """Return (N, M) chosen candidates and remember their features for the delayed update."""
        contexts = self._check_contexts(contexts)
        actions = np.argmax(self.scores(contexts), axis=-1)
        chosen = np.take_along_axis(contexts, actions[..., None, None], axis=2)[:, :, 0]
        self._pending.append(chosen)
        return actions

    def update(self, rewards: np.ndarray) -> None:
        """Add the rewards arriving now to the model, with the features they were chosen under.

        Args:
          rewards: (N, M) the rewards of the actions chosen ``delay`` calls of ``act``
            ago; all NaN while none can have arrived yet.
        """
        rewards = np.asarray(rewards, np.float64)
        shape = (self.num_envs, self.num_accounts)
        if rewards.shape != shape:
            raise ValueError(f"rewards of shape {rewards.shape} are not allowed: give {shape}")
        missing = np.isnan(rewards)
        if len(self._pending) <= self.delay:
            if not missing.all():
                raise ValueError(f"a reward arrived after {len(self._pending)} actions, before "
                                 f"the learner's delay={self.delay}: do the delays match?")
            return
        if missing.any() or not np.isfinite(rewards).all():
            raise ValueError(f"rewards must be finite once {self.delay + 1} actions have been "
                             f"taken (learner delay={self.delay}): do the delays match?")
        self._add(self._pending.popleft(), rewards)

    def _add(self, x: np.ndarray, r: np.ndarray) -> None:
        """Add one observation per account: x (N, M, D) with reward r (N, M)."""
        w = self.config.window
        if w is not None:
            slot = self._added % w
            if self._added >= w:  # the oldest observation leaves the window
                old_x, old_r = self._ring_x[slot], self._ring_r[slot]
                self.xx -= old_x[..., :, None] * old_x[..., None, :]
                self.xr -= old_x * old_r[..., None]
            self._ring_x[slot], self._ring_r[slot] = x, r
        self.xx += x[..., :, None] * x[..., None, :]
        self.xr += x * r[..., None]
        self.num_observed += 1
        self._added += 1

    def _check_contexts(self, contexts) -> np.ndarray:
        contexts = np.asarray(contexts, np.float64)
        n, m, d = self.num_envs, self.num_accounts, self.num_features
        if contexts.ndim != 4 or contexts.shape[:2] != (n, m) or contexts.shape[3] != d:
            raise ValueError(f"contexts of shape {contexts.shape} are not allowed: give "
                             f"({n}, {m}, K, {d})")
        return contexts


def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return A^-1 b for stacks of matrices (..., D, D) and vectors (..., D)."""
    return np.linalg.solve(a, b[..., None])[..., 0]


@dataclasses.dataclass
class RunResult:
    """A run's curves, one row per step.

    Attributes:
      cumulative_regret: (T, N) regret summed over accounts and steps so far.
      prediction_mse: (T, N) mean over accounts and candidates of the squared error of the
        learner's predicted expected reward, measured before the step's update.
      rewards: (T, N) expected reward (no noise) of the chosen candidates, summed over
        the accounts, step by step.
      oracle_rewards: (T, N) the oracle's: max over candidates, summed over the accounts.
    """

    cumulative_regret: np.ndarray
    prediction_mse: np.ndarray
    rewards: np.ndarray | None = None
    oracle_rewards: np.ndarray | None = None


def run_learner(env, learner: LinUCB, steps: int, seed=None, progress=None) -> RunResult:
    """Run ``learner`` on a ``FollowerBandit`` for ``steps`` steps from ``env.reset(seed)``.

    The learner is reset too; its delay must be the simulator's. ``progress``, if given, is
    called with the steps played, about every 1 % of them and at the end.
    """
    steps = check_count("steps", steps)
    if learner.delay != env.delay:
        raise ValueError(f"learner delay={learner.delay} is not the simulator's "
                         f"delay={env.delay}: they must be equal")
    learner.reset()
    contexts = env.reset(seed)
    regret = np.empty((steps, env.num_envs))
    mse = np.empty((steps, env.num_envs))
    chosen = np.empty((steps, env.num_envs))
    best = np.empty((steps, env.num_envs))
    stride = max(1, steps // 100)
    for t in range(steps):
        expected = env.expected_rewards()
        error = learner.predict(contexts) - expected
        mse[t] = np.mean(error ** 2, axis=(1, 2))
        actions = learner.act(contexts)
        chosen[t] = np.take_along_axis(expected, actions[..., None], axis=-1)[..., 0].sum(axis=1)
        best[t] = expected.max(axis=-1).sum(axis=1)
        rewards, contexts = env.step(actions)
        learner.update(rewards)
        regret[t] = env.cumulative_regret
        if progress is not None and ((t + 1) % stride == 0 or t + 1 == steps):
            progress(t + 1)
    return RunResult(regret, mse, chosen, best)


def interval95(values: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Return the mean and the half-width 1.96 s / sqrt(n) of a normal 95 % interval."""
    values = np.asarray(values, np.float64)
    n = values.shape[axis]
    half = 1.96 * values.std(axis=axis, ddof=1) / math.sqrt(n) if n > 1 else np.inf
    return values.mean(axis=axis), half
