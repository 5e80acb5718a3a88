"""A MinAtar training run as a run directory: per-episode rows, checkpoints, resume.

What ``rwrl minatar run`` and ``benchmarks/lsdqn_minatar.py`` execute: one agent
(``rwrl.minatar.AGENTS``: dqn, ls-dqn, ls-dqn-adam, ls-dqn-adam-32) trained on one game for
``frames`` frames, the loop of MinAtar's ``examples/dqn.py`` (act, store, one
learner step per frame once the replay is warm) with LS-DQN's refits where the
agent has them. The directory, in the project's run conventions
(``rwrl.experiments.run``'s file names)::

    DIR/config.json     {"kind": "minatar", game, agent, frames, seed, agent_config,
                        checkpoint_every, sticky_action_prob} and "dqn_config", the
                        resolved agent config
    DIR/metrics.jsonl   one row per finished training episode (below)
    DIR/refits.jsonl    one row per LS-DQN refit: refit, updates, env_steps,
                        refit_error_before / _after (mean squared error of Q(s, a) against
                        the refit's targets on its batch), refit_head_change (norm)
    DIR/checkpoints/    the newest ``keep_checkpoints`` checkpoints (``rwrl.storage.checkpoint``),
                        removed when the run is done (they hold the replay: GBs over a benchmark)
    DIR/params.npz      the final online network's parameters (``flatten_pytree``'s names)
    DIR/summary.json    written after params.npz: the run is done when it exists and reads
    DIR/.lock           while a process runs it

Rows of ``metrics.jsonl`` (``rwrl.metrics.schema`` names where they exist):
``phase`` ("train"), ``episode`` (0, 1, ...), ``env_index`` (0), ``return``
(the game's rewards summed), ``length`` (frames), ``env_steps`` (frames played
when it ended), ``updates`` (learner steps by then), ``refits``, ``epsilon``
(of its last action), ``wall_time`` (seconds of training, summed over
sessions), ``learner/loss`` (the last learner step's TD loss; null before the
first). An episode cut by the frame budget is not a row (the summary counts its
frames); MinAtar's script records that last partial return too.

Seeds: the run's seed S gives the network's initialisation
(``jax.random.PRNGKey(S)``, folded with 0), the action noise (folded with 1, then
with the frame number // 10,000, split 10,000 ways, row frame % 10,000), the
ablation's mini-batches (folded with 2, then with the refit's number), the
replay's sampling (``env_rng(S, "replay")``), and episode k's reset seed
(``episode_seed(S, k)``): a run is a function of S.

Resume: a checkpoint is taken at the first episode end after every
``checkpoint_every`` frames, after that frame's learner steps: the training
state, the replay (its transitions in chunk files, each written once), the
counters, the replay generator's state and the next action. The same command
on a killed run's directory loads the newest checkpoint that verifies, cuts the
row files back to what it counted, re-seeds the next episode with its seed and
goes on: the rows it writes are those of the uninterrupted run (all but
``wall_time``). Without a checkpoint it starts over.
"""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from rwrl.core.checks import count as _count
from rwrl.metrics.episode_file import EpisodeFile, count_rows, read_rows, truncate_rows
from rwrl.minatar import check_agent, check_game
from rwrl.storage.atomic_files import WriteError, atomic_write_bytes
from rwrl.storage.progress_reporter import ProgressReporter
from rwrl.storage.run_settings import check_same_settings, json_bytes
from rwrl.storage.run_lock import RunLock

KIND = "minatar"
CONFIG_FILE, METRICS_FILE, REFITS_FILE, PARAMS_FILE, SUMMARY_FILE = (
    "config.json", "metrics.jsonl", "refits.jsonl", "params.npz", "summary.json")
CHECKPOINT_DIR = "checkpoints"
SEED_MAX = 2**32 - 1
#: action keys drawn at once (``_Trainer._key``).
KEY_BLOCK = 10_000
#: the fraction of the frames whose episodes make the summary's final score.
FINAL_FRACTION = 0.1


@dataclasses.dataclass(frozen=True)
class MinAtarRunConfig:
    """What a MinAtar run is; validated on construction (one-line ValueErrors).

    Attributes:
      game: one of ``rwrl.minatar.GAMES``.
      agent: one of ``rwrl.minatar.AGENTS`` (dqn, ls-dqn, ls-dqn-adam, ls-dqn-adam-32).
      frames: frames to train (MinAtar's runs: 5,000,000).
      seed: the run's seed S in [0, 2**32 - 1] (module docstring).
      agent_config: ``DQNConfig`` fields set on top of the agent's.
      checkpoint_every: frames between checkpoints (each at the next episode end).
      keep_checkpoints: checkpoints kept.
      sticky_action_prob: the env's probability of repeating the previous action (MinAtar's 0.1).
    """

    game: str
    agent: str = "dqn"
    frames: int = 5_000_000
    seed: int = 0
    agent_config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    checkpoint_every: int = 250_000
    keep_checkpoints: int = 2
    sticky_action_prob: float = 0.1

    def __post_init__(self):
        check_game(self.game)
        check_agent(self.agent)
        object.__setattr__(self, "frames", _count("frames", self.frames))
        object.__setattr__(self, "seed", _count("seed", self.seed, 0, SEED_MAX))
        object.__setattr__(self, "checkpoint_every", _count("checkpoint_every", self.checkpoint_every))
        object.__setattr__(self, "keep_checkpoints", _count("keep_checkpoints", self.keep_checkpoints))
        if not 0.0 <= self.sticky_action_prob <= 1.0:
            raise ValueError(f"sticky_action_prob = {self.sticky_action_prob!r} is not allowed: in [0, 1]")
        if not isinstance(self.agent_config, Mapping):
            raise ValueError(f"agent_config = {self.agent_config!r} is not allowed: a table of DQN settings")
        object.__setattr__(self, "agent_config", dict(self.agent_config))
        self.dqn_config()  # a bad setting is an error now, before anything is written

    def dqn_config(self):
        """Return the agent's resolved ``DQNConfig``."""
        from rwrl.minatar.dqn import make_config
        overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in self.agent_config.items()}
        return make_config(self.agent, **overrides)

    def to_dict(self) -> dict[str, Any]:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {"kind": KIND, **fields, "agent_config": dict(self.agent_config)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "MinAtarRunConfig":
        """Read ``to_dict``'s dict back (extra keys such as ``dqn_config`` ignored)."""
        if data.get("kind") != KIND:
            raise ValueError(f'not a MinAtar run config (no "kind": "{KIND}")')
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


def episode_seed(seed: int, episode: int) -> int:
    """Return the reset seed of episode ``episode`` of a run seeded ``seed`` (a 32-bit int)."""
    from rwrl.core.seeding import stream_id
    sequence = np.random.SeedSequence(seed, spawn_key=(stream_id("episodes"), episode))
    return int(sequence.generate_state(1, np.uint32)[0])


# ---------------------------------------------------------------- the directory
def finished_summary(run_dir: Path) -> dict[str, Any] | None:
    """Return the run's summary when it finished (``summary.json`` reads), else None."""
    try:
        return json.loads((Path(run_dir) / SUMMARY_FILE).read_text())
    except (OSError, ValueError):
        return None


def check_same_run(run_dir: Path, config: MinAtarRunConfig) -> None:
    """Raise a ValueError when ``run_dir`` holds another run (naming the differing settings)."""
    check_same_settings(run_dir, CONFIG_FILE, _record(config))


def _record(config: MinAtarRunConfig) -> dict[str, Any]:
    """Return what ``config.json`` holds: the run's settings and its resolved agent config."""
    return {**config.to_dict(), "dqn_config": dataclasses.asdict(config.dqn_config())}


def read_episodes(run_dir: Path):
    """Return a run's ``metrics.jsonl`` as a DataFrame (one row per finished episode)."""
    import pandas as pd
    return pd.DataFrame(read_rows(Path(run_dir) / METRICS_FILE))


def final_score(rows: list[Mapping[str, Any]], frames: int) -> float | None:
    """Return the mean return of the episodes that ended in the last ``FINAL_FRACTION`` of the frames."""
    last = [r["return"] for r in rows if r["env_steps"] > (1 - FINAL_FRACTION) * frames]
    return float(np.mean(last)) if last else None


# ---------------------------------------------------------------- running
def run_minatar(config: MinAtarRunConfig, run_dir: Path, progress: bool = True, file: Any = None,
                stop_after: int | None = None) -> dict[str, Any] | None:
    """Train ``config``'s agent and write its run directory; return its summary.

    A directory holding this run finished is left as it is (its summary returned);
    one holding it unfinished resumes from its newest checkpoint (module docstring).

    Args:
      progress: report the frames played (a bar on a terminal, else a line every 5 %).
      file: where to report progress (default stderr).
      stop_after: stop once this many frames are played, as if killed there (after the
        checkpoint the frame may take), and return None; for tests of resuming.

    Raises:
      ValueError: ``run_dir`` holds another run.
      RunLockedError: another process is running it.
      WriteError: a file cannot be written.
    """
    run_dir = Path(run_dir)
    check_same_run(run_dir, config)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WriteError(run_dir, err) from err
    with RunLock(run_dir):
        done = finished_summary(run_dir)
        if done is not None:
            return done
        atomic_write_bytes(run_dir / CONFIG_FILE, json_bytes(_record(config)))
        trainer = _Trainer(config, run_dir)
        trainer.restore()
        reporter = ProgressReporter(config.frames, initial=trainer.frames, unit="frame",
                                    desc=f"{config.agent} on {config.game}", file=file, enabled=progress)
        try:
            finished = trainer.train(reporter.update, stop_after)
        finally:
            reporter.close()
            trainer.close()
        if not finished:
            return None
        summary = trainer.summary()
        atomic_write_bytes(run_dir / PARAMS_FILE, trainer.final_params())
        atomic_write_bytes(run_dir / SUMMARY_FILE, json_bytes(summary))  # the run is done
        shutil.rmtree(run_dir / CHECKPOINT_DIR, ignore_errors=True)  # only a resume needs them
    return summary


class _Trainer:
    """The training loop's state between frames, and its checkpoints (``run_minatar``'s helper)."""

    def __init__(self, config: MinAtarRunConfig, run_dir: Path):
        import jax
        from rwrl.minatar.dqn import make_agent
        from rwrl.minatar.env import MinAtarEnv
        self.config, self.run_dir, self.dqn_config = config, run_dir, config.dqn_config()
        self.env = MinAtarEnv(config.game, sticky_action_prob=config.sticky_action_prob)
        self.agent = make_agent(tuple(self.env.observation_space.shape), int(self.env.action_space.n),
                                self.dqn_config)
        self._empty_replay()
        base = jax.random.PRNGKey(config.seed)
        self.state = self.agent.init(jax.random.fold_in(base, 0))
        self.act_key = jax.random.fold_in(base, 1)
        self.refit_key = jax.random.fold_in(base, 2)
        self.key_block: tuple[int, np.ndarray] = (-1, np.zeros((0, 2), np.uint32))
        self.frames = self.episode = self.refits = self.updates = 0
        self.debt, self.wall, self.cpu, self.loss = 0.0, 0.0, 0.0, None
        self.next_action: int | None = None
        self.chunks: list[dict[str, Any]] = []  # replay chunk entries, with their first row and count
        self.saved_rows = 0  # replay rows written into chunks so far
        self.last_checkpoint = 0

    def _empty_replay(self) -> None:
        """Make the replay empty and its generator new (a run's start)."""
        from rwrl.core.seeding import env_rng
        from rwrl.minatar.replay import FrameReplay
        self.replay = FrameReplay(self.dqn_config.replay_capacity, self.env.observation_space.shape,
                                  self.dqn_config.discount)
        self.rng = env_rng(self.config.seed, "replay")

    # ------------------------------------------------------------ acting and learning
    def _key(self, frame: int) -> np.ndarray:
        """Return the action key of ``frame``: row frame % K of split(fold_in(act_key, frame // K), K).

        Drawn K = KEY_BLOCK at a time, so that no frame dispatches an eager JAX operation.
        """
        import jax
        block, keys = self.key_block
        if block != frame // KEY_BLOCK:
            block = frame // KEY_BLOCK
            keys = np.asarray(jax.random.split(jax.random.fold_in(self.act_key, block), KEY_BLOCK))
            self.key_block = (block, keys)
        return keys[frame % KEY_BLOCK]

    def _act(self, obs: np.ndarray) -> int:
        from rwrl.minatar.dqn import epsilon_at
        epsilon = epsilon_at(self.frames, self.dqn_config)
        return int(self.agent.act(self.state, obs[None], self._key(self.frames), epsilon)[0])

    def _learn_then_act(self, obs: np.ndarray) -> int:
        """The learner steps this frame owes (and refits), then the next action."""
        from rwrl.minatar.dqn import epsilon_at
        cfg = self.dqn_config
        if len(self.replay) < cfg.min_replay_size:
            return self._act(obs)
        self.debt += cfg.samples_per_insert / cfg.batch_size
        steps, self.debt = int(self.debt), self.debt - int(self.debt)
        action = None
        for k in range(steps):
            batch = self.replay.sample(self.rng, cfg.batch_size)
            self.updates += 1
            if k == steps - 1 and not self.agent.refit_due(self.updates, len(self.replay)):
                epsilon = epsilon_at(self.frames, cfg)
                self.state, actions, metrics = self.agent.update_then_act(
                    self.state, batch, obs[None], self._key(self.frames), epsilon)
                action = int(actions[0])
            else:
                self.state, metrics = self.agent.update(self.state, batch)
                if self.agent.refit_due(self.updates, len(self.replay)):
                    self._refit()
            self.loss = metrics["loss"]
        return self._act(obs) if action is None else action

    def _refit(self) -> None:
        import jax
        batch = self.replay.sample_distinct(self.rng, self.dqn_config.refit_batch)
        key = jax.random.fold_in(self.refit_key, self.refits)
        self.state, metrics = self.agent.refit(self.state, batch, key)
        row = {"refit": self.refits, "updates": self.updates, "env_steps": self.frames,
               **{k: float(v) for k, v in metrics.items()}}
        self.refit_file.write([row])
        self.refits += 1

    # ------------------------------------------------------------ the loop
    def train(self, report, stop_after: int | None) -> bool:
        """Play until ``config.frames``; return False when ``stop_after`` stopped it first."""
        obs, _ = self.env.reset(seed=episode_seed(self.config.seed, self.episode))
        action = self._act(obs) if self.next_action is None else self.next_action
        episode_return, length, started = 0.0, 0, time.perf_counter()
        cpu_started = time.process_time()
        while self.frames < self.config.frames:
            if stop_after is not None and self.frames >= stop_after:
                return False
            next_obs, reward, terminated, truncated, _ = self.env.step(action)
            self.replay.add(obs, action, reward, terminated, next_obs)
            self.frames += 1
            episode_return, length = episode_return + reward, length + 1
            epsilon = self._epsilon_of_last_action()
            if terminated or truncated:
                self.wall += time.perf_counter() - started
                started = time.perf_counter()
                self._write_row(episode_return, length, epsilon)
                episode_return, length = 0.0, 0
                next_obs, _ = self.env.reset(seed=episode_seed(self.config.seed, self.episode))
            obs = next_obs
            action = self._learn_then_act(obs)
            if length == 0 and self.frames - self.last_checkpoint >= self.config.checkpoint_every:
                self.cpu, cpu_started = self.cpu + time.process_time() - cpu_started, time.process_time()
                self._checkpoint(action)
            report(self.frames)
        self.wall += time.perf_counter() - started
        self.cpu += time.process_time() - cpu_started
        self.unfinished = length
        return True

    def _epsilon_of_last_action(self) -> float:
        from rwrl.minatar.dqn import epsilon_at
        return epsilon_at(self.frames - 1, self.dqn_config)

    def _write_row(self, episode_return: float, length: int, epsilon: float) -> None:
        loss = None if self.loss is None else float(self.loss)
        self.metrics_file.write([{
            "phase": "train", "episode": self.episode, "env_index": 0, "return": episode_return,
            "length": length, "env_steps": self.frames, "updates": self.updates,
            "refits": self.refits, "epsilon": epsilon, "wall_time": self.wall, "learner/loss": loss}])
        self.episode += 1

    def final_params(self) -> bytes:
        """Return the online network's parameters as the bytes of an ``.npz`` file."""
        from rwrl.storage.checkpoint import flatten_pytree
        buffer = io.BytesIO()
        np.savez(buffer, **flatten_pytree(self.state.params))
        return buffer.getvalue()

    def summary(self) -> dict[str, Any]:
        rows = read_rows(self.run_dir / METRICS_FILE)
        return {"game": self.config.game, "agent": self.config.agent, "seed": self.config.seed,
                "frames": self.frames, "episodes": len(rows), "updates": self.updates,
                "refits": self.refits, "unfinished_episode_frames": self.unfinished,
                "final_return": final_score(rows, self.config.frames),
                "final_return_note": f"mean return of the episodes ending in the last "
                                     f"{FINAL_FRACTION:.0%} of the frames",
                "mean_return": float(np.mean([r["return"] for r in rows])) if rows else None,
                "wall_clock_s": self.wall, "cpu_s": self.cpu,
                "frames_per_s": self.frames / self.wall if self.wall > 0 else None}

    # ------------------------------------------------------------ checkpoints
    def _checkpoint(self, next_action: int) -> None:
        from rwrl.storage.checkpoint import Checkpoint, flatten_pytree, save_checkpoint, write_chunk
        directory = self.run_dir / CHECKPOINT_DIR
        written = self.replay.written
        oldest = written - len(self.replay)
        # The ring may have wrapped past the last checkpoint's rows (checkpoint_every > capacity):
        # only those it still holds are saved.
        first = max(self.saved_rows, oldest)
        if written > first:
            entry = write_chunk(directory, f"replay_{first:012d}_{written:012d}", self.replay.export_rows(first))
            self.chunks.append({**entry, "first": first, "count": written - first})
        self.saved_rows = written
        self.chunks = [c for c in self.chunks if c["first"] + c["count"] > oldest]
        self.metrics_file.sync()
        self.refit_file.sync()
        meta = {"frames": self.frames, "episode": self.episode, "refits": self.refits,
                "debt": self.debt, "wall": self.wall, "cpu": self.cpu, "next_action": next_action,
                "loss": None if self.loss is None else float(self.loss),
                "rng": self.rng.bit_generator.state, "metrics_rows": self.metrics_file.rows,
                "refit_rows": self.refit_file.rows,
                "chunks": [{"first": c["first"], "count": c["count"]} for c in self.chunks]}
        groups = {"state": flatten_pytree(self.state), "replay": self.replay.position_state()}
        save_checkpoint(directory, Checkpoint(step=self.frames, groups=groups, meta=meta,
                                              chunks=[{k: v for k, v in c.items() if k not in ("first", "count")}
                                                      for c in self.chunks]),
                        keep=self.config.keep_checkpoints)
        self.last_checkpoint = self.frames

    def restore(self) -> None:
        """Load the newest checkpoint that verifies, or start over; open the row files."""
        from rwrl.storage.checkpoint import load_latest
        checkpoint = load_latest(self.run_dir / CHECKPOINT_DIR, accept=self._accept)
        metrics_rows = refit_rows = 0
        if checkpoint is not None:
            metrics_rows, refit_rows = checkpoint.meta["metrics_rows"], checkpoint.meta["refit_rows"]
        else:  # start over: a refused checkpoint may have written into the replay
            self._empty_replay()
        for name, rows in ((METRICS_FILE, metrics_rows), (REFITS_FILE, refit_rows)):
            if (self.run_dir / name).exists():
                truncate_rows(self.run_dir / name, rows)
        self.metrics_file = EpisodeFile(self.run_dir / METRICS_FILE, sync=False)
        self.refit_file = EpisodeFile(self.run_dir / REFITS_FILE, sync=False)

    def _accept(self, checkpoint) -> None:
        """Restore everything from ``checkpoint``, or raise CheckpointError saying why not."""
        from rwrl.storage.checkpoint import CheckpointError, unflatten_like
        meta = checkpoint.meta
        for name, key in ((METRICS_FILE, "metrics_rows"), (REFITS_FILE, "refit_rows")):
            if count_rows(self.run_dir / name) < meta[key]:
                raise CheckpointError(f"{name} holds fewer rows than the checkpoint counted ({meta[key]})")
        state = unflatten_like(self.state, checkpoint.groups["state"])
        try:
            self.replay.load_position_state(checkpoint.groups["replay"])
            for entry, span in zip(checkpoint.chunks, meta["chunks"]):
                self.replay.import_rows(span["first"], checkpoint.read_chunk(entry))
        except ValueError as err:
            raise CheckpointError(f"replay: {err}") from err
        self.state, self.frames, self.episode = state, meta["frames"], meta["episode"]
        self.updates = int(state.steps)
        self.refits, self.debt, self.wall, self.cpu = meta["refits"], meta["debt"], meta["wall"], meta["cpu"]
        self.next_action, self.loss = meta["next_action"], meta["loss"]
        self.rng.bit_generator.state = meta["rng"]
        self.saved_rows = self.replay.written
        self.chunks = [{**entry, **span} for entry, span in zip(checkpoint.chunks, meta["chunks"])]
        self.last_checkpoint = self.frames

    def close(self) -> None:
        for name in ("metrics_file", "refit_file"):
            if hasattr(self, name):
                getattr(self, name).close()


__all__ = ["CHECKPOINT_DIR", "CONFIG_FILE", "KIND", "METRICS_FILE", "MinAtarRunConfig", "PARAMS_FILE",
           "REFITS_FILE", "SUMMARY_FILE", "check_same_run", "episode_seed", "final_score", "finished_summary",
           "read_episodes", "run_minatar"]
