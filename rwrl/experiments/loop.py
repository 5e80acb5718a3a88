"""The actor-learner loop of ``rwrl run``: one process, a vector env, one learner.

Each iteration steps the N training envs once with the exploring policy,
stores the transitions in the n-step replay and runs the learner updates that
keep the agent's replay ratio (``rwrl.agents.types.updates_per_vector_step``:
``samples_per_insert`` sampled transitions per inserted one, the fraction
carried across steps). Between iterations, when due, it evaluates the
deterministic policy on a separate vector env and writes a checkpoint.

The K updates due on one vector step run in one compiled call: their K
batches come from one vectorised replay draw and ``update_many`` scans the
update over them (an agent without ``update_many`` gets K ``update`` calls).
Acting and learning are not overlapped: acting and stepping 8 envs take 3
to 6 % of a vector step beside D4PG's 2 updates, and dispatching the updates
first and acting with the previous parameters meanwhile saved nothing on
this project's 2-core machine (JAX's CPU client ran the act behind the
queued updates; benchmarks/results/learner.md).

Counting: ``env_steps`` counts stored transitions. Gymnasium's NEXT_STEP
autoreset spends one vector step per finished episode on the reset (reward 0,
action ignored); that step is masked out of the replay and the episode
statistics and is not counted.

Regimes (``regime_spec``): each evaluation runs every regime
(``rwrl.experiments.regime_eval``); its rows carry ``train_regime``, the
regime most training envs are in (the training episodes' latest ``info['regime']``,
kept with the open episodes in the checkpoint), and the summary the
continual metrics (``rwrl.metrics.continual.evaluate_continual``).

A continual agent (the ``continual`` capability: D4PG-EWC, -KFAC, -HCL) is
handed the replay and the training regime each time training envs reset
(``observe_regime``); at a switch it consolidates (or its detector fires), and
the replay is emptied when its config's ``reset_replay_at_switch`` says so
(``NStepReplay.discard``: the count written goes on, so checkpoints stay valid).

Physics states: an agent with the ``model_set`` capability (R-MPO) gets a
train env made with ``physics_state_info=True`` and a replay that stores, with
each transition, the physics state of the observation its action was taken
in (``info['physics_state']`` of the reset or step that returned that
observation). Other agents' envs and replays are left as they are.

Images: a training env whose observations are uint8 (a ``pixels`` agent's,
``observation_mode='pixels'``) has them kept as uint8, flattened, in the
loop, the replay and the checkpoints; other observations are float32.

Costs: each stored transition carries the step's cost c_t beside its reward:
``info["cost"]`` (the number of violated constraints), or, when the agent's
config names one in ``cost_constraint``, 1 where that constraint is violated.
An agent with the ``cost_constrained`` capability (RC-D4PG, MetaL) is also
handed each finished training episode's average cost per step under the same
definition (their estimate of J_C). Other agents ignore both.

Resume semantics (see also ``rwrl.metrics.episode_file`` and ``rwrl.experiments.run``):

* A checkpoint holds everything the next vector step depends on: the agent's
  training state (with its optimiser states), the JAX key stream, the numpy
  RNG of replay sampling, the counters (env steps, updates, episodes,
  evaluations, metrics rows, the next due steps, the fractional update
  credit), the learner's last metrics, the replay buffer (with
  ``save_replay``, the default), the training and evaluation envs' full
  state (``RestorableEnv``, wrappers included: physics, every challenge
  stage's state, the envs' RNGs and autoreset marks) and this loop's
  session: the current observations and physics states, the autoreset
  marks, the open episodes and their partial sums (``EpisodeAccumulator``).
  The wall-clock totals go in too, for the timing columns.
* The replay is saved incrementally: each checkpoint writes only the
  transitions stored since the previous one, as a chunk file under
  ``checkpoints/chunks/`` that later checkpoints list again (see
  ``rwrl.storage.checkpoint``), plus the ring position and the pending n-step
  windows; a checkpoint costs about the transitions of one interval, not
  the whole buffer.
* So a run resumed from any intact checkpoint IS the uninterrupted run: the
  rows written after the checkpoint (truncated from ``metrics.jsonl`` at
  resume) are written again, identical. Identical means: every row of
  ``metrics.jsonl`` equal bit for bit (same keys, same JSON text of every
  value) except ``wall_time``; the summary's counters equal except
  ``session`` (processes so far) and ``compiles`` (per process), its
  ``final_eval_return`` equal; its timing fields (``timing``,
  ``update_ms``, ``outside_learner_share``, ``env_steps_per_s``) are
  wall-clock. This holds bit for bit, with no tolerance, on one machine and
  one install: XLA on CPU computes the same bits for the same program and
  inputs, and no nondeterminism was found (``test_fault_matrix.py`` in
  tests/experiments kills and damages real D4PG runs; every resume
  matched). What may round
  differently, and is not covered: another CPU, other XLA flags or thread
  counts (a sweep's workers run XLA single-threaded, ``rwrl run`` does not,
  so a run started by one and resumed by the other may differ), another
  jax/jaxlib/mujoco version.
* Checkpoints are due every ``checkpoint_every`` env steps and every
  ``checkpoint_minutes`` of wall-clock, whichever comes first (the step
  cadence alone left a 20k-step run with none between step 0 and the end),
  also mid-episode; one is also written at step 0 and at the end.
* What is not reproduced, said in one line at resume:
  - a training env without ``env_state`` (a user's own Gymnasium env), or a
    checkpoint of the previous format (before env states were saved): the
    resumed session resets every training env (seeded from the run seed and
    the session number) and abandons the open episodes (their steps count
    towards ``env_steps``, they get no row). For such an env a due
    checkpoint waits for a vector step at which no episode is open, up to
    half an interval (by steps or wall-clock) past due, so that little is
    abandoned;
  - ``save_replay`` off: the resumed replay starts empty and learning waits
    until it holds ``min_replay_size`` transitions again; the env and the
    open episodes go on, no row is lost, but the learning differs.
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
from rwrl.storage.checkpoint import Checkpoint, write_chunk
from rwrl.experiments.config import RunConfig
from rwrl.experiments.loop_base import Loop, action_mapper, derived_seed, flat_obs, is_restorable
from rwrl.experiments.regime_eval import training_regime
from rwrl.metrics.accumulator import EpisodeAccumulator

#: the prefix of the accumulator's arrays in the checkpoint's "session" group.
_EPISODE = "episode/"


@dataclasses.dataclass
class Counters:
    """The loop's position; all of it goes into every checkpoint."""

    env_steps: int = 0  #: stored transitions so far
    updates: int = 0  #: learner updates so far
    compiles: int = 0  #: updates in calls that compiled (a new count of fused updates), timed apart
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
        #: images (a pixel agent's env) stay uint8 in the loop and the replay (``flat_obs``)
        self.obs_dtype = np.uint8 if train_env.single_observation_space.dtype == np.uint8 else np.float32
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
        if (agent.capabilities.cost_constrained and self.cost_constraint is None
                and len(self.constraint_names) > ac.max_cost):
            raise ValueError(f"max_cost={ac.max_cost!r}: info['cost'] counts up to {len(self.constraint_names)} "
                             f"violated constraints here, beyond the critic's atoms; name one in "
                             f"cost_constraint ({', '.join(self.constraint_names)}) or set max_cost="
                             f"{len(self.constraint_names)}")
        n = config.num_envs
        # Per session (set again by each ``run``): the envs' open episodes.
        self.obs = np.zeros((n, self.obs_size), self.obs_dtype)  #: current observations, flat
        #: physics states of ``obs`` (N, state_size), when the agent uses them
        self.physics_state = np.zeros((n, self.state_size)) if self.state_size else None
        self.marks = EpisodeMarks(n)  #: which envs' next step is an autoreset
        self.in_episode = np.zeros(n, bool)  #: envs with steps taken in an unfinished episode
        self.accumulator = EpisodeAccumulator(n, self.constraint_names)
        self._restorable = is_restorable(train_env)
        #: ((first, end), entry) of the chunk files holding the replay's transitions first..end-1
        self._replay_chunks: list[tuple[tuple[int, int], dict[str, Any]]] = []
        self._saved_upto = 0  #: transitions written before this one are in chunk files
        self._resumed: dict[str, Any] | None = None  #: a restored session, for ``_start_session``

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
                           self.config.num_envs, ac.n_step, ac.discount, self.state_size, self.obs_dtype)

    def _restore_extra(self, checkpoint: Checkpoint) -> None:
        groups = checkpoint.groups
        exact = self._restorable and "session" in groups and "train_env" in groups
        replay, chunks, saved_upto = self._restored_replay(checkpoint, exact)
        session = self._restored_session(groups["session"]) if exact else None
        if exact:
            self.train_env.restore_env_state(groups["train_env"])  # last: it may raise
        self.replay, self._replay_chunks, self._saved_upto = replay, chunks, saved_upto
        self._resumed, self.resume_notes = session, self._resume_notes(checkpoint, exact)

    def _restore_failed(self) -> None:
        self.replay, self._replay_chunks, self._saved_upto = self._new_replay(), [], 0
        self._resumed, self.resume_notes = None, []

    def _restored_replay(self, checkpoint: Checkpoint, exact: bool) -> tuple[NStepReplay, list, int]:
        """Return the checkpoint's replay, its chunks and the count of transitions already in chunks."""
        replay, group = self._new_replay(), checkpoint.groups.get("replay")
        if group is None:
            return replay, [], 0
        if "obs_tm1" in group:  # the previous format: the whole buffer in the group, no chunks
            replay.load_state_dict(group)
            chunks, saved_upto = [], replay.written - len(replay)
        else:
            replay.load_position_state(group)
            chunks = self._import_chunks(replay, checkpoint, group["chunk_spans"])
            saved_upto = replay.written
        if not exact:
            replay.clear_pending()  # their episodes do not go on
        return replay, chunks, saved_upto

    @staticmethod
    def _import_chunks(replay: NStepReplay, checkpoint: Checkpoint, spans: np.ndarray) -> list:
        """Read the checkpoint's chunks into ``replay``; return them as ``_replay_chunks``."""
        if np.shape(spans) != (len(checkpoint.chunks), 2):
            raise ValueError(f"replay chunk spans of shape {np.shape(spans)} for "
                             f"{len(checkpoint.chunks)} chunks")
        chunks, held = [], 0
        for (first, end), entry in zip(spans.tolist(), checkpoint.chunks):
            rows = checkpoint.read_chunk(entry)
            if len(rows.get("reward_t", ())) != end - first:
                raise ValueError(f"replay chunk {entry['file']} holds {len(rows.get('reward_t', ()))} "
                                 f"transitions, its span {end - first}")
            held += replay.import_rows(first, rows)
            chunks.append(((first, end), entry))
        if held != len(replay):
            raise ValueError(f"replay chunks hold {held} of its {len(replay)} transitions")
        return chunks

    def _restored_session(self, group: dict[str, np.ndarray]) -> dict[str, Any]:
        """Check and unpack the "session" group (``_session_state``)."""
        n = self.config.num_envs
        shapes = {"obs": (n, self.obs_size), "resetting": (n,), "in_episode": (n,)}
        if self.state_size:
            shapes["physics_state"] = (n, self.state_size)
        for name, shape in shapes.items():
            if np.shape(group.get(name)) != shape:
                raise ValueError(f"session state {name}: expected shape {shape}, got "
                                 f"{np.shape(group[name]) if name in group else 'none'}")
        accumulator = EpisodeAccumulator(n, self.constraint_names)
        accumulator.load_state_dict({k[len(_EPISODE):]: v for k, v in group.items()
                                     if k.startswith(_EPISODE)})
        return {**{name: np.array(group[name]) for name in shapes}, "accumulator": accumulator}

    def _resume_notes(self, checkpoint: Checkpoint, exact: bool) -> list[str]:
        """One line per thing the resumed run will not reproduce."""
        step, notes = checkpoint.step, []
        if not exact:
            why = (f"the training env ({type(self.train_env).__name__}) or one it wraps has no env_state()"
                   if not self._restorable else
                   "the checkpoint is of the previous format" if "session" not in checkpoint.groups
                   else "the checkpoint holds no training env state")
            notes.append(f"{why}: the training envs restart at env step {step} and their open "
                         f"episodes are abandoned (no rows for them)")
        if not self.config.save_replay:
            notes.append(f"save_replay is off: the replay buffer restarts empty at env step {step}, "
                         f"so learning from there differs from the uninterrupted run's")
        return notes

    def _extra_groups(self) -> dict[str, Any]:
        groups = {"session": self._session_state()}
        if self._restorable:
            groups["train_env"] = self.train_env.env_state()
        if self.config.save_replay:
            spans = np.array([span for span, _ in self._replay_chunks], np.int64).reshape(-1, 2)
            groups["replay"] = {**self.replay.position_state(), "chunk_spans": spans}
        return groups

    def _session_state(self) -> dict[str, np.ndarray]:
        state = {"obs": self.obs, "resetting": self.marks.resetting, "in_episode": self.in_episode}
        if self.state_size:
            state["physics_state"] = self.physics_state
        state.update({_EPISODE + k: v for k, v in self.accumulator.state_dict().items()})
        return {name: np.array(value) for name, value in state.items()}

    def _chunks(self) -> list[dict[str, Any]]:
        """Write the replay's transitions stored since the last checkpoint; return the live chunks."""
        if not self.config.save_replay:
            return []
        replay = self.replay
        oldest = replay.written - len(replay)
        first = max(self._saved_upto, oldest)
        if replay.written > first:
            entry = write_chunk(self.run_dir / "checkpoints", f"replay_{first:012d}_{replay.written:012d}",
                                replay.export_rows(first))
            self._replay_chunks.append(((first, replay.written), entry))
        self._saved_upto = replay.written
        self._replay_chunks = [(span, e) for span, e in self._replay_chunks if span[1] > oldest]
        return [entry for _, entry in self._replay_chunks]

    def _extra_summary(self) -> dict[str, Any]:
        summary = {"env_steps_per_s": self.counters.env_steps / max(self.stopwatch.totals["total"], 1e-9)}
        if self._eval_columns():  # a run with regimes: its continual metrics from its rows
            from rwrl.metrics.continual import evaluate_continual
            from rwrl.metrics.episode_file import read_episodes
            summary.update(evaluate_continual(read_episodes(self.run_dir / "metrics.jsonl")))
        return summary

    def _eval_columns(self) -> dict[str, Any]:
        """``train_regime``: the regime most training envs are in, when the env reports regimes."""
        regime = training_regime(self.accumulator.regimes)
        return {} if regime is None else {"train_regime": regime}

    # ------------------------------------------------------------- loop

    def _start_session(self) -> None:
        """Continue the restored session, else reset every training env.

        The reset seeds the envs from the run seed and the session number.
        """
        if self._resumed is not None:
            self._continue_session(self._resumed)
            self._resumed = None
            return
        seed = derived_seed(self.config.seed, "train", self.counters.session)
        obs, info = self.train_env.reset(seed=seed)
        self.obs = flat_obs(obs)
        if self.state_size:
            self.physics_state = np.asarray(info["physics_state"], np.float64)
        self.marks.reset()
        self.in_episode[:] = False
        self.accumulator.clear(slice(None))
        self.accumulator.observe_reset(np.arange(self.config.num_envs), info)
        if self.agent.capabilities.continual:
            self._observe_regime()

    def _continue_session(self, session: dict[str, Any]) -> None:
        """Take up the open episodes where the checkpoint left them (the env is restored already)."""
        self.obs = session["obs"]
        if self.state_size:
            self.physics_state = session["physics_state"]
        self.marks.resetting[:] = session["resetting"]
        self.in_episode = session["in_episode"]
        self.accumulator = session["accumulator"]

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
                if self.agent.capabilities.continual:
                    self._observe_regime()
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
        self.write_rows(rows)
        if self.agent.capabilities.cost_constrained:
            costs = np.array([episode_cost(row, self.cost_constraint) for row in rows], np.float32)
            self.state = self.agent.observe_episodes(self.state, costs)

    def _observe_regime(self) -> None:
        """A continual agent's look at the training regime after envs reset; at a switch, the replay's reset.

        The event's numbers join the learner columns (``learner/switched``,
        ``learner/consolidations``, ...) of the rows that follow, until the next update.
        """
        regime = training_regime(self.accumulator.regimes)
        self.state, event = self.agent.observe_regime(self.state, self.replay, regime, self.keys.next())
        if event is None:
            return
        self.last_metrics = {**self.last_metrics, **event}
        if self.agent.config.reset_replay_at_switch:
            self.replay.discard()

    def _learn(self) -> None:
        c = self.counters
        if len(self.replay) < self._min_replay:
            return
        c.update_credit += self._updates_per_step
        count = int(c.update_credit)
        c.update_credit -= count
        if count:
            with self.stopwatch.time("replay"):
                batches = self.replay.sample_many(self.np_rng, count, self.agent.config.batch_size)
            self._update_many(batches, count)

    def _checkpoint_due(self, final: bool) -> bool:
        """As ``Loop``'s; for a training env that cannot be restored, wait for no episode to be open.

        That wait ends half an interval past due, by steps or by wall-clock.
        """
        if self._restorable:
            return super()._checkpoint_due(final)
        c, cfg = self.counters, self.config
        if final:
            return c.last_checkpoint != c.env_steps
        waited = (time.perf_counter() - self._last_checkpoint_time) / (60.0 * cfg.checkpoint_minutes)
        if c.env_steps < c.next_checkpoint and waited < 1.0:
            return False
        overdue = c.env_steps >= c.next_checkpoint + cfg.checkpoint_every // 2 or waited >= 1.5
        return overdue or not self.in_episode.any()
