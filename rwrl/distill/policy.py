"""Policy distillation for continuous control: the action loss, the fit, the states.

Loss. A deterministic teacher (D4PG and its family) gives one action per
state, a point in the agent's unit action space [-1, 1]^A, not a distribution
over classes. The loss is the mean squared action error there::

    loss(a_s, a_t) = mean_a (a_s[a] - a_t[a])**2

(Rusu et al., "Policy distillation", ICLR 2016, regress continuous outputs the
same way). Temperature has no meaning here: it softens a softmax over
classes to expose the teacher's ranking of the wrong ones (TAKD's Eq. 3,
``rwrl.distill.kd``), and a point action has no such ranking to expose. The
unit space, not the env's bounds, keeps every action dimension on the same
scale. Stochastic teachers (DMPO's Gaussian) would need a KL between action
distributions; they are refused for now (``runs.load_teacher``).

States. ``rollouts`` (the default): the states of the teacher's own
episodes, labelled by the teacher. It is the cheapest source (one batch of
episodes, no dataset, no student in the loop) and the states are those the
teacher's return is made of. ``dagger`` (Ross et al., AISTATS 2011): after
the first fit on the teacher's states, each further round runs the student,
labels the states it visits with the teacher, adds them to the set and fits
again, so the student learns to recover from its own mistakes. A recorded
dataset as a source is left out: it would fit the student on the behaviour
policy's states, which is what ``rollouts`` gives without a file.

Shapes: B states, D observation size, A action size; actions in [-1, 1].
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from rwrl.datasets.behaviour_policies import make_vector_env
from rwrl.datasets.episodes import derived_seeds, run_episodes
from rwrl.tasks.action_scaling import from_unit

#: obs (B, D) float32 -> actions (B, A) in [-1, 1].
UnitPolicy = Callable[[np.ndarray], np.ndarray]
STATE_SOURCES = ("rollouts", "dagger")


def action_error(a_s: Any, a_t: Any) -> Any:
    """Return the squared action error of one state, averaged over the A action dimensions.

    Args:
      a_s: (A,) the student's action in [-1, 1].
      a_t: (A,) the teacher's action in [-1, 1]; a constant (no gradient).
    """
    import jax
    import jax.numpy as jnp
    if a_s.shape != a_t.shape or a_s.ndim != 1:
        raise ValueError(f"actions of shapes {a_s.shape} and {a_t.shape}: give one state's (A,) actions")
    return jnp.mean(jnp.square(a_s - jax.lax.stop_gradient(a_t)))


def batch_action_error(a_s: Any, a_t: Any) -> Any:
    """Return :func:`action_error` averaged over a leading batch axis ((B, A) each)."""
    import jax
    return jax.vmap(action_error)(a_s, a_t).mean()


@dataclasses.dataclass(frozen=True)
class FitSettings:
    """How a student is fitted to its teacher's labels.

    Attributes:
      epochs: passes over the state set per fit (per DAgger round).
      batch_size: states per Adam step (the whole set when it has fewer).
      learning_rate: Adam's step size.
      seed: the minibatch order's seed.
    """

    epochs: int = 50
    batch_size: int = 256
    learning_rate: float = 1e-3
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} = {getattr(self, name)!r} must be >= 1")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate = {self.learning_rate!r} must be > 0")


def fit(apply: Callable, params: Any, states: np.ndarray, targets: np.ndarray,
        settings: FitSettings = FitSettings()) -> Any:
    """Return ``params`` after fitting ``apply(params, states)`` to ``targets`` by Adam.

    Args:
      apply: the student network's apply, (params, (B, D)) -> (B, A) in [-1, 1].
      params: its initial params.
      states: (N, D) float32.
      targets: (N, A) the teacher's actions in [-1, 1].
    """
    import jax
    import optax

    n = len(states)
    batch = min(settings.batch_size, n)
    steps = n // batch
    optimiser = optax.adam(settings.learning_rate)

    def step(carry, idx):
        p, opt_state = carry
        loss, grads = jax.value_and_grad(
            lambda q: batch_action_error(apply(q, states_j[idx]), targets_j[idx]))(p)
        updates, opt_state = optimiser.update(grads, opt_state)
        return (optax.apply_updates(p, updates), opt_state), loss

    @jax.jit
    def epoch(carry, order):
        carry, _ = jax.lax.scan(step, carry, order.reshape(steps, batch))
        return carry

    states_j, targets_j = jax.numpy.asarray(states, np.float32), jax.numpy.asarray(targets, np.float32)
    rng = np.random.default_rng(settings.seed)
    carry = (params, optimiser.init(params))
    for _ in range(settings.epochs):
        carry = epoch(carry, rng.permutation(n)[:steps * batch])
    return carry[0]


def rollout_states(env_id: str, env_kwargs: dict[str, Any], policy: UnitPolicy,
                   low: np.ndarray, high: np.ndarray, seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Run one episode per seed with ``policy``; return (states (N, D), returns (episodes,)).

    The states are those each action was chosen in, episodes concatenated in order.
    """
    env = make_vector_env(env_id, env_kwargs, len(seeds))
    try:
        episodes = run_episodes(env, lambda obs: from_unit(policy(obs), low, high).astype(np.float32), seeds)
    finally:
        env.close()
    states = [episodes.observations[e, :n] for e, n in enumerate(episodes.lengths)]
    return np.concatenate(states).astype(np.float32), episodes.returns()


@dataclasses.dataclass(frozen=True)
class StateSettings:
    """Where the training states come from.

    Attributes:
      source: "rollouts" (the teacher's episodes) or "dagger" (then the student's too).
      episodes: episodes per collection (the teacher's, then each DAgger round's).
      rounds: DAgger rounds after the first fit (ignored for "rollouts").
      seed: the episodes' seed.
    """

    source: str = "rollouts"
    episodes: int = 4
    rounds: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.source not in STATE_SOURCES:
            raise ValueError(f"states = {self.source!r} is not a state source: give one of {list(STATE_SOURCES)}")
        if self.episodes < 1 or self.rounds < 0:
            raise ValueError(f"episodes = {self.episodes!r} must be >= 1 and rounds = {self.rounds!r} >= 0")


@dataclasses.dataclass(frozen=True)
class Env:
    """The task the states are drawn from: its id, make kwargs and action bounds."""

    env_id: str
    env_kwargs: dict[str, Any]
    low: np.ndarray
    high: np.ndarray

    def states(self, policy: UnitPolicy, seed: int, purpose: str, start: int, count: int) -> np.ndarray:
        seeds = derived_seeds(seed, purpose, start, count)
        return rollout_states(self.env_id, self.env_kwargs, policy, self.low, self.high, seeds)[0]


def distil(teacher: UnitPolicy, apply: Callable, params: Any, env: Env,
           states: StateSettings = StateSettings(), fitting: FitSettings = FitSettings()) -> tuple[Any, np.ndarray]:
    """Fit a student (``apply``, initial ``params``) to ``teacher`` on states of ``env``.

    Returns:
      (the student's params, (N, D) the states it was fitted on, the last round's set).
    """
    import jax

    s = states
    pool = env.states(teacher, s.seed, "distill-teacher", 0, s.episodes)
    labels = teacher(pool)
    params = fit(apply, params, pool, labels, fitting)
    if s.source == "dagger":
        student = jax.jit(apply)
        for r in range(1, s.rounds + 1):
            visited = env.states(lambda o, p=params: np.asarray(student(p, o)), s.seed,
                                 "distill-dagger", r * s.episodes, s.episodes)
            pool = np.concatenate([pool, visited])
            labels = np.concatenate([labels, teacher(visited)])
            params = fit(apply, params, pool, labels, dataclasses.replace(fitting, seed=fitting.seed + r))
    return params, pool


__all__ = ["Env", "FitSettings", "STATE_SOURCES", "StateSettings", "UnitPolicy", "action_error",
           "batch_action_error", "distil", "fit", "rollout_states"]
