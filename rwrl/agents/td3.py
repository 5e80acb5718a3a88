"""TD3: Twin Delayed Deep Deterministic policy gradient, with LS-DQN's shallow updates as an option.

Fujimoto, van Hoof and Meger (2018), "Addressing Function Approximation
Error in Actor-Critic Methods", ICML, https://arxiv.org/abs/1802.09477,
Algorithm 1. Per learner step, on a batch of n-step transitions:

1. Target policy smoothing (Section 5.3, Eq. 15): the target action is the
   target policy's, plus noise ``clip(N(0, target_noise**2), -c, c)`` with
   ``c = target_noise_clip``, clipped to the action box [-1, 1].
2. Clipped double Q-learning (Section 4.2, Eq. 10): the target is
   ``y = r + discount * min(Q'_1, Q'_2)(s_t, a_smoothed)``, the smaller of
   the two target critics; both online critics are regressed onto the same y
   (the sum of their mean squared errors).
3. Delayed policy updates (Section 5.2): every ``policy_delay`` learner
   steps only, the policy takes a deterministic policy gradient step through
   the first critic, ``-Q_1(s, pi(s))``, and the three target networks move by
   Polyak averaging, ``target += target_polyak * (online - target)``.

Acting adds N(0, sigma**2) noise to the policy's action and clips to [-1, 1].
Truncation versus termination: the batch's ``discount_t`` is gamma**n, or 0
when the episode terminated within the n steps; a truncated episode (the
suite's time limit) keeps gamma**n and bootstraps, as it should.

The defaults are those of the authors' repository (github.com/sfujim/TD3,
``TD3.py`` and ``main.py``: 256-256 networks, Adam 3e-4 for both, batch 256,
one update per env step, tau 0.005, smoothing noise 0.2 clipped at 0.5,
policy delay 2, exploration noise 0.1). Its README says the code "is no
longer exactly representative of the code used in the paper" (minor
adjustments to hyperparameters after publication); the paper's own networks
were 400-300 with Adam 1e-3 and batch 100 (its experimental section; recalled,
not read here). The three TD3 mechanisms' settings (0.2, 0.5, 2, tau 0.005)
are the same in both. Choices:

* Networks: the project's layer-norm torso (``networks.LayerNormMLP``) with
  the repository's two hidden layers of 256, rather than the repository's
  plain ReLU MLP, so every agent here handles the suite's unnormalised
  observations the same way (IQL's choice too).
* No uniform-random warm-up (the repository's first 25,000 steps): the run
  loop acts with the agent from its first step for every agent; learning
  starts at ``min_replay_size`` (the suite's 1,000), the policy plus its
  N(0, 0.1) noise exploring from there.

Shallow updates (Levine, Zahavy, Mankowitz, Tamar and Mannor 2017, "Shallow
Updates for Deep Reinforcement Learning", NeurIPS, https://arxiv.org/abs/1705.07461:
LS-DQN), off by default (``ls_every=None``): every ``ls_every``
learner steps, after the gradient steps, each online critic's last Dense
layer is refitted by regularised least squares to the TD3 target y of steps
1 and 2, over the critic's last hidden features on ``ls_batch`` transitions,
with LS-DQN's Gaussian prior centred at the head's current weights (bias
included), strength ``ls_lambda`` per transition as in the authors' code
(``rwrl.agents.shallow`` says what was read where). The large batch
is the union of the last ``ls_batch / batch_size`` learner batches, kept in
the training state: each a uniform draw from replay, so together a large
replay sample, without the loop or replay knowing of the refit. The target
networks, the torsos, the policy and the optimiser states are left as they are
(LS-DQN refits right before its periodic target copy; TD3's Polyak targets
take the refitted heads in gradually, tau per policy step).

Shapes: B transitions per batch, 2 critics (their parameters stacked on a
leading axis of 2, applied with ``vmap``), F last hidden features.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from rwrl.agents import shallow
from rwrl.agents.base import AgentFunctions, JittedAgent, make_optimiser
from rwrl.agents.config import ActorCriticConfig, ExplorationNoiseConfig, PolyakConfig, ReplayConfig, require_int
from rwrl.agents.d4pg import select_action
from rwrl.agents.iql import ScalarCritic
from rwrl.agents.networks import DeterministicPolicy
from rwrl.agents.types import Transition


@dataclasses.dataclass(frozen=True)
class TD3Config(ActorCriticConfig, ReplayConfig, ExplorationNoiseConfig, PolyakConfig):
    """TD3 hyperparameters: the authors' repository's defaults (module docstring), LS refit off."""

    # The repository's 256-256 networks and Adam 3e-4 for both (sfujim/TD3, TD3.py).
    policy_hidden_sizes: tuple[int, ...] = (256, 256)
    critic_hidden_sizes: tuple[int, ...] = (256, 256)
    policy_learning_rate: float = 3e-4
    critic_learning_rate: float = 3e-4
    # One learner step of batch 256 per env step (main.py): samples per insert = batch size.
    samples_per_insert: float = 256.0
    sigma: float = 0.1  # the repository's exploration noise (main.py's expl_noise)
    #: stddev of the target policy smoothing noise, in action units.
    target_noise: float = 0.2
    #: the smoothing noise is clipped to [-target_noise_clip, target_noise_clip].
    target_noise_clip: float = 0.5
    #: d: learner steps per policy step and target update (the critics step every time).
    policy_delay: int = 2
    #: learner steps between least-squares refits of the critics' heads; None: no refit.
    ls_every: int | None = None
    #: transitions per refit (a multiple of batch_size, at most ls_every * batch_size):
    #: 64 batches of 256, some 60 transitions per feature of a 256-wide head.
    ls_batch: int = 16_384
    #: strength of the refit's prior at the head's current weights, per transition (the
    #: authors' lambda and default; the solve's sums take ls_lambda * ls_batch).
    ls_lambda: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        for name in ("target_noise", "target_noise_clip"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name}={getattr(self, name)!r}: must be >= 0")
        require_int(self, "policy_delay")
        shallow.check_refit(self.ls_every, self.ls_lambda)
        if self.ls_every is not None:
            self._check_refit_batch()

    def _check_refit_batch(self):
        require_int(self, "ls_batch")
        if self.ls_batch % self.batch_size:
            raise ValueError(f"ls_batch={self.ls_batch!r}: must be a multiple of batch_size={self.batch_size}")
        if self.ls_batch > self.ls_every * self.batch_size:
            raise ValueError(f"ls_batch={self.ls_batch!r}: must be at most ls_every * batch_size = "
                             f"{self.ls_every * self.batch_size}, the transitions sampled between refits")


class TD3Networks(NamedTuple):
    policy: DeterministicPolicy
    critic: ScalarCritic  # applied to the twin's stacked parameters with vmap


class TrainingState(NamedTuple):
    """Everything the learner changes; a pytree, saved whole in checkpoints."""

    policy_params: dict
    critic_params: dict  # twin: every leaf has a leading axis of 2
    target_policy_params: dict
    target_critic_params: dict
    policy_opt_state: optax.OptState
    critic_opt_state: optax.OptState
    steps: jax.Array  # () int32, learner steps taken
    #: the last ls_batch / batch_size learner batches, ls_batch transitions (None: refit off)
    refit_batch: Transition | None = None


def smoothed_target_action(a_t: jax.Array, noise_t: jax.Array, noise_clip: float) -> jax.Array:
    """Return clip(a_t + clip(noise_t, -c, c), -1, 1) for one (A,) action: Eq. 15's target action."""
    chex.assert_rank([a_t, noise_t], 1)
    return jnp.clip(a_t + jnp.clip(noise_t, -noise_clip, noise_clip), -1.0, 1.0)


def clipped_double_q_target(r_t: jax.Array, discount_t: jax.Array, q_t: jax.Array) -> jax.Array:
    """Return y = r_t + discount_t * min(q_t) for one transition, q_t (2,) the target critics' (Eq. 10)."""
    chex.assert_rank([r_t, discount_t, q_t], [0, 0, 1])
    return r_t + discount_t * jnp.min(q_t)


def twin_q(critic: ScalarCritic, critic_params, obs: jax.Array, action: jax.Array) -> jax.Array:
    """Return (2, B) Q values of both critics."""
    return jax.vmap(critic.apply, in_axes=(0, None, None))(critic_params, obs, action)


def target_actions(networks: TD3Networks, config: TD3Config, target_policy_params, obs_t: jax.Array,
                   key: jax.Array) -> jax.Array:
    """Return step 1's (B, A) smoothed target actions for (B, obs_size) bootstrap observations."""
    a_t = networks.policy.apply(target_policy_params, obs_t)
    noise_t = config.target_noise * jax.random.normal(key, a_t.shape)
    return jax.vmap(smoothed_target_action, in_axes=(0, 0, None))(a_t, noise_t, config.target_noise_clip)


def td_targets(networks: TD3Networks, config: TD3Config, target_policy_params, target_critic_params,
               batch: Transition, key: jax.Array) -> jax.Array:
    """Return the (B,) targets y of steps 1 and 2, without gradient."""
    a_t = target_actions(networks, config, target_policy_params, batch.obs_t, key)
    q_t = twin_q(networks.critic, target_critic_params, batch.obs_t, a_t)
    y = jax.vmap(clipped_double_q_target)(batch.reward_t, batch.discount_t, q_t.T)
    return jax.lax.stop_gradient(y)


def critic_loss(networks: TD3Networks, critic_params, batch: Transition, y: jax.Array) -> jax.Array:
    """Step 2: the sum over both critics of the batch mean of (Q_i(s, a) - y)**2."""
    q = twin_q(networks.critic, critic_params, batch.obs_tm1, batch.action_tm1)
    return jnp.sum(jnp.mean(jnp.square(q - y), axis=1))


def policy_loss(networks: TD3Networks, policy_params, critic_params, batch: Transition) -> jax.Array:
    """Step 3: minus the batch mean of the first critic's Q of the policy's action."""
    first = jax.tree.map(lambda x: x[0], critic_params)
    return -jnp.mean(networks.critic.apply(first, batch.obs_tm1, networks.policy.apply(policy_params,
                                                                                          batch.obs_tm1)))


def make_networks(action_size: int, config: TD3Config) -> TD3Networks:
    return TD3Networks(DeterministicPolicy(action_size, config.policy_hidden_sizes),
                       ScalarCritic(config.critic_hidden_sizes))


def make_optimisers(config: TD3Config) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
    """Return the (policy, critic) Adam optimisers, without gradient clipping (none in the paper)."""
    return make_optimiser(config.policy_learning_rate), make_optimiser(config.critic_learning_rate)


def init_state(networks: TD3Networks, optimisers, config: TD3Config, obs_size: int, action_size: int,
               key: jax.Array) -> TrainingState:
    """Initialise the policy and the two critics independently at random, targets as copies."""
    policy_key, critic_key = jax.random.split(key)
    obs, action = jnp.zeros((1, obs_size)), jnp.zeros((1, action_size))
    policy_params = networks.policy.init(policy_key, obs)
    critic_params = jax.vmap(networks.critic.init, in_axes=(0, None, None))(
        jax.random.split(critic_key), obs, action)
    policy_opt, critic_opt = optimisers
    refit_batch = None
    if config.ls_every is not None:
        n = config.ls_batch
        refit_batch = Transition(jnp.zeros((n, obs_size)), jnp.zeros((n, action_size)), jnp.zeros(n),
                                 jnp.zeros(n), jnp.zeros((n, obs_size)))
    return TrainingState(policy_params, critic_params, policy_params, critic_params,
                         policy_opt.init(policy_params), critic_opt.init(critic_params),
                         jnp.zeros((), jnp.int32), refit_batch)


def _step(optimiser, grads, opt_state, params):
    updates, opt_state = optimiser.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state


def delayed_update(networks: TD3Networks, optimiser, config: TD3Config, state: TrainingState,
                   critic_params, batch: Transition, due: jax.Array):
    """Step 3 when ``due``: (policy params, opt state, target policy, target critics, policy loss).

    Not due: everything as it was, and the policy loss of the unchanged policy (a forward pass
    only), so that every step's metrics carry it.
    """
    loss = functools.partial(policy_loss, networks)

    def step(_):
        value, grads = jax.value_and_grad(loss)(state.policy_params, critic_params, batch)
        policy_params, opt_state = _step(optimiser, grads, state.policy_opt_state, state.policy_params)
        polyak = functools.partial(optax.incremental_update, step_size=config.target_polyak)
        return (policy_params, opt_state, polyak(policy_params, state.target_policy_params),
                polyak(critic_params, state.target_critic_params), value)

    def wait(_):
        return (state.policy_params, state.policy_opt_state, state.target_policy_params,
                state.target_critic_params, loss(state.policy_params, critic_params, batch))

    return jax.lax.cond(due, step, wait, None)


def remember_batch(config: TD3Config, refit_batch: Transition, batch: Transition, steps: jax.Array) -> Transition:
    """Write ``batch`` over the oldest of the ``ls_batch / batch_size`` batches in ``refit_batch``."""
    start = ((steps - 1) % (config.ls_batch // config.batch_size)) * config.batch_size
    fields = (batch.obs_tm1, batch.action_tm1, batch.reward_t, batch.discount_t, batch.obs_t)
    return Transition(*(jax.lax.dynamic_update_slice_in_dim(old, jnp.asarray(new, old.dtype), start, 0)
                        for old, new in zip(refit_batch[:5], fields)))


def refit_heads(networks: TD3Networks, config: TD3Config, critic_params, target_policy_params,
                target_critic_params, refit_batch: Transition, key: jax.Array):
    """Return the twin critic parameters with each head refitted to the TD3 targets of ``refit_batch``."""
    y = td_targets(networks, config, target_policy_params, target_critic_params, refit_batch, key)
    refitted = []
    for i in range(2):  # each critic's own features; both toward the same clipped double-Q target
        params = jax.tree.map(lambda x: x[i], critic_params)
        features, path = shallow.head_features(networks.critic, params, refit_batch.obs_tm1,
                                               refit_batch.action_tm1)
        refitted.append(shallow.refit_head(params, path, features, y, config.ls_lambda * config.ls_batch))
    return jax.tree.map(lambda *x: jnp.stack(x), *refitted)


def update_step(networks: TD3Networks, optimisers, config: TD3Config, state: TrainingState,
                batch: Transition, key: jax.Array) -> tuple[TrainingState, dict[str, jax.Array]]:
    """One learner step of Algorithm 1 (steps 1-3 above), then the shallow refit when it is due."""
    policy_opt, critic_opt = optimisers
    target_key, refit_key = jax.random.split(key)
    y = td_targets(networks, config, state.target_policy_params, state.target_critic_params, batch, target_key)
    q_loss, q_grads = jax.value_and_grad(functools.partial(critic_loss, networks))(state.critic_params, batch, y)
    critic_params, critic_opt_state = _step(critic_opt, q_grads, state.critic_opt_state, state.critic_params)
    steps = state.steps + 1
    policy_params, policy_opt_state, target_policy, target_critic, p_loss = delayed_update(
        networks, policy_opt, config, state, critic_params, batch, steps % config.policy_delay == 0)
    refit_batch = state.refit_batch
    if config.ls_every is not None:
        refit_batch = remember_batch(config, refit_batch, batch, steps)
        critic_params = jax.lax.cond(
            steps % config.ls_every == 0,
            lambda p: refit_heads(networks, config, p, target_policy, target_critic, refit_batch, refit_key),
            lambda p: p, critic_params)
    new_state = TrainingState(policy_params, critic_params, target_policy, target_critic, policy_opt_state,
                              critic_opt_state, steps, refit_batch)
    metrics = {"critic_loss": q_loss, "policy_loss": p_loss, "target_mean": jnp.mean(y),
               "critic_grad_norm": optax.global_norm(q_grads)}
    return new_state, metrics


class TD3(JittedAgent):
    """The TD3 agent: the pure functions above, jitted once by ``base.JittedAgent``."""

    config_class = TD3Config

    def make_functions(self, obs_size: int, action_size: int, config: TD3Config) -> AgentFunctions:
        """Build the networks and optimisers."""
        self.networks = make_networks(action_size, config)
        optimisers = make_optimisers(config)
        return AgentFunctions(
            init=functools.partial(init_state, self.networks, optimisers, config, obs_size, action_size),
            update=functools.partial(update_step, self.networks, optimisers, config),
            act=functools.partial(select_action, self.networks, config.sigma))
