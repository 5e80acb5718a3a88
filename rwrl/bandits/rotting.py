"""Rotting bandits: arms whose expected reward decays, batched over N instances.

Levine, Crammer and Mannor, "Rotting Bandits", NeurIPS 2017 (arXiv 1702.07274v4),
Sec. 2 and 5. When arm i is pulled for the n-th time it pays µ_i(n) plus Gaussian
noise of standard deviation sigma (the paper's sigma^2-sub-Gaussian rewards; its
simulations use variance sigma^2 = 0.2). Shapes: N instances, K arms (``common``).

Two clocks, one class (``rested``):

* rested (the paper's model): µ_i depends on arm i's own pull count n. The oracle is
  the paper's pi^max (Eq. 3, Lemma 2.1): pull argmax_i µ_i(N_i(t) + 1). Under
  Assumption 2.1 (non-increasing means) its expected rewards are the sorted merge of
  the arms' mean sequences whatever the tie-breaking, so ties go to the lowest index.
* restless (NOT in the paper, which names restless bandits only in related work): µ_i
  depends on the round t = 1, 2, ... whatever is pulled; the oracle pulls the best arm
  of each round, argmax_i µ_i(t).

Mean models (one object, three kinds), each vectorised as ``mean(n, arms, params)``:

* ``TabulatedMeans``: non-parametric, one non-increasing array per arm (the last value
  holds for every later n).
* ``FunctionMeans``: non-parametric, one vectorised function n -> µ per arm.
* ``ParametricMeans``: µ_i(n) = µ^c_i + µ(n; θ_i) (Sec. 4), θ_i drawn per instance
  with replacement from Θ, µ^c_i uniform on [0, constant_high] (AV: constant_high = 0).
  The paper says only "sampled randomly from [0, 0.5]^K" for µ^c: uniform is our choice.

The Sec. 5 decay µ(j; θ) = (int(j / 100) + 1)^(-θ) is taken literally with j the
1-based pull number, so the first plateau is 99 pulls (j = 1..99) and later ones 100;
the text's "plateaus of length 100" is one pull off that formula.

Noise: instance i draws its standard normals from ``env_rng(seed_i, "noise")``, one per
round whatever arm is pulled, so two policies run on one seed see the same noise
(common random numbers); arm parameters come from ``env_rng(seed_i, "arms")``.

Example:
  >>> env = make_env("rested-step", num_instances=2, sigma=0.0)
  >>> env.reset(seed=0)
  >>> env.pull(np.array([1, 0])).tolist(), env.means().tolist()
  ([1.0, 0.5], [[0.5, 1.0], [0.5, 1.0]])
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Sequence

import numpy as np

from rwrl.bandits.common import (BlockRandom, check_count, check_finite, instance_seeds,
                                 make_from)
from rwrl.core.seeding import env_rng

#: variance of the Gaussian reward noise in every simulation of Sec. 5 (sigma^2 = 0.2).
PAPER_NOISE_VARIANCE = 0.2
#: its standard deviation, the sigma of the sub-Gaussian model and of SWA's window.
PAPER_SIGMA = math.sqrt(PAPER_NOISE_VARIANCE)
#: horizon T of every simulation of Sec. 5 (rounds).
PAPER_HORIZON = 30_000
#: non-parametric instance: arm 2 pays 1 for its first 7,500 pulls, then 0.4; arm 1 pays 0.5.
STEP_SWITCH, STEP_HIGH, STEP_LOW, STEP_CONSTANT = 7_500, 1.0, 0.4, 0.5
#: the parametric instances' model set Θ = {0.1, 0.15, ..., 0.4} (7 decay exponents).
PAPER_THETAS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4)
#: plateau length of the Sec. 5 decay (pulls), and arms of the parametric instances.
PAPER_PLATEAU, PAPER_PARAMETRIC_ARMS = 100, 10
#: ANV constants µ^c_i drawn from [0, 0.5] (uniform: our choice).
PAPER_CONSTANT_HIGH = 0.5


# -- decays µ(n; θ): vectorised over n (int array) and θ (broadcastable) -----------------
class PlateauDecay:
    """µ(j; θ) = (floor(j / plateau) + 1)^(-θ), Sec. 5 (plateau = 100)."""

    def __init__(self, plateau: int = PAPER_PLATEAU):
        self.plateau = check_count("plateau", plateau)

    def __call__(self, n: np.ndarray, theta: np.ndarray) -> np.ndarray:
        return (np.asarray(n) // self.plateau + 1.0) ** (-np.asarray(theta))

    def __repr__(self) -> str:
        return f"PlateauDecay(plateau={self.plateau})"


def power_decay(n: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """µ(n; θ) = n^(-θ), Example 4.1 (n >= 1)."""
    return np.asarray(n, np.float64) ** (-np.asarray(theta))


# -- mean models ----------------------------------------------------------------------
class TabulatedMeans:
    """Non-parametric means given as one non-increasing array per arm.

    Args:
      tables: K sequences; table k's j-th entry is µ_k(j + 1), its last entry µ_k(n)
        for every later n. Ragged lengths are padded with each arm's last value.
    """

    num_params = 0

    def __init__(self, tables: Sequence[Sequence[float]]):
        rows = [np.asarray(t, np.float64).reshape(-1) for t in tables]
        if not rows or any(r.size == 0 for r in rows):
            raise ValueError("tables must give at least one value for each of at least one arm")
        for k, row in enumerate(rows):
            if not np.all(np.isfinite(row)):
                raise ValueError(f"table of arm {k} has a non-finite value: allowed finite means")
            rises = np.flatnonzero(np.diff(row) > 0)
            if rises.size:
                raise ValueError(f"table of arm {k} rises at pull {rises[0] + 2} "
                                 f"({row[rises[0]]} -> {row[rises[0] + 1]}): allowed "
                                 "non-increasing means (Assumption 2.1)")
        length = max(r.size for r in rows)
        self.table = np.stack([np.pad(r, (0, length - r.size), mode="edge") for r in rows])
        self.num_arms = len(rows)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        return np.zeros((self.num_arms, 0))

    def mean(self, n: np.ndarray, arms: np.ndarray, params: np.ndarray) -> np.ndarray:
        """Return µ_arms(n) for int arrays n >= 1 and arms of one shape."""
        return self.table[arms, np.minimum(n, self.table.shape[1]) - 1]


class FunctionMeans:
    """Non-parametric means given as one vectorised function n -> µ(n) per arm.

    The functions should be non-increasing (Assumption 2.1): the rested oracle is
    optimal only then, and this class cannot check it.
    """

    num_params = 0

    def __init__(self, functions: Sequence[Callable[[np.ndarray], np.ndarray]]):
        if not functions or not all(callable(f) for f in functions):
            raise ValueError("functions must be a non-empty list of callables n -> means")
        self.functions = list(functions)
        self.num_arms = len(self.functions)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        return np.zeros((self.num_arms, 0))

    def mean(self, n: np.ndarray, arms: np.ndarray, params: np.ndarray) -> np.ndarray:
        out = np.empty(np.shape(n))
        for k, function in enumerate(self.functions):
            mask = arms == k
            out[mask] = function(n[mask])
        return out


class ParametricMeans:
    """Parametric means µ_i(n) = µ^c_i + decay(n, θ_i) (Sec. 4).

    Args:
      decay: µ(n; θ), vectorised (``PlateauDecay()``, ``power_decay``).
      thetas: the model set Θ.
      num_arms: K.
      constant_high: µ^c_i ~ U[0, constant_high] per instance; 0 is the AV case.
      arm_thetas, constants: fix θ_i and µ^c_i (K values each) instead of drawing them.
    """

    num_params = 2  # (θ_i, µ^c_i)

    def __init__(self, decay: Callable, thetas: Sequence[float] = PAPER_THETAS,
                 num_arms: int = PAPER_PARAMETRIC_ARMS, constant_high: float = 0.0,
                 arm_thetas: Sequence[float] | None = None,
                 constants: Sequence[float] | None = None):
        self.decay = decay
        self.thetas = np.array([check_finite("theta", t) for t in thetas])
        if self.thetas.size == 0:
            raise ValueError("thetas is empty: allowed a non-empty model set")
        self.num_arms = check_count("num_arms", num_arms)
        self.constant_high = check_finite("constant_high", constant_high, low=0.0)
        self.arm_thetas = self._fixed("arm_thetas", arm_thetas)
        self.constants = self._fixed("constants", constants)

    def _fixed(self, name: str, values) -> np.ndarray | None:
        if values is None:
            return None
        array = np.array([check_finite(name, v) for v in values])
        if array.shape != (self.num_arms,):
            raise ValueError(f"{name} has {array.size} values: allowed num_arms={self.num_arms}")
        return array

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Return (K, 2) parameters (θ_i, µ^c_i) of one instance."""
        thetas = rng.choice(self.thetas, self.num_arms, replace=True)
        constants = rng.uniform(0.0, self.constant_high, self.num_arms)
        if self.arm_thetas is not None:
            thetas = self.arm_thetas
        if self.constants is not None:
            constants = self.constants
        return np.stack([thetas, constants], axis=1)

    def mean(self, n: np.ndarray, arms: np.ndarray, params: np.ndarray) -> np.ndarray:
        return params[..., 1] + self.decay(n, params[..., 0])


# -- the batched environment ----------------------------------------------------------
class RottingBandit:
    """N independent rotting-bandit instances of K arms, stepped together.

    Interface: ``num_arms``, ``num_instances``; ``reset(seed)``; ``pull(arms) -> rewards``
    with ``last_means`` the expected rewards of those pulls; ``means()``; ``oracle()``.

    Args:
      model: the mean model (``TabulatedMeans``, ``FunctionMeans``, ``ParametricMeans``).
      num_instances: N.
      sigma: standard deviation of the Gaussian reward noise (>= 0; 0 = deterministic).
      rested: True, means follow each arm's pull count (the paper); False, the round.
    """

    def __init__(self, model, num_instances: int = 1, sigma: float = PAPER_SIGMA,
                 rested: bool = True):
        self.model = model
        self.num_arms = model.num_arms
        self.num_instances = check_count("num_instances", num_instances)
        self.sigma = check_finite("sigma", sigma, low=0.0)
        self.rested = bool(rested)
        self._rows = np.arange(self.num_instances)
        self._offsets = self._rows * self.num_arms  # flat index of (i, 0) in an (N, K) array
        self._arm_ids = np.broadcast_to(np.arange(self.num_arms),
                                        (self.num_instances, self.num_arms))
        self.params: np.ndarray | None = None  # (N, K, P), drawn at reset
        self.seeds: list[int] = []

    def reset(self, seed=None) -> None:
        """Draw each instance's arms and restart its clock and noise.

        Args:
          seed: an int (instance i gets ``spawn_seeds(seed, N)[i]``), a list of N seeds,
            or None (fresh entropy).
        """
        self.seeds = instance_seeds(seed, self.num_instances)
        self.params = np.stack([self.model.sample(env_rng(s, "arms")) for s in self.seeds])
        self._cell_params = self.params.reshape(  # (N * K, P) view, for flat indexing
            self.num_instances * self.num_arms, self.model.num_params)
        self._noise = BlockRandom(self.seeds, "noise", (), "normal")
        self.pulls = np.zeros((self.num_instances, self.num_arms), np.int64)
        self.t = 0  # rounds played
        self.last_means = np.zeros(self.num_instances)

    def means(self) -> np.ndarray:
        """Return (N, K) expected rewards of pulling each arm in the coming round."""
        self._check_reset()
        n = self.pulls + 1 if self.rested else np.full_like(self.pulls, self.t + 1)
        return self.model.mean(n, self._arm_ids, self.params)

    def pull(self, arms: np.ndarray) -> np.ndarray:
        """Pull one arm per instance; return the (N,) rewards.

        Args:
          arms: (N,) ints in [0, K).
        """
        self._check_reset()
        arms = np.asarray(arms)
        if (arms.shape != (self.num_instances,) or arms.dtype.kind not in "iu"
                or arms.min() < 0 or arms.max() >= self.num_arms):
            raise ValueError(f"arms must be ({self.num_instances},) ints in [0, "
                             f"{self.num_arms}); got shape {arms.shape}, dtype {arms.dtype}")
        flat = self._offsets + arms  # flat indexing: several times faster than (rows, arms)
        pulls = self.pulls.reshape(-1)
        counts = pulls[flat]
        n = counts + 1 if self.rested else np.full_like(counts, self.t + 1)
        self.last_means = self.model.mean(n, arms, self._cell_params[flat])
        pulls[flat] = counts + 1
        self.t += 1
        return self.last_means + self.sigma * self._noise.next()

    def oracle(self) -> Oracle:
        """Return the paper's optimal policy on these instances, from round 1."""
        self._check_reset()
        return Oracle(self)

    def _check_reset(self) -> None:
        if self.params is None:
            raise RuntimeError("call reset(seed) before using the bandit")


class Oracle:
    """The optimal policy's expected reward, round by round (needs no noise).

    Rested: pi^max of Eq. 3, greedy on each arm's next mean µ_i(N_i + 1) with its own
    pull counts (optimal under Assumption 2.1, Lemma 2.1). Restless: max_i µ_i(t).
    """

    def __init__(self, env: RottingBandit):
        self._env = env
        self._pulls = np.zeros_like(env.pulls)
        self.t = 0
        self._rows = np.arange(env.num_instances)

    def next(self) -> np.ndarray:
        """Return the (N,) expected rewards of the oracle's pulls this round; advance it."""
        env = self._env
        self.t += 1
        if not env.rested:
            n = np.full_like(self._pulls, self.t)
            return env.model.mean(n, env._arm_ids, env.params).max(axis=1)
        means = env.model.mean(self._pulls + 1, env._arm_ids, env.params)
        flat = env._offsets + means.argmax(axis=1)
        self._pulls.reshape(-1)[flat] += 1
        return means.reshape(-1)[flat]


# -- the paper's instances --------------------------------------------------------------
def step_bandit(num_instances: int = 1, sigma: float = PAPER_SIGMA, rested: bool = True,
                switch: int = STEP_SWITCH) -> RottingBandit:
    """Return the Sec. 5 step instance: µ_1 = 0.5; µ_2 = 1 for ``switch`` pulls, then 0.4.

    UCB1 has linear regret here: after the switch its all-history mean of arm 2 stays
    above 0.5 for longer than the horizon (Fig. 1, left). Restless: the switch is at
    round ``switch`` (not from the paper).
    """
    switch = check_count("switch", switch)
    tables = [[STEP_CONSTANT], [STEP_HIGH] * switch + [STEP_LOW]]
    return RottingBandit(TabulatedMeans(tables), num_instances, sigma, rested)


def parametric_bandit(num_instances: int = 1, sigma: float = PAPER_SIGMA, rested: bool = True,
                      constant_high: float = 0.0, num_arms: int = PAPER_PARAMETRIC_ARMS,
                      thetas: Sequence[float] = PAPER_THETAS,
                      plateau: int = PAPER_PLATEAU) -> RottingBandit:
    """Return a Sec. 5 parametric instance: K = 10 plateau decays, θ_i drawn from Θ.

    constant_high = 0 is the AV case, 0.5 the ANV case.
    """
    model = ParametricMeans(PlateauDecay(plateau), thetas, num_arms, constant_high)
    return RottingBandit(model, num_instances, sigma, rested)


#: name -> factory(num_instances, sigma, ...): the paper's instances and their restless twins.
ENVS: dict[str, Callable[..., RottingBandit]] = {
    "rested-step": functools.partial(step_bandit, rested=True),
    "rested-parametric-av": functools.partial(parametric_bandit, rested=True),
    "rested-parametric-anv": functools.partial(parametric_bandit, rested=True,
                                               constant_high=PAPER_CONSTANT_HIGH),
    "restless-step": functools.partial(step_bandit, rested=False),
    "restless-parametric-av": functools.partial(parametric_bandit, rested=False),
    "restless-parametric-anv": functools.partial(parametric_bandit, rested=False,
                                                 constant_high=PAPER_CONSTANT_HIGH),
}


def make_env(name: str, num_instances: int = 1, **params) -> RottingBandit:
    """Return the registered instance ``name`` with N = num_instances (not yet reset).

    Raises a ValueError listing the allowed names, or a factory's allowed parameters.
    """
    return make_from("env", ENVS, name, num_instances=num_instances, **params)
