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

Physics states: an agent with ``uses_physics_state = True`` (R-MPO) gets the
train env's ``physics_state_info`` switched on and a replay that stores, with
each transition, the physics state of the observation its action was taken
in (``info['physics_state']`` of the reset or step that returned that
observation). Other agents' envs and replays are left as they are.

Costs: each stored transition carries the step's cost c_t beside its reward:
``info["cost"]`` (the number of violated constraints), or, when the agent's
config names one in ``cost_constraint``, 1 where that constraint is violated.
An agent with an ``observe_episodes(state, costs)`` method (the constrained
agents) is also handed each finished training episode's average cost per step
under the same definition (their estimate of J_C). Other agents ignore both.

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

import jax
import numpy as np

from rwrl.agents.replay import NStepReplay
from rwrl.agents.types import updates_per_vector_step
from rwrl.core.seeding import stream_id
from rwrl.envs.autoreset import EpisodeMarks
from rwrl.experiments.checkpoint import (Checkpoint, CheckpointError, flatten_pytree,
                                         save_checkpoint, unflatten_like)
from rwrl.experiments.config import RunConfig
from rwrl.experiments.progress import Progress, Stopwatch
from rwrl.metrics.accumulator import EpisodeAccumulator
from rwrl.metrics.episode_file import EpisodeFile


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


def derived_seed(seed: int, purpose: str, index: int) -> int:
    """Return a seed for one use of randomness, independent of the others."""
    return int(np.random.SeedSequence([seed, stream_id(purpose), index]).generate_state(1)[0])


class KeyStream:
    """JAX keys for act and update, split in blocks so a key costs no dispatch.

    Checkpointable: the state is the block's parent key and the position in it.
    """

    _BLOCK = 1024

    def __init__(self, key: np.ndarray, position: int = 0):
        self._parent = np.asarray(key, np.uint32)
        self._refill()
        self._position = position

    def _refill(self) -> None:
        keys = np.asarray(jax.random.split(jax.numpy.asarray(self._parent), self._BLOCK + 1))
        self._next_parent, self._block = keys[0], keys[1:]
        self._position = 0

    def next(self) -> np.ndarray:
        if self._position == self._BLOCK:
            self._parent = self._next_parent
            self._refill()
        key = self._block[self._position]
        self._position += 1
        return key

    def state(self) -> dict[str, np.ndarray]:
        return {"key_parent": self._parent.copy(), "key_position": np.array(self._position)}


def _flat_obs(obs: Any) -> np.ndarray:
    return np.asarray(obs, np.float32).reshape(len(obs), -1)


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


def run_eval_episodes(agent: Any, state: Any, env: Any, seed: int, keys: KeyStream,
                      constraint_names: tuple[str, ...],
                      env_actions: Callable[[np.ndarray], np.ndarray]) -> list[dict[str, Any]]:
    """Run one episode per env of the vector ``env`` with the deterministic policy.

    Shared by the online and the offline loops. The env is reset with ``seed``;
    steps after an env's episode ended are not counted (whatever its autoreset).

    Returns:
      One episode row per env (the ``EpisodeAccumulator`` columns), in env order.
    """
    n = env.num_envs
    obs, info = env.reset(seed=seed)
    accumulator = EpisodeAccumulator(n, constraint_names)
    accumulator.observe_reset(np.arange(n), info)
    done = np.zeros(n, bool)
    while not done.all():
        actions = agent.act(state, _flat_obs(obs), keys.next(), explore=False)
        obs, reward, terminated, truncated, info = env.step(env_actions(actions))
        active = ~done
        accumulator.add_step(active, reward, info)
        done |= active & (np.asarray(terminated) | np.asarray(truncated))
    return [accumulator.row(i) for i in range(n)]


class Trainer:
    """Trains one agent on one task; see the module docstring for the semantics.

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

    def __init__(self, config: RunConfig, agent: Any, train_env: Any, eval_env: Any,
                 run_dir: Path, hook: Callable[["Trainer"], None] | None = None,
                 progress: bool = True):
        self.config, self.agent = config, agent
        self.train_env, self.eval_env = train_env, eval_env
        self.run_dir, self.hook, self._show_progress = Path(run_dir), hook, progress
        self.obs_size = int(np.prod(train_env.single_observation_space.shape))
        space = train_env.single_action_space
        self.action_size = int(np.prod(space.shape))
        self._action_low, self._action_high = np.asarray(space.low), np.asarray(space.high)
        self._scale_actions = not (np.all(self._action_low == -1) and np.all(self._action_high == 1))
        ac = agent.config
        self.state_size = self._physics_state_size(agent, train_env)
        self.replay = self._new_replay()
        self._updates_per_step = updates_per_vector_step(ac, config.num_envs)
        self._min_replay = max(ac.min_replay_size, 1)
        self.constraint_names = tuple(getattr(train_env.unwrapped, "constraint_names", ()))
        self.cost_constraint = getattr(ac, "cost_constraint", None)
        if self.cost_constraint is not None and self.cost_constraint not in self.constraint_names:
            raise ValueError(f"cost_constraint={self.cost_constraint!r}: not a constraint of this "
                             f"env; allowed: {self.constraint_names} or None (info['cost'])")
        n = config.num_envs
        # ---- the whole training state, each piece set here once.
        # Checkpointed (init_fresh or restore replace them together):
        self.counters = Counters()
        self.stopwatch = Stopwatch()
        self.state: Any = None  #: the agent's training state (a pytree)
        self.keys: KeyStream | None = None  #: JAX keys of act and update
        self.np_rng: np.random.Generator | None = None  #: replay sampling
        self.last_metrics: dict[str, Any] = {}  #: the learner's last update metrics
        # Per session (set again by each ``run``): the envs' open episodes and the outputs.
        self.obs = np.zeros((n, self.obs_size), np.float32)  #: current observations, flat
        #: physics states of ``obs`` (N, state_size), when the agent uses them
        self.physics_state = np.zeros((n, self.state_size)) if self.state_size else None
        self.marks = EpisodeMarks(n)  #: which envs' next step is an autoreset
        self.in_episode = np.zeros(n, bool)  #: envs with steps taken in an unfinished episode
        self.accumulator = EpisodeAccumulator(n, self.constraint_names)
        self.log: EpisodeFile | None = None  #: metrics.jsonl, open while running
        self.progress: Progress | None = None
        self._session_start = 0.0  #: perf_counter at this session's start
        self._prior_total = 0.0  #: loop wall-clock of the earlier sessions, seconds
        self._compiled = False  #: the update has been compiled in this process
        self._last_checkpoint_time = 0.0  #: perf_counter of this session's last checkpoint

    # ------------------------------------------------------------ state

    @staticmethod
    def _physics_state_size(agent: Any, train_env: Any) -> int:
        """Switch on the env's physics states if the agent uses them; return their size (0: off)."""
        if not getattr(agent, "uses_physics_state", False):
            return 0
        env = train_env.unwrapped
        if not hasattr(env, "physics_state_info"):
            raise ValueError(f"agent {type(agent).__name__} needs info['physics_state'], which "
                             f"{type(env).__name__} does not provide (use an rwrl env)")
        env.physics_state_info = True
        return int(env.physics_state_size)

    def _new_replay(self) -> NStepReplay:
        ac = self.agent.config
        return NStepReplay(ac.replay_capacity, self.obs_size, self.action_size,
                           self.config.num_envs, ac.n_step, ac.discount, self.state_size)

    def init_fresh(self) -> None:
        """Initialise the agent and every random stream from the run seed."""
        init_key, loop_key = jax.random.split(jax.random.PRNGKey(self.config.seed))
        self.state = self.agent.init(init_key)
        self.keys = KeyStream(np.asarray(loop_key))
        self.np_rng = np.random.default_rng(derived_seed(self.config.seed, "replay", 0))

    def restore(self, checkpoint: Checkpoint) -> None:
        """Continue from ``checkpoint`` (a new session: fresh episodes).

        Nothing changes unless every piece restores.

        Raises:
          CheckpointError: the checkpoint lacks a piece or a piece does not fit.
        """
        template = self.agent.init(jax.random.PRNGKey(0))
        replay = None
        try:
            state = unflatten_like(template, checkpoint.groups["state"])
            loop = checkpoint.groups["loop"]
            keys = KeyStream(loop["key_parent"], int(loop["key_position"]))
            np_rng = np.random.default_rng()
            np_rng.bit_generator.state = checkpoint.meta["numpy_rng"]
            counters = Counters(**checkpoint.meta["counters"])
            stopwatch = Stopwatch(checkpoint.meta["timing"])
            replay = checkpoint.groups.get("replay")  # loaded last: it alone changes self
            if replay is not None:
                # The pending n-step windows belong to episodes that will not go on.
                pending = {"pending_count": np.zeros(self.config.num_envs, np.int64)}
                self.replay.load_state_dict({**replay, **pending})
        except (KeyError, TypeError, ValueError) as err:
            if replay is not None:  # it may hold part of the bad checkpoint's buffer
                self.replay = self._new_replay()
            where = checkpoint.path or f"step {checkpoint.step}"
            raise CheckpointError(f"{where}: cannot restore ({type(err).__name__}: {err})") from err
        counters.session += 1
        self.state, self.keys, self.np_rng = state, keys, np_rng
        self.counters, self.stopwatch = counters, stopwatch

    # ------------------------------------------------------------- loop

    def run(self) -> dict[str, Any]:
        """Train until ``config.steps`` env steps; return the summary of the run."""
        c = self.counters
        self._session_start = self._last_checkpoint_time = time.perf_counter()
        self._prior_total = self.stopwatch.totals["total"]
        self._compiled = False
        self.log = EpisodeFile(self.run_dir / "metrics.jsonl", sync=False)
        if self.log.rows != c.rows:
            self.log.close()
            raise RuntimeError(f"{self.log.path} holds {self.log.rows} rows, the counters "
                               f"{c.rows}: truncate it to the checkpoint's count first")
        self.progress = Progress(self.config.steps, c.env_steps, self._show_progress)
        self.progress.set_eval_return(c.last_eval_return)
        try:
            self._reset_train_envs()
            while True:
                self._at_boundary(final=c.env_steps >= self.config.steps)
                if c.env_steps >= self.config.steps:
                    break
                self._vector_step()
                self._learn()
                self.progress.update(c.env_steps, c.updates)
                if self.hook is not None:
                    self.hook(self)
        finally:
            self.stopwatch.totals["total"] = self._wall_time()
            self.progress.close()
            self.log.close()
        return self.summary()

    def _wall_time(self) -> float:
        """Seconds of loop wall-clock over every session of the run."""
        return self._prior_total + time.perf_counter() - self._session_start

    def _reset_train_envs(self) -> None:
        seed = derived_seed(self.config.seed, "train", self.counters.session)
        obs, info = self.train_env.reset(seed=seed)
        self.obs = _flat_obs(obs)
        if self.state_size:
            self.physics_state = np.asarray(info["physics_state"], np.float64)
        self.marks.reset()
        self.in_episode[:] = False
        self.accumulator.clear(slice(None))
        self.accumulator.observe_reset(np.arange(self.config.num_envs), info)

    def _env_actions(self, actions: np.ndarray) -> np.ndarray:
        """Map the agent's [-1, 1] actions onto the env's bounds."""
        if not self._scale_actions:
            return actions
        return self._action_low + (actions + 1.0) * 0.5 * (self._action_high - self._action_low)

    def _vector_step(self) -> None:
        sw, c = self.stopwatch, self.counters
        with sw.time("act"):
            actions = self.agent.act(self.state, self.obs, self.keys.next(), explore=True)
        with sw.time("env"):
            obs, reward, terminated, truncated, info = self.train_env.step(self._env_actions(actions))
        with sw.time("replay"):
            next_obs = _flat_obs(obs)
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

    def _row_context(self, phase: str) -> dict[str, Any]:
        c = self.counters
        return {"phase": phase, "env_steps": c.env_steps, "updates": c.updates,
                "wall_time": self._wall_time()}

    def _finish_episodes(self, ids: np.ndarray) -> None:
        learner = {f"learner/{k}": float(v) for k, v in self.last_metrics.items()}
        rows = []
        for i in ids:
            rows.append({**self._row_context("train"), "episode": self.counters.episodes,
                         "env_index": int(i), **self.accumulator.row(int(i)), **learner})
            self.counters.episodes += 1
        self.accumulator.clear(ids)
        self.log.write(rows)
        self.counters.rows = self.log.rows
        if hasattr(self.agent, "observe_episodes"):
            costs = np.array([episode_cost(row, self.cost_constraint) for row in rows], np.float32)
            self.state = self.agent.observe_episodes(self.state, costs)

    def _learn(self) -> None:
        c, sw = self.counters, self.stopwatch
        if len(self.replay) < self._min_replay:
            return
        c.update_credit += self._updates_per_step
        count = int(c.update_credit)
        c.update_credit -= count
        batch_size = self.agent.config.batch_size
        for _ in range(count):
            with sw.time("replay"):
                batch = self.replay.sample(self.np_rng, batch_size)
            with sw.time("learner" if self._compiled else "compile"):
                self.state, self.last_metrics = self.agent.update(self.state, batch, self.keys.next())
                jax.block_until_ready(self.state)
            c.compiles += not self._compiled
            self._compiled = True
            c.updates += 1

    # ------------------------------------------------- evaluation, checkpoints

    def _at_boundary(self, final: bool) -> None:
        """Evaluate, then checkpoint, when due (and once more at the very end)."""
        c, cfg = self.counters, self.config
        if c.env_steps >= c.next_eval or (final and c.last_eval != c.env_steps):
            with self.stopwatch.time("eval"):
                self.evaluate()
            while c.next_eval <= c.env_steps:
                c.next_eval += cfg.eval_every
        if self._checkpoint_due(final):
            with self.stopwatch.time("checkpoint"):
                self.checkpoint()

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

    def evaluate(self) -> list[dict[str, Any]]:
        """Run one episode per eval env with the deterministic policy; write their rows."""
        c = self.counters
        episodes = run_eval_episodes(self.agent, self.state, self.eval_env,
                                     derived_seed(self.config.seed, "eval", c.evaluations),
                                     self.keys, self.constraint_names, self._env_actions)
        # The learner's last metrics (a constrained agent's lambda, J_C, ...) as of this evaluation.
        learner = {f"learner/{k}": float(v) for k, v in self.last_metrics.items()}
        context = {**self._row_context("eval"), "evaluation": c.evaluations, **learner}
        rows = [{**context, "episode": c.eval_episodes + i, "env_index": i, **row}
                for i, row in enumerate(episodes)]
        c.evaluations += 1
        c.eval_episodes += len(rows)
        c.last_eval = c.env_steps
        self.log.write(rows)
        c.rows = self.log.rows
        c.last_eval_return = float(np.mean([r["return"] for r in rows]))
        self.progress.set_eval_return(c.last_eval_return)
        return rows

    def checkpoint(self) -> Path:
        """Write a checkpoint of everything but the envs (rows first made durable)."""
        c = self.counters
        while c.next_checkpoint <= c.env_steps:
            c.next_checkpoint += self.config.checkpoint_every
        c.last_checkpoint = c.env_steps
        self._last_checkpoint_time = time.perf_counter()
        self.log.sync()
        groups = {"state": flatten_pytree(self.state), "loop": self.keys.state()}
        if self.config.save_replay:
            groups["replay"] = self.replay.state_dict()
        timing = {**self.stopwatch.totals, "total": self._wall_time()}
        meta = {"counters": dataclasses.asdict(c), "timing": timing,
                "numpy_rng": self.np_rng.bit_generator.state}
        return save_checkpoint(self.run_dir / "checkpoints", Checkpoint(c.env_steps, groups, meta),
                               keep=self.config.keep_checkpoints)

    def summary(self) -> dict[str, Any]:
        """Counters, wall-clock per category and the loop's overhead share."""
        totals = dict(self.stopwatch.totals)
        c = self.counters
        return {"counters": dataclasses.asdict(c), "timing": totals,
                "outside_learner_share": self.stopwatch.outside_learner_share(),
                "update_ms": 1e3 * totals["learner"] / max(c.updates - c.compiles, 1),
                "env_steps_per_s": c.env_steps / max(totals["total"], 1e-9),
                "final_eval_return": c.last_eval_return}
