"""The Q function of an ``rwrl run`` checkpoint's critic, for VIPER's Q-gap weights.

The agents named in :data:`CRITICS` keep a C51 critic (``rwrl.agents.networks.
DistributionalCritic``: logits over K atoms) in ``agent.networks.critic``, its
atoms z = linspace(v_min, v_max, num_atoms) of the agent's config in
``agent.networks.q_atoms`` and its parameters in ``state.critic_params``. Its Q is
the mean of the categorical distribution (Bellemare et al. 2017; D4PG's policy
objective):

    Q(s, a) = sum_k softmax(logits(s, a))_k z_k.

The critic was trained on actions in the agent's unit box [-1, 1] (the policy's
tanh output, before ``rwrl.tasks.action_scaling.from_unit`` maps it onto the
env's bounds), so :class:`RunCritic` takes actions in the env's units, as the
explain teacher gives them, and maps them back with ``to_unit``, the inverse of
``from_unit`` (the identity on the suite's [-1, 1] boxes).

Choices:

* The online critic (``critic_params``), not the target one: the online critic is
  what the policy was last improved against.
* RC-D4PG and MetaL keep one critic only, of the return of the shaped reward
  r - lambda c (``rwrl.agents.rcd4pg``: "one distributional critic of the return
  of r - lambda c, no separate cost critic"); no critic of the reward alone exists
  in their state, so their Q-gap weights use the shaped critic: the objective the
  teacher's policy maximises, the cost of a constraint violation included.
* DMPO (and R-MPO, SR-MPO, whose critics are DMPO's with a model-set target) has
  a C51 critic of its Gaussian policy's return. The explain teacher is the
  policy's clipped mean, so V(s) is taken as Q(s, mean action), VIPER's
  Q(s, pi(s)) for the policy the surrogates imitate. CRR's critic is the same
  kind.
* BC has no critic; IQL's and TD3's are scalar twin critics (no atoms), and
  D4PG-pixels' critic takes images, not states: left out
  (:data:`WITHOUT_CRITIC`): asking for Q-gap weights on their runs is refused.
* Q is computed in zero-padded batches of ``batch`` states, so the jitted critic
  compiles once instead of once per dataset size.

Shapes: N states, D observation size, A action size.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import numpy as np

from rwrl.datasets.behaviour_policies import PolicyError, restore_agent
from rwrl.tasks.action_scaling import to_unit

#: agents whose state holds a C51 critic -> the return its Q estimates.
CRITICS = {
    "d4pg": "the return of the reward",
    "rcd4pg": "the return of the shaped reward r - lambda c (its only critic)",
    "metal": "the return of the shaped reward r - lambda c (its only critic)",
    "dmpo": "the return of the reward under the Gaussian policy",
    "rmpo": "the worst-case return over the model set",
    "srmpo": "the soft-robust (weighted average) return over the model set",
    "crr": "the return of the reward under the Gaussian policy",
    "d4pg-ewc": "the return of the reward in the regime it learns, held near past regimes' critics",
    "d4pg-kfac": "the return of the reward in the regime it learns, held near past regimes' critics",
    "d4pg-hcl": "the return of the reward in the regime it learns, held near past regimes' critics",
}
#: the other registered agents -> why their state gives no Q for the weights.
WITHOUT_CRITIC = {
    "bc": "it learns by behaviour cloning and has no critic",
    "iql": "its critic is a scalar twin, not a C51 critic",
    "td3": "its critic is a scalar twin, not a C51 critic",
    "d4pg-pixels": "its critic takes images, not the states the surrogates are fitted on",
}
#: states per jitted critic call (zero-padded), as ``explain_run.RELABEL_BATCH``.
CRITIC_BATCH = 1024


class CriticError(ValueError):
    """A run's critic cannot give Q values (no critic, unreadable run); the message says why."""


def has_critic(agent: str) -> bool:
    """Return whether agent ``agent``'s state holds a critic usable for Q-gap weights."""
    return agent in CRITICS


def require_critic(agent: str) -> str:
    """Return what agent ``agent``'s critic estimates; a one-line CriticError when it has none."""
    if agent in CRITICS:
        return CRITICS[agent]
    why = WITHOUT_CRITIC.get(agent, "it is not an agent with a known critic")
    raise CriticError(f"weights = 'q-gap': the run's agent {agent!r} gives no Q function ({why}); "
                      f"use weights uniform, or a run of {', '.join(sorted(CRITICS))}")


def read_run_config(checkpoint: Path) -> dict[str, Any]:
    """Return the ``config.json`` of checkpoint ``checkpoint``'s run (RUN/checkpoints/ckpt-<steps>)."""
    from rwrl.storage.checkpoint import CheckpointError, read_run_config as read
    try:
        return read(checkpoint)
    except CheckpointError as err:
        raise CriticError(str(err)) from err


def critic_q(critic: Any, params: Any, atoms: Any, batch: int = CRITIC_BATCH) -> Callable:
    """Return Q(obs (N, D), unit actions (N, A)) -> (N,) float64 of a C51 ``critic`` module."""
    import jax
    import jax.numpy as jnp

    @jax.jit
    def mean(obs: jax.Array, actions: jax.Array) -> jax.Array:
        logits = critic.apply(params, obs, actions)
        return jnp.sum(jax.nn.softmax(logits, axis=-1) * atoms, axis=-1)

    def q(obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        obs, actions = np.asarray(obs, np.float32), np.asarray(actions, np.float32)
        out = np.zeros(len(obs), np.float64)
        for start in range(0, len(obs), batch):
            n = len(obs[start:start + batch])
            o = np.zeros((batch, obs.shape[1]), np.float32)
            a = np.zeros((batch, actions.shape[1]), np.float32)
            o[:n], a[:n] = obs[start:start + n], actions[start:start + n]
            out[start:start + n] = np.asarray(mean(o, a))[:n]
        return out
    return q


@dataclasses.dataclass(frozen=True)
class RunCritic:
    """A run checkpoint's critic; call it as ``q(obs (N, D), actions (N, A) in env units) -> (N,)``.

    Attributes:
      agent: the run's agent name (a key of :data:`CRITICS`).
      estimates: what its Q estimates (:data:`CRITICS`).
      low, high: the env's action bounds (A,), which the actions given are in.
      unit_q: Q of actions in the agent's unit box [-1, 1], the critic's own space.
    """

    agent: str
    estimates: str
    low: np.ndarray
    high: np.ndarray
    unit_q: Callable = dataclasses.field(repr=False, compare=False)

    def __call__(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return self.unit_q(obs, to_unit(actions, self.low, self.high))


def load_critic(checkpoint: Path, obs_size: int, low: np.ndarray, high: np.ndarray) -> RunCritic:
    """Load the critic of checkpoint directory ``checkpoint`` of an ``rwrl run``.

    The agent is rebuilt from the run's ``config.json`` as
    ``rwrl.datasets.behaviour_policies.load_policy`` rebuilds it (``make_agent`` of
    the run's agent with the resolved agent config) and its state read from the
    checkpoint's ``state`` group.

    Args:
      checkpoint: ``RUN/checkpoints/ckpt-<steps>``.
      obs_size: D, the run env's observation length.
      low, high: the run env's action bounds (A,).

    Raises:
      CriticError: one line, when the run's agent has no usable critic or the
        checkpoint does not load as its agent.
    """
    config = read_run_config(checkpoint)
    name = config["run"]["agent"]
    estimates = require_critic(name)
    low, high = np.asarray(low, np.float32), np.asarray(high, np.float32)
    try:
        agent, state, _ = restore_agent(checkpoint, name, config.get("agent", {}), obs_size, int(low.shape[0]))
    except PolicyError as err:
        raise CriticError(str(err)) from err
    q = critic_q(agent.networks.critic, state.critic_params, agent.networks.q_atoms)
    return RunCritic(name, estimates, low, high, q)


__all__ = ["CRITICS", "CRITIC_BATCH", "CriticError", "RunCritic", "WITHOUT_CRITIC", "critic_q",
           "has_critic", "load_critic", "read_run_config", "require_critic"]
