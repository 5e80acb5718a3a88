"""Fitted Q evaluation (FQE) of a deterministic policy from a dataset of transitions.

Le, Voloshin and Yue 2019, "Batch Policy Learning under Constraints" (ICML),
Algorithm 3; the deep version of the DOPE benchmark (Fu et al. 2021): repeat

    Q_{k+1} = argmin_Q  E_(s,a,r,s')~D [ (r + gamma * d * Q_k(s', pi(s')) - Q(s, a))^2 ]

and estimate the policy's value as the mean over the dataset's initial states of
``Q(s0, pi(s0))``.

Choices (the method leaves them open):

* Critic, ``critic="scalar"`` (default): plain mean-squared error on a scalar Q, the
  network of the online agents' critics (rwrl.agents.networks: LayerNorm-tanh MLP
  then ELU layers) with a scalar head. The network predicts ``Q / value_scale``
  (default ``value_scale = 1 / (1 - gamma)``, the largest discounted value of
  rewards in [0, 1], as the suite's are), so its outputs stay of order one.
* Critic, ``critic="distributional"``: the same trunk with a categorical (C51)
  head of ``num_atoms`` atoms on [0, value_scale], trained by the projected
  cross-entropy of D4PG (rwrl.agents.distributional.categorical_td_loss), the
  value being the distribution's mean: a distributional FQE like the "FQE-D"
  baseline of DOPE (Fu et al. 2021), as recalled, not checked against the
  paper's text here. Its estimate cannot leave [0, value_scale], the range
  of discounted values of rewards in [0, 1], so it cannot extrapolate far
  outside the possible values where the data do not cover the policy, which
  the scalar critic does (measured on cartpole-swingup: -2921 for the
  untrained policy, truth in [0, 100]). Rewards outside
  [0, value_scale * (1 - gamma)] are refused: the support could not hold them.
* One FQE iteration = ``target_update_period`` Adam steps on minibatches drawn
  uniformly with replacement from the transitions with ``Q_k`` (the target
  network) frozen, then ``Q_k <- Q``: a periodic hard target update, the literal
  iteration above with an inexact inner fit.
* ``pi(s')`` and ``pi(s0)`` are computed once for the whole dataset (the policy is
  deterministic), so the policy may be any numpy function.
* Bootstrapping: ``d = 0`` only at a termination. A truncation (the suite's 1000-step
  time limit) bootstraps, so Q estimates the infinite-horizon discounted value;
  a T-step episode's discounted return differs from it by ``gamma**T * V(s_T)``, at most
  ``0.99**1000 / 0.01 = 4e-3`` for rewards in [0, 1]: below any other error here.
* LS-FQE (``ls_every``): the shallow update of Levine et al. 2017 (LS-DQN, FQI
  form; rwrl.agents.shallow) on the scalar critic. Every ``ls_every`` gradient steps
  (a multiple of ``target_update_period``), at the end of that FQE iteration and
  before the target copy (where the authors' code refits, so the next target is
  the refitted network), the critic's last Dense layer is re-solved in closed form
  on ``ls_batch_size`` transitions (default 65,536, drawn without replacement; the
  whole dataset if smaller; the paper uses its whole 1M replay memory) toward this
  iteration's FQE targets ``r / value_scale + gamma * d * Q_k(s', pi(s'))``, with the
  prior centred at the current head: ``lam = ls_lambda * batch`` (the paper's lambda
  is per sample, 1 in the authors' code, which is the default here). The bias is a
  feature and is regularised toward its current value. Adam's moments are kept across
  a refit (the authors' code keeps its RMSProp statistics). The distributional
  critic's head outputs logits, not values, so it has no LS variant.
* The estimate is the DISCOUNTED value ``E_s0[sum_t gamma^t r_{t+1}]`` (DOPE's
  quantity); rwrl.ope.evaluate compares it with the discounted return of online
  rollouts with the same gamma.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from rwrl.agents.distributional import categorical_mean, categorical_support, categorical_td_loss
from rwrl.agents.networks import LayerNormMLP
from rwrl.agents.shallow import check_refit, head_features, refit_head
from rwrl.storage.progress_reporter import ProgressReporter
from rwrl.ope.policy import Transitions, apply_policy


CRITICS = ("scalar", "distributional")
#: folded into the seed's key for the LS-FQE refit batches.
REFIT_STREAM = 0x5EED


@dataclasses.dataclass(frozen=True)
class FQEConfig:
    """Hyperparameters of fitted Q evaluation."""

    #: per-step discount gamma of the value estimated, in [0, 1).
    discount: float = 0.99
    #: hidden layer sizes of the Q network.
    hidden_sizes: Sequence[int] = (256, 256)
    #: Adam learning rate.
    learning_rate: float = 3e-4
    #: transitions per gradient step.
    batch_size: int = 256
    #: gradient steps in all (num_steps / target_update_period FQE iterations).
    num_steps: int = 50_000
    #: gradient steps per FQE iteration (between two target copies).
    target_update_period: int = 100
    #: Q = value_scale * network output; None: 1 / (1 - discount).
    value_scale: float | None = None
    #: global gradient norm clip.
    max_gradient_norm: float = 40.0
    #: "scalar" (mean-squared TD error) or "distributional" (C51 on [0, value_scale]).
    critic: str = "scalar"
    #: atoms of the distributional critic.
    num_atoms: int = 51
    #: LS-FQE: gradient steps between least-squares refits of the critic's last layer (a multiple
    #: of target_update_period); None: plain FQE.
    ls_every: int | None = None
    #: LS-FQE: prior weight per refit transition toward the current last layer (Levine et al.'s lambda).
    ls_lambda: float = 1.0
    #: LS-FQE: transitions per refit, drawn without replacement (the whole dataset if smaller).
    ls_batch_size: int = 65_536

    def __post_init__(self):
        object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        if not 0.0 <= self.discount < 1.0:
            raise ValueError(f"discount must be in [0, 1), got {self.discount!r}")
        for field in ("batch_size", "num_steps", "target_update_period", "ls_batch_size"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be >= 1, got {getattr(self, field)!r}")
        if self.num_steps % self.target_update_period:
            raise ValueError(f"num_steps ({self.num_steps}) must be a multiple of "
                             f"target_update_period ({self.target_update_period})")
        if self.value_scale is not None and not self.value_scale > 0:
            raise ValueError(f"value_scale must be > 0, got {self.value_scale!r}")
        if self.critic not in CRITICS:
            raise ValueError(f"critic must be one of {CRITICS}, got {self.critic!r}")
        if self.num_atoms < 2:
            raise ValueError(f"num_atoms must be >= 2, got {self.num_atoms!r}")
        check_refit(self.ls_every, self.ls_lambda)
        if self.ls_every is not None and self.ls_every % self.target_update_period:
            raise ValueError(f"ls_every = {self.ls_every}: must be a multiple of target_update_period "
                             f"({self.target_update_period}): a refit ends an FQE iteration")
        if self.ls_every is not None and self.critic != "scalar":
            raise ValueError(f"ls_every = {self.ls_every}: the least-squares refit needs critic='scalar' "
                             f"(the {self.critic} critic's head outputs logits, not values)")

    @property
    def scale(self) -> float:
        return self.value_scale if self.value_scale is not None else 1.0 / (1.0 - self.discount)


class Critic(nn.Module):
    """(observation, action) -> (..., outputs): Q / value_scale (1 output) or the atoms' logits."""

    hidden_sizes: Sequence[int]
    outputs: int = 1

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        h = LayerNormMLP(self.hidden_sizes)(jnp.concatenate([obs, action], axis=-1))
        return nn.Dense(self.outputs)(h)


class Head(NamedTuple):
    """How a critic's outputs become values and a loss, in value / value_scale units."""

    critic: Critic
    #: (..., outputs) -> (...) Q / value_scale.
    value: Callable[[jax.Array], jax.Array]
    #: (out_tm1 (outputs,), r_t (), discount_t (), out_t (outputs,)) -> () loss of one transition.
    loss: Callable[..., jax.Array]


def make_head(config: FQEConfig) -> Head:
    """Return the critic of ``config.critic`` with its value and loss."""
    if config.critic == "scalar":
        return Head(Critic(config.hidden_sizes, 1), lambda out: out[..., 0],
                    lambda q_tm1, r_t, discount_t, q_t: td_loss(q_tm1[0], r_t, discount_t, q_t[0]))
    atoms = categorical_support(0.0, 1.0, config.num_atoms)
    return Head(Critic(config.hidden_sizes, config.num_atoms), lambda logits: categorical_mean(logits, atoms),
                lambda logits_tm1, r_t, discount_t, logits_t: categorical_td_loss(
                    logits_tm1, r_t, discount_t, jax.nn.softmax(logits_t), atoms))


class FQEResult(NamedTuple):
    """The estimate and how the fit went.

    Attributes:
      value: the discounted value estimate, mean of ``initial_values``.
      initial_values: (M,) Q(s0, pi(s0)) per initial state.
      losses: (num_steps / target_update_period,) mean TD loss per FQE iteration, in
        (value / value_scale)^2 units (scalar critic) or nats (distributional).
      refit_steps: LS-FQE: the gradient steps after which the last layer was refitted.
      refit_losses: LS-FQE: (len(refit_steps), 2) mean TD loss on the refit batch before and
        after each refit, in the units of ``losses``.
    """

    value: float
    initial_values: np.ndarray
    losses: np.ndarray
    refit_steps: tuple[int, ...] = ()
    refit_losses: np.ndarray = np.zeros((0, 2))


def td_loss(q_tm1: jax.Array, r_t: jax.Array, discount_t: jax.Array, q_t: jax.Array) -> jax.Array:
    """Return 0.5 * (r_t + discount_t * q_t - q_tm1)^2 for one transition (scalars).

    ``discount_t`` is gamma * d; ``q_t`` comes from the frozen target network (no gradient).
    """
    target = jax.lax.stop_gradient(r_t + discount_t * q_t)
    return 0.5 * jnp.square(target - q_tm1)


def make_optimiser(config: FQEConfig) -> optax.GradientTransformation:
    """Return global-norm clipping, then Adam."""
    return optax.chain(optax.clip_by_global_norm(config.max_gradient_norm), optax.adam(config.learning_rate))


@functools.lru_cache(maxsize=8)
def compiled_iteration(config: FQEConfig):
    """Return a jitted FQE iteration: target_update_period steps with Q_k frozen, then Q_k <- Q.

    Cached per config, and the data are an argument (not constants of the
    computation), so every policy of a set reuses one compilation.
    """
    head, optimiser = make_head(config), make_optimiser(config)

    def loss_fn(params, target_params, data, idx):
        out_tm1 = head.critic.apply(params, data["obs"][idx], data["actions"][idx])
        out_t = head.critic.apply(target_params, data["next_obs"][idx], data["next_actions"][idx])
        r_t = data["rewards"][idx] / config.scale
        return jnp.mean(jax.vmap(head.loss)(out_tm1, r_t, config.discount * data["discounts"][idx], out_t))

    def iteration(params, opt_state, data, key):
        def step(carry, step_key):
            params, opt_state = carry
            idx = jax.random.randint(step_key, (config.batch_size,), 0, data["rewards"].shape[0])
            loss, grads = jax.value_and_grad(loss_fn)(params, target_params, data, idx)
            updates, opt_state = optimiser.update(grads, opt_state)
            return (optax.apply_updates(params, updates), opt_state), loss

        target_params = params  # Q_k, frozen for this iteration
        keys = jax.random.split(key, config.target_update_period)
        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), keys)
        return params, opt_state, jnp.mean(losses)

    return jax.jit(iteration)


@functools.lru_cache(maxsize=8)
def compiled_refit(config: FQEConfig):
    """Return a jitted LS-FQE refit of the critic's last layer toward the FQE targets of Q_k.

    ``refit(params, target_params, data, idx) -> (params, loss_before, loss_after)``:
    ``idx`` (B,) the refit batch; the TD losses are means on it, in the units of
    ``FQEResult.losses``. Cached per config, like ``compiled_iteration``.
    """
    head = make_head(config)

    def refit(params, target_params, data, idx):
        obs, actions = data["obs"][idx], data["actions"][idx]
        q_t = head.value(head.critic.apply(target_params, data["next_obs"][idx], data["next_actions"][idx]))
        targets = data["rewards"][idx] / config.scale + config.discount * data["discounts"][idx] * q_t
        features, path = head_features(head.critic, params, obs, actions)
        # Levine et al.'s lambda weighs averages over the batch; refit_head's weighs sums
        new_params = refit_head(params, path, features, targets, config.ls_lambda * idx.shape[0])

        def loss(p):
            return jnp.mean(0.5 * jnp.square(targets - head.value(head.critic.apply(p, obs, actions))))

        return new_params, loss(params), loss(new_params)

    return jax.jit(refit)


def refit_batch(key: jax.Array, num_transitions: int, config: FQEConfig) -> jax.Array:
    """Return the indices (B,) of one refit: ``ls_batch_size`` drawn without replacement, or all."""
    if config.ls_batch_size >= num_transitions:
        return jnp.arange(num_transitions)
    return jax.random.choice(key, num_transitions, (config.ls_batch_size,), replace=False)


def fitted_q_evaluation(policy, data: Transitions, config: FQEConfig = FQEConfig(), *,
                        seed: int = 0, progress: bool = True) -> FQEResult:
    """Estimate the discounted value of ``policy`` from ``data`` by FQE.

    Args:
      policy: deterministic ``obs (B, D) -> actions (B, A)`` (rwrl.ope.policy.Policy).
      data: the dataset's transitions and initial observations.
      config: hyperparameters.
      seed: seed of the network initialisation and the minibatch draws.
      progress: print progress lines (rwrl.storage.progress_reporter).

    Returns:
      FQEResult with the value estimate in the units of the rewards (discounted sum).
    """
    if config.critic == "distributional":
        low, high = float(np.min(data.rewards)), float(np.max(data.rewards))
        if low < 0.0 or high > config.scale * (1.0 - config.discount) + 1e-6:
            raise ValueError(f"rewards in [{low:.4g}, {high:.4g}]; the distributional critic's support "
                             f"[0, value_scale={config.scale:.4g}] holds rewards in "
                             f"[0, {config.scale * (1.0 - config.discount):.4g}] only (set value_scale)")
    arrays = {
        "obs": jnp.asarray(data.obs, jnp.float32),
        "actions": jnp.asarray(data.actions, jnp.float32),
        "rewards": jnp.asarray(data.rewards, jnp.float32),
        "next_obs": jnp.asarray(data.next_obs, jnp.float32),
        "next_actions": jnp.asarray(apply_policy(policy, data.next_obs)),
        "discounts": jnp.asarray(data.discounts, jnp.float32),
    }
    head = make_head(config)
    init_key, key = jax.random.split(jax.random.PRNGKey(seed))
    params = jax.jit(head.critic.init)(init_key, arrays["obs"][:1], arrays["actions"][:1])
    opt_state = make_optimiser(config).init(params)
    # one compilation for every run length and refit setting (the iteration reads neither)
    iteration = compiled_iteration(dataclasses.replace(config, num_steps=config.target_update_period,
                                                       ls_every=None, ls_lambda=1.0, ls_batch_size=1))
    # the refit batches' own stream: plain FQE's draws stay those of a run without refits
    refit_key = jax.random.fold_in(jax.random.PRNGKey(seed), REFIT_STREAM)
    reporter = ProgressReporter(config.num_steps, desc=f"fqe {getattr(policy, 'name', '')}".strip(),
                                enabled=progress)
    losses, refit_steps, refit_losses = [], [], []
    for k in range(config.num_steps // config.target_update_period):
        target_params = params  # Q_k of this iteration (the jitted iteration freezes the same)
        params, opt_state, loss = iteration(params, opt_state, arrays, jax.random.fold_in(key, k))
        losses.append(float(loss))
        step = (k + 1) * config.target_update_period
        if config.ls_every is not None and step % config.ls_every == 0:
            idx = refit_batch(jax.random.fold_in(refit_key, step), len(data.rewards), config)
            params, before, after = compiled_refit(config)(params, target_params, arrays, idx)
            refit_steps.append(step), refit_losses.append((float(before), float(after)))
        reporter.set_postfix({"td_loss": f"{losses[-1]:.3g}", **({"refits": len(refit_steps)}
                                                                  if config.ls_every else {})})
        reporter.update(step)
    reporter.close()
    s0 = jnp.asarray(data.initial_obs, jnp.float32)
    q0 = jax.jit(lambda p, o, a: head.value(head.critic.apply(p, o, a)))(
        params, s0, jnp.asarray(apply_policy(policy, data.initial_obs)))
    initial_values = np.asarray(q0, dtype=np.float64) * config.scale
    return FQEResult(float(initial_values.mean()), initial_values, np.asarray(losses), tuple(refit_steps),
                     np.asarray(refit_losses, dtype=np.float64).reshape(-1, 2))
