"""Distributional MPO: Maximum a posteriori Policy Optimisation with a C51 critic.

Abdolmaleki et al. (2018a), "Maximum a Posteriori Policy Optimisation"
(https://arxiv.org/abs/1806.06920) and (2018b), "Relative Entropy Regularized
Policy Iteration" (https://arxiv.org/abs/1812.02256), with the distributional
critic and the control-suite choices of acme's DMPO, the agent the real-world
RL suite reports (Dulac-Arnold et al. 2020). Per learner step, on a batch of
n-step transitions:

1. Sample S actions per bootstrap state s_t from the target policy, and
   evaluate the target critic's distribution Z(s_t, a_s) for each.
2. Critic: the bootstrap distribution is the mixture over the S samples (an
   estimate of E_{a ~ pi_target}[Z(s_t, a)]); the n-step categorical TD loss
   fits Z(s_tm1, a_tm1) to it.
3. E-step (2018a, Section 4.1; 2018b, Section 4): weights q(a_s|s)
   proportional to exp(Q(s, a_s) / eta), the solution of max E_q[Q] s.t.
   KL(q || pi_target) < epsilon; the temperature eta minimises the convex
   dual g(eta) = eta * epsilon + eta * log mean_s exp(Q(s, a_s) / eta).
4. M-step (2018b, Section 4, decoupled KL constraints): maximise the weighted
   log-likelihood of the samples under the online policy, decoupled into a
   mean part (online mean, target stddev) and a stddev part (target mean,
   online stddev), each under its own KL bound to the target policy per
   action dimension, enforced with Lagrange multipliers alpha_mean,
   alpha_stddev by coordinate ascent.
5. Optional action penalisation (MO-MPO, Abdolmaleki et al. 2020,
   https://arxiv.org/abs/2005.07513): a second E-step on the cost
   -||a - clip(a, -1, 1)|| with its own small KL bound keeps the Gaussian's
   mass inside the action range.
6. Adam steps; the dual variables live in log space through a softplus (so
   they stay positive) and are projected to >= -18 after each step; targets
   are copied every ``target_update_period`` learner steps.

The policy is improved at the bootstrap states s_t, as in acme, so that one
target-critic pass over the S x B samples serves both the critic target and
the E-step.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax
import rlax

from rwrl.agents import distributional
from rwrl.agents.base import AgentFunctions, JittedAgent, actor_critic_optimisers, make_optimiser
from rwrl.agents.config import CriticSupportConfig, LearnerConfig, ReplayConfig, require_int, require_positive
from rwrl.agents.networks import DistributionalCritic, GaussianPolicy, gaussian_action
from rwrl.agents.types import Transition

# Smallest value a dual variable takes, in log space (acme's projection).
_MIN_LOG_DUAL = -18.0


@dataclasses.dataclass(frozen=True)
class DMPOConfig(LearnerConfig, CriticSupportConfig, ReplayConfig):
    """Distributional MPO hyperparameters; the defaults are acme's single-process DMPO control baseline.

    That is ``acme/examples/baselines/rl_continuous/run_dmpo.py`` with acme's
    ``MPOConfig`` and ``GaussianPolicyLossConfig`` defaults (learning rate 3e-4
    for both networks, replay ratio 64, 4-step returns, initial stddev 0.5,
    mean KL bound 1e-2, duals starting at softplus(10) and softplus(1000)).
    Until issue 8 the defaults were acme's TF DMPO agent's (learning rates
    1e-4, replay ratio 32, 5-step returns, initial stddev 0.7, mean KL bound
    1e-3, duals at softplus(1) and softplus(10)); with those the policy
    followed its critic too slowly. ``benchmarks/learning.py`` keeps them as
    the ``acme-tf`` variant; benchmarks/results/learning.md has both curves.
    """

    n_step: int = 4  # acme's control baseline (as the two learning rates)
    policy_learning_rate: float = 3e-4
    critic_learning_rate: float = 3e-4
    #: initial policy stddev, in action units.
    policy_init_scale: float = 0.5
    #: bound the policy mean to (-1, 1) with tanh (acme's option; off in acme's DMPO).
    policy_tanh_mean: bool = False
    #: S, actions sampled per state for the E-step and the critic target.
    num_samples: int = 20
    #: epsilon, the E-step bound on KL(q || pi_target), nats per state.
    epsilon: float = 0.1
    #: M-step bound on the KL of the mean part, nats per state and action dimension.
    epsilon_mean: float = 1e-2
    #: M-step bound on the KL of the stddev part, nats per state and action dimension.
    epsilon_stddev: float = 1e-6
    #: whether to add the MO-MPO action penalisation E-step.
    action_penalization: bool = True
    #: KL bound of the action penalisation E-step.
    epsilon_penalty: float = 1e-3
    #: initial temperatures (task and penalty) in softplus space: softplus(10) = 10.
    init_log_temperature: float = 10.0
    #: initial alpha_mean in softplus space.
    init_log_alpha_mean: float = 10.0
    #: initial alpha_stddev in softplus space: very stiff, the stddev barely moves.
    init_log_alpha_stddev: float = 1000.0
    #: Adam learning rate of the dual variables (temperature, alphas).
    dual_learning_rate: float = 1e-2

    def __post_init__(self):
        super().__post_init__()
        require_int(self, "num_samples")
        require_positive(self, "epsilon", "epsilon_mean", "epsilon_stddev", "epsilon_penalty", "policy_init_scale")


class DMPONetworks(NamedTuple):
    """The flax modules and the critic's support."""

    policy: GaussianPolicy
    critic: DistributionalCritic
    q_atoms: jax.Array  # (K,)


class DualParams(NamedTuple):
    """Lagrange multipliers in softplus space; the multiplier is softplus(x) + 1e-8."""

    log_temperature: jax.Array  # () E-step temperature eta
    log_alpha_mean: jax.Array  # (A,) M-step multipliers of the mean KL, per action dimension
    log_alpha_stddev: jax.Array  # (A,) M-step multipliers of the stddev KL
    log_penalty_temperature: jax.Array  # () temperature of the action-penalisation E-step


class TrainingState(NamedTuple):
    """Everything the learner changes; a pytree, saved whole in checkpoints."""

    policy_params: dict
    critic_params: dict
    target_policy_params: dict
    target_critic_params: dict
    dual_params: DualParams
    policy_opt_state: optax.OptState
    critic_opt_state: optax.OptState
    dual_opt_state: optax.OptState
    steps: jax.Array  # () int32, learner steps taken


class Optimisers(NamedTuple):
    policy: optax.GradientTransformation
    critic: optax.GradientTransformation
    dual: optax.GradientTransformation


class DMPOLosses(NamedTuple):
    sample_targets: Callable
    critic_loss: Callable
    policy_loss: Callable


def positive(x: jax.Array) -> jax.Array:
    """Map a dual variable from softplus space to (0, inf): softplus(x) + 1e-8."""
    return jax.nn.softplus(x) + 1e-8


def gaussian_log_prob(x: jax.Array, mean: jax.Array, stddev: jax.Array) -> jax.Array:
    """Return log N(x; mean, diag(stddev**2)), summed over the last (action) axis."""
    z = (x - mean) / stddev
    return jnp.sum(-0.5 * z**2 - jnp.log(stddev) - 0.5 * jnp.log(2.0 * jnp.pi), axis=-1)


def gaussian_kl(mean_p: jax.Array, stddev_p: jax.Array, mean_q: jax.Array, stddev_q: jax.Array) -> jax.Array:
    """Return KL(N(mean_p, stddev_p**2) || N(mean_q, stddev_q**2)) per dimension, in nats."""
    return (jnp.log(stddev_q / stddev_p)
            + (stddev_p**2 + (mean_p - mean_q) ** 2) / (2.0 * stddev_q**2) - 0.5)


def e_step(sampled_q: jax.Array, log_temperature: jax.Array, epsilon: float) -> tuple[jax.Array, jax.Array]:
    """Return the E-step's weights and temperature dual for one state (MPO's E-step).

    Args:
        sampled_q: (S,) values of the S actions sampled from the target policy.
        log_temperature: () temperature eta in softplus space.
        epsilon: bound on KL(q || pi_target).

    Returns:
        weights: (S,) softmax(sampled_q / eta), no gradient.
        dual: () g(eta) = eta * epsilon + eta * log mean exp(sampled_q / eta);
            its gradient in ``log_temperature`` moves eta towards the bound.
    """
    chex.assert_rank([sampled_q, log_temperature], [1, 0])
    dual, weights, _ = rlax.mpo_compute_weights_and_temperature_loss(
        jax.lax.stop_gradient(sampled_q),
        rlax.LagrangePenalty(alpha=log_temperature, epsilon=jnp.float32(epsilon)),
        positive,
    )
    return jax.lax.stop_gradient(weights), dual


def kl_penalties(kl_mean: jax.Array, kl_stddev: jax.Array, duals: "DualParams",
                 config: "DMPOConfig") -> tuple[jax.Array, jax.Array]:
    """Return (sum alpha * KL, sum alpha * (epsilon - KL)) over both parts and dimensions (MPO's M-step).

    The first term trains the policy with each alpha held fixed; the second
    trains the alphas with the KLs held fixed, so an alpha grows while its KL
    exceeds its bound and shrinks towards 0 while it is under (coordinate
    ascent on the Lagrangian, ``rlax.compute_parametric_kl_penalty_and_dual_loss``).

    Args:
        kl_mean, kl_stddev: (A,) KL of the mean and stddev parts per dimension.
        duals: the multipliers log_alpha_mean, log_alpha_stddev, (A,) each.
        config: the bounds epsilon_mean and epsilon_stddev.
    """
    constraints = [
        (kl_mean, rlax.LagrangePenalty(duals.log_alpha_mean, jnp.float32(config.epsilon_mean), True)),
        (kl_stddev, rlax.LagrangePenalty(duals.log_alpha_stddev, jnp.float32(config.epsilon_stddev), True)),
    ]
    return rlax.compute_parametric_kl_penalty_and_dual_loss(constraints, positive)


def mpo_policy_loss(mean, stddev, target_mean, target_stddev, sampled_actions, sampled_q,
                    duals: DualParams, config: DMPOConfig) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Return the decoupled MPO loss of one state: E-step duals, M-step likelihood and KL terms.

    Args:
        mean, stddev: (A,) the online policy at the state.
        target_mean, target_stddev: (A,) the target policy at the state.
        sampled_actions: (S, A) actions sampled from the target policy.
        sampled_q: (S,) the target critic's mean value of each sampled action.
        duals: the Lagrange multipliers (shared by all states).
        config: bounds epsilon, epsilon_mean, epsilon_stddev, epsilon_penalty.

    Returns:
        () the loss, and per-state diagnostics.
    """
    chex.assert_rank([mean, sampled_actions, sampled_q], [1, 2, 1])
    task_weights, temperature_dual = e_step(sampled_q, duals.log_temperature, config.epsilon)
    weights = task_weights
    if config.action_penalization:
        out_of_range = sampled_actions - jnp.clip(sampled_actions, -1.0, 1.0)
        cost = -jnp.linalg.norm(out_of_range, axis=-1)
        penalty_weights, penalty_dual = e_step(cost, duals.log_penalty_temperature, config.epsilon_penalty)
        # MO-MPO: each objective's E-step has its own bound; their
        # non-parametric policies are fitted together by summing the weights.
        weights, temperature_dual = weights + penalty_weights, temperature_dual + penalty_dual

    # M-step: the mean part borrows the target stddev and vice versa, so each
    # KL below measures the change of one part alone (2018b, decoupled updates).
    log_prob_mean = gaussian_log_prob(sampled_actions, mean, target_stddev)
    log_prob_stddev = gaussian_log_prob(sampled_actions, target_mean, stddev)
    likelihood_loss = -jnp.sum(weights * (log_prob_mean + log_prob_stddev))
    kl_mean = gaussian_kl(target_mean, target_stddev, mean, target_stddev)
    kl_stddev = gaussian_kl(target_mean, target_stddev, target_mean, stddev)
    kl_loss, alpha_loss = kl_penalties(kl_mean, kl_stddev, duals, config)

    loss = likelihood_loss + kl_loss + alpha_loss + temperature_dual
    # KL(q || pi_target) estimated on the samples, what the temperature bounds.
    kl_q = jnp.sum(task_weights * jnp.log(sampled_q.shape[0] * task_weights + 1e-8))
    metrics = {"kl_q": kl_q, "kl_mean": jnp.mean(kl_mean), "kl_stddev": jnp.mean(kl_stddev),
               "likelihood_loss": likelihood_loss, "stddev": jnp.mean(stddev)}
    return loss, metrics


def make_networks(obs_size: int, action_size: int, config: DMPOConfig) -> DMPONetworks:
    """Build the Gaussian policy, the critic and the atoms."""
    del obs_size  # flax infers input sizes at init.
    return DMPONetworks(
        policy=GaussianPolicy(action_size, config.policy_hidden_sizes,
                              init_scale=config.policy_init_scale,
                              tanh_mean=config.policy_tanh_mean),
        critic=DistributionalCritic(config.critic_hidden_sizes, config.num_atoms),
        q_atoms=distributional.categorical_support(config.v_min, config.v_max, config.num_atoms),
    )


def make_losses(networks: DMPONetworks, config: DMPOConfig) -> DMPOLosses:
    """Return the batch functions of steps 1 to 4 above."""

    def sample_targets(target_policy_params, target_critic_params, obs_t, key):
        """Step 1: (target mean, target stddev) (B, A), actions (B, S, A), critic logits (B, S, K)."""
        target_mean, target_stddev = networks.policy.apply(target_policy_params, obs_t)
        noise = jax.random.normal(key, (obs_t.shape[0], config.num_samples, target_mean.shape[-1]))
        actions = target_mean[:, None] + target_stddev[:, None] * noise
        tiled_obs = jnp.broadcast_to(obs_t[:, None], (*actions.shape[:2], obs_t.shape[-1]))
        logits = networks.critic.apply(target_critic_params, tiled_obs, actions)
        return target_mean, target_stddev, actions, logits

    def critic_loss(critic_params, batch: Transition, sampled_logits_t):
        """Step 2: categorical TD loss towards the mixture over sampled actions, batch mean."""
        p_t = jnp.mean(jax.nn.softmax(sampled_logits_t, axis=-1), axis=1)
        q_logits_tm1 = networks.critic.apply(critic_params, batch.obs_tm1, batch.action_tm1)
        td_loss = jax.vmap(distributional.categorical_td_loss, in_axes=(0, 0, 0, 0, None))
        return jnp.mean(td_loss(q_logits_tm1, batch.reward_t, batch.discount_t, p_t, networks.q_atoms))

    def policy_loss(policy_params, duals, obs_t, target_mean, target_stddev, actions, sampled_logits_t):
        """Steps 3 and 4 at the states obs_t, batch mean; returns (loss, metrics)."""
        mean, stddev = networks.policy.apply(policy_params, obs_t)
        sampled_q = distributional.categorical_mean(sampled_logits_t, networks.q_atoms)
        per_state = jax.vmap(functools.partial(mpo_policy_loss, config=config), in_axes=(0, 0, 0, 0, 0, 0, None))
        loss, metrics = per_state(mean, stddev, target_mean, target_stddev, actions, sampled_q, duals)
        return jnp.mean(loss), jax.tree.map(jnp.mean, metrics)

    return DMPOLosses(sample_targets, critic_loss, policy_loss)


def make_optimisers(config: DMPOConfig) -> Optimisers:
    """Return the optimisers: global-norm clipping then Adam for the networks, Adam for the duals."""
    policy, critic = actor_critic_optimisers(config)
    return Optimisers(policy=policy, critic=critic, dual=make_optimiser(config.dual_learning_rate))


def init_state(networks: DMPONetworks, optimisers: Optimisers, config: DMPOConfig,
               obs_size: int, action_size: int, key: jax.Array) -> TrainingState:
    """Initialise online parameters at random, targets as copies, duals at the config's values."""
    policy_key, critic_key = jax.random.split(key)
    obs, action = jnp.zeros((1, obs_size)), jnp.zeros((1, action_size))
    policy_params = networks.policy.init(policy_key, obs)
    critic_params = networks.critic.init(critic_key, obs, action)
    duals = DualParams(
        log_temperature=jnp.float32(config.init_log_temperature),
        log_alpha_mean=jnp.full(action_size, config.init_log_alpha_mean, jnp.float32),
        log_alpha_stddev=jnp.full(action_size, config.init_log_alpha_stddev, jnp.float32),
        log_penalty_temperature=jnp.float32(config.init_log_temperature),
    )
    return TrainingState(
        policy_params=policy_params, critic_params=critic_params,
        target_policy_params=policy_params, target_critic_params=critic_params,
        dual_params=duals,
        policy_opt_state=optimisers.policy.init(policy_params),
        critic_opt_state=optimisers.critic.init(critic_params),
        dual_opt_state=optimisers.dual.init(duals),
        steps=jnp.zeros((), jnp.int32),
    )


def _apply(optimiser: optax.GradientTransformation, grads, opt_state, params):
    updates, opt_state = optimiser.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def update_step(losses: DMPOLosses, optimisers: Optimisers, config: DMPOConfig, state: TrainingState,
                batch: Transition, key: jax.Array) -> tuple[TrainingState, dict[str, jax.Array]]:
    """One learner step: steps 1 to 6 of the module docstring."""
    target_mean, target_stddev, actions, logits_t = losses.sample_targets(
        state.target_policy_params, state.target_critic_params, batch.obs_t, key)
    critic_loss, critic_grads = jax.value_and_grad(losses.critic_loss)(state.critic_params, batch, logits_t)
    (policy_loss, mpo_metrics), (policy_grads, dual_grads) = jax.value_and_grad(
        losses.policy_loss, argnums=(0, 1), has_aux=True)(
        state.policy_params, state.dual_params, batch.obs_t, target_mean, target_stddev, actions, logits_t)

    critic_params, critic_opt_state = _apply(optimisers.critic, critic_grads, state.critic_opt_state,
                                             state.critic_params)
    policy_params, policy_opt_state = _apply(optimisers.policy, policy_grads, state.policy_opt_state,
                                             state.policy_params)
    duals, dual_opt_state = _apply(optimisers.dual, dual_grads, state.dual_opt_state, state.dual_params)
    duals = jax.tree.map(lambda x: jnp.maximum(x, _MIN_LOG_DUAL), duals)

    steps = state.steps + 1
    period = config.target_update_period
    new_state = TrainingState(
        policy_params=policy_params, critic_params=critic_params,
        target_policy_params=optax.periodic_update(policy_params, state.target_policy_params, steps, period),
        target_critic_params=optax.periodic_update(critic_params, state.target_critic_params, steps, period),
        dual_params=duals, policy_opt_state=policy_opt_state, critic_opt_state=critic_opt_state,
        dual_opt_state=dual_opt_state, steps=steps,
    )
    metrics = {
        "critic_loss": critic_loss, "policy_loss": policy_loss,
        "temperature": positive(duals.log_temperature),
        "alpha_mean": jnp.mean(positive(duals.log_alpha_mean)),
        "alpha_stddev": jnp.mean(positive(duals.log_alpha_stddev)),
        **mpo_metrics,
    }
    return new_state, metrics


class DMPO(JittedAgent):
    """The distributional MPO agent: the pure functions above, jitted once by ``base.JittedAgent``."""

    config_class = DMPOConfig

    def make_functions(self, obs_size: int, action_size: int, config: DMPOConfig) -> AgentFunctions:
        """Build the networks, optimisers and losses (kept for the agents built on DMPO)."""
        self.networks = make_networks(obs_size, action_size, config)
        self.optimisers = make_optimisers(config)
        self.losses = make_losses(self.networks, config)
        return AgentFunctions(
            init=functools.partial(init_state, self.networks, self.optimisers, config, obs_size, action_size),
            update=functools.partial(update_step, self.losses, self.optimisers, config),
            act=functools.partial(gaussian_action, self.networks.policy))
