"""The ``rwrl explain`` pipeline: VIPER surrogates of an ``rwrl run`` checkpoint.

For the checkpoint's deterministic policy (``rwrl.datasets.behaviour_policies.
load_policy``) on its own task (the run's env and challenge settings) it fits a
linear surrogate and one tree per depth by :func:`rwrl.explain.viper.viper` and
measures each one's fidelity (``rwrl.explain.fidelity``).

Weights (``ExplainSettings.weights``): "q-gap", VIPER's recipe, with Q the
checkpoint's own critic (``rwrl.explain.critic``; RC-D4PG's and MetaL's is the
critic of the shaped reward r - lambda c, their only one) and K =
``viper.Q_GAP_CANDIDATES`` = 64 candidate actions drawn uniformly in the env's
action box, once per explain run, from their own seed stream; "uniform", plain
DAgger, the ablation (the pipeline as it was before the critic was wired). The
default is "q-gap" when the run's agent has a critic (``critic.CRITICS``), else
"uniform"; asking for "q-gap" on a run without one is refused.

Seeds: five disjoint streams of ``seed`` (``derived_seeds``): the DAgger rollouts
(iteration i takes episodes i*E .. i*E+E-1), the held-out teacher episodes, the
validation episodes that pick the best iteration by return (``select="return"``),
the evaluation episodes that give the teacher's and every chosen surrogate's
return (the same resets for all, so the returns compare like with like, and none
of them chose the surrogate), and the Q-gap candidates (drawn without touching
the others, so the rollouts' seeds do not depend on the weights).

Writes into ``out``: ``explain.json`` (settings, the weights used, the teacher's
return, one row per surrogate with its fidelity, best iteration, per-iteration record and, for trees,
importances by observation name), ``tree-depth<k>.txt`` and ``tree-depth<k>.png``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Optional

import numpy as np

from rwrl.datasets.behaviour_policies import resolve_checkpoint
from rwrl.explain.critic import CriticError, has_critic, read_run_config, require_critic
from rwrl.explain.fidelity import BatchedPolicy, action_agreement, rollout
from rwrl.explain.surrogates import LinearPolicy, fit_linear, fit_tree
from rwrl.explain.tree_views import importances, observation_names, save_tree_png, tree_text
from rwrl.explain.viper import Q_GAP_CANDIDATES, Weigher, q_gap_weigher, viper

FORMAT = 1
#: teacher relabelling runs in fixed batches of this many states, so its jitted act
#: compiles once instead of once per dataset size.
RELABEL_BATCH = 1024
#: how the best VIPER iteration is picked (``ExplainSettings.select``).
SELECTIONS = ("return", "fidelity")
#: VIPER's per-state weights (``ExplainSettings.weights``).
WEIGHTS = ("q-gap", "uniform")


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
      weights: "q-gap": VIPER's Q-gap weights from the checkpoint's critic; "uniform":
        plain DAgger (the ablation); None: "q-gap" when the run's agent has a critic,
        else "uniform".
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
    weights: Optional[str] = None

    def __post_init__(self) -> None:
        if self.select not in SELECTIONS:
            raise ExplainError(f"select = {self.select!r}: allowed {', '.join(SELECTIONS)}")
        if self.weights is not None and self.weights not in WEIGHTS:
            raise ExplainError(f"weights = {self.weights!r}: allowed {', '.join(WEIGHTS)}")
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


def resolve_weights(requested: Optional[str], agent: str, distilled: bool = False) -> str:
    """Return the weights used for a run of agent ``agent``: ``requested``, or the default for None.

    A distilled student (``rwrl distill``; ``distilled``) has its agent's critic as first
    initialised: distillation trains the policy only, so its critic gives no Q. Its default
    is uniform, and asking for q-gap is refused.

    Raises:
      ExplainError: one line, when "q-gap" is asked for and the run has no trained critic.
    """
    if requested is None:
        return "q-gap" if has_critic(agent) and not distilled else "uniform"
    if requested == "q-gap":
        if distilled:
            raise ExplainError("weights = 'q-gap': the run is a distilled student (rwrl distill), whose "
                               "critic was never trained; use weights uniform, or explain its teacher")
        try:
            require_critic(agent)
        except CriticError as err:
            raise ExplainError(str(err)) from err
    return requested


def q_gap_weigh(checkpoint: Path, obs_size: int, low: np.ndarray, high: np.ndarray,
                seed: int) -> tuple[Weigher, dict[str, Any]]:
    """Return the Q-gap weigher of ``checkpoint``'s critic and its record for ``explain.json``."""
    from rwrl.datasets.episodes import derived_seeds
    from rwrl.explain.critic import load_critic

    try:
        critic = load_critic(checkpoint, obs_size, low, high)
    except CriticError as err:
        raise ExplainError(str(err)) from err
    candidate_seed = derived_seeds(seed, "explain-q-gap-candidates", 0, 1)[0]
    record = {"kind": "q-gap", "candidates": Q_GAP_CANDIDATES, "candidate_seed": candidate_seed,
              "critic": f"{critic.agent} online critic: {critic.estimates}"}
    return q_gap_weigher(critic, low, high, Q_GAP_CANDIDATES, candidate_seed), record


#: the record of uniform weights: no critic, no candidate actions.
UNIFORM_RECORD = {"kind": "uniform", "candidates": 0, "candidate_seed": None, "critic": None}


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
    try:
        config = read_run_config(checkpoint)
    except CriticError as err:
        raise ExplainError(str(err)) from err
    distilled = config.get("distill") is not None
    weights = resolve_weights(settings.weights, config["run"]["agent"], distilled)  # refused before loading
    snapshot = load_policy(checkpoint)
    env_kwargs = dict(snapshot.env_kwargs)
    if settings.time_limit is not None:
        env_kwargs["time_limit"] = settings.time_limit
    envs = _Envs(snapshot.env_id, env_kwargs)
    teacher = batched(snapshot, snapshot.action_size)
    s = settings
    try:
        names = observation_names(envs(s.episodes).unwrapped.observation_slices)
        space = envs(s.episodes).single_action_space
        weigh, weights_record = (q_gap_weigh(checkpoint, snapshot.obs_size, space.low, space.high, s.seed)
                                 if weights == "q-gap" else (None, UNIFORM_RECORD))
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
            result = viper(teacher, fit, collect, held_out, s.iterations, weigh=weigh, score=score)
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
              "settings": dataclasses.asdict(s), "weights": weights_record,
              "teacher_return": _returns(teacher_return), "surrogates": rows}
    from rwrl.storage.atomic_files import atomic_write_bytes
    text = json.dumps(report, indent=2, sort_keys=True, default=str)
    atomic_write_bytes(out / "explain.json", (text + "\n").encode())
    return report


def format_table(report: dict[str, Any]) -> str:
    """Return the fidelity table: surrogate, depth, R^2, action error, returns."""
    teacher = report["teacher_return"]
    weights = report["weights"]
    weighed = (f"q-gap weights, {weights['candidates']} candidate actions" if weights["kind"] == "q-gap"
               else "uniform weights")
    lines = [f"{report['env']} ({report['checkpoint']}), {weighed}",
             f"{'surrogate':<10s} {'depth':>5s} {'R^2':>8s} {'act err':>8s} "
             f"{'return':>16s} {'teacher return':>16s}"]
    for row in report["surrogates"]:
        depth = "-" if row["depth"] is None else str(row["depth"])
        ret = row["return"]
        lines.append(f"{row['surrogate']:<10s} {depth:>5s} {row['r2']:>8.3f} {row['action_error']:>8.3f} "
                     f"{ret['mean']:>8.1f} ± {ret['std']:<5.1f} {teacher['mean']:>8.1f} ± {teacher['std']:<5.1f}")
    return "\n".join(lines)


__all__ = ["ExplainError", "ExplainSettings", "UNIFORM_RECORD", "WEIGHTS", "batched", "explain_checkpoint",
           "format_table", "parse_depths", "q_gap_weigh", "resolve_weights"]
