"""The actor-learner loop of ``rwrl run``: one process, a vector env, one learner.

Each iteration steps the N training envs once with the exploring policy,
stores the transitions in the n-step replay and runs the learner updates that
keep the agent's replay ratio (``rwrl.agents.types.updates_per_vector_step``:
``samples_per_insert`` sampled transitions per inserted one, the fraction
carried across steps). Between iterations, when due, it evaluates the
deterministic policy on a separate vector env and writes a checkpoint.

Counting: ``env_steps`` counts stored transitions. Gymnasium's NEXT_STEP
autoreset spends one vector step per finished episode on the reset (reward 0,
action ignored); that step is masked out of the replay and the episode
statistics and is not counted.

Physics states: an agent with the ``model_set`` capability (R-MPO) gets a
train env made with ``physics_state_info=True`` and a replay that stores, with
each transition, the physics state of the observation its action was taken
in (``info['physics_state']`` of the reset or step that returned that
observation). Other agents' envs and replays are left as they are.

Costs: each stored transition carries the step's cost c_t beside its reward:
``info["cost"]`` (the number of violated constraints), or, when the agent's
config names one in ``cost_constraint``, 1 where that constraint is violated.
An agent with the ``cost_constrained`` capability (RC-D4PG, MetaL) is also
handed each finished training episode's average cost per step under the same
definition (their estimate of J_C). Other agents ignore both.

Resume semantics (see also ``rwrl.metrics.episode_file``):

* A checkpoint holds the agent's training state, the loop's JAX key stream,
  the numpy RNG of replay sampling, the counters (env steps, updates,
  episodes, evaluations, metrics rows, the next due steps, the fractional
  update credit), the accumulated wall-clock per category and, with
  ``save_replay``, the replay buffer (whose pending n-step windows are dropped
  on resume: their episodes do not go on).
* The environments' physics state is not checkpointed: a resumed session
  resets every training env (seeded from the run seed and the session
  number). So that this loses nothing, a due checkpoint waits for the first
  vector step at which no training episode is open (every env has just ended
  one); the suite's episodes all last 1,000 steps and start together, so that
  is at most one episode later. A checkpoint overdue by half of
  ``checkpoint_every`` is taken anyway (envs whose episodes never line up);
  episodes open at such a checkpoint are abandoned on resume: their steps
  count towards ``env_steps`` (they were taken and, with ``save_replay``,
  stored) but they get no metrics row.
* Without ``save_replay`` the resumed replay starts empty and learning waits
  until it holds ``min_replay_size`` transitions again.
* Cadence: a checkpoint is due every ``checkpoint_every`` env steps and
  every ``checkpoint_minutes`` of wall-clock, whichever comes first, so a
  kill loses at most a few minutes of training however long the run (the
  step cadence alone left a 20k-step run with none between step 0 and the
  end). A checkpoint is also written at step 0 and at the end.
* The run ends at the first vector step reaching ``steps``: the same total
  however often it was killed.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from rwrl.agents.replay import NStepReplay
from rwrl.agents.types import updates_per_vector_step
from rwrl.envs.autoreset import EpisodeMarks
from rwrl.storage.checkpoint import Checkpoint
from rwrl.experiments.config import RunConfig
from rwrl.experiments.loop_base import Loop, action_mapper, derived_seed, flat_obs
from rwrl.metrics.accumulator import EpisodeAccumulator


@dataclasses.dataclass
class Counters:
    """The loop's position; all of it goes into every checkpoint."""

    env_steps: int = 0  #: stored transitions so far
    updates: int = 0  #: learner updates so far
    compiles: int = 0  #: updates that compiled the update (one per session), timed apart
    episodes: int = 0  #: finished training episodes (rows with phase "train")
    evaluations: int = 0  #: evaluations run
    eval_episodes: int = 0  #: finished evaluation episodes (rows with phase "eval")
    rows: int = 0  #: rows in metrics.jsonl
    next_eval: int = 0  #: env steps at which the next evaluation is due
    last_eval: int = -1  #: env steps of the last evaluation
    next_checkpoint: int = 0  #: env steps at which the next checkpoint is due
    last_checkpoint: int = -1  #: env steps of the last checkpoint
    update_credit: float = 0.0  #: fractional learner updates carried to the next step
    last_eval_return: float = float("nan")  #: mean return of the last evaluation
    session: int = 0  #: 0 for the first process, +1 per resume


def step_cost(info: dict[str, Any], constraint_names: tuple[str, ...],
              cost_constraint: str | None) -> np.ndarray:
    """Return the (N,) costs of one vector step: ``info["cost"]``, or the named constraint's violations.

    Args:
      info: the batched step info (``cost`` (N,), ``constraints`` (N, K) bool, True = satisfied).
      constraint_names: the K names, in ``info["constraints"]`` order.
      cost_constraint: None for ``info["cost"]``, else one of ``constraint_names``.
    """
    if cost_constraint is None:
        return np.asarray(info["cost"], np.float64).reshape(-1)
    flags = np.asarray(info["constraints"], bool)
    return (~flags.reshape(len(flags), -1)[:, constraint_names.index(cost_constraint)]).astype(np.float64)


def episode_cost(row: dict[str, Any], cost_constraint: str | None) -> float:
    """Return an episode row's average cost per step, the cost as ``step_cost`` defines it."""
    if cost_constraint is None:
        return row["cost"] / max(row["length"], 1)
    return float(row[f"violation_rate/{cost_constraint}"])


class Trainer(Loop):
    """Trains one agent on one task online; see the module docstring for the semantics.

    Args:
      config: the run's config.
      agent: an ``rwrl.agents`` agent.
      train_env, eval_env: Gymnasium vector envs (N = config.num_envs and
        config.eval_episodes) with NEXT_STEP autoreset and the info keys
        ``constraints`` and ``cost``.
      run_dir: where ``metrics.jsonl`` and ``checkpoints/`` live.
      hook: called after every vector step with the trainer (tests kill runs from it).
      progress: report progress (a bar on a terminal, plain lines otherwise).
    """

    CLOCK = "env_steps"

    def __init__(self, config: RunConfig, agent: Any, train_env: Any, eval_env: Any,
                 run_dir: Path, hook: Callable[["Trainer"], None] | None = None,
                 progress: bool = True):
        super().__init__(config, agent, eval_env, run_dir, Counters(), hook, progress)
        self.train_env = train_env
        self.obs_size = int(np.prod(train_env.single_observation_space.shape))
        self.action_size = int(np.prod(train_env.single_action_space.shape))
        self._env_actions = action_mapper(train_env.single_action_space)
        ac = agent.config
        self.state_size = self._physics_state_size(agent, train_env)
        self.replay = self._new_replay()
        self._updates_per_step = updates_per_vector_step(ac, config.num_envs)
        self._min_replay = max(ac.min_replay_size, 1)
        self.constraint_names = tuple(getattr(train_env.unwrapped, "constraint_names", ()))
        self.cost_constraint = ac.cost_constraint if agent.capabilities.cost_constrained else None
        if self.cost_constraint is not None and self.cost_constraint not in self.constraint_names:
            raise ValueError(f"cost_constraint={self.cost_constraint!r}: not a constraint of this "
                             f"env; allowed: {self.constraint_names} or None (info['cost'])")
        n = config.num_envs
        # Per session (set again by each ``run``): the envs' open episodes.
        self.obs = np.zeros((n, self.obs_size), np.float32)  #: current observations, flat
        #: physics states of ``obs`` (N, state_size), when the agent uses them
        self.physics_state = np.zeros((n, self.state_size)) if self.state_size else None
        self.marks = EpisodeMarks(n)  #: which envs' next step is an autoreset
        self.in_episode = np.zeros(n, bool)  #: envs with steps taken in an unfinished episode
        self.accumulator = EpisodeAccumulator(n, self.constraint_names)

    # ------------------------------------------------------------ state

    @staticmethod
    def _physics_state_size(agent: Any, train_env: Any) -> int:
        """Return the length of the physics states the agent stores (0: it stores none).

        The env must have been made with ``physics_state_info=True``
        (``rwrl.experiments.run.make_env_for`` does so for such agents).
        """
        if not agent.capabilities.model_set:
            return 0
        env = train_env.unwrapped
        if not getattr(env, "physics_state_info", False):
            raise ValueError(f"agent {type(agent).__name__} needs info['physics_state']: make its "
                             f"env an rwrl env with physics_state_info=True, not {type(env).__name__}")
        return int(env.physics_state_size)

    def _new_replay(self) -> NStepReplay:
        ac = self.agent.config
        return NStepReplay(ac.replay_capacity, self.obs_size, self.action_size,
                           self.config.num_envs, ac.n_step, ac.discount, self.state_size)

    def _restore_extra(self, checkpoint: Checkpoint) -> None:
        replay = checkpoint.groups.get("replay")
        if replay is not None:
            # The pending n-step windows belong to episodes that will not go on.
            pending = {"pending_count": np.zeros(self.config.num_envs, np.int64)}
            self.replay.load_state_dict({**replay, **pending})

    def _restore_failed(self) -> None:
        self.replay = self._new_replay()  # it may hold part of the bad checkpoint's buffer

    def _extra_groups(self) -> dict[str, Any]:
        return {"replay": self.replay.state_dict()} if self.config.save_replay else {}

    def _extra_summary(self) -> dict[str, Any]:
        return {"env_steps_per_s": self.counters.env_steps / max(self.stopwatch.totals["total"], 1e-9)}

    # ------------------------------------------------------------- loop

    def _start_session(self) -> None:
        """Reset every training env (seeded from the run seed and the session number)."""
        seed = derived_seed(self.config.seed, "train", self.counters.session)
        obs, info = self.train_env.reset(seed=seed)
        self.obs = flat_obs(obs)
        if self.state_size:
            self.physics_state = np.asarray(info["physics_state"], np.float64)
        self.marks.reset()
        self.in_episode[:] = False
        self.accumulator.clear(slice(None))
        self.accumulator.observe_reset(np.arange(self.config.num_envs), info)

    def _advance(self) -> None:
        self._vector_step()
        self._learn()

    def _vector_step(self) -> None:
        sw, c = self.stopwatch, self.counters
        with sw.time("act"):
            actions = self.agent.act(self.state, self.obs, self.keys.next(), explore=True)
        with sw.time("env"):
            obs, reward, terminated, truncated, info = self.train_env.step(self._env_actions(actions))
        with sw.time("replay"):
            next_obs = flat_obs(obs)
            active, done = self.marks.step(terminated, truncated)
            if active.any():
                self.replay.add(self.obs, actions, reward, next_obs, terminated, truncated,
                                mask=None if active.all() else active, state=self.physics_state,
                                cost=step_cost(info, self.constraint_names, self.cost_constraint))
            self.accumulator.add_step(active, reward, info)
            if not active.all():
                self.accumulator.observe_reset(np.flatnonzero(~active), info)
            c.env_steps += int(active.sum())
            if done.any():
                self._finish_episodes(np.flatnonzero(done))
        self.in_episode = (self.in_episode | active) & ~done
        self.obs = next_obs
        if self.state_size:
            self.physics_state = np.asarray(info["physics_state"], np.float64)

    def _finish_episodes(self, ids: np.ndarray) -> None:
        learner = self._learner_columns()
        rows = []
        for i in ids:
            rows.append({**self._row_context("train"), "episode": self.counters.episodes,
                         "env_index": int(i), **self.accumulator.row(int(i)), **learner})
            self.counters.episodes += 1
        self.accumulator.clear(ids)
        self.log.write(rows)
        self.counters.rows = self.log.rows
        if self.agent.capabilities.cost_constrained:
            costs = np.array([episode_cost(row, self.cost_constraint) for row in rows], np.float32)
            self.state = self.agent.observe_episodes(self.state, costs)

    def _learn(self) -> None:
        c = self.counters
        if len(self.replay) < self._min_replay:
            return
        c.update_credit += self._updates_per_step
        count = int(c.update_credit)
        c.update_credit -= count
        batch_size = self.agent.config.batch_size
        for _ in range(count):
            with self.stopwatch.time("replay"):
                batch = self.replay.sample(self.np_rng, batch_size)
            self._update(batch)

    def _checkpoint_due(self, final: bool) -> bool:
        """Due (by steps or by wall-clock) and no episode open, or overdue, or the last step.

        Overdue: half an interval past due, by steps or by wall-clock.
        """
        c, cfg = self.counters, self.config
        if final:
            return c.last_checkpoint != c.env_steps
        waited = (time.perf_counter() - self._last_checkpoint_time) / (60.0 * cfg.checkpoint_minutes)
        if c.env_steps < c.next_checkpoint and waited < 1.0:
            return False
        overdue = c.env_steps >= c.next_checkpoint + cfg.checkpoint_every // 2 or waited >= 1.5
        return overdue or not self.in_episode.any()
