"""The ``rwrl explain`` pipeline: VIPER surrogates of an ``rwrl run`` checkpoint.

For the checkpoint's deterministic policy (``rwrl.datasets.behaviour_policies.
load_policy``) on its own task (the run's env and challenge settings) it fits a
linear surrogate and one tree per depth by :func:`rwrl.explain.viper.viper`, with
uniform weights (plain DAgger; the Q-gap weights need the critic, not wired yet),
and measures each one's fidelity (``rwrl.explain.fidelity``). Seeds: four
disjoint streams of ``seed`` (``derived_seeds``): the DAgger rollouts (iteration i
takes episodes i*E .. i*E+E-1), the held-out teacher episodes, the validation
episodes that pick the best iteration by return (``select="return"``), and the
evaluation episodes that give the teacher's and every chosen surrogate's return
(the same resets for all, so the returns compare like with like, and none of them
chose the surrogate).

Writes into ``out``: ``explain.json`` (settings, the teacher's return, one row per
surrogate with its fidelity, best iteration, per-iteration record and, for trees,
importances by observation name), ``tree-depth<k>.txt`` and ``tree-depth<k>.png``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Optional

import numpy as np

from rwrl.datasets.behaviour_policies import resolve_checkpoint
from rwrl.explain.fidelity import BatchedPolicy, action_agreement, rollout
from rwrl.explain.surrogates import LinearPolicy, fit_linear, fit_tree
from rwrl.explain.tree_views import importances, observation_names, save_tree_png, tree_text
from rwrl.explain.viper import viper

FORMAT = 1
#: teacher relabelling runs in fixed batches of this many states, so its jitted act
#: compiles once instead of once per dataset size.
RELABEL_BATCH = 1024
#: how the best VIPER iteration is picked (``ExplainSettings.select``).
SELECTIONS = ("return", "fidelity")


class ExplainError(ValueError):
    """The input cannot be explained (no checkpoint, bad settings); the message says why."""


@dataclasses.dataclass(frozen=True)
class ExplainSettings:
    """What ``rwrl explain`` fits and how much it rolls out.

    Attributes:
      depths: tree depths, each >= 1, at least one.
      linear: also fit the linear surrogate.
      iterations: VIPER (DAgger) iterations per surrogate.
      episodes: rollout episodes per iteration (one vector env).
      held_out_episodes: teacher episodes whose states measure action agreement.
      eval_episodes: episodes that give each policy's return.
      time_limit: episode length in control steps; None: the task's own.
      seed: the root of every seed.
      select: "return": keep the iteration with the highest mean return on validation
        episodes (their own seed stream; the paper's pick); "fidelity": the highest
        held-out R^2 (no extra rollouts).
    """

    depths: tuple[int, ...] = (1, 2, 3)
    linear: bool = True
    iterations: int = 4
    episodes: int = 4
    held_out_episodes: int = 2
    eval_episodes: int = 4
    time_limit: Optional[int] = None
    seed: int = 0
    select: str = "return"

    def __post_init__(self) -> None:
        if self.select not in SELECTIONS:
            raise ExplainError(f"select = {self.select!r}: allowed {', '.join(SELECTIONS)}")
        if not self.depths:
            raise ExplainError("depths is empty: give at least one tree depth, e.g. 1,2,3")
        for d in self.depths:
            if isinstance(d, bool) or not isinstance(d, int) or d < 1:
                raise ExplainError(f"depth {d!r} must be an integer >= 1")
        for name in ("iterations", "episodes", "held_out_episodes", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ExplainError(f"{name} = {getattr(self, name)!r} must be >= 1")
        if self.time_limit is not None and self.time_limit < 1:
            raise ExplainError(f"time_limit = {self.time_limit!r} must be >= 1")


def parse_depths(text: str) -> tuple[int, ...]:
    """Parse "1,2,3" into (1, 2, 3); one-line errors for an empty list or a bad depth."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise ExplainError(f"depths {text!r} is empty: give at least one tree depth, e.g. 1,2,3")
    try:
        depths = tuple(int(p) for p in parts)
    except ValueError:
        raise ExplainError(f"depths {text!r}: each must be an integer >= 1, e.g. 1,2,3") from None
    ExplainSettings(depths=depths)  # validates each
    return depths


def batched(policy: BatchedPolicy, action_size: int, batch: int = RELABEL_BATCH) -> BatchedPolicy:
    """Return ``policy`` applied in zero-padded batches of ``batch`` states."""
    def act(obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, np.float32)
        out = np.zeros((len(obs), action_size), np.float32)
        for start in range(0, len(obs), batch):
            chunk = obs[start:start + batch]
            padded = np.zeros((batch, obs.shape[1]), np.float32)
            padded[:len(chunk)] = chunk
            out[start:start + len(chunk)] = np.asarray(policy(padded))[:len(chunk)]
        return out
    return act


class _Envs:
    """One vector env per batch size, made on first use, closed together."""

    def __init__(self, env_id: str, env_kwargs: dict[str, Any]):
        self.env_id, self.env_kwargs, self.envs = env_id, env_kwargs, {}

    def __call__(self, n: int) -> Any:
        from rwrl.datasets.behaviour_policies import make_vector_env
        if n not in self.envs:
            self.envs[n] = make_vector_env(self.env_id, self.env_kwargs, n)
        return self.envs[n]

    def close(self) -> None:
        for env in self.envs.values():
            env.close()


def _returns(values: np.ndarray) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "std": float(np.std(values))}


def explain_checkpoint(path: Path, out: Path, settings: ExplainSettings = ExplainSettings()) -> dict[str, Any]:
    """Fit and measure the surrogates of checkpoint or run ``path``; write them into ``out``."""
    from rwrl.datasets.behaviour_policies import load_policy
    from rwrl.datasets.episodes import derived_seeds

    checkpoint = resolve_checkpoint(path)
    snapshot = load_policy(checkpoint)
    env_kwargs = dict(snapshot.env_kwargs)
    if settings.time_limit is not None:
        env_kwargs["time_limit"] = settings.time_limit
    envs = _Envs(snapshot.env_id, env_kwargs)
    teacher = batched(snapshot, snapshot.action_size)
    s = settings
    try:
        names = observation_names(envs(s.episodes).unwrapped.observation_slices)
        held_out = rollout(envs(s.held_out_episodes), snapshot,
                           derived_seeds(s.seed, "explain-held-out", 0, s.held_out_episodes)).states
        eval_seeds = derived_seeds(s.seed, "explain-evaluation", 0, s.eval_episodes)
        validation_seeds = derived_seeds(s.seed, "explain-validation", 0, s.eval_episodes)

        def validation_return(policy: BatchedPolicy) -> float:
            return float(np.mean(rollout(envs(s.eval_episodes), policy, validation_seeds).returns))
        score = validation_return if s.select == "return" else None
        teacher_return = rollout(envs(s.eval_episodes), snapshot, eval_seeds).returns
        first: dict[str, np.ndarray] = {}

        def collect(policy: BatchedPolicy, i: int) -> np.ndarray:
            seeds = derived_seeds(s.seed, "explain-dagger", i * s.episodes, s.episodes)
            if i == 0:  # the teacher's own rollouts: the same for every surrogate
                if "states" not in first:
                    first["states"] = rollout(envs(s.episodes), snapshot, seeds).states
                return first["states"]
            return rollout(envs(s.episodes), policy, seeds).states

        fitters = ([("linear", None, fit_linear)] if s.linear else []) + [
            ("tree", d, lambda o, a, w, d=d: fit_tree(o, a, w, d, seed=s.seed)) for d in s.depths]
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        rows = []
        for kind, depth, fit in fitters:
            result = viper(teacher, fit, collect, held_out, s.iterations, score=score)
            chosen = result.agreements[result.best_iteration]
            row = {"surrogate": kind, "depth": depth, "r2": chosen.r2,
                   "action_error": chosen.action_error,
                   "return": _returns(rollout(envs(s.eval_episodes), result.policy, eval_seeds).returns),
                   "best_iteration": result.best_iteration,
                   "iterations": [{"r2": a.r2, "action_error": a.action_error, "states": n,
                                   "validation_return": None if result.scores is None else result.scores[i]}
                                  for i, (a, n) in enumerate(zip(result.agreements, result.dataset_sizes))]}
            if isinstance(result.policy, LinearPolicy):
                row["coef"] = {"names": names, "coef": result.policy.coef.tolist(),
                               "intercept": result.policy.intercept.tolist()}
            else:
                row["importances"] = importances(result.policy, names)
                (out / f"tree-depth{depth}.txt").write_text(tree_text(result.policy, names))
                save_tree_png(result.policy, names, out / f"tree-depth{depth}.png",
                              title=f"{snapshot.env}: depth-{depth} surrogate, R^2 {chosen.r2:.3f}")
            rows.append(row)
    finally:
        envs.close()
    report = {"format": FORMAT, "checkpoint": str(checkpoint), "env": snapshot.env,
              "env_kwargs": env_kwargs, "observation_names": names,
              "settings": dataclasses.asdict(s), "weights": "uniform (plain DAgger)",
              "teacher_return": _returns(teacher_return), "surrogates": rows}
    from rwrl.storage.atomic_files import atomic_write_bytes
    text = json.dumps(report, indent=2, sort_keys=True, default=str)
    atomic_write_bytes(out / "explain.json", (text + "\n").encode())
    return report


def format_table(report: dict[str, Any]) -> str:
    """Return the fidelity table: surrogate, depth, R^2, action error, returns."""
    teacher = report["teacher_return"]
    lines = [f"{report['env']} ({report['checkpoint']})",
             f"{'surrogate':<10s} {'depth':>5s} {'R^2':>8s} {'act err':>8s} "
             f"{'return':>16s} {'teacher return':>16s}"]
    for row in report["surrogates"]:
        depth = "-" if row["depth"] is None else str(row["depth"])
        ret = row["return"]
        lines.append(f"{row['surrogate']:<10s} {depth:>5s} {row['r2']:>8.3f} {row['action_error']:>8.3f} "
                     f"{ret['mean']:>8.1f} ± {ret['std']:<5.1f} {teacher['mean']:>8.1f} ± {teacher['std']:<5.1f}")
    return "\n".join(lines)


__all__ = ["ExplainError", "ExplainSettings", "batched", "explain_checkpoint", "format_table",
           "parse_depths"]
