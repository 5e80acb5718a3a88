"""Teachers read from ``rwrl run`` directories, students written as ``rwrl run`` directories.

A teacher is a checkpoint of a run (``RUN/checkpoints/ckpt-<steps>/``) whose
agent acts through a deterministic policy network (``DeterministicPolicy``:
D4PG, RC-D4PG, MetaL, BC) or a Gaussian one (``GaussianPolicy``: DMPO, R-MPO,
SR-MPO; distilled by the KL of ``rwrl.distill.policy``). Its agent is rebuilt from the run's
``config.json`` exactly as ``rwrl.datasets.behaviour_policies.load_policy``
rebuilds it, so a student written here loads there.

A student directory holds what ``load_policy`` and the evaluation tools read:

    config.json                the teacher run's config, with the student's
                               ``policy_hidden_sizes`` in both the resolved agent
                               config (``agent``) and ``run.agent_config``, and a
                               ``distill`` entry naming its teacher
    checkpoints/ckpt-<steps>/  a full agent state of the student's config

The checkpoint's policy (and target policy) params are the distilled ones; every
other leaf (critic, target critic, optimiser states, counters) is the student
agent's freshly initialised value: distillation trains only the policy, and
nothing that acts or is evaluated reads the rest. ``<steps>`` is the teacher
checkpoint's, the env steps behind the policy.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from rwrl.datasets.behaviour_policies import (PolicyError, make_vector_env, resolve_checkpoint, restore_agent,
                                              run_env_kwargs)
from rwrl.distill.policy import DETERMINISTIC, GAUSSIAN, Head
from rwrl.domains.names import env_id_of

CONFIG_FILE = "config.json"  # as an ``rwrl run`` directory names it


class DistillError(ValueError):
    """A distillation input is missing, damaged or not supported; the message names it."""


@dataclasses.dataclass
class PolicyRun:
    """A loaded run checkpoint whose policy network can be applied and replaced.

    Attributes:
      checkpoint: the checkpoint directory it came from (None: not yet written).
      config: the run's config.json as a dict (``agent``, ``run``, ...).
      agent: the rebuilt agent (``agent.networks.policy`` is a ``DeterministicPolicy`` or a
        ``GaussianPolicy``).
      state: its full training state.
      step: the checkpoint's env steps.
      obs_size, low, high: observation length and the env's action bounds.
    """

    checkpoint: Path | None
    config: dict[str, Any]
    agent: Any
    state: Any
    step: int
    obs_size: int
    low: np.ndarray
    high: np.ndarray

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        return tuple(self.agent.networks.policy.hidden_sizes)

    @property
    def env_id(self) -> str:
        return env_id_of(self.config["run"]["env"])

    @property
    def env_kwargs(self) -> dict[str, Any]:
        return run_env_kwargs(self.config["run"])

    @property
    def policy_params(self) -> Any:
        return self.state.policy_params

    @property
    def head(self) -> Head:
        """How its policy network's output acts and is distilled (deterministic or Gaussian)."""
        from rwrl.agents.networks import GaussianPolicy
        return GAUSSIAN if isinstance(self.agent.networks.policy, GaussianPolicy) else DETERMINISTIC

    def network_fn(self, params: Any = None) -> Callable[[np.ndarray], Any]:
        """Return obs (B, D) -> the policy network's output for ``params`` (default: its own)."""
        import jax
        apply = jax.jit(self.agent.networks.policy.apply)
        params = self.policy_params if params is None else params
        return lambda obs: jax.tree_util.tree_map(np.asarray, apply(params, np.asarray(obs, np.float32)))

    def unit_policy(self, params: Any = None) -> Callable[[np.ndarray], np.ndarray]:
        """Return obs (B, D) -> actions (B, A) in [-1, 1] of ``params`` (default: its own), as the
        agent acts without exploration (a Gaussian's mean, clipped)."""
        network, head = self.network_fn(params), self.head
        return lambda obs: np.asarray(head.act(network(obs)))


def _env_sizes(env_id: str, env_kwargs: dict[str, Any]) -> tuple[int, np.ndarray, np.ndarray]:
    env = make_vector_env(env_id, env_kwargs, 1)
    try:
        space = env.single_action_space
        return (int(np.prod(env.single_observation_space.shape)),
                np.asarray(space.low, np.float32), np.asarray(space.high, np.float32))
    finally:
        env.close()


def _check_policy(agent: Any, name: str) -> Any:
    from rwrl.agents.networks import DeterministicPolicy, GaussianPolicy

    policy = getattr(getattr(agent, "networks", None), "policy", None)
    if not isinstance(policy, (DeterministicPolicy, GaussianPolicy)):
        raise DistillError(f"agent {name!r}: only teachers with a deterministic policy network "
                           f"(d4pg, rcd4pg, metal, bc) or a Gaussian one (dmpo, rmpo, srmpo) "
                           f"can be distilled; its policy is {type(policy).__name__}")
    return agent


def load_teacher(path: Path) -> PolicyRun:
    """Load run directory or checkpoint ``path`` as a teacher.

    Raises:
      DistillError: naming the path, when it has no checkpoint, its config cannot be
        read, its agent's policy is neither deterministic nor Gaussian, or the state
        does not fit it.
    """
    checkpoint = resolve_checkpoint(path)
    from rwrl.storage.checkpoint import CheckpointError, read_run_config
    try:
        config = read_run_config(checkpoint)
    except CheckpointError as err:
        raise DistillError(str(err)) from err
    run = config["run"]
    if run.get("observation_history"):
        raise DistillError(f"{checkpoint}: its run used observation_history="
                           f"{run['observation_history']}, which distillation does not provide")
    obs_size, low, high = _env_sizes(env_id_of(run["env"]), run_env_kwargs(run))
    try:
        agent, state, step = restore_agent(checkpoint, run["agent"], config.get("agent", {}),
                                           obs_size, low.shape[0])
    except PolicyError as err:
        raise DistillError(str(err)) from err
    _check_policy(agent, run["agent"])
    return PolicyRun(checkpoint, config, agent, state, step, obs_size, low, high)


def student_config(config: dict[str, Any], hidden_sizes: tuple[int, ...],
                   teacher: Path | None) -> dict[str, Any]:
    """Return ``config`` with the policy's hidden sizes set to ``hidden_sizes`` and a ``distill`` entry."""
    config = json.loads(json.dumps(config))  # a deep copy
    config.setdefault("agent", {})["policy_hidden_sizes"] = list(hidden_sizes)
    config["run"]["agent_config"] = {**config["run"].get("agent_config", {}),
                                     "policy_hidden_sizes": list(hidden_sizes)}
    config["distill"] = {"teacher": None if teacher is None else str(teacher),
                         "policy_hidden_sizes": list(hidden_sizes)}
    return config


def new_student(teacher: PolicyRun, hidden_sizes: tuple[int, ...], seed: int) -> PolicyRun:
    """Return a freshly initialised student of ``teacher``'s run with policy ``hidden_sizes``."""
    import jax

    from rwrl.agents import make_agent

    config = student_config(teacher.config, hidden_sizes, teacher.checkpoint)
    name = config["run"]["agent"]
    agent = _check_policy(make_agent(name, teacher.obs_size, teacher.low.shape[0], **config["agent"]), name)
    state = agent.init(jax.random.PRNGKey(seed))
    return PolicyRun(None, config, agent, state, teacher.step, teacher.obs_size, teacher.low, teacher.high)


def with_policy_params(student: PolicyRun, params: Any) -> PolicyRun:
    """Return ``student`` with its policy and target policy params replaced by ``params``.

    Leaves are matched by tree path (``...policy_params<path>``), so a state that
    nests the D4PG state (RC-D4PG's ``ConstrainedState``) is handled alike.
    """
    from rwrl.storage.checkpoint import flatten_pytree, unflatten_like

    arrays = flatten_pytree(student.state)
    for path, leaf in flatten_pytree(params).items():
        hits = [k for k in arrays if k.endswith("policy_params" + path)]
        if not hits:
            raise DistillError(f"the student's state has no policy leaf {path}")
        for k in hits:
            arrays[k] = leaf
    state = unflatten_like(student.state, arrays)
    return dataclasses.replace(student, state=state)


def write_student(student: PolicyRun, directory: Path) -> PolicyRun:
    """Write ``student`` as an ``rwrl run``-style directory; return it with its checkpoint path."""
    from rwrl.storage.atomic_files import atomic_write_bytes
    from rwrl.storage.checkpoint import Checkpoint, flatten_pytree, save_checkpoint

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(student.config, indent=2, sort_keys=True)
    atomic_write_bytes(directory / CONFIG_FILE, (text + "\n").encode())
    checkpoint = Checkpoint(step=student.step, groups={"state": flatten_pytree(student.state)},
                            meta={"distilled_from": student.config["distill"]["teacher"]})
    path = save_checkpoint(directory / "checkpoints", checkpoint, keep=1)
    return dataclasses.replace(student, checkpoint=path)


__all__ = ["CONFIG_FILE", "DistillError", "PolicyRun", "load_teacher", "new_student",
           "student_config", "with_policy_params", "write_student"]
