"""The ``rwrl ope`` pipeline: a Minari dataset, a policy set, estimates, true values, DOPE metrics.

1. Data: ``minari.load_dataset(id)``, each episode's observations (T + 1, D),
   actions, rewards, terminations (plain Minari, no rwrl reader) become
   ``Transitions`` (discount 0 only after a termination).
2. Policies: ``DIR/manifest.json`` is ``{"policies": [{"name": ..., "path": ...}, ...]}``
   (``path`` relative to DIR or absolute; other keys are passed through to the
   loader); a ``loader(entry, directory) -> obs (B, D) -> actions (B, A)`` turns an
   entry into a deterministic policy. The loader is a parameter so that this layer
   does not import rwrl.datasets, where the behaviour snapshots are read.
3. Estimates: FQE (discounted value from the dataset's initial states; LS-FQE when
   its config sets ``ls_every``) or max-ent (average reward per step).
4. True values: online rollouts of each policy on the batched vector env
   (``gymnasium.make_vec`` of the dataset's eval env spec, challenges included),
   ``episodes`` episodes from seeds ``seed, seed + 1, ...`` per batch of ``num_envs``:
   per episode the discounted return ``sum_t gamma^t r_{t+1}`` (gamma as FQE's), the
   return ``sum_t r_{t+1}`` and the average reward ``return / T``. They are cached in
   ``true_values.json`` beside the output, keyed by policy name and the rollout
   settings, so the second method reuses them.
5. Scale and metrics: DOPE compares discounted values, so both methods are scored
   against the discounted return: FQE's estimate directly; max-ent's average reward
   ``rho`` as ``rho * (1 - gamma^T) / (1 - gamma)``, T the dataset's mean episode
   length (exact if the episode started in the stationary distribution; the
   initial transient is the bias this conversion adds). Rank correlation and regret@1
   depend only on ranks, so they are also reported against the undiscounted return
   (``metrics_vs_return``), the quantity the suite's learning curves show.

Output: one JSON (atomic) with a row per policy (name, native estimate, estimate on
the discounted scale, the three truths), the metrics with their intervals and, for
FQE, ``least_squares``: null for plain FQE, else the LS-FQE settings (``every``,
``lambda``, ``batch_size``, ``refits`` per policy); and the same table printed. Each policy's estimate is kept as soon as it is made
(``<out>.partial.json``), so a killed run continues with the next policy.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from rwrl.storage.atomic_files import atomic_write_bytes
from rwrl.storage.progress_reporter import ProgressReporter
from rwrl.ope.metrics import dope_metrics, normalize, rank_correlation, regret_at_1
from rwrl.ope.policy import NamedPolicy, Transitions, apply_policy

METHODS = ("fqe", "maxent")
MANIFEST = "manifest.json"
TRUTHS_FILE = "true_values.json"
PolicyLoader = Callable[[Mapping[str, Any], Path], Callable[[np.ndarray], np.ndarray]]


@dataclasses.dataclass(frozen=True)
class RolloutSettings:
    """How the true values are measured."""

    #: episodes per policy.
    episodes: int = 100
    #: parallel envs of the vector env.
    num_envs: int = 50
    #: discount of the discounted return (the FQE discount).
    discount: float = 0.99
    #: seed of the first batch of episodes (batch k is reset with seed + k).
    seed: int = 1_000_000

    def __post_init__(self):
        for field in ("episodes", "num_envs"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be >= 1, got {getattr(self, field)!r}")


# ------------------------------------------------------------------ inputs


def load_transitions(dataset) -> tuple[Transitions, float]:
    """Return a Minari dataset's transitions and its mean episode length T (steps).

    Args:
      dataset: a ``minari.MinariDataset`` (or anything with ``iterate_episodes()``
        giving episodes with flat ``observations`` (T + 1, D), ``actions``, ``rewards``,
        ``terminations``).
    """
    obs, actions, rewards, next_obs, discounts, initial, lengths = [], [], [], [], [], [], []
    for episode in dataset.iterate_episodes():
        o = np.asarray(episode.observations, dtype=np.float32)
        if o.ndim != 2:
            raise ValueError(f"episode {episode.id}: observations of shape {o.shape}; expected flat (T + 1, D)")
        obs.append(o[:-1]), next_obs.append(o[1:]), initial.append(o[0])
        actions.append(np.asarray(episode.actions, dtype=np.float32).reshape(len(o) - 1, -1))
        rewards.append(np.asarray(episode.rewards, dtype=np.float32))
        discounts.append(1.0 - np.asarray(episode.terminations, dtype=np.float32))
        lengths.append(len(o) - 1)
    if not lengths:
        raise ValueError("dataset: no episodes")
    data = Transitions(np.concatenate(obs), np.concatenate(actions), np.concatenate(rewards),
                       np.concatenate(next_obs), np.concatenate(discounts), np.stack(initial))
    return data, float(np.mean(lengths))


def resolve_loader(spec: str) -> PolicyLoader:
    """Return the function ``"module:function"`` names (the policy loader)."""
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError(f"loader must be 'module:function', got {spec!r}")
    return getattr(importlib.import_module(module), name)


def load_policy_set(directory: Path, loader: PolicyLoader) -> list[NamedPolicy]:
    """Return the policies of ``directory/manifest.json``, each made by ``loader``."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no policy manifest (expected {{'policies': [...]}})")
    manifest = json.loads(path.read_text())
    # ``rwrl policies train`` lists its policy set under "checkpoints", named by path
    entries = manifest.get("policies", manifest.get("checkpoints"))
    if not isinstance(entries, list) or len(entries) < 2:
        raise ValueError(f"{path}: 'policies' (or 'checkpoints') must list at least 2 "
                         f"policies, got {entries!r}")
    entries = [dict(entry, name=entry.get("name", entry.get("path"))) if isinstance(entry, dict)
               else entry for entry in entries]
    names = [entry.get("name") if isinstance(entry, dict) else None for entry in entries]
    if len(set(names)) != len(names) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{path}: policy names must be distinct strings, got {names}")
    return [NamedPolicy(entry["name"], loader(entry, directory)) for entry in entries]


# ------------------------------------------------------------------ truths


def rollout_values(policy, env_spec, settings: RolloutSettings) -> dict[str, float]:
    """Return the mean discounted return, return and average reward of ``policy`` online.

    Runs ``settings.episodes`` episodes on ``gymnasium.make_vec(env_spec, num_envs)``,
    batch k reset with seed ``settings.seed + k`` (so env i of batch k is the single env
    reset with ``spawn_seeds(seed + k, num_envs)[i]``); an env's rewards count until its
    episode ends (termination or truncation); the batch ends when all have.
    """
    import gymnasium

    returns, discounted, lengths = [], [], []
    num_envs = min(settings.num_envs, settings.episodes)
    envs = gymnasium.make_vec(env_spec, num_envs=num_envs)
    try:
        for k in range(-(-settings.episodes // num_envs)):
            obs, _ = envs.reset(seed=settings.seed + k)
            alive = np.ones(num_envs, bool)
            total, disc_total, steps = (np.zeros(num_envs) for _ in range(3))
            while alive.any():
                obs, reward, terminated, truncated, _ = envs.step(apply_policy(policy, obs))
                total += np.where(alive, reward, 0.0)
                disc_total += np.where(alive, settings.discount ** steps * reward, 0.0)
                steps += alive
                alive &= ~(terminated | truncated)
            returns.append(total), discounted.append(disc_total), lengths.append(steps)
    finally:
        envs.close()
    returns, discounted, lengths = (np.concatenate(x)[:settings.episodes] for x in (returns, discounted, lengths))
    return {"discounted": float(discounted.mean()), "return": float(returns.mean()),
            "average_reward": float(np.mean(returns / lengths)), "episodes": int(len(returns))}


def per_policy(policies: Sequence[NamedPolicy], compute: Callable[[NamedPolicy], Any], cache: Path | None,
               key: str, desc: str | None = None) -> dict[str, Any]:
    """Return policy name -> ``compute(policy)``, kept in ``cache`` (JSON) as each one is made.

    ``cache`` maps ``key`` (what the values depend on besides the policy) to the
    values by policy name; those of another key are left alone. Only the policies
    missing under ``key`` are computed, so a killed caller continues with the next one.
    """
    stored = json.loads(cache.read_text()) if cache is not None and cache.is_file() else {}
    values = stored.get(key, {})
    missing = [p for p in policies if p.name not in values]
    reporter = ProgressReporter(len(missing), desc=desc or "", unit="policy",
                                enabled=bool(desc and missing))
    for i, policy in enumerate(missing):
        values[policy.name] = compute(policy)
        reporter.update(i + 1)
        if cache is not None:
            stored[key] = values
            atomic_write_bytes(cache, json.dumps(stored, indent=1).encode())
    reporter.close()
    return {p.name: values[p.name] for p in policies}


def true_values(policies: Sequence[NamedPolicy], env_spec, settings: RolloutSettings,
                cache: Path | None = None) -> dict[str, dict[str, float]]:
    """Return policy name -> rollout values, reusing and updating ``cache`` (JSON) if given."""
    key = json.dumps({"env": env_spec.to_json(), **dataclasses.asdict(settings)}, sort_keys=True)
    return per_policy(policies, lambda policy: rollout_values(policy, env_spec, settings), cache, key,
                      desc="true values")


# ------------------------------------------------------------------ estimates and table


def estimate(method: str, policy, data: Transitions, horizon: float, discount: float,
             fqe_config=None, maxent_config=None, seed: int = 0) -> dict[str, float]:
    """Return ``{"native": ..., "discounted": ...}``: the method's own estimate and its discounted scale."""
    if method == "fqe":
        from rwrl.ope.fqe import FQEConfig, fitted_q_evaluation

        config = fqe_config or FQEConfig(discount=discount)
        if config.discount != discount:
            raise ValueError(f"fqe discount {config.discount} != rollout discount {discount}")
        value = fitted_q_evaluation(policy, data, config, seed=seed).value
        return {"native": value, "discounted": value}
    if method == "maxent":
        from rwrl.ope.maxent import MaxEntConfig, maxent_average_reward

        rho = maxent_average_reward(policy, data, maxent_config or MaxEntConfig(), seed=seed).average_reward
        return {"native": rho, "discounted": rho * (1.0 - discount ** horizon) / (1.0 - discount)}
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def least_squares_settings(method: str, fqe_config, num_transitions: int) -> dict[str, Any] | None:
    """Return LS-FQE's settings as recorded in the result, or None (plain FQE or another method).

    ``batch_size`` is the transitions of each refit: ``ls_batch_size``, or the whole dataset if smaller.
    """
    if method != "fqe" or fqe_config is None or fqe_config.ls_every is None:
        return None
    return {"every": fqe_config.ls_every, "lambda": fqe_config.ls_lambda,
            "batch_size": min(fqe_config.ls_batch_size, num_transitions),
            "refits": fqe_config.num_steps // fqe_config.ls_every}


def score(rows: Sequence[Mapping[str, Any]], seed: int = 0) -> dict[str, Any]:
    """Return the DOPE metrics against the discounted truth, and the rank metrics against the return."""
    est = np.array([r["estimate"] for r in rows])
    metrics = {k: v.as_dict() for k, v in dope_metrics(est, [r["true_discounted"] for r in rows],
                                                       seed=seed).items()}
    returns = np.array([r["true_return"] for r in rows])
    vs_return = {"rank_correlation": float(rank_correlation(est, returns)),
                 "regret_at_1": float(regret_at_1(est, normalize(returns, returns)))}
    return {"metrics": metrics, "metrics_vs_return": vs_return}


def format_table(result: Mapping[str, Any]) -> str:
    """Return the result as a plain-text table."""
    lines = [f"{'policy':<24s} {'estimate':>10s} {'native':>10s} {'true disc':>10s} {'true return':>11s}"]
    for r in result["rows"]:
        lines.append(f"{r['name']:<24s} {r['estimate']:10.3f} {r['native_estimate']:10.4g} "
                     f"{r['true_discounted']:10.3f} {r['true_return']:11.1f}")
    for name, m in result["metrics"].items():
        lines.append(f"{name:<17s} {m['value']:7.3f}  [{m['low']:.3f}, {m['high']:.3f}]")
    lines.append("vs return: " + ", ".join(f"{k} {v:.3f}" for k, v in result["metrics_vs_return"].items()))
    ls = result.get("least_squares")
    if ls:
        lines.append(f"LS-FQE: last layer refitted every {ls['every']} steps ({ls['refits']} refits), "
                     f"lambda {ls['lambda']:g} per transition, {ls['batch_size']} transitions")
    return "\n".join(lines)


def _estimates_key(dataset_id: str, policies_dir: Path, method: str, horizon: float, discount: float,
                   fqe_config, maxent_config, seed: int) -> str:
    """Return what an estimate depends on besides the policy's name, as one string."""
    config = fqe_config if method == "fqe" else maxent_config
    manifest = (Path(policies_dir) / MANIFEST).read_text()  # another policy set, another key
    return json.dumps({"dataset": dataset_id, "manifest": manifest, "method": method,
                       "horizon": horizon, "discount": discount, "seed": seed,
                       "config": None if config is None else dataclasses.asdict(config)},
                      sort_keys=True, default=str)


def run_ope(dataset_id: str, policies_dir: Path, method: str, loader: PolicyLoader, out: Path, *,
            settings: RolloutSettings = RolloutSettings(), fqe_config=None, maxent_config=None,
            seed: int = 0) -> dict[str, Any]:
    """Estimate every policy of ``policies_dir`` from ``dataset_id``, measure the truths, write ``out``.

    Resumable: each policy's estimate is kept in ``<out>.partial.json`` as soon
    as it is made (keyed by the dataset, the policy manifest, the method and its
    config), so a killed run continues with the next policy; the file is removed
    once ``out`` is written.
    """
    import minari

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    dataset = minari.load_dataset(dataset_id)
    data, horizon = load_transitions(dataset)
    env_spec = dataset.recover_environment(eval_env=True).spec
    policies = load_policy_set(policies_dir, loader)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    truths = true_values(policies, env_spec, settings, out.parent / TRUTHS_FILE)
    partial = out.with_name(out.name + ".partial.json")
    key = _estimates_key(dataset_id, policies_dir, method, horizon, settings.discount,
                         fqe_config, maxent_config, seed)
    estimates = per_policy(policies, lambda policy: estimate(method, policy, data, horizon, settings.discount,
                                                             fqe_config, maxent_config, seed), partial, key)
    rows = []
    for policy in policies:
        est, t = estimates[policy.name], truths[policy.name]
        rows.append({"name": policy.name, "estimate": est["discounted"], "native_estimate": est["native"],
                     "true_discounted": t["discounted"], "true_return": t["return"],
                     "true_average_reward": t["average_reward"]})
    result = {"dataset": dataset_id, "method": method, "discount": settings.discount,
              "horizon": horizon, "rollouts": dataclasses.asdict(settings), "rows": rows,
              **score(rows, seed)}
    if method == "fqe":
        result["least_squares"] = least_squares_settings(method, fqe_config, len(data.rewards))
    atomic_write_bytes(out, json.dumps(result, indent=1).encode())
    partial.unlink(missing_ok=True)
    return result
