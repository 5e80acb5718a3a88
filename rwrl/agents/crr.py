"""CRR: Critic Regularized Regression.

Wang et al. (2020), https://arxiv.org/abs/2006.15134, Algorithm 1, as the RL
Unplugged baseline for these datasets (Gulcehre et al. 2020) and acme's JAX
learner. Per learner step, on a batch of n-step transitions:

1. Critic (Algorithm 1, the policy-evaluation step): a distributional (C51)
   critic, as D4PG's and as the RL Unplugged baseline used (the CRR paper,
   Section 4, reports the distributional critic at least as good). The target
   is the target critic's distribution at s_t under the target policy: m
   actions a_j ~ pi_target(s_t) are sampled and their categorical
   distributions averaged (the distribution of Z(s_t, a') with a' ~ pi is that
   mixture); it is shifted by the n-step reward, scaled by the discount (0
   after termination) and projected (``distributional.categorical_td_loss``).
2. Policy (Eq. 3 and 4): maximise ``f(A(s, a)) * log pi(a | s)`` over the
   dataset's (s, a), with the advantage estimated from m samples,
   ``A(s, a) = Q(s, a) - (1/m) sum_j Q(s, a_j)``, a_j ~ pi(s) (CRR's "mean"
   estimate; Q is the online critic's mean), and the weight ``f`` either
   ``exp``: ``min(exp(A / beta), ratio_upper_bound)`` (Eq. 4) or ``binary``:
   ``1[A > 0]`` (Eq. 3). The weight carries no gradient.
3. Adam steps for both, then the targets are copied from the online networks
   every ``target_update_period`` steps (acme's periodic update).

Choices (the paper leaves them open or gives several):

* Default weighting ``exp`` with beta = 1 and the clip at 20 (acme's CRR
  defaults, the paper's CRR-exp); ``binary`` is the option.
* m = 4 sampled actions, for the advantage and for the target mixture (acme
  samples 4 for the advantage and one for the target).
* The policy is a diagonal Gaussian with a tanh-bounded mean
  (``networks.GaussianPolicy``), trained by its log-likelihood of the dataset
  action; evaluation acts with its mean (``explore=False``); exploring samples
  it (clipped to [-1, 1]).
* Network sizes, learning rates, atoms and their range as D4PG here.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from rwrl.agents import distributional
from rwrl.agents.dmpo import gaussian_log_prob
from rwrl.agents.networks import DistributionalCritic, GaussianPolicy, gaussian_action
from rwrl.agents.types import Transition, validate_offline_config

WEIGHTINGS = ("exp", "binary")


@dataclasses.dataclass(frozen=True)
class CRRConfig:
    """CRR hyperparameters (see the module docstring for the choices)."""

    #: hidden layer sizes of the policy network.
    policy_hidden_sizes: tuple[int, ...] = (256, 256, 256)
    #: hidden layer sizes of the critic network.
    critic_hidden_sizes: tuple[int, ...] = (256, 256, 256)
    #: K, atoms of the categorical value distribution.
    num_atoms: int = 51
    #: lowest atom (rewards in [0, 1], discount 0.99: returns in [0, 100], plus a margin).
    v_min: float = -5.0
    #: highest atom.
    v_max: float = 105.0
    #: transitions per learner step.
    batch_size: int = 256
    #: n of the n-step transitions.
    n_step: int = 1
    #: per-step discount gamma.
    discount: float = 0.99
    #: Adam learning rate of the policy.
    policy_learning_rate: float = 1e-4
    #: Adam learning rate of the critic.
    critic_learning_rate: float = 1e-4
    #: gradients are clipped to this global norm.
    max_gradient_norm: float = 40.0
    #: learner steps between copies of the online networks into the targets.
    target_update_period: int = 100
    #: m, actions sampled per state for the advantage and the target mixture.
    num_action_samples: int = 4
    #: "exp" (Eq. 4) or "binary" (Eq. 3) advantage weighting.
    weighting: str = "exp"
    #: temperature beta of the "exp" weighting, in value units.
    beta: float = 1.0
    #: upper clip of the "exp" weight.
    ratio_upper_bound: float = 20.0

    def __post_init__(self):
        validate_offline_config(self)
        for name in ("num_atoms", "target_update_period", "num_action_samples"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (2 if name == "num_atoms" else 1):
                raise ValueError(f"{name}={value!r}: must be an integer >= {2 if name == 'num_atoms' else 1}")
        if not self.v_min < self.v_max:
            raise ValueError(f"v_min={self.v_min!r}, v_max={self.v_max!r}: need v_min < v_max")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting={self.weighting!r}: must be one of {WEIGHTINGS}")
        for name in ("beta", "ratio_upper_bound", "max_gradient_norm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)!r}: must be > 0")


class CRRNetworks(NamedTuple):
    policy: GaussianPolicy
    critic: DistributionalCritic
    q_atoms: jax.Array  # (K,)


class TrainingState(NamedTuple):
    """Everything the learner changes; a pytree, saved whole in checkpoints."""

    policy_params: dict
    critic_params: dict
    target_policy_params: dict
    target_critic_params: dict
    policy_opt_state: optax.OptState
    critic_opt_state: optax.OptState
    steps: jax.Array  # () int32


class CRRLosses(NamedTuple):
    critic_loss: Callable
    policy_loss: Callable


def crr_weight(advantage: jax.Array, weighting: str, beta: float, ratio_upper_bound: float) -> jax.Array:
    """Return the policy-loss weight f(A) of Wang et al. (2020), Eq. 3 ("binary") or 4 ("exp").

    Args:
        advantage: advantages, any shape.
        weighting: "exp": min(exp(A / beta), ratio_upper_bound); "binary": 1[A > 0].

    Returns:
        weights of the shape of ``advantage``, without gradient.
    """
    if weighting == "exp":
        weight = jnp.minimum(jnp.exp(advantage / beta), ratio_upper_bound)
    elif weighting == "binary":
        weight = (advantage > 0).astype(advantage.dtype)
    else:
        raise ValueError(f"weighting={weighting!r}: must be one of {WEIGHTINGS}")
    return jax.lax.stop_gradient(weight)


def sampled_advantage(q_tm1: jax.Array, q_sampled: jax.Array) -> jax.Array:
    """Return A = Q(s, a) - mean_j Q(s, a_j) for one state: ``q_tm1`` (), ``q_sampled`` (m,)."""
    chex.assert_rank([q_tm1, q_sampled], [0, 1])
    return q_tm1 - jnp.mean(q_sampled)


def _sample_actions(policy: GaussianPolicy, params, obs: jax.Array, num: int, key: jax.Array) -> jax.Array:
    """Return (m, B, A) actions drawn from pi(. | obs) for (B, obs_size) observations."""
    mean, stddev = policy.apply(params, obs)
    return mean + stddev * jax.random.normal(key, (num, *mean.shape))


def _repeat(obs: jax.Array, num: int) -> jax.Array:
    """Return (num, B, obs_size) copies of (B, obs_size) observations (the critic concatenates)."""
    return jnp.broadcast_to(obs, (num, *obs.shape))


def make_networks(obs_size: int, action_size: int, config: CRRConfig) -> CRRNetworks:
    """Build the Gaussian policy (tanh mean), the C51 critic and the atoms."""
    del obs_size  # flax infers input sizes at init.
    return CRRNetworks(
        policy=GaussianPolicy(action_size, config.policy_hidden_sizes, tanh_mean=True),
        critic=DistributionalCritic(config.critic_hidden_sizes, config.num_atoms),
        q_atoms=distributional.categorical_support(config.v_min, config.v_max, config.num_atoms),
    )


def make_losses(networks: CRRNetworks, config: CRRConfig) -> CRRLosses:
    """Return the batch losses of steps 1 and 2 above."""
    m = config.num_action_samples

    def critic_loss(critic_params, target_policy_params, target_critic_params, batch: Transition, key):
        """Distributional TD loss towards the mixture over m target-policy actions."""
        a_t = _sample_actions(networks.policy, target_policy_params, batch.obs_t, m, key)  # (m, B, A)
        logits_t = networks.critic.apply(target_critic_params, _repeat(batch.obs_t, m), a_t)  # (m, B, K)
        p_t = jnp.mean(jax.nn.softmax(logits_t, axis=-1), axis=0)
        q_logits_tm1 = networks.critic.apply(critic_params, batch.obs_tm1, batch.action_tm1)
        td_loss = jax.vmap(distributional.categorical_td_loss, in_axes=(0, 0, 0, 0, None))
        return jnp.mean(td_loss(q_logits_tm1, batch.reward_t, batch.discount_t, p_t, networks.q_atoms))

    def policy_loss(policy_params, critic_params, batch: Transition, key):
        """Minus the advantage-weighted log-likelihood of the dataset actions (Eq. 3/4)."""
        def q_mean(obs, action):
            return distributional.categorical_mean(networks.critic.apply(critic_params, obs, action),
                                                   networks.q_atoms)
        sampled = _sample_actions(networks.policy, policy_params, batch.obs_tm1, m, key)  # (m, B, A)
        q_sampled = jax.lax.stop_gradient(q_mean(_repeat(batch.obs_tm1, m), sampled))  # (m, B)
        q_tm1 = q_mean(batch.obs_tm1, batch.action_tm1)  # (B,)
        advantage = jax.vmap(sampled_advantage, in_axes=(0, 1))(q_tm1, q_sampled)
        weight = crr_weight(advantage, config.weighting, config.beta, config.ratio_upper_bound)
        mean, stddev = networks.policy.apply(policy_params, batch.obs_tm1)
        log_prob = gaussian_log_prob(batch.action_tm1, mean, stddev)
        return -jnp.mean(weight * log_prob), (advantage, weight)

    return CRRLosses(critic_loss, policy_loss)


def make_optimisers(config: CRRConfig):
    """Return (policy, critic) optimisers: global-norm clipping, then Adam."""
    def adam(learning_rate: float) -> optax.GradientTransformation:
        return optax.chain(optax.clip_by_global_norm(config.max_gradient_norm), optax.adam(learning_rate))
    return adam(config.policy_learning_rate), adam(config.critic_learning_rate)


def init_state(networks: CRRNetworks, optimisers, obs_size: int, action_size: int, key: jax.Array) -> TrainingState:
    """Initialise online parameters at random, targets as copies, optimisers at zero."""
    policy_key, critic_key = jax.random.split(key)
    obs, action = jnp.zeros((1, obs_size)), jnp.zeros((1, action_size))
    policy_params = networks.policy.init(policy_key, obs)
    critic_params = networks.critic.init(critic_key, obs, action)
    return TrainingState(policy_params, critic_params, policy_params, critic_params,
                         optimisers[0].init(policy_params), optimisers[1].init(critic_params),
                         jnp.zeros((), jnp.int32))


def update_step(losses: CRRLosses, optimisers, config: CRRConfig, state: TrainingState,
                batch: Transition, key: jax.Array) -> tuple[TrainingState, dict[str, jax.Array]]:
    """One learner step of Algorithm 1: critic and policy from the same batch, then the targets."""
    critic_key, policy_key = jax.random.split(key)
    critic_loss, critic_grads = jax.value_and_grad(losses.critic_loss)(
        state.critic_params, state.target_policy_params, state.target_critic_params, batch, critic_key)
    (policy_loss, (advantage, weight)), policy_grads = jax.value_and_grad(losses.policy_loss, has_aux=True)(
        state.policy_params, state.critic_params, batch, policy_key)
    critic_updates, critic_opt_state = optimisers[1].update(critic_grads, state.critic_opt_state)
    critic_params = optax.apply_updates(state.critic_params, critic_updates)
    policy_updates, policy_opt_state = optimisers[0].update(policy_grads, state.policy_opt_state)
    policy_params = optax.apply_updates(state.policy_params, policy_updates)
    steps = state.steps + 1
    period = config.target_update_period
    new_state = TrainingState(
        policy_params, critic_params,
        optax.periodic_update(policy_params, state.target_policy_params, steps, period),
        optax.periodic_update(critic_params, state.target_critic_params, steps, period),
        policy_opt_state, critic_opt_state, steps)
    metrics = {"critic_loss": critic_loss, "policy_loss": policy_loss,
               "advantage_mean": jnp.mean(advantage), "weight_mean": jnp.mean(weight)}
    return new_state, metrics


class CRR:
    """The CRR agent: ``init``, ``act`` and ``update`` around the pure functions above.

    Args:
        obs_size: length of the flat observation.
        action_size: length of the action; actions are in [-1, 1].
        config: hyperparameters.
    """

    def __init__(self, obs_size: int, action_size: int, config: CRRConfig = CRRConfig()):
        self.config = config
        self.obs_size, self.action_size = obs_size, action_size
        self.networks = make_networks(obs_size, action_size, config)
        optimisers = make_optimisers(config)
        losses = make_losses(self.networks, config)
        self._init = jax.jit(functools.partial(init_state, self.networks, optimisers, obs_size, action_size))
        self._update = jax.jit(functools.partial(update_step, losses, optimisers, config))
        self._act = {explore: jax.jit(functools.partial(gaussian_action, self.networks.policy, explore))
                     for explore in (False, True)}

    def init(self, key: jax.Array) -> TrainingState:
        """Return the initial training state for ``key``."""
        return self._init(key)

    def act(self, state: TrainingState, obs: np.ndarray, key: jax.Array, explore: bool) -> np.ndarray:
        """Return (B, action_size) float32 actions in [-1, 1] for (B, obs_size) observations."""
        return np.asarray(self._act[bool(explore)](state.policy_params, jnp.asarray(obs, jnp.float32), key))

    def update(self, state: TrainingState, batch: Transition, key: jax.Array):
        """Return (new state, metrics) after one learner step on ``batch``."""
        return self._update(state, batch, key)
