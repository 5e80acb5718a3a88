"""DQN on MinAtar, and LS-DQN: the same agent with shallow least-squares refits of its last layer.

**DQN** (Mnih et al. 2015, Algorithm 1) as the MinAtar paper's baseline (Young
and Tian 2019, arXiv 1903.03176, read in the authors' ``examples/dqn.py`` of
github.com/kenjyoung/MinAtar; the paper's own text beyond its abstract was not
available). Per frame: act epsilon-greedily, store the transition, and once the
replay holds ``min_replay_size`` transitions take one learner step on a batch
of 32 drawn from it:

1. Target (``dqn_target``): y = r_t + discount_t * max_a Q_target(s_t, a), with
   discount_t = gamma, 0 after a game over (MinAtar has no time limit, so no
   transition is truncated).
2. Loss: the Huber loss (delta 1; MinAtar's ``smooth_l1_loss``) of
   Q(s_tm1, a_tm1) - y, averaged over the batch; y carries no gradient.
3. RMSProp step (below), then the target network is copied from the online one
   every ``target_update_period`` = 1,000 learner steps.

**LS-DQN** (Levine, Zahavy, Mankowitz, Tamar and Mannor 2017, "Shallow Updates
for Deep Reinforcement Learning", NeurIPS, arXiv 1705.07461; the abstract read,
and the authors' ``NeuralQLearnerShallow.lua`` of
github.com/Shallow-Updates-for-Deep-RL/Shallow_Updates_for_Deep_RL, its
``fitted_q_update``; the paper's body was not available). With ``ls_every`` set,
every ``ls_every`` learner steps (a multiple of the target period, so the refit
falls on a target sync as in the authors' code), once the replay holds
``ls_batch`` transitions:

4. Take ``ls_batch`` distinct transitions from the replay (default None: all
   ``replay_capacity`` = 100,000 of them: the authors refit on the whole replay
   memory, and only once it has filled).
5. Features: the input of the last Dense layer (the 128 ReLU units) of the
   online network, ``rwrl.agents.shallow.head_features``; targets: step 1's y
   from the target network, which equals the online network here, just synced
   (the authors compute them with the online network at the sync).
6. Re-solve the head per action a, on the transitions that took a, by ridge
   regression with a prior at the current weights (bias included, as a feature
   of ones): w_a = (A_a + lambda I)^-1 (b_a + lambda w_a,current), A and b
   averaged over the batch (the authors' code: sums / N), lambda =
   ``ls_lambda`` = 1 (their default); ``rwrl.agents.shallow.refit_head`` with
   lam = lambda N, column a, rows (actions == a).
7. The target network is copied from the refitted one (the authors clone it
   right after); the optimiser's moments are kept; DQN goes on.

**Ablation** (``ls_solver="adam"``): the abstract attributes LS-DQN's gain to
"the large batch size used by the LS method when optimizing the last layer";
a third-party write-up of the paper (PAPERS.md, not verified) reports that it
refitted the head with Adam on mini-batches of 32, 512 and 4,096 instead, larger
being better and LS better than Adam. The paper's settings for it were not
found, so the choices are ours: the same schedule, batch, features, targets
and prior, the head minimised by ``ls_adam_steps`` = 200 Adam steps (learning
rate 1e-3) on mean_i (Q(s_i, a_i) - y_i)^2 + lambda ||head - head_current||^2,
the objective whose exact minimiser is step 6's, each step on the whole batch
(``ls_adam_batch`` None: agent ``ls-dqn-adam``; tests/minatar/test_dqn.py checks
that enough steps reach the ridge solution) or on a mini-batch drawn from it
with replacement (``ls_adam_batch`` = 32, DQN's own batch size: agent
``ls-dqn-adam-32``, the small-batch arm of the claim).

Settings and where each comes from ([M]: MinAtar's ``examples/dqn.py``; [L]: the
LS-DQN authors' Lua code; [C]: our choice, not found in either):

* network [M]: a 3x3 convolution with 16 filters, stride 1, no padding, ReLU;
  a Dense layer of 128 ReLU units; a Dense output per action (6). Weights
  drawn as PyTorch's default layers draw them (uniform, variance 1/(3 fan_in));
  biases start at 0 [C] (PyTorch draws them uniformly too).
* replay [M]: 100,000 transitions (uniform sampling: ``rwrl.minatar.replay``),
  batch 32, one learner step per frame (``samples_per_insert`` 32), learning
  once the replay holds 5,000 transitions: from frame 5,000 on ([C]; MinAtar's
  loop starts at its frame 5,002).
* target network period [M]: 1,000 learner steps. Discount [M]: 0.99.
* epsilon [M]: 1 (uniformly random actions) for the first 5,000 frames, then
  linear from 1.0 to 0.1 over 100,000 frames, then 0.1 (``epsilon_at``).
* optimiser [M]: centred RMSProp, step size 0.00025, squared-gradient and
  gradient momentum 0.95, eps 0.01 added to the root
  (``torch.optim.RMSprop(alpha=0.95, centered=True, eps=0.01, momentum=0.95)``;
  optax's ``eps_in_sqrt=False``). MinAtar trains 5 million frames.
* LS-DQN [L]: FQI targets, one solve per refit, lambda 1 (per sample), the
  whole replay, a refit every 50 target syncs (``between_SRL``; 50,000 learner
  steps with MinAtar's period of 1,000) once the replay has filled, the target
  copied after. [C]: a refit due before the replay holds ``ls_batch``
  transitions is skipped, not deferred; RMSProp's moments are left as they are
  (so does the authors' code).

Shapes: frames (B, 10, 10, C) bool, actions (B,) int32, Q-values (B, A).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from rwrl.agents.base import make_optimiser
from rwrl.agents.config import AgentConfig, ReplayConfig, require_int, require_positive
from rwrl.agents.shallow import check_refit, head_features, refit_head
from rwrl.minatar import AGENTS, check_agent
from rwrl.minatar.replay import FrameTransition

#: how the head is re-solved: the closed-form ridge solve (LS-DQN) or Adam steps (the ablation).
LS_SOLVERS = ("ridge", "adam")
#: transitions whose features are computed at once during a refit (bounds the memory it takes).
FEATURE_CHUNK = 4_096


@dataclasses.dataclass(frozen=True)
class ShallowUpdateConfig(AgentConfig):
    """LS-DQN's refits of the last layer (module docstring, steps 4-7); off while ``ls_every`` is None."""

    #: learner steps between two refits, a multiple of ``target_update_period``; None: plain DQN.
    ls_every: int | None = None
    #: lambda, the prior's weight per sample (the authors' default 1).
    ls_lambda: float = 1.0
    #: transitions in a refit's batch, distinct, <= replay_capacity; None: the whole replay.
    ls_batch: int | None = None
    #: "ridge" (the LS solve) or "adam" (the ablation: Adam steps on the same objective).
    ls_solver: str = "ridge"
    #: Adam steps of the ablation's refit, each on the whole batch or an ``ls_adam_batch`` of it.
    ls_adam_steps: int = 200
    #: Adam's step size in the ablation's refit.
    ls_adam_learning_rate: float = 1e-3
    #: transitions per Adam step of the ablation, drawn from the refit's batch; None: all of it.
    ls_adam_batch: int | None = None

    def __post_init__(self):
        super().__post_init__()
        check_refit(self.ls_every, self.ls_lambda)
        if self.ls_batch is not None:
            require_int(self, "ls_batch")
        require_int(self, "ls_adam_steps")
        require_positive(self, "ls_adam_learning_rate")
        if self.ls_adam_batch is not None:
            require_int(self, "ls_adam_batch")
        if self.ls_solver not in LS_SOLVERS:
            raise ValueError(f"ls_solver={self.ls_solver!r}: must be one of {', '.join(LS_SOLVERS)}")


@dataclasses.dataclass(frozen=True)
class DQNConfig(ReplayConfig, ShallowUpdateConfig):
    """DQN's and LS-DQN's hyperparameters; the defaults are MinAtar's (module docstring)."""

    batch_size: int = 32  # MinAtar's; ReplayConfig's 256 is the continuous agents'
    replay_capacity: int = 100_000  # MinAtar's
    min_replay_size: int = 5_000  # MinAtar's replay start size
    #: one learner step per frame (MinAtar's training frequency 1): batch_size samples per insert.
    samples_per_insert: float = 32.0
    #: filters of the 3x3 convolution.
    conv_features: int = 16
    #: units of the hidden Dense layer, the features LS-DQN refits on.
    hidden_size: int = 128
    #: RMSProp's step size.
    learning_rate: float = 0.00025
    #: RMSProp's decay of the squared gradient's (and, centred, the gradient's) average.
    rms_decay: float = 0.95
    #: RMSProp's momentum.
    rms_momentum: float = 0.95
    #: added to the root of the centred second moment.
    rms_eps: float = 0.01
    #: learner steps between copies of the online network into the target network.
    target_update_period: int = 1_000
    #: exploration probability when the decay starts (after min_replay_size frames).
    epsilon_start: float = 1.0
    #: exploration probability after the decay.
    epsilon_end: float = 0.1
    #: frames over which epsilon falls linearly from epsilon_start to epsilon_end.
    epsilon_decay_frames: int = 100_000

    def __post_init__(self):
        super().__post_init__()
        if self.n_step != 1:
            raise ValueError(f"n_step={self.n_step!r}: this DQN learns from one-step transitions; must be 1")
        for name in ("conv_features", "hidden_size", "target_update_period", "epsilon_decay_frames"):
            require_int(self, name)
        require_positive(self, "learning_rate", "rms_eps")
        for name in ("rms_decay", "rms_momentum", "epsilon_start", "epsilon_end"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}={getattr(self, name)!r}: must be in [0, 1]")
        if self.ls_every is not None and self.ls_every % self.target_update_period:
            raise ValueError(f"ls_every={self.ls_every!r}: must be a multiple of target_update_period="
                             f"{self.target_update_period} (a refit falls on a target sync)")
        if self.ls_batch is not None and self.ls_batch > self.replay_capacity:
            raise ValueError(f"ls_batch={self.ls_batch!r}: must be <= replay_capacity={self.replay_capacity} "
                             "(or None: the whole replay)")

    @property
    def refit_batch(self) -> int:
        """Transitions in a refit's batch: ``ls_batch``, or the whole replay's capacity."""
        return self.replay_capacity if self.ls_batch is None else self.ls_batch


def make_config(agent: str = "dqn", **overrides: Any) -> DQNConfig:
    """Return the config of a named agent (``rwrl.minatar.AGENTS``) with ``overrides`` on top."""
    check_agent(agent)
    names = {f.name for f in dataclasses.fields(DQNConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"unknown DQN setting {unknown[0]!r}: allowed {', '.join(sorted(names))}")
    return DQNConfig(**{**AGENTS[agent], **overrides})


def epsilon_at(frame: int, config: DQNConfig) -> float:
    """Return the exploration probability of the action taken after ``frame`` frames (MinAtar's schedule)."""
    if frame < config.min_replay_size:
        return 1.0
    progress = (frame - config.min_replay_size) / config.epsilon_decay_frames
    return max(config.epsilon_end,
               config.epsilon_start + (config.epsilon_end - config.epsilon_start) * progress)


# ---------------------------------------------------------------- network
#: PyTorch's default weight draw for Conv2d and Linear: uniform, variance 1 / (3 fan_in).
_TORCH_INIT = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


class QNetwork(nn.Module):
    """MinAtar's Q-network: frames (..., 10, 10, C) -> Q-values (..., num_actions)."""

    num_actions: int
    conv_features: int = 16
    hidden_size: int = 128

    @nn.compact
    def __call__(self, frames: jax.Array) -> jax.Array:
        x = frames.astype(jnp.float32)
        x = nn.relu(nn.Conv(self.conv_features, (3, 3), padding="VALID", kernel_init=_TORCH_INIT)(x))
        x = x.reshape(*x.shape[:-3], -1)
        x = nn.relu(nn.Dense(self.hidden_size, kernel_init=_TORCH_INIT)(x))
        return nn.Dense(self.num_actions, kernel_init=_TORCH_INIT)(x)


class TrainingState(NamedTuple):
    """Everything the learner changes; a pytree, saved whole in checkpoints."""

    params: dict
    target_params: dict
    opt_state: optax.OptState
    steps: jax.Array  # () int32, learner steps taken


def make_rmsprop(config: DQNConfig) -> optax.GradientTransformation:
    """Return MinAtar's optimiser: centred RMSProp with momentum, eps added to the root."""
    return optax.rmsprop(config.learning_rate, decay=config.rms_decay, eps=config.rms_eps,
                         eps_in_sqrt=False, centered=True, momentum=config.rms_momentum)


# ---------------------------------------------------------------- learning
def dqn_target(r_t: jax.Array, discount_t: jax.Array, q_t: jax.Array) -> jax.Array:
    """Return the Q-learning target r_t + discount_t * max_a q_t[a] of one transition (q_t: (A,))."""
    return r_t + discount_t * jnp.max(q_t)


def td_loss(network: QNetwork, params, target_params, batch: FrameTransition) -> jax.Array:
    """Return the mean Huber loss (delta 1) of the TD errors Q(s_tm1, a_tm1) - y (steps 1-2)."""
    q_tm1 = network.apply(params, batch.obs_tm1)
    q_t = network.apply(target_params, batch.obs_t)
    y = jax.lax.stop_gradient(jax.vmap(dqn_target)(batch.reward_t, batch.discount_t, q_t))
    q_a = jnp.take_along_axis(q_tm1, batch.action_tm1[:, None].astype(jnp.int32), axis=1)[:, 0]
    return jnp.mean(optax.huber_loss(q_a - y, delta=1.0))


def init_state(network: QNetwork, optimiser, frame_shape: tuple[int, ...], key: jax.Array) -> TrainingState:
    """Initialise the online network at random, the target as its copy, the optimiser at zero."""
    params = network.init(key, jnp.zeros((1, *frame_shape), jnp.float32))
    return TrainingState(params=params, target_params=params, opt_state=optimiser.init(params),
                         steps=jnp.zeros((), jnp.int32))


def update_step(network: QNetwork, optimiser, config: DQNConfig, state: TrainingState,
                batch: FrameTransition) -> tuple[TrainingState, dict[str, jax.Array]]:
    """One learner step (steps 1-3): RMSProp on the TD loss, then the periodic target copy."""
    loss, grads = jax.value_and_grad(td_loss, argnums=1)(network, state.params, state.target_params, batch)
    updates, opt_state = optimiser.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    steps = state.steps + 1
    target_params = optax.periodic_update(params, state.target_params, steps, config.target_update_period)
    new_state = TrainingState(params=params, target_params=target_params, opt_state=opt_state, steps=steps)
    return new_state, {"loss": loss, "grad_norm": optax.global_norm(grads)}


def select_action(network: QNetwork, params, frames: jax.Array, key: jax.Array,
                  epsilon: jax.Array) -> jax.Array:
    """Return (B,) epsilon-greedy actions: uniform with probability epsilon, else argmax_a Q."""
    q = network.apply(params, frames)
    greedy = jnp.argmax(q, axis=-1).astype(jnp.int32)  # ties: the lowest index, as torch's max
    explore_key, uniform_key = jax.random.split(key)
    uniform = jax.random.randint(uniform_key, greedy.shape, 0, q.shape[-1], jnp.int32)
    return jnp.where(jax.random.uniform(explore_key, greedy.shape) < epsilon, uniform, greedy)


def update_then_act(network: QNetwork, optimiser, config: DQNConfig, state: TrainingState,
                    batch: FrameTransition, frames: jax.Array, key: jax.Array, epsilon: jax.Array
                    ) -> tuple[TrainingState, jax.Array, dict[str, jax.Array]]:
    """One learner step, then the next frame's actions with the new parameters (one compiled call).

    The order of MinAtar's loop (learn from frame t, then act on frame t + 1 with
    the updated network), in one dispatch instead of two.
    """
    state, metrics = update_step(network, optimiser, config, state, batch)
    return state, select_action(network, state.params, frames, key, epsilon), metrics


# ---------------------------------------------------------------- the shallow update
def refit_inputs(network: QNetwork, state: TrainingState, batch: FrameTransition
                 ) -> tuple[jax.Array, jax.Array]:
    """Return step 5's head features (N, hidden) of s_tm1 and targets (N,), FEATURE_CHUNK at a time."""
    def one(example):
        obs_tm1, r_t, discount_t, obs_t = example
        features, _ = head_features(network, state.params, obs_tm1[None])
        q_t = network.apply(state.target_params, obs_t[None])[0]
        return features[0], dqn_target(r_t, discount_t, q_t)

    examples = (batch.obs_tm1, batch.reward_t, batch.discount_t, batch.obs_t)
    return jax.lax.map(one, examples, batch_size=FEATURE_CHUNK)


def _head_of(params, path: tuple[str, ...]) -> dict:
    return functools.reduce(lambda node, name: node[name], path, params["params"])


def _with_head(params, path: tuple[str, ...], head: dict) -> dict:
    if not path:
        return {**params, "params": head}
    inner = _with_head({"params": params["params"][path[0]]}, path[1:], head)["params"]
    return {**params, "params": {**params["params"], path[0]: inner}}


def ridge_refit(params, path, features, actions, targets, lam: float, num_actions: int):
    """Return ``params`` with the head re-solved per action (step 6); lam on sums (lambda N)."""
    for a in range(num_actions):
        params = refit_head(params, path, features, targets, lam, column=a, rows=actions == a)
    return params


def adam_refit(params, path, features, actions, targets, lam_per_sample: float, steps: int,
               learning_rate: float, minibatch: int | None = None, key: jax.Array | None = None):
    """Return ``params`` with the head fitted by Adam steps (the ablation).

    Minimises mean_i (Q(s_i, a_i) - y_i)^2 + lambda ||head - head_current||^2 over the
    head's kernel and bias: step 6's objective divided by N, so the same minimiser. Each
    step takes the whole batch (``minibatch`` None) or ``minibatch`` rows of it drawn
    uniformly with replacement with ``key`` folded with the step's number.
    """
    prior = _head_of(params, path)
    optimiser = make_optimiser(learning_rate)

    def objective(head, rows):
        q = features[rows] @ head["kernel"] + head["bias"]
        q_a = jnp.take_along_axis(q, actions[rows][:, None], axis=1)[:, 0]
        distance = sum(jnp.sum((head[k] - prior[k]) ** 2) for k in ("kernel", "bias"))
        return jnp.mean((q_a - targets[rows]) ** 2) + lam_per_sample * distance

    def step(i, carry):
        head, opt_state = carry
        rows = (slice(None) if minibatch is None
                else jax.random.randint(jax.random.fold_in(key, i), (minibatch,), 0, features.shape[0]))
        updates, opt_state = optimiser.update(jax.grad(objective)(head, rows), opt_state)
        return optax.apply_updates(head, updates), opt_state

    head, _ = jax.lax.fori_loop(0, steps, step, (dict(prior), optimiser.init(dict(prior))))
    return _with_head(params, path, head)


def refit_step(network: QNetwork, config: DQNConfig, path: tuple[str, ...], state: TrainingState,
               batch: FrameTransition, key: jax.Array) -> tuple[TrainingState, dict[str, jax.Array]]:
    """Steps 5-7: refit the online head on ``batch`` (ls_batch transitions), copy it to the target.

    ``key`` draws the ablation's mini-batches (unused by the ridge solve).
    """
    features, targets = refit_inputs(network, state, batch)
    actions = batch.action_tm1.astype(jnp.int32)
    n = features.shape[0]
    if config.ls_solver == "ridge":
        params = ridge_refit(state.params, path, features, actions, targets, config.ls_lambda * n,
                             network.num_actions)
    else:
        params = adam_refit(state.params, path, features, actions, targets, config.ls_lambda,
                            config.ls_adam_steps, config.ls_adam_learning_rate, config.ls_adam_batch, key)

    def fit_error(p):
        head = _head_of(p, path)
        q = features @ head["kernel"] + head["bias"]
        return jnp.mean((jnp.take_along_axis(q, actions[:, None], axis=1)[:, 0] - targets) ** 2)

    change = optax.global_norm(jax.tree.map(jnp.subtract, _head_of(params, path), _head_of(state.params, path)))
    metrics = {"refit_error_before": fit_error(state.params), "refit_error_after": fit_error(params),
               "refit_head_change": change}
    return state._replace(params=params, target_params=params), metrics


def _head_path(network: QNetwork, frame_shape: tuple[int, ...]) -> tuple[str, ...]:
    """Return the path of the network's head Dense, found by tracing alone (nothing compiled)."""
    found = []

    def probe(frames):
        params = network.init(jax.random.PRNGKey(0), frames)
        features, path = head_features(network, params, frames)
        found.append(path)
        return features

    jax.eval_shape(probe, jax.ShapeDtypeStruct((1, *frame_shape), jnp.float32))
    return found[0]


@functools.lru_cache(maxsize=8)
def make_agent(frame_shape: tuple[int, ...], num_actions: int, config: DQNConfig) -> "DQN":
    """Return the agent of these sizes and config, built once per process (runs share its compiled functions)."""
    return DQN(frame_shape, num_actions, config)


class DQN:
    """DQN / LS-DQN: the pure functions above, jitted once.

    Not a ``rwrl.agents.base.JittedAgent``: that shell's ``act`` returns
    continuous actions in [-1, 1] with exploration as a static switch; here
    actions are indices and epsilon changes every frame (a traced argument),
    and there is a fourth function, ``refit``.

    Args:
      frame_shape: (10, 10, C), the observation's shape.
      num_actions: A, the number of discrete actions.
      config: hyperparameters; None: ``DQNConfig()`` (DQN at MinAtar's settings).
    """

    def __init__(self, frame_shape: tuple[int, ...], num_actions: int, config: DQNConfig | None = None):
        self.config = DQNConfig() if config is None else config
        self.frame_shape, self.num_actions = tuple(frame_shape), int(num_actions)
        self.network = QNetwork(self.num_actions, self.config.conv_features, self.config.hidden_size)
        self.optimiser = make_rmsprop(self.config)
        self.head_path = _head_path(self.network, self.frame_shape)
        self._init = jax.jit(functools.partial(init_state, self.network, self.optimiser, self.frame_shape))
        self._update = jax.jit(functools.partial(update_step, self.network, self.optimiser, self.config))
        self._act = jax.jit(functools.partial(select_action, self.network))
        self._update_then_act = jax.jit(functools.partial(update_then_act, self.network, self.optimiser,
                                                          self.config), donate_argnums=0)
        self._refit = jax.jit(functools.partial(refit_step, self.network, self.config, self.head_path))

    def init(self, key: jax.Array) -> TrainingState:
        """Return the initial training state for ``key``."""
        return self._init(key)

    def act(self, state: TrainingState, frames: np.ndarray, key: jax.Array, epsilon: float) -> np.ndarray:
        """Return (B,) int32 epsilon-greedy actions for (B, 10, 10, C) frames."""
        return np.asarray(self._act(state.params, frames, key, np.float32(epsilon)))

    def update(self, state: TrainingState, batch: FrameTransition) -> tuple[TrainingState, dict]:
        """Return (new state, metrics) after one learner step on a batch of transitions."""
        return self._update(state, batch)

    def update_then_act(self, state: TrainingState, batch: FrameTransition, frames: np.ndarray,
                        key: jax.Array, epsilon: float) -> tuple[TrainingState, np.ndarray, dict]:
        """Return (new state, (B,) actions for ``frames``, metrics): ``update``, then ``act``.

        The buffers of ``state`` are donated: it must not be used afterwards.
        """
        state, actions, metrics = self._update_then_act(state, batch, frames, key, np.float32(epsilon))
        return state, np.asarray(actions), metrics

    def refit(self, state: TrainingState, batch: FrameTransition, key: jax.Array) -> tuple[TrainingState, dict]:
        """Return (new state, metrics) after one shallow refit of the head on ``batch``."""
        return self._refit(state, batch, key)

    def refit_due(self, steps: int, replay_size: int) -> bool:
        """Return whether a refit follows learner step number ``steps`` (step 4's rule)."""
        every = self.config.ls_every
        return (every is not None and steps > 0 and steps % every == 0
                and replay_size >= self.config.refit_batch)


__all__ = ["DQN", "DQNConfig", "LS_SOLVERS", "make_agent", "QNetwork", "ShallowUpdateConfig", "TrainingState",
           "adam_refit", "dqn_target", "epsilon_at", "make_config", "make_rmsprop", "refit_inputs",
           "ridge_refit", "select_action", "td_loss", "update_step", "update_then_act"]
