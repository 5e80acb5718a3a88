"""Policy distillation for continuous control: the losses, the fit, the states.

Loss, deterministic teachers. A deterministic teacher (D4PG and its family)
gives one action per state, a point in the agent's unit action space
[-1, 1]^A, not a distribution over classes. The loss is the mean squared
action error there::

    loss(a_s, a_t) = mean_a (a_s[a] - a_t[a])**2

(Rusu et al., "Policy distillation", ICLR 2016, regress continuous outputs the
same way). Temperature has no meaning here: it softens a softmax over
classes to expose the teacher's ranking of the wrong ones (TAKD's Eq. 3,
``rwrl.distill.kd``), and a point action has no such ranking to expose. The
unit space, not the env's bounds, keeps every action dimension on the same
scale.

Loss, stochastic teachers. A Gaussian teacher (DMPO, R-MPO: a diagonal
N(mean, stddev**2) per state) is matched by the KL from the teacher's
distribution to the student's, summed over the A action dimensions::

    loss = sum_a KL(N(m_t[a], s_t[a]**2) || N(m_s[a], s_s[a]**2))

the direction of Rusu et al.'s KL(teacher || student) (their Eq. 3, there over
a softmax of Q values). A temperature would have to soften the teacher's
distribution; a Gaussian's own stddev is that softness already (scaling s_t is
the only analogue, and the teacher's stddev is what it learned), so none is
applied. The student is a Gaussian policy of the same agent. Acting (rollouts,
evaluation) uses the mean clipped to [-1, 1], as the agents act without
exploration. Both losses are :class:`Head` objects: what a network's output
means, how it is acted on, labelled and matched.

States. ``rollouts`` (the default): the states of the teacher's own
episodes, labelled by the teacher. It is the cheapest source (one batch of
episodes, no dataset, no student in the loop) and the states are those the
teacher's return is made of. ``dagger`` (Ross et al., AISTATS 2011): after
the first fit on the teacher's states, each further round runs the student,
labels the states it visits with the teacher, adds them to the set and fits
again, so the student learns to recover from its own mistakes. ``dataset``:
every state at which a recorded Minari dataset's behaviour policy acted
(each episode's observations but its last), labelled by the teacher: no
rollout of the teacher at all, for a teacher that may only be queried on
logged states (a controller of a real plant); the student learns the teacher
where the behaviour policy went, which may not be where the teacher goes.

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
#: obs (B, D) float32 -> the policy network's output (actions, or (mean, stddev)).
NetworkFn = Callable[[np.ndarray], Any]
STATE_SOURCES = ("rollouts", "dagger", "dataset")


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


def gaussian_kl_loss(mean_s: Any, stddev_s: Any, mean_t: Any, stddev_t: Any) -> Any:
    """Return KL(teacher || student) of one state's diagonal Gaussians, summed over the A dimensions.

    Args:
      mean_s, stddev_s: (A,) the student's distribution.
      mean_t, stddev_t: (A,) the teacher's; constants (no gradient).
    """
    import jax
    import jax.numpy as jnp

    from rwrl.agents.dmpo import gaussian_kl
    if not mean_s.shape == stddev_s.shape == mean_t.shape == stddev_t.shape or mean_s.ndim != 1:
        raise ValueError(f"means and stddevs of shapes {mean_s.shape}, {stddev_s.shape}, {mean_t.shape}, "
                         f"{stddev_t.shape}: give one state's (A,) each")
    mean_t, stddev_t = jax.lax.stop_gradient(mean_t), jax.lax.stop_gradient(stddev_t)
    return jnp.sum(gaussian_kl(mean_t, stddev_t, mean_s, stddev_s))


@dataclasses.dataclass(frozen=True)
class Head:
    """What a policy network's output is: how it acts, how it labels, how a student matches it.

    Attributes:
      name: "deterministic" (actions (B, A)) or "gaussian" ((mean, stddev), (B, A) each).
      act: output -> (B, A) actions in [-1, 1].
      label: output -> (B, L) the teacher's labels (L = A or 2A).
      loss: (the student's output, labels (B, L)) -> the batch's mean loss.
    """

    name: str
    act: Callable[[Any], Any]
    label: Callable[[Any], Any]
    loss: Callable[[Any, Any], Any]


def _gaussian_loss(output: Any, labels: Any) -> Any:
    import jax
    mean, stddev = output
    a = mean.shape[-1]
    return jax.vmap(gaussian_kl_loss)(mean, stddev, labels[:, :a], labels[:, a:]).mean()


def _gaussian_label(output: Any) -> np.ndarray:
    return np.concatenate([np.asarray(output[0]), np.asarray(output[1])], axis=-1)


DETERMINISTIC = Head("deterministic", act=lambda out: out, label=lambda out: np.asarray(out),
                     loss=batch_action_error)
GAUSSIAN = Head("gaussian", act=lambda out: np.clip(np.asarray(out[0]), -1.0, 1.0),
                label=_gaussian_label, loss=_gaussian_loss)


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
        settings: FitSettings = FitSettings(), head: Head = DETERMINISTIC) -> Any:
    """Return ``params`` after fitting ``apply(params, states)`` to ``targets`` by Adam.

    Args:
      apply: the student network's apply, (params, (B, D)) -> its output (``head``'s kind).
      params: its initial params.
      states: (N, D) float32.
      targets: (N, L) the teacher's labels (``head.label``: actions in [-1, 1], or means
        and stddevs side by side).
      head: the loss, :data:`DETERMINISTIC` or :data:`GAUSSIAN`.
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
            lambda q: head.loss(apply(q, states_j[idx]), targets_j[idx]))(p)
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
      source: "rollouts" (the teacher's episodes), "dagger" (then the student's too) or
        "dataset" (the states of ``dataset``).
      episodes: episodes per collection (the teacher's, then each DAgger round's).
      rounds: DAgger rounds after the first fit (used by "dagger" only).
      seed: the episodes' seed.
      dataset: for "dataset": a Minari dataset id or directory (``rwrl dataset create``'s).
    """

    source: str = "rollouts"
    episodes: int = 4
    rounds: int = 3
    seed: int = 0
    dataset: str | None = None

    def __post_init__(self) -> None:
        if self.source not in STATE_SOURCES:
            raise ValueError(f"states = {self.source!r} is not a state source: give one of {list(STATE_SOURCES)}")
        if self.episodes < 1 or self.rounds < 0:
            raise ValueError(f"episodes = {self.episodes!r} must be >= 1 and rounds = {self.rounds!r} >= 0")
        if (self.source == "dataset") != (self.dataset is not None):
            raise ValueError(f"dataset = {self.dataset!r}: give a dataset exactly when states = 'dataset'")


@dataclasses.dataclass(frozen=True)
class Env:
    """The task the states are drawn from: its id, make kwargs, action bounds, observation size."""

    env_id: str
    env_kwargs: dict[str, Any]
    low: np.ndarray
    high: np.ndarray
    obs_size: int

    def states(self, policy: UnitPolicy, seed: int, purpose: str, start: int, count: int) -> np.ndarray:
        seeds = derived_seeds(seed, purpose, start, count)
        return rollout_states(self.env_id, self.env_kwargs, policy, self.low, self.high, seeds)[0]


def dataset_states(dataset: str, obs_size: int) -> np.ndarray:
    """Return (N, D) every state at which ``dataset``'s behaviour policy acted (each episode's
    observations but its last), episodes in order.

    Raises:
      ValueError: the dataset's observations are not ``obs_size`` long, or it holds no step.
    """
    from rwrl.agents.offline_replay import open_dataset

    data = open_dataset(dataset)
    states = [np.asarray(e.observations, np.float32).reshape(len(e.observations), -1)[:-1]
              for e in data.iterate_episodes()]
    states = np.concatenate(states) if states else np.zeros((0, obs_size), np.float32)
    if states.shape[1] != obs_size:
        raise ValueError(f"dataset {dataset}: its observations have {states.shape[1]} values, the "
                         f"teacher's task {obs_size}: give a dataset of the teacher's task")
    if len(states) == 0:
        raise ValueError(f"dataset {dataset}: holds no step")
    return states


def distil(teacher: NetworkFn, apply: Callable, params: Any, env: Env,
           states: StateSettings = StateSettings(), fitting: FitSettings = FitSettings(),
           head: Head = DETERMINISTIC) -> tuple[Any, np.ndarray]:
    """Fit a student (``apply``, initial ``params``) to ``teacher`` on states of ``env``.

    Args:
      teacher: obs (B, D) -> the teacher network's output (``head``'s kind).
      head: how teacher and student outputs act, label and are matched.

    Returns:
      (the student's params, (N, D) the states it was fitted on, the last round's set).
    """
    import jax

    s = states
    act = lambda obs: head.act(teacher(obs))  # noqa: E731
    if s.source == "dataset":
        pool = dataset_states(s.dataset, env.obs_size)
    else:
        pool = env.states(act, s.seed, "distill-teacher", 0, s.episodes)
    labels = head.label(teacher(pool))
    params = fit(apply, params, pool, labels, fitting, head)
    if s.source == "dagger":
        student = jax.jit(apply)
        for r in range(1, s.rounds + 1):
            visited = env.states(lambda o, p=params: np.asarray(head.act(student(p, o))), s.seed,
                                 "distill-dagger", r * s.episodes, s.episodes)
            pool = np.concatenate([pool, visited])
            labels = np.concatenate([labels, head.label(teacher(visited))])
            params = fit(apply, params, pool, labels, dataclasses.replace(fitting, seed=fitting.seed + r), head)
    return params, pool


__all__ = ["DETERMINISTIC", "GAUSSIAN", "Env", "FitSettings", "Head", "NetworkFn", "STATE_SOURCES",
           "StateSettings", "UnitPolicy", "action_error", "batch_action_error", "dataset_states", "distil",
           "fit", "gaussian_kl_loss", "rollout_states"]
