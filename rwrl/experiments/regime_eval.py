"""Evaluation on every regime of a run with a ``regime_spec`` (continual learning).

A run whose env switches between physical regimes (``rwrl.challenges.regime``)
is evaluated, at each evaluation, on EVERY regime of its schedule, not only on
the one it is training on: Continual World (Wolczyk et al. 2021) evaluates
all tasks at each evaluation, which gives forgetting (the regimes trained
before) and the curves of regimes not trained yet from the same rows, at a
cost that does not change with the run's position (a run that evaluated
only the regimes seen so far would need a resumed run to know them too).

The evaluation env is one vector env of K x E envs (``ConcatVectorEnv``): K
copies of the run's evaluation env, copy k made with ``regime_spec``'s
``eval_regime`` = k, each of E = ``eval_episodes`` envs. Its rows carry the
evaluated regime (``regime``, from ``info['regime']``); the loop adds the
regime the run is training on (``train_regime``: the regime most training
envs are in, ``training_regime``). Copies are reset with the same seed, so
regime k's episode i starts where regime j's does as far as the physics lets.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from rwrl.experiments.config import RunConfig, task_facts
from rwrl.core.env_state import EnvState, under, with_prefix

REGIME_SPEC = "regime_spec"


def regime_count(config: RunConfig) -> int:
    """Return the number K of regimes of ``config``'s env (0: no ``regime_spec`` on)."""
    if config.dataset is not None or not config.env_kwargs.get(REGIME_SPEC):
        return 0
    from rwrl.challenges.regime import parse_regime
    spec = parse_regime(config.env_kwargs[REGIME_SPEC], task_facts(config.env))
    return 0 if spec is None else len(spec.values)


def pinned(config: RunConfig, regime: int) -> RunConfig:
    """Return ``config`` with its env pinned to ``regime`` (``regime_spec['eval_regime']``)."""
    spec = {**config.env_kwargs[REGIME_SPEC], "eval_regime": regime}
    return config.replace(env_kwargs={**config.env_kwargs, REGIME_SPEC: spec})


def make_eval_env(config: RunConfig, env_factory: Callable[[RunConfig, int], Any]) -> Any:
    """Return the run's evaluation env: per regime when its eval env has regimes, else one.

    Args:
      config: the run's config (its ``eval_config()`` builds the evaluation envs).
      env_factory: fn(config, num_envs) -> vector env (``RunHooks.env_factory``).
    """
    eval_config = config.eval_config()
    count = regime_count(eval_config)
    if not count:
        return env_factory(eval_config, config.eval_episodes)
    return ConcatVectorEnv([env_factory(pinned(eval_config, k), config.eval_episodes)
                            for k in range(count)])


def training_regime(regimes: np.ndarray | None) -> int | None:
    """Return the regime most of the training envs are in (ties: the lowest); None when unknown.

    Args:
      regimes: (N,) int, each training env's latest regime (-1: none yet), or None.
    """
    if regimes is None or not (regimes >= 0).any():
        return None
    return int(np.argmax(np.bincount(regimes[regimes >= 0])))


class ConcatVectorEnv(VectorEnv):
    """Vector envs side by side as one: env j of copy k is env k * E + j.

    The copies must have the same single observation and action spaces and
    Gymnasium's NEXT_STEP autoreset; their infos the same keys. ``reset``
    seeds every copy with the same seed. ``env_state`` holds copy k's under
    '<k>/' (every copy must have ``env_state``).

    Args:
      envs: the K vector envs (each with its own ``num_envs``).
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, envs: Sequence[VectorEnv]):
        if not envs:
            raise ValueError("envs: give at least one vector env")
        first = envs[0]
        for k, env in enumerate(envs):
            mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
            if AutoresetMode(mode) is not AutoresetMode.NEXT_STEP:
                raise ValueError(f"envs[{k}]: autoreset_mode must be NEXT_STEP, got {mode!r}")
            if (env.single_observation_space != first.single_observation_space
                    or env.single_action_space != first.single_action_space):
                raise ValueError(f"envs[{k}]: its spaces differ from envs[0]'s")
        self.envs = list(envs)
        self._ends = np.cumsum([env.num_envs for env in self.envs])
        self.num_envs = int(self._ends[-1])
        self.single_observation_space = first.single_observation_space
        self.single_action_space = first.single_action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.constraint_names = tuple(getattr(first.unwrapped, "constraint_names", ()))

    def _split(self, batch: np.ndarray) -> list[np.ndarray]:
        return np.split(np.asarray(batch), self._ends[:-1])

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        options = dict(options or {})
        masks = self._split(options.pop("reset_mask")) if "reset_mask" in options else None
        results = []
        for k, env in enumerate(self.envs):
            sub = options if masks is None else {**options, "reset_mask": masks[k]}
            results.append(env.reset(seed=seed, options=sub or None))
        obs, infos = zip(*results)
        return np.concatenate(obs), concat_infos(infos)

    def step(self, actions):
        results = [env.step(a) for env, a in zip(self.envs, self._split(actions))]
        obs, rewards, terminated, truncated, infos = zip(*results)
        return (np.concatenate(obs), np.concatenate(rewards), np.concatenate(terminated),
                np.concatenate(truncated), concat_infos(infos))

    def env_state(self) -> EnvState:
        state: EnvState = {}
        for k, env in enumerate(self.envs):
            state.update(with_prefix(f"{k}/", env.env_state()))
        return state

    def restore_env_state(self, state: EnvState) -> None:
        for k, env in enumerate(self.envs):
            env.restore_env_state(under(f"{k}/", state))

    def close_extras(self, **kwargs) -> None:
        for env in self.envs:
            env.close()


def concat_infos(infos: Sequence[dict]) -> dict:
    """Return vector infos of the same keys concatenated along the env axis (nested dicts too)."""
    out = {}
    for key, value in infos[0].items():
        if isinstance(value, dict):
            out[key] = concat_infos([info[key] for info in infos])
        else:
            out[key] = np.concatenate([np.asarray(info[key]) for info in infos])
    return out


__all__ = ["ConcatVectorEnv", "concat_infos", "make_eval_env", "pinned", "regime_count",
           "training_regime"]
