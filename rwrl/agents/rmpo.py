"""Robust and soft-robust MPO: distributional MPO whose critic bootstraps over a model set.

Mankowitz et al. (2020), "Robust Reinforcement Learning for Continuous
Control with Model Misspecification" (ICLR, https://arxiv.org/abs/1906.07516).
The agent acts in, and learns from transitions of, one (nominal) environment;
an uncertainty set of K models of the same task, differing in one physical
parameter, enters only through the critic's target. Per learner step, on a
batch of 1-step transitions (s, a, r, s') that carry the physics state of s:

1. Step every model k of the set from the stored state with the stored
   action (``rwrl.tasks.model_set.ModelSet``, one engine call for B x K):
   its reward r_k and next observation s'_k.
2. Per model, DMPO's bootstrap distribution at s'_k (the mixture over S
   actions of the target policy, under the target critic), shifted to
   r_k + gamma * Z(s'_k) and projected onto the critic's atoms.
3. R-MPO (``robustness = "worst_case"``): the target is the projected
   distribution of the model whose mean target r_k + gamma * E[Z(s'_k)] is
   lowest: the worst case taken on the expected value, and that model's whole
   distribution is the target (the paper's critic is not distributional: its
   inf is over expected values, so this is the choice that keeps the value
   the same). SR-MPO (``robustness = "soft"``): the target is the mixture
   sum_k w_k of the projected distributions, whose mean is the w-weighted
   average of the model targets; w uniform unless ``weights`` is given (the
   paper's soft-robust objective averages over a distribution on the set;
   uniform is our default, its weights for each experiment were not found).
4. Entropy-regularized variants (RE-MPO and SRE-MPO in the paper):
   with ``entropy_regularization`` tau > 0 each model's bootstrap value is
   E[Z(s'_k)] - tau * KL(q(.|s'_k) || pi_target(.|s'_k)), q the E-step's
   non-parametric policy at s'_k (weights softmax(Q / eta) over the S samples,
   eta the current temperature), the KL estimated on those samples; the
   shift -gamma * tau * KL enters through the reward. tau = 0 (default) is
   the unregularized R-MPO / SR-MPO; the paper's tau was not found.
5. Policy improvement exactly as DMPO (E-step, decoupled M-step, duals) at
   the replay's next states s' with the target critic, now a robust one;
   the optimiser steps, dual projection and target copies are DMPO's
   ``update_step``, which this file calls with its own critic loss.

Other choices:

* 1-step targets (``n_step`` must be 1): a robust n-step target would need
  n-step rollouts of every model under the behaviour's later actions.
* Rewards are each model's own reward of its step (the suite's rewards depend
  on the next state); the paper writes r(s, a), the same under every model.
* A model whose simulation diverges on the step falls back to the stored
  transition's reward and next observation.
* The set, by default cartpole ``pole_length`` in {0.75, 1.0, 1.25} (nominal
  1.0 and +-25 %), is named by ``env`` (``rwrl run`` sets it to the run's
  env), ``parameter`` and ``values``. The model-set observations are the
  task's own: the agent refuses an observation of another size (observation
  challenges that change the size, an observation history), and noise or
  delays on observations would not be applied to s'_k.
* Training in the nominal model: the run's env is left as given (add a
  ``perturb_spec`` for domain randomization on top, or use DMPO with one for
  that baseline).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from rwrl.agents import distributional
from rwrl.agents.base import AgentFunctions
from rwrl.agents.capabilities import Capabilities
from rwrl.agents.dmpo import DMPO, DMPOConfig, positive, update_step
from rwrl.agents.types import Transition
from rwrl.tasks.action_scaling import unit_mapper

ROBUSTNESS = ("worst_case", "soft")


@dataclasses.dataclass(frozen=True)
class RMPOConfig(DMPOConfig):
    """R-MPO hyperparameters: DMPO's, the model set, and how its targets combine."""

    n_step: int = 1  # the model-set target is 1-step (see the module docstring)
    #: the task of the model set, ``<domain>-<task>`` (``rwrl run`` sets the run's env).
    env: str = "cartpole-swingup"
    #: the perturbable parameter that differs between the models.
    parameter: str = "pole_length"
    #: its K values, one per model (checked against the parameter's range).
    values: tuple[float, ...] = (0.75, 1.0, 1.25)
    #: "worst_case" (R-MPO) or "soft" (SR-MPO, weighted average).
    robustness: str = "worst_case"
    #: soft-robust weights of the K models (normalised); None: uniform.
    weights: tuple[float, ...] | None = None
    #: tau of the entropy-regularized variants, >= 0; 0: off.
    entropy_regularization: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "values", tuple(float(v) for v in self.values))
        if self.n_step != 1:
            raise ValueError(f"n_step={self.n_step!r}: R-MPO's model-set target is 1-step; use 1")
        if not self.values:
            raise ValueError("values=(): give the parameter's K >= 1 values")
        if self.robustness not in ROBUSTNESS:
            raise ValueError(f"robustness={self.robustness!r}: allowed {ROBUSTNESS}")
        if self.weights is not None:
            weights = tuple(float(w) for w in self.weights)
            if len(weights) != len(self.values) or min(weights) < 0 or sum(weights) <= 0:
                raise ValueError(f"weights={self.weights!r}: give {len(self.values)} non-negative "
                                 "weights (one per value) with a positive sum, or None (uniform)")
            object.__setattr__(self, "weights", weights)
        if not self.entropy_regularization >= 0:
            raise ValueError(f"entropy_regularization={self.entropy_regularization!r}: must be >= 0")


@dataclasses.dataclass(frozen=True)
class SRMPOConfig(RMPOConfig):
    """SR-MPO: the same agent with the soft-robust (weighted average) target."""

    robustness: str = "soft"


def robust_target(reward_k: jax.Array, discount: jax.Array, p_k: jax.Array, q_atoms: jax.Array,
                  weights: jax.Array | None) -> tuple[jax.Array, jax.Array]:
    """Return one transition's target distribution over the model set, and the model weights used.

    Args:
        reward_k: (K,) each model's reward (entropy shift included).
        discount: () gamma (0 after a termination).
        p_k: (K, A) each model's bootstrap probabilities at its next state.
        q_atoms: (A,) the critic's support.
        weights: (K,) soft-robust weights summing to 1; None: the worst case,
            all weight on the model with the lowest mean target.

    Returns:
        (A,) target probabilities on ``q_atoms``, and (K,) the weights applied.
    """
    def project(reward, probs):
        return distributional.categorical_projection(reward + discount * q_atoms, probs, q_atoms)

    projected = jax.vmap(project)(reward_k, p_k)
    if weights is None:
        means = reward_k + discount * (p_k @ q_atoms)
        weights = jax.nn.one_hot(jnp.argmin(means), reward_k.shape[0], dtype=p_k.dtype)
    return weights @ projected, weights


def entropy_shift(sampled_q: jax.Array, log_temperature: jax.Array, tau: float) -> jax.Array:
    """Return -tau * KL(q || pi_target) at one state from the values (S,) of S target-policy samples.

    q(a_s) = softmax(Q / eta)_s is the E-step's policy on the samples; the KL
    to the target policy (uniform over its own samples) is sum_s q_s log(S q_s).
    """
    q = jax.nn.softmax(sampled_q / positive(log_temperature))
    return -tau * jnp.sum(q * jnp.log(sampled_q.shape[0] * q + 1e-8))


def robust_update_step(networks, losses, optimisers, config: RMPOConfig, weights, state,
                       batch: Transition, obs_k: jax.Array, reward_k: jax.Array, key: jax.Array):
    """One learner step: steps 2 to 5 of the module docstring.

    Args:
        networks, losses, optimisers: DMPO's (``dmpo.make_networks`` ...).
        weights: (K,) soft-robust weights, or None for the worst case.
        obs_k: (B, K, D) each model's next observation; reward_k: (B, K) its reward.
    """
    target_key, update_key = jax.random.split(key)
    B, K, D = obs_k.shape
    _, _, _, logits = losses.sample_targets(state.target_policy_params, state.target_critic_params,
                                            obs_k.reshape(B * K, D), target_key)
    logits = logits.reshape(B, K, *logits.shape[1:])  # (B, K, S, A)
    p_k = jnp.mean(jax.nn.softmax(logits, axis=-1), axis=2)  # (B, K, A)
    if config.entropy_regularization > 0:
        sampled_q = distributional.categorical_mean(logits, networks.q_atoms)  # (B, K, S)
        shift = jax.vmap(jax.vmap(functools.partial(entropy_shift, tau=config.entropy_regularization),
                                  in_axes=(0, None)), in_axes=(0, None))(
            sampled_q, state.dual_params.log_temperature)
        reward_k = reward_k + batch.discount_t[:, None] * shift
    target, used = jax.vmap(robust_target, in_axes=(0, 0, 0, None, None))(
        reward_k, batch.discount_t, p_k, networks.q_atoms, weights)
    target = jax.lax.stop_gradient(target)

    def critic_loss(critic_params, batch, _):
        logits_tm1 = networks.critic.apply(critic_params, batch.obs_tm1, batch.action_tm1)
        return jnp.mean(-jnp.sum(target * jax.nn.log_softmax(logits_tm1), axis=-1))

    state, metrics = update_step(losses._replace(critic_loss=critic_loss), optimisers, config,
                                 state, batch, update_key)
    means = reward_k + batch.discount_t[:, None] * (p_k @ networks.q_atoms)
    metrics["model_target_spread"] = jnp.mean(jnp.max(means, 1) - jnp.min(means, 1))
    metrics["model_weight_max"] = jnp.max(jnp.mean(used, axis=0))  # worst case: the most chosen model's share
    return state, metrics


def split_env(env: str) -> tuple[str, str]:
    """Return (domain, task) of an env name ``<domain>-<task>`` (dashes for underscores in the task)."""
    from rwrl.domains import env_names
    names = env_names()
    if env not in names:
        raise ValueError(f"env={env!r}: unknown task; allowed {sorted(names)}")
    return names[env]


class RMPO(DMPO):
    """R-MPO (``robustness="worst_case"``) or SR-MPO ("soft"): DMPO with a model-set critic target.

    Its transitions must carry the physics state of s (the ``model_set``
    capability: the training loop asks the env for ``info['physics_state']``).

    Args:
        obs_size: length of the flat observation (the model set's task's).
        action_size: length of the action; actions are in [-1, 1].
        config: hyperparameters and the model set.
    """

    capabilities = Capabilities(model_set=True)
    config_class = RMPOConfig

    def __init__(self, obs_size: int, action_size: int, config: RMPOConfig | None = None):
        from rwrl.tasks.model_set import ModelSet
        super().__init__(obs_size, action_size, config)
        config = self.config
        domain, task = split_env(config.env)
        self.model_set = ModelSet(domain, task, config.parameter, config.values, config.batch_size)
        model_task = self.model_set.task
        if (obs_size, action_size) != (model_task.layout.size, len(model_task.action_low)):
            raise ValueError(
                f"observation and action sizes ({obs_size}, {action_size}) differ from the model "
                f"set's task {config.env} ({model_task.layout.size}, {len(model_task.action_low)}): "
                "set agent_config env to the run's task; R-MPO takes the task's own observations")
        model = model_task.physics.model
        self._nq, self._nv = int(model.nq), int(model.nv)
        self._env_actions = unit_mapper(model_task.action_low, model_task.action_high)

    def make_functions(self, obs_size: int, action_size: int, config: RMPOConfig) -> AgentFunctions:
        """DMPO's functions, with the robust update (whose batch comes with the model set's outcomes)."""
        functions = super().make_functions(obs_size, action_size, config)
        weights = None
        if config.robustness == "soft":
            raw = np.ones(len(config.values)) if config.weights is None else np.asarray(config.weights)
            weights = jnp.asarray(raw / raw.sum(), jnp.float32)
        return functions._replace(update=functools.partial(
            robust_update_step, self.networks, self.losses, self.optimisers, config, weights))

    def update(self, state, batch: Transition, key: jax.Array):
        """Return (new state, metrics) after stepping the model set and one learner step."""
        obs_k, reward_k = self._outcomes(batch)
        return self._update(state, batch._replace(state_tm1=None), obs_k, reward_k, key)

    def update_many(self, state, batches: Transition, keys: jax.Array):
        """K learner steps in one compiled call, after the model set has stepped each batch's states."""
        outcomes = [self._outcomes(batches.at(k))
                    for k in range(len(batches.reward_t))]
        obs_k, reward_k = (np.stack(parts) for parts in zip(*outcomes))
        return self._update_many(state, batches._replace(state_tm1=None), obs_k, reward_k, jnp.asarray(keys))

    def _outcomes(self, batch: Transition) -> tuple[np.ndarray, np.ndarray]:
        """Return each model's (B, M, obs_size) next observations and (B, M) rewards, float32."""
        if batch.state_tm1 is None:
            raise ValueError("R-MPO needs transitions with state_tm1 (the physics state); train it "
                             "with `rwrl run`, whose replay stores them for this agent")
        state_tm1 = np.asarray(batch.state_tm1, np.float64)
        nq, nv = self._nq, self._nv
        action = self._env_actions(np.asarray(batch.action_tm1, np.float64))
        out = self.model_set.step(state_tm1[:, :nq], state_tm1[:, nq:nq + nv], action,
                                  state_tm1[:, nq + nv:])
        # A diverged model has no outcome: the stored transition stands in for it.
        obs_k = np.where(out.diverged[..., None], np.asarray(batch.obs_t)[:, None], out.obs)
        reward_k = np.where(out.diverged, np.asarray(batch.reward_t)[:, None], out.reward)
        return obs_k.astype(np.float32), reward_k.astype(np.float32)
