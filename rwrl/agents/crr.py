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
import optax

from rwrl.agents import distributional
from rwrl.agents.base import AgentFunctions, JittedAgent, actor_critic_optimisers
from rwrl.agents.capabilities import Capabilities
from rwrl.agents.config import CriticSupportConfig, LearnerConfig, OfflineBatchConfig, require_int, require_positive
# The learner state and its initialisation are D4PG's: the same networks' parameters, targets and optimisers.
from rwrl.agents.d4pg import TrainingState, init_state
from rwrl.agents.dmpo import gaussian_log_prob
from rwrl.agents.networks import DistributionalCritic, GaussianPolicy, gaussian_action
from rwrl.agents.types import Transition

WEIGHTINGS = ("exp", "binary")


@dataclasses.dataclass(frozen=True)
class CRRConfig(LearnerConfig, CriticSupportConfig, OfflineBatchConfig):
    """CRR hyperparameters: the pieces' (``rwrl.agents.config``, as D4PG's) and CRR's (see the module docstring)."""

    #: m, actions sampled per state for the advantage and the target mixture.
    num_action_samples: int = 4
    #: "exp" (Eq. 4) or "binary" (Eq. 3) advantage weighting.
    weighting: str = "exp"
    #: temperature beta of the "exp" weighting, in value units.
    beta: float = 1.0
    #: upper clip of the "exp" weight.
    ratio_upper_bound: float = 20.0

    def __post_init__(self):
        super().__post_init__()
        require_int(self, "num_action_samples")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting={self.weighting!r}: must be one of {WEIGHTINGS}")
        require_positive(self, "policy_learning_rate", "critic_learning_rate", "beta", "ratio_upper_bound")


class CRRNetworks(NamedTuple):
    policy: GaussianPolicy
    critic: DistributionalCritic
    q_atoms: jax.Array  # (K,)


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


class CRR(JittedAgent):
    """The CRR agent: the pure functions above, jitted once by ``base.JittedAgent``."""

    capabilities = Capabilities(offline=True)
    config_class = CRRConfig

    def make_functions(self, obs_size: int, action_size: int, config: CRRConfig) -> AgentFunctions:
        """Build the networks, optimisers and losses."""
        self.networks = make_networks(obs_size, action_size, config)
        optimisers = actor_critic_optimisers(config)
        losses = make_losses(self.networks, config)
        return AgentFunctions(
            init=functools.partial(init_state, self.networks, optimisers, obs_size, action_size),
            update=functools.partial(update_step, losses, optimisers, config),
            act=functools.partial(gaussian_action, self.networks.policy))
