"""A tiny vector env and a tiny agent, so the loop's mechanics test in seconds.

``TargetVectorEnv``: N envs with Gymnasium's NEXT_STEP autoreset, episodes of
``time_limit`` steps (truncated, never terminated). The observation is
(step / time_limit, a per-episode target in [-0.5, 0.5], 1); the reward is
1 - |action - target|; two constraints: ``small_action`` (|a| <= 0.5) and
``positive_action`` (a >= 0). Its whole state comes and goes with
``env_state`` / ``restore_env_state`` (``StatelessTargetVectorEnv``: the
same env without them, as a user's own env). ``TinyAgent``: a linear policy trained by one
jit-compiled regression step per update, with the fields the loop reads from
an agent config.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np

from rwrl.agents.capabilities import Capabilities
from rwrl.experiments.config import RunConfig
from rwrl.experiments.run import RunHooks

OBS_SIZE = 3


class TargetVectorEnv(gymnasium.vector.VectorEnv):
    """N copies of the target-following toy task (see the module docstring)."""

    constraint_names = ("small_action", "positive_action")

    def __init__(self, num_envs: int, time_limit: int = 10):
        self.num_envs, self.time_limit = num_envs, time_limit
        self.single_observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (OBS_SIZE,))
        self.single_action_space = gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.observation_space = gymnasium.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gymnasium.vector.utils.batch_space(self.single_action_space, num_envs)
        self._rng = np.random.default_rng(0)
        self._t = np.zeros(num_envs, np.int64)
        self._target = np.zeros(num_envs)
        self._needs_reset = np.zeros(num_envs, bool)

    def _obs(self) -> np.ndarray:
        ones = np.ones(self.num_envs)
        return np.stack([self._t / self.time_limit, self._target, ones], axis=1)

    def _info(self, actions: np.ndarray) -> dict[str, Any]:
        a = actions[:, 0]
        constraints = np.stack([np.abs(a) <= 0.5, a >= 0], axis=1)
        return {"constraints": constraints, "cost": (~constraints).sum(1).astype(float)}

    def _start(self, ids: np.ndarray) -> None:
        self._t[ids] = 0
        self._target[ids] = self._rng.uniform(-0.5, 0.5, size=len(ids))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._start(np.arange(self.num_envs))
        self._needs_reset[:] = False
        return self._obs(), self._info(np.zeros((self.num_envs, 1)))

    def env_state(self) -> dict[str, np.ndarray]:
        return {"rng": np.array(json.dumps(self._rng.bit_generator.state)), "t": self._t.copy(),
                "target": self._target.copy(), "needs_reset": self._needs_reset.copy()}

    def restore_env_state(self, state: dict[str, np.ndarray]) -> None:
        for name in ("t", "target", "needs_reset"):
            if np.shape(state[name]) != (self.num_envs,):
                raise ValueError(f"env state {name} has shape {np.shape(state[name])}")
        self._rng = np.random.default_rng()
        self._rng.bit_generator.state = json.loads(str(state["rng"]))
        self._t, self._target = state["t"].copy(), state["target"].copy()
        self._needs_reset = state["needs_reset"].copy()

    def step(self, actions):
        actions = np.asarray(actions, float).reshape(self.num_envs, 1)
        reward = np.where(self._needs_reset, 0.0, 1.0 - np.abs(actions[:, 0] - self._target))
        resetting = self._needs_reset.copy()
        self._t += ~resetting
        self._start(np.flatnonzero(resetting))
        truncated = ~resetting & (self._t >= self.time_limit)
        self._needs_reset = truncated
        terminated = np.zeros(self.num_envs, bool)
        return self._obs(), reward, terminated, truncated, self._info(actions)


class StatelessTargetVectorEnv(gymnasium.vector.VectorWrapper):
    """``TargetVectorEnv`` under a plain wrapper, without ``env_state``: a user's own env."""

    def __init__(self, num_envs: int, time_limit: int = 10):
        super().__init__(TargetVectorEnv(num_envs, time_limit))


@dataclasses.dataclass(frozen=True)
class TinyConfig:
    batch_size: int = 16
    n_step: int = 2
    discount: float = 0.9
    replay_capacity: int = 5_000
    min_replay_size: int = 32
    samples_per_insert: float = 4.0
    learning_rate: float = 0.5


class TinyAgent:
    """A linear policy regressed onto the target; its state has params, an optimiser count and a key."""

    capabilities = Capabilities()  # a plain online agent

    def __init__(self, obs_size: int, action_size: int, config: TinyConfig = TinyConfig()):
        self.config, self.obs_size, self.action_size = config, obs_size, action_size
        self._update = jax.jit(self._update_fn)
        self._act = jax.jit(self._act_fn, static_argnums=3)

    def init(self, key):
        w = 0.01 * jax.random.normal(key, (self.obs_size, self.action_size))
        return {"params": {"w": w}, "opt": {"count": jnp.zeros((), jnp.int32)}}

    def _act_fn(self, state, obs, key, explore):
        action = jnp.tanh(obs @ state["params"]["w"])
        if explore:
            action = action + 0.3 * jax.random.normal(key, action.shape)
        return jnp.clip(action, -1.0, 1.0)

    def act(self, state, obs, key, explore):
        return np.asarray(self._act(state, jnp.asarray(obs, jnp.float32), key, bool(explore)))

    def _update_fn(self, state, batch, key):
        def loss(w):  # the obs column 1 is the target: regress the action onto it
            return jnp.mean((jnp.tanh(batch.obs_tm1 @ w)[:, 0] - batch.obs_tm1[:, 1]) ** 2)
        value, grad = jax.value_and_grad(loss)(state["params"]["w"])
        w = state["params"]["w"] - self.config.learning_rate * grad
        return ({"params": {"w": w}, "opt": {"count": state["opt"]["count"] + 1}},
                {"loss": value})

    def update(self, state, batch, key):
        return self._update(state, batch, key)


_AGENTS: dict[tuple, TinyAgent] = {}


def tiny_agent_factory(config: RunConfig, obs_size: int, action_size: int) -> TinyAgent:
    """Share one agent (and its compiled functions) per shape and config across runs."""
    key = (obs_size, action_size, tuple(sorted(config.agent_config.items())))
    if key not in _AGENTS:
        _AGENTS[key] = TinyAgent(obs_size, action_size, TinyConfig(**config.agent_config))
    return _AGENTS[key]


def fake_env_factory(config: RunConfig, num_envs: int) -> TargetVectorEnv:
    return TargetVectorEnv(num_envs, time_limit=config.env_kwargs.get("time_limit", 10))


def stateless_env_factory(config: RunConfig, num_envs: int) -> StatelessTargetVectorEnv:
    return StatelessTargetVectorEnv(num_envs, time_limit=config.env_kwargs.get("time_limit", 10))


def fake_hooks(on_step=None, env_factory=fake_env_factory) -> RunHooks:
    return RunHooks(agent_factory=tiny_agent_factory, env_factory=env_factory,
                    on_step=on_step, progress=False)


def tiny_config(**changes) -> RunConfig:
    """A run of 600 env steps: N=4 envs, 10-step episodes, checkpoints every 3 vector-episodes."""
    defaults = dict(agent="d4pg", env="fake-target", steps=600, num_envs=4, eval_every=200,
                    eval_episodes=2, checkpoint_every=120, env_kwargs={"time_limit": 10},
                    report=False)
    return RunConfig(**{**defaults, **changes})


class Killed(Exception):
    """Stands for SIGKILL inside the process: nothing after it runs."""


def kill_after(iterations: int):
    """Return a loop hook that raises ``Killed`` on the loop's ``iterations``-th iteration."""
    count = {"n": 0}

    def hook(trainer):
        count["n"] += 1
        if count["n"] == iterations:
            raise Killed()
    return hook
