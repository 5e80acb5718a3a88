"""Bandits: the claims of the rotting-bandits and follower-bandit papers, measured (issue 26).

Three parts (``--parts``), each from ``rwrl.bandits`` with its defaults (nothing tuned here):

* ``step``: the rested step instance of Levine, Crammer and Mannor, "Rotting Bandits"
  (NeurIPS 2017, Sec. 5; arm 1 pays 0.5, arm 2 pays 1 then 0.4, noise variance 0.2).
  Regret R(T) at T in ``--horizons`` (default 1e3, 3e3, 1e4, 3e4, 1e5) for UCB1, SWA
  (alpha = 0.2, its window set by each T) and wSWA, ``--seeds`` trajectories (default 100),
  mean with a 95 % bootstrap interval over trajectories, and the least-squares slope of
  log mean R against log T with a 95 % bootstrap interval (trajectories resampled jointly
  at every T). The paper fixes the switch at 7,500 pulls for its one horizon, 30,000, so
  T/4; two readings, both measured: ``scaled`` (switch at T/4: one instance per T, every
  policy run afresh at each T) and ``fixed`` (switch at 7,500 for every T: UCB1 and wSWA,
  which do not know T, run once to the largest T and are read at each T; SWA is run
  afresh per T since its window depends on T). At T = 30,000 both readings are the
  paper's instance; there D-UCB (gamma 0.999) and SW-UCB (tau 4,000), the paper's
  grid-search picks, join for its Fig. 1 and Table 1 comparison. FEWA is left out: 100
  trajectories at T = 1e4 took 128 s on this machine, against 14 s at 3e3 (its cost per
  round grows with the pulls), so T = 1e5 would take hours.
* ``parametric``: the paper's AV and ANV instances (K = 10, mu(j; theta) = (floor(j / 100)
  + 1)^-theta, theta drawn from {0.1, ..., 0.4}, ANV constants uniform on [0, 0.5]) at the
  paper's horizon T = 30,000 (``--parametric-horizon``), ``--seeds`` trajectories: UCB1,
  D-UCB and SW-UCB with the paper's picks, SWA, wSWA, and CTO_SIM (AV) or D-CTO_SIM-UCB
  (ANV); wins per trajectory and paired t-test p-values as the paper's Table 1.
* ``contextual``: the follower-acquisition simulator (``rwrl.bandits.contextual``, a
  synthetic stand-in: the 2015 paper released no data and no simulator) with its
  defaults (10 accounts, 5 candidates, 5 features, noise 1, no delay),
  ``--contextual-seeds`` instances (default 50) for ``--contextual-steps`` steps
  (default 2,000). Finding
  (1): LinUCB pooled over the accounts against one model per account (and the shrunk
  model, ours) at account spreads 0, 0.1 and 0.5 (the default); finding (2): the
  per-account learner that weighs all history (stationary) against the same learner on
  a window of its last 200 observations, at drifts 0, 0.02, 0.05 and 0.1.

Verdicts (set before the measured run, from the claims as PAPERS.md gives them; one changed
after a smoke run, said below):

* UCB1 "linear regret" on the step instance: holds when the lower ends of the 95 %
  intervals of the slope over all horizons and of the slope between the two largest are
  both at least 0.9 (R(T) / T does not shrink toward 0; a slope above 1 cannot last, as
  R(T) <= 0.5 T). Changed after a 10-trajectory smoke run: the first rule, slope interval
  inside [0.9, 1.1], read UCB1's slope of 1.09 (R(T) / T still rising toward 0.075) as
  "not linear".
* SWA and wSWA "sublinear": holds when the slope's interval ends below 1; "at most the
  T^(2/3) ln^(1/3)(sqrt(2) T) of Theorem 3.1 / Corollary 3.1.1": holds when it ends at
  or below that bound's own log-log slope over the same horizons (about 0.70). The bound
  is an upper bound: a smaller slope holds it.
* Parametric (Table 1 and Sec. 5's text): "A outperforms B" holds when A's mean regret
  at T is lower with paired t-test p < 0.05; CTO_SIM "o(1) regret beyond a finite T*"
  holds when R(T) - R(T / 3) is under 10 % of R(T).
* Contextual (1) "aggregating across agents can hurt prediction accuracy": holds when
  the pooled model's prediction error over the last steps is above the per-account
  model's with a paired 95 % interval that excludes 0; who wins early and late is
  reported per window. (2) under drift a windowed learner beats the stationary one late
  (per-step regret over the last half, paired interval excludes 0); drift 0 is the
  control. The simulator is built so that both can happen: they are checks of the
  package against the paper's story, not evidence about Twitter.

Times: each run's wall-clock and CPU seconds (this process), recorded in the JSON.

Usage::

    python benchmarks/bandits.py --out benchmarks/results/bandits.json
    python benchmarks/bandits.py --parts step --seeds 20 --horizons 1000 10000   # a quick look
    python benchmarks/bandits.py --page-only --out benchmarks/results/bandits.json
    python benchmarks/bandits.py --page-only --figures --out benchmarks/results/bandits.json

Measuring some parts with ``--out`` keeps the other parts already in that JSON. The
figures (``bandits-step.png``, ``bandits-parametric.png``, ``bandits-contextual.png``,
beside the JSON) are drawn from the JSON after measuring; ``--page-only --figures``
redraws them.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # results_page.py beside this file

import results_page  # noqa: E402

PARTS = ("step", "parametric", "contextual")
DEFAULT_HORIZONS = (1_000, 3_000, 10_000, 30_000, 100_000)
STEP_POLICIES = ("ucb1", "swa", "wswa")
#: join the step policies at the paper's horizon only (its Fig. 1 and Table 1).
PAPER_STEP_EXTRA = ("d-ucb", "sw-ucb")
PAPER_HORIZON = 30_000
PAPER_SWITCH = 7_500
#: AV and ANV: the environment and the policies run on it.
PARAMETRIC = {"av": ("rested-parametric-av", ("ucb1", "d-ucb", "sw-ucb", "swa", "wswa", "cto")),
              "anv": ("rested-parametric-anv", ("ucb1", "d-ucb", "sw-ucb", "swa", "wswa", "d-cto"))}
LABELS = {"ucb1": "UCB1", "d-ucb": "D-UCB", "sw-ucb": "SW-UCB", "swa": "SWA", "wswa": "wSWA",
          "cto": "CTO_SIM", "d-cto": "D-CTO_SIM-UCB"}
#: the paper's Fig. 1 at T = 30,000, read off the plot (PAPERS.md, about 5 %): case -> policy -> R.
PAPER_FIGURE = {"np": {"ucb1": 2050, "d-ucb": 600, "sw-ucb": 450, "wswa": 60},
                "av": {"ucb1": 450, "d-ucb": 450, "sw-ucb": 500, "wswa": 190, "cto": 20},
                "anv": {"ucb1": 430, "d-ucb": 430, "sw-ucb": 430, "wswa": 220, "d-cto": 190}}
#: the paper's Table 1: wins out of 100 of (row) over (column), case -> (row, column) -> wins.
PAPER_WINS = {"np": {("wswa", "ucb1"): 100, ("wswa", "d-ucb"): 100, ("wswa", "sw-ucb"): 100},
              "av": {("wswa", "ucb1"): 98, ("wswa", "d-ucb"): 99, ("wswa", "sw-ucb"): 100,
                     ("cto", "ucb1"): 100, ("cto", "d-ucb"): 100, ("cto", "sw-ucb"): 100,
                     ("cto", "wswa"): 100},
              "anv": {("wswa", "ucb1"): 97, ("wswa", "d-ucb"): 98, ("wswa", "sw-ucb"): 97,
                      ("d-cto", "ucb1"): 100, ("d-cto", "d-ucb"): 100, ("d-cto", "sw-ucb"): 100,
                      ("d-cto", "wswa"): 66}}
CONTEXTUAL_SPREADS = (0.0, 0.1, 0.5)
CONTEXTUAL_DRIFTS = (0.0, 0.02, 0.05, 0.1)
#: step windows of the early/late tables: (start, end], in steps.
CONTEXTUAL_EDGES = (0, 10, 30, 100, 300, 1000, 2000)
#: bootstrap resamples of every interval, and the generator's seed (the intervals are reproducible).
BOOTSTRAP, BOOTSTRAP_SEED = 2000, 0
JSON_NAME = "bandits.json"
FIGURES = {"step": "bandits-step.png", "parametric": "bandits-parametric.png",
           "contextual": "bandits-contextual.png"}


# ------------------------------------------------------------------ statistics
def bootstrap_mean(values: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
    """Return the mean of ``values`` (S,) and its 95 % percentile-bootstrap interval over them."""
    values = np.asarray(values, np.float64)
    index = rng.integers(0, values.size, (BOOTSTRAP, values.size))
    means = values[index].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean": float(values.mean()), "low": float(low), "high": float(high)}


def loglog_slope(horizons: np.ndarray, regret: np.ndarray) -> np.ndarray:
    """Return the least-squares slope of log regret on log T; regret (..., G), positive."""
    x = np.log(np.asarray(horizons, np.float64))
    x = x - x.mean()
    y = np.log(regret)
    return ((y - y.mean(axis=-1, keepdims=True)) * x).sum(axis=-1) / (x * x).sum()


def slope_interval(horizons: list[int], per_seed: np.ndarray,
                   rng: np.random.Generator) -> dict[str, float]:
    """Return the log-log slope of mean regret against T and its 95 % bootstrap interval.

    Args:
      per_seed: (S, G) regret of each trajectory at each horizon; the trajectories are
        resampled jointly at every horizon.
    """
    index = rng.integers(0, per_seed.shape[0], (BOOTSTRAP, per_seed.shape[0]))
    means = per_seed[index].mean(axis=1)  # (B, G)
    slopes = loglog_slope(horizons, np.maximum(means, 1e-12))
    low, high = np.percentile(slopes, [2.5, 97.5])
    return {"slope": float(loglog_slope(horizons, per_seed.mean(axis=0))), "low": float(low),
            "high": float(high)}


def bound_slope(horizons: list[int]) -> float:
    """Return the log-log slope of T^(2/3) ln^(1/3)(sqrt(2) T) (Theorem 3.1) over ``horizons``."""
    t = np.asarray(horizons, np.float64)
    return float(loglog_slope(t, t ** (2 / 3) * np.log(math.sqrt(2.0) * t) ** (1 / 3)))


def paired(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Return wins of a over b (lower regret), ties, and the paired t-test p-value."""
    from scipy.stats import ttest_rel
    a, b = np.asarray(a), np.asarray(b)
    same = np.allclose(a, b)
    return {"wins": int((a < b).sum()), "ties": int((a == b).sum()),
            "p": 1.0 if same else float(ttest_rel(a, b).pvalue),
            "mean_difference": float((a - b).mean())}


def _rounded(values: np.ndarray, digits: int = 3) -> list[float]:
    return [round(float(v), digits) for v in np.asarray(values).ravel()]


# ------------------------------------------------------------------ runs
def make_named_policy(name: str, env_name: str, horizon: int):
    """Return the policy ``name`` with the paper's settings for ``env_name`` (D-UCB, SW-UCB picks)."""
    from rwrl.bandits import make_policy
    from rwrl.bandits.policies import PAPER_DUCB_GAMMAS, PAPER_SWUCB_WINDOWS
    if name == "d-ucb":
        return make_policy(name, gamma=PAPER_DUCB_GAMMAS[env_name])
    if name == "sw-ucb":
        return make_policy(name, window=PAPER_SWUCB_WINDOWS[env_name])
    return make_policy(name, horizon=horizon)


def timed_run(env_name: str, policy: str, horizon: int, seeds: int, steps: np.ndarray,
              **env_params) -> tuple[Any, dict[str, float]]:
    """Run ``policy`` on ``seeds`` instances of ``env_name`` (seed 0); return the curves and its times."""
    from rwrl.bandits import make_env, run
    env = make_env(env_name, num_instances=seeds, **env_params)
    wall, cpu = time.perf_counter(), time.process_time()
    curves = run(env, make_named_policy(policy, env_name, horizon), horizon, seed=0,
                 steps=np.asarray(steps, np.int64))
    times = {"wall_s": round(time.perf_counter() - wall, 2), "cpu_s": round(time.process_time() - cpu, 2)}
    print(f"  {env_name} {env_params or ''} {policy} T={horizon}: mean R(T) "
          f"{curves.regret[:, -1].mean():.1f}, {times['wall_s']} s", file=sys.stderr, flush=True)
    return curves, times


def _grid(horizon: int, extra: tuple[int, ...] = (), num: int = 60) -> np.ndarray:
    from rwrl.bandits import log_grid
    return np.unique(np.concatenate([log_grid(horizon, num), [h for h in extra if h <= horizon],
                                     [horizon]])).astype(np.int64)


def _curve(curves) -> dict[str, list]:
    """Return the mean regret curve of ``curves`` (at its recorded steps) for the figures."""
    return {"t": [int(t) for t in curves.steps], "mean": _rounded(curves.mean(), 2)}


def measure_step(seeds: int, horizons: list[int]) -> dict[str, Any]:
    """Measure the step instance at every horizon, both readings of its switch (module docstring)."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    variants: dict[str, Any] = {}
    raw: dict[str, np.ndarray] = {}  # the fixed reading's R(T) per trajectory, unrounded
    for variant in ("scaled", "fixed"):
        policies: dict[str, Any] = {}
        for policy in STEP_POLICIES:
            per_seed = np.empty((seeds, len(horizons)))
            times: dict[str, dict[str, float]] = {}
            curve = None
            if variant == "fixed" and policy != "swa":  # anytime: one run read at every T
                horizon = max(horizons)
                curves, times[str(horizon)] = timed_run("rested-step", policy, horizon, seeds,
                                                        _grid(horizon, tuple(horizons)),
                                                        switch=PAPER_SWITCH)
                columns = [int(np.flatnonzero(curves.steps == h)[0]) for h in horizons]
                per_seed[:] = curves.regret[:, columns]
                curve = _curve(curves)
            else:
                for g, horizon in enumerate(horizons):
                    switch = horizon // 4 if variant == "scaled" else PAPER_SWITCH
                    curves, times[str(horizon)] = timed_run("rested-step", policy, horizon, seeds,
                                                            _grid(horizon), switch=switch)
                    per_seed[:, g] = curves.regret[:, -1]
                    if horizon == max(horizons):
                        curve = _curve(curves)
            if variant == "fixed":
                raw[policy] = per_seed
            policies[policy] = {
                "regret": [bootstrap_mean(per_seed[:, g], rng) for g in range(len(horizons))],
                "slope": slope_interval(horizons, per_seed, rng),
                "last_slope": slope_interval(horizons[-2:], per_seed[:, -2:], rng),
                "local_slopes": [float(s) for s in np.diff(np.log(per_seed.mean(axis=0)))
                                 / np.diff(np.log(horizons))],
                "per_seed": [_rounded(per_seed[:, g]) for g in range(len(horizons))],
                "times": times, "curve": curve}
        variants[variant] = {"switch": "T/4" if variant == "scaled" else PAPER_SWITCH,
                             "policies": policies}
    paper = None
    if PAPER_HORIZON in horizons:
        g = horizons.index(PAPER_HORIZON)
        finals = {p: raw[p][:, g] for p in STEP_POLICIES}
        times = {}
        for policy in PAPER_STEP_EXTRA:
            curves, times[policy] = timed_run("rested-step", policy, PAPER_HORIZON, seeds,
                                              _grid(PAPER_HORIZON), switch=PAPER_SWITCH)
            finals[policy] = curves.regret[:, -1]
        order = ("ucb1", "d-ucb", "sw-ucb", "swa", "wswa")
        paper = {"horizon": PAPER_HORIZON, "switch": PAPER_SWITCH, "times": times,
                 "regret": {p: bootstrap_mean(finals[p], rng) for p in order},
                 "wswa_over": {p: paired(finals["wswa"], finals[p]) for p in order if p != "wswa"},
                 "swa_over": {p: paired(finals["swa"], finals[p]) for p in order if p != "swa"}}
    return {"seeds": seeds, "horizons": horizons, "bound_slope": bound_slope(horizons),
            "variants": variants, "paper_horizon": paper}


def measure_parametric(seeds: int, horizon: int) -> dict[str, Any]:
    """Measure the AV and ANV instances at ``horizon`` (module docstring)."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    grid = np.unique(np.concatenate([np.linspace(horizon / 100, horizon, 100).round(),
                                     [horizon // 3]])).astype(np.int64)
    out: dict[str, Any] = {"seeds": seeds, "horizon": horizon}
    for case, (env_name, policies) in PARAMETRIC.items():
        finals, third, rows = {}, {}, {}
        for policy in policies:
            curves, times = timed_run(env_name, policy, horizon, seeds, grid)
            finals[policy] = curves.regret[:, -1]
            third[policy] = curves.regret[:, int(np.flatnonzero(curves.steps == horizon // 3)[0])]
            rows[policy] = {"regret": bootstrap_mean(finals[policy], rng), "times": times,
                            "per_seed": _rounded(finals[policy]),
                            "curve": {"t": [int(t) for t in curves.steps[::2]],
                                      "mean": _rounded(curves.mean()[::2], 2)}}
        model = policies[-1]  # CTO_SIM or D-CTO_SIM-UCB
        growth = finals[model] - third[model]
        out[case] = {"env": env_name, "policies": rows, "model_policy": model,
                     "model_over": {p: paired(finals[model], finals[p]) for p in policies if p != model},
                     "wswa_over": {p: paired(finals["wswa"], finals[p]) for p in policies
                                   if p not in ("wswa", model)},
                     "model_growth": bootstrap_mean(growth, rng)}
    return out


def _contextual_run(seeds: int, steps: int, learner: str, spread: float, drift: float) -> dict[str, Any]:
    from rwrl.bandits import FollowerBandit, make_learner, run_learner
    env = FollowerBandit(num_envs=seeds, account_spread=spread, drift=drift)
    model = make_learner(learner, seeds, env.num_accounts, env.num_features)
    wall, cpu = time.perf_counter(), time.process_time()
    result = run_learner(env, model, steps, seed=0)
    times = {"wall_s": round(time.perf_counter() - wall, 2), "cpu_s": round(time.process_time() - cpu, 2)}
    regret = result.cumulative_regret  # (T, N), summed over accounts
    per_account_step = regret / env.num_accounts
    print(f"  follower spread={spread} drift={drift} {learner}: R({steps}) per account "
          f"{per_account_step[-1].mean():.1f}, {times['wall_s']} s", file=sys.stderr, flush=True)
    edges = [e for e in CONTEXTUAL_EDGES if e < steps] + [steps]
    padded = np.vstack([np.zeros((1, seeds)), per_account_step])  # R(0) = 0
    windows = []
    for start, end in zip(edges[:-1], edges[1:]):
        windows.append({"start": start, "end": end,
                        "regret_per_step": _rounded((padded[end] - padded[start]) / (end - start), 5),
                        "prediction_mse": _rounded(result.prediction_mse[start:end].mean(axis=0), 5)})
    half = steps // 2
    grid = np.unique(np.geomspace(1, steps, 80).round().astype(np.int64))
    return {"learner": learner, "spread": spread, "drift": drift, "times": times,
            "accounts": env.num_accounts, "windows": windows,
            "late_regret_per_step": _rounded((padded[steps] - padded[half]) / (steps - half), 5),
            "late_mse": _rounded(result.prediction_mse[half:].mean(axis=0), 5),
            "curve": {"t": [int(t) for t in grid],
                      "regret": _rounded(per_account_step[grid - 1].mean(axis=1), 3),
                      "mse": _rounded(result.prediction_mse[grid - 1].mean(axis=1), 4)}}


def _compare(a: dict[str, Any], b: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """Return, per window and late, the paired difference a - b (regret, error) with intervals."""
    def diff(x, y):
        return bootstrap_mean(np.asarray(x) - np.asarray(y), rng)
    windows = [{"start": wa["start"], "end": wa["end"],
                "regret": {"a": bootstrap_mean(wa["regret_per_step"], rng),
                           "b": bootstrap_mean(wb["regret_per_step"], rng),
                           "difference": diff(wa["regret_per_step"], wb["regret_per_step"])},
                "mse": {"a": bootstrap_mean(wa["prediction_mse"], rng),
                        "b": bootstrap_mean(wb["prediction_mse"], rng),
                        "difference": diff(wa["prediction_mse"], wb["prediction_mse"])}}
               for wa, wb in zip(a["windows"], b["windows"])]
    return {"windows": windows,
            "late_regret": diff(a["late_regret_per_step"], b["late_regret_per_step"]),
            "late_mse": diff(a["late_mse"], b["late_mse"]),
            "crossover_regret": _crossover(a["curve"]["t"], a["curve"]["regret"], b["curve"]["regret"]),
            "crossover_mse": _crossover(a["curve"]["t"], a["curve"]["mse"], b["curve"]["mse"])}


def _crossover(t: list[int], a: list[float], b: list[float]) -> int | None:
    """Return the first recorded step from which the order of means a and b at the end holds
    (None: they end equal)."""
    sign = np.sign(np.asarray(a) - np.asarray(b))
    if sign[-1] == 0:
        return None
    other = np.flatnonzero(sign != sign[-1])
    return int(t[0] if other.size == 0 else t[other[-1] + 1])


def measure_contextual(seeds: int, steps: int) -> dict[str, Any]:
    """Measure findings (1) and (2) on the follower simulator (module docstring)."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    runs: dict[str, dict[str, Any]] = {}

    def get(learner: str, spread: float, drift: float) -> dict[str, Any]:
        key = f"{learner} spread={spread} drift={drift}"
        if key not in runs:
            runs[key] = _contextual_run(seeds, steps, learner, spread, drift)
        return runs[key]

    pooling = []
    for spread in CONTEXTUAL_SPREADS:
        pooled, own = get("pooled", spread, 0.0), get("per_account", spread, 0.0)
        shrunk = get("shrinkage", spread, 0.0)
        pooling.append({"spread": spread, "pooled_vs_per_account": _compare(pooled, own, rng),
                        "shrinkage_vs_per_account": _compare(shrunk, own, rng)})
    drifting = []
    for drift in CONTEXTUAL_DRIFTS:
        windowed, stationary = get("windowed", 0.5, drift), get("per_account", 0.5, drift)
        drifting.append({"drift": drift, "windowed_vs_stationary": _compare(windowed, stationary, rng)})
    from rwrl.bandits import FollowerBandit
    from rwrl.bandits.linear import LEARNERS
    defaults = FollowerBandit(num_envs=1)
    return {"seeds": seeds, "steps": steps,
            "simulator": {k: getattr(defaults, k) for k in ("num_accounts", "num_candidates",
                                                             "num_features", "noise_std", "delay")},
            "window": LEARNERS["windowed"].window, "shrinkage": LEARNERS["shrinkage"].shrinkage,
            "pooling": pooling, "drift": drifting,
            "runs": {k: {key: v[key] for key in ("learner", "spread", "drift", "times", "curve")}
                     for k, v in runs.items()}}


# ------------------------------------------------------------------ page
def _ci(entry: dict[str, float], spec: str = ".1f") -> str:
    return f"{entry['mean']:{spec}} [{entry['low']:{spec}}, {entry['high']:{spec}}]"


def _slope_text(entry: dict[str, float]) -> str:
    return f"{entry['slope']:.3f} [{entry['low']:.3f}, {entry['high']:.3f}]"


def _holds(ok: bool) -> str:
    return "holds" if ok else "does not hold"


def _p(p: float) -> str:
    return "<1e-5" if p < 1e-5 else f"{p:.2g}"


def step_verdicts(policy: str, entry: dict[str, Any], bound: float) -> list[tuple[str, str]]:
    """Return (claim, verdict) pairs of one policy's slopes (module docstring)."""
    slope = entry["slope"]
    if policy == "ucb1":
        last = entry["last_slope"]
        return [("linear: slope >= 0.9, over the range and its last segment",
                 _holds(slope["low"] >= 0.9 and last["low"] >= 0.9))]
    return [("sublinear: slope < 1", _holds(slope["high"] < 1.0)),
            (f"at most the bound's slope {bound:.2f}", _holds(slope["high"] <= bound))]


def part_command(part: str, config: dict[str, Any], source: str) -> str:
    """Return the command that measures ``part`` alone as recorded (keeping ``source``'s other parts)."""
    words = ["python", "benchmarks/bandits.py", "--parts", part]
    if part == "step":
        words += ["--seeds", str(config["seeds"]), "--horizons", *map(str, config["horizons"])]
    elif part == "parametric":
        words += ["--seeds", str(config["seeds"]), "--parametric-horizon", str(config["horizon"])]
    else:
        words += ["--contextual-seeds", str(config["seeds"]), "--contextual-steps", str(config["steps"])]
    return shlex.join(words + ["--out", source])


def _part_header(results: dict[str, Any], part: str, source: str) -> list[str]:
    stamp = results[part].get("measured", {})
    return [f"Table command: `{part_command(part, results[part], source)}` "
            f"(measured {stamp.get('date', results_page.NOT_RECORDED)}, within "
            f"`{stamp.get('command', results_page.NOT_RECORDED)}`).", ""]


def step_section(results: dict[str, Any], source: str) -> list[tuple[str, list[str]]]:
    step = results["step"]
    horizons, bound = step["horizons"], step["bound_slope"]
    sections = []
    intro = _part_header(results, "step", source) + [
        f"{step['seeds']} trajectories per policy and T, regret R(T) against the oracle pi^max (mean "
        "[95 % bootstrap interval over trajectories]); slope: least squares of log mean R on log T over "
        f"the {len(horizons)} horizons, with its bootstrap interval (last segment: between the two "
        "largest). SWA is run afresh at each T (its window "
        f"depends on T); the bound's own log-log slope over these horizons is {bound:.3f}. Seconds: "
        f"wall-clock of the {step['seeds']}-trajectory run at the largest T (CPU seconds in the JSON; "
        "the machine was "
        "shared, see the notes)."]
    sections.append(("1. Rested rotting, the step instance: regret against T", intro))
    for variant, title in (("scaled", "switch at T/4 (a new instance per T)"),
                           ("fixed", f"switch fixed at {PAPER_SWITCH:,} pulls")):
        rows = []
        for policy, entry in step["variants"][variant]["policies"].items():
            verdicts = step_verdicts(policy, entry, bound)
            big = entry["times"].get(str(max(horizons)), {}).get("wall_s")
            rows.append([LABELS[policy], *(_ci(r, ".0f") for r in entry["regret"]),
                         _slope_text(entry["slope"]), "; ".join(c for c, _ in verdicts),
                         "; ".join(v for _, v in verdicts), results_page.fmt(big, ".1f")])
        header = ["policy", *(f"R({h:,})" for h in horizons), "slope [95 %]", "claim", "verdict",
                  "s at largest T"]
        local = [[LABELS[p], *(f"{s:.2f}" for s in e["local_slopes"])]
                 for p, e in step["variants"][variant]["policies"].items()]
        local_header = ["policy", *(f"{a:,} to {b:,}" for a, b in zip(horizons[:-1], horizons[1:]))]
        sections.append((f"1{'a' if variant == 'scaled' else 'b'}. Step instance, {title}", [
            *results_page.table(header, rows, "l" + "r" * (len(horizons) + 1) + "llr"), "",
            "Local slopes (log-log, between consecutive horizons, of the mean):", "",
            *results_page.table(local_header, local, "l" + "r" * (len(horizons) - 1))]))
    paper = step.get("paper_horizon")
    if paper:
        rows = []
        for policy, entry in paper["regret"].items():
            wins = paper["wswa_over"].get(policy)
            paper_wins = PAPER_WINS["np"].get(("wswa", policy))
            rows.append([LABELS[policy], _ci(entry, ".0f"), PAPER_FIGURE["np"].get(policy),
                         f"{wins['wins']} ({_p(wins['p'])})" if wins else "–",
                         f"{paper_wins} (<1e-5)" if paper_wins else "–",
                         _holds(wins["mean_difference"] < 0 and wins["p"] < 0.05)
                         if wins and policy != "swa" else "–"])
        sections.append((f"1c. Step instance at the paper's horizon, T = {paper['horizon']:,} "
                         f"(switch {paper['switch']:,}: both readings)", [
            "The paper's Fig. 1 (left) value is read off its plot (about 5 %); wins: trajectories out of "
            f"{step['seeds']} where wSWA's R(T) is lower (paired t-test p); claim: wSWA outperforms the "
            "row (p < 0.05, lower mean); SWA was not in the paper's runs. D-UCB gamma 0.999, SW-UCB tau "
            "4,000: the paper's picks.", "",
            *results_page.table(["policy", "R(30,000) [95 %]", "paper Fig. 1", "wSWA wins (p)",
                                 "paper: wSWA wins (p)", "wSWA outperforms it"], rows, "lrrrrl")]))
    figure = FIGURES["step"]
    sections.append((None, [f"![mean regret against T]({figure})"]))
    return sections


def parametric_section(results: dict[str, Any], source: str) -> list[tuple[str, list[str]]]:
    para = results["parametric"]
    sections = [("2. Parametric instances, AV and ANV", _part_header(results, "parametric", source) + [
        f"K = 10 arms, {para['seeds']} trajectories, T = {para['horizon']:,} (the paper's), the arms' "
        "decay exponents (and ANV constants) drawn per trajectory, the same draws for every policy. "
        "Mean R(T) [95 % bootstrap interval]; wins: trajectories where the model-based policy "
        "(CTO_SIM on AV, D-CTO_SIM-UCB on ANV) or wSWA has the lower R(T), with the paired t-test "
        "p-value, beside the paper's Table 1. Verdict: the model-based policy outperforms the row "
        "(lower mean, p < 0.05). D-UCB gamma 0.999999; SW-UCB tau 8,000 (AV), 16,000 (ANV). SWA was not "
        "in the paper's runs: its rows are our addition.", "",
        f"![mean regret curves, AV and ANV]({FIGURES['parametric']})"])]
    for case in ("av", "anv"):
        entry = para[case]
        model = entry["model_policy"]
        rows = []
        for policy, row in entry["policies"].items():
            over = entry["model_over"].get(policy)
            w = entry["wswa_over"].get(policy)
            paper_model = PAPER_WINS[case].get((model, policy))
            paper_w = PAPER_WINS[case].get(("wswa", policy))
            rows.append([LABELS[policy], _ci(row["regret"], ".0f"), PAPER_FIGURE[case].get(policy),
                         f"{over['wins']} ({_p(over['p'])})" if over else "–",
                         paper_model, f"{w['wins']} ({_p(w['p'])})" if w else "–", paper_w,
                         _holds(over["mean_difference"] < 0 and over["p"] < 0.05) if over else "–",
                         f"{row['times']['wall_s']:.1f}"])
        growth = entry["model_growth"]
        final = entry["policies"][model]["regret"]["mean"]
        third = para["horizon"] // 3
        body = [*results_page.table(
            ["policy", f"R({para['horizon']:,}) [95 %]", "paper Fig. 1", f"{LABELS[model]} wins (p)",
             "paper", "wSWA wins (p)", "paper", f"{LABELS[model]} outperforms it", "s"],
            rows, "lrrrrrrlr")]
        if model == "cto":
            body += ["", f"CTO_SIM's regret from T = {third:,} to {para['horizon']:,}: "
                     f"{_ci(growth)} (of R(T) = {final:.1f}); claim o(1) beyond a finite T* "
                     f"(growth under 10 % of R(T)): {_holds(growth['mean'] < 0.1 * final)}."]
        else:
            body += ["", f"D-CTO_SIM-UCB's regret from T = {third:,} to {para['horizon']:,}: "
                     f"{_ci(growth)} (of R(T) = {final:.1f}; the theory for D-CTO_UCB is O(ln T))."]
        sections.append((f"2{'a' if case == 'av' else 'b'}. {case.upper()}: {entry['env']}", body))
    return sections


def _window_rows(compare: dict[str, Any], key: str, spec: str) -> list[list[str]]:
    rows = []
    for w in compare["windows"]:
        d = w[key]["difference"]
        winner = "a" if d["high"] < 0 else "b" if d["low"] > 0 else "neither (interval spans 0)"
        rows.append([f"{w['start'] + 1} to {w['end']}", _ci(w[key]["a"], spec), _ci(w[key]["b"], spec),
                     _ci(d, spec), winner])
    return rows


def contextual_section(results: dict[str, Any], source: str) -> list[tuple[str, list[str]]]:
    ctx = results["contextual"]
    sim = ctx["simulator"]
    limits = [
        "The simulator (`rwrl.bandits.contextual`) is a synthetic stand-in: the 2015 paper ran on live "
        "Twitter and released no data and no simulator; only its abstract was read (PAPERS.md section "
        "2). Its facts: each account's reward weights are a shared per-instance mean plus "
        "`account_spread` times the account's own deviation (so a pooled model learns M times faster "
        "but is biased for each account); each step each account retweets one of K candidates "
        "described by D standard-normal features; the reward is the follower change, linear in the "
        "features plus Gaussian noise (not a count); drift is a slow AR(1) walk of the weights "
        "(half-life about 1.39 / drift^2 steps); regret is against the oracle that knows the current "
        "weights. It cannot speak to the size of either effect on Twitter (spread and drift are "
        "knobs, not estimates), which tweet features attract followers, network effects, overlapping "
        "rewards, daily cycles or abrupt changes, or bots.", "",
        f"Here: {sim['num_accounts']} accounts, {sim['num_candidates']} candidates, "
        f"{sim['num_features']} features, noise {sim['noise_std']}, delay {sim['delay']} (the "
        f"simulator's defaults), {ctx['seeds']} instances, {ctx['steps']:,} steps; LinUCB alpha 1, "
        f"ridge 1 (the package's defaults). Regret per account and step; prediction error: mean "
        "squared error of the learner's expected reward of every candidate, before its update. "
        "Paired differences a - b with 95 % bootstrap intervals over instances."]
    sections = [("3. The follower bandit (contextual)", _part_header(results, "contextual", source)
                 + limits + ["", f"![follower bandit curves]({FIGURES['contextual']})"])]
    summary = []
    for entry in ctx["pooling"]:
        c = entry["pooled_vs_per_account"]
        late = c["late_mse"]
        summary.append([entry["spread"], _ci(c["windows"][0]["regret"]["difference"], ".3f"),
                        _ci(c["late_regret"], ".3f"), _ci(late, ".4f"),
                        results_page.fmt(c["crossover_regret"], "d"),
                        results_page.fmt(c["crossover_mse"], "d"),
                        _holds(late["low"] > 0)])
    body = ["a = pooled (one model for all accounts), b = per account. Early: the first window "
            f"(steps 1 to {ctx['pooling'][0]['pooled_vs_per_account']['windows'][0]['end']}); late: the "
            f"last half (steps {ctx['steps'] // 2 + 1} to {ctx['steps']:,}). Crossover: the first "
            "recorded step from which the order of the two means at the end holds (cumulative regret; "
            "prediction error; 1: from the start). Claim: aggregating across agents hurts prediction "
            "accuracy (pooled's late error above per-account's, interval above 0).", "",
            *results_page.table(["account spread", "regret/step early, a - b", "regret/step late, a - b",
                                 "prediction error late, a - b", "crossover, regret",
                                 "crossover, error", "claim (1)"], summary, "rrrrrrl")]
    default = next(e for e in ctx["pooling"] if e["spread"] == 0.5)
    for label, key, compare in (
            ("pooled", "pooled_vs_per_account", default["pooled_vs_per_account"]),
            ("shrinkage (ours, not the paper's)", "shrinkage_vs_per_account",
             default["shrinkage_vs_per_account"])):
        body += ["", f"Window by window at spread 0.5, a = {label}, b = per account:", "",
                 *results_page.table(["steps", "regret/step a", "regret/step b", "a - b", "lower"],
                                     _window_rows(compare, "regret", ".3f"), "lrrrl"), "",
                 *results_page.table(["steps", "prediction error a", "prediction error b", "a - b",
                                      "lower"], _window_rows(compare, "mse", ".4f"), "lrrrl")]
    sections.append(("3a. Finding (1): pooling across accounts against per-account models", body))
    rows = []
    for entry in ctx["drift"]:
        c = entry["windowed_vs_stationary"]
        late = c["late_regret"]
        drift = entry["drift"]
        half_life = f"{1.39 / drift ** 2:,.0f}" if drift > 0 else "∞"
        verdict = (_holds(late["high"] < 0) if drift > 0
                   else "control: " + ("stationary lower" if late["low"] > 0 else
                                       "windowed lower" if late["high"] < 0 else "no difference"))
        rows.append([drift, half_life, _ci(late, ".3f"), _ci(c["late_mse"], ".4f"),
                     results_page.fmt(c["crossover_regret"], "d"), verdict])
    sections.append(("3b. Finding (2): non-stationarity, stationary against windowed", [
        f"a = windowed (per account, its last {ctx['window']} observations), b = stationary (per "
        "account, all history), account spread 0.5; late = the last half of the steps. Claim: under "
        "drift the windowed learner's late regret is lower (a - b interval below 0). Crossover: the "
        "first recorded step from which the order of the two mean cumulative regrets at the end holds "
        "(– : equal at the end).", "",
        *results_page.table(["drift", "half-life (steps)", "late regret/step, a - b",
                             "late prediction error, a - b", "crossover", "claim (2)"], rows,
                            "rrrrrl")]))
    return sections


def summary_section(results: dict[str, Any]) -> list[str]:
    """Return the claims and verdicts of every part measured, one line each."""
    rows = []
    if "step" in results:
        step = results["step"]
        for variant in ("scaled", "fixed"):
            for policy, entry in step["variants"][variant]["policies"].items():
                for claim, verdict in step_verdicts(policy, entry, step["bound_slope"]):
                    measured = f"slope {_slope_text(entry['slope'])}"
                    if policy == "ucb1":
                        measured += f", last segment {_slope_text(entry['last_slope'])}"
                    rows.append([f"step ({variant} switch)", f"{LABELS[policy]}: {claim}", measured,
                                 verdict])
        paper = step.get("paper_horizon")
        if paper:
            for policy, w in paper["wswa_over"].items():
                if policy == "swa":
                    continue  # not a claim: SWA was not in the paper's runs
                rows.append(["step, T = 30,000", f"wSWA outperforms {LABELS[policy]}",
                             f"{w['wins']}/{step['seeds']} wins, p {_p(w['p'])}",
                             _holds(w["mean_difference"] < 0 and w["p"] < 0.05)])
    if "parametric" in results:
        para = results["parametric"]
        for case in ("av", "anv"):
            entry = para[case]
            model = entry["model_policy"]
            for policy, w in entry["model_over"].items():
                extra = " (SWA: our addition)" if policy == "swa" else ""
                rows.append([case.upper(), f"{LABELS[model]} outperforms {LABELS[policy]}{extra}",
                             f"{w['wins']}/{para['seeds']} wins, p {_p(w['p'])}",
                             _holds(w["mean_difference"] < 0 and w["p"] < 0.05)])
            for policy, w in entry["wswa_over"].items():
                if policy == "swa":
                    continue
                rows.append([case.upper(), f"wSWA outperforms {LABELS[policy]}",
                             f"{w['wins']}/{para['seeds']} wins, p {_p(w['p'])}",
                             _holds(w["mean_difference"] < 0 and w["p"] < 0.05)])
            if model == "cto":
                growth, final = entry["model_growth"], entry["policies"][model]["regret"]["mean"]
                rows.append(["AV", "CTO_SIM: o(1) regret beyond a finite T*",
                             f"R grows {growth['mean']:.1f} from T/3 to T (R(T) {final:.1f})",
                             _holds(growth["mean"] < 0.1 * final)])
    if "contextual" in results:
        ctx = results["contextual"]
        for entry in ctx["pooling"]:
            late = entry["pooled_vs_per_account"]["late_mse"]
            rows.append([f"follower, spread {entry['spread']}", "(1) pooling hurts prediction accuracy",
                         f"late error pooled - per account {_ci(late, '.4f')}", _holds(late["low"] > 0)])
        for entry in ctx["drift"]:
            if entry["drift"] > 0:
                late = entry["windowed_vs_stationary"]["late_regret"]
                rows.append([f"follower, drift {entry['drift']}", "(2) windowed beats stationary late",
                             f"late regret/step windowed - stationary {_ci(late, '.3f')}",
                             _holds(late["high"] < 0)])
    return results_page.table(["setting", "claim", "measured", "verdict"], rows)


def page(results: dict[str, Any], source: str, date: str | None = None,
         machine: str | None = None) -> str:
    """Render the results page of ``results``."""
    meta = results_page.measured(results, date, machine)
    sections: list[tuple[str | None, list[str]]] = [(None, [
        "The claims of Levine, Crammer and Mannor, \"Rotting Bandits\" (NeurIPS 2017), and of Levine, "
        "Mann and Mannor, \"Actively Learning to Attract Followers on Twitter\" (2015), as "
        "`shared/papers/PAPERS.md` sections 1 and 2 give them, measured with `rwrl.bandits` at its "
        "defaults (nothing tuned). The verdict rules were set before the measured run (the docstring "
        "of `benchmarks/bandits.py`); one, UCB1's \"linear\", was changed after a 10-trajectory "
        "smoke run, as the notes below say."]), ("Claims and verdicts", summary_section(results))]
    if "step" in results:
        sections += step_section(results, source)
    if "parametric" in results:
        sections += parametric_section(results, source)
    if "contextual" in results:
        sections += contextual_section(results, source)
    return results_page.render_page(
        "Bandits: rotting arms and the follower bandit against their papers' claims",
        meta["command"], meta["date"], meta["machine"], sections, source=Path(source).name,
        rebuild=results_page.rebuild_command("bandits.py", f"--out {source}", meta))


def write_page(json_path: Path, date: str | None = None, machine: str | None = None) -> Path:
    return results_page.write_json_page(json_path, page, date, machine)


# ------------------------------------------------------------------ figures
def write_figures(results: dict[str, Any], folder: Path) -> list[Path]:
    """Draw the figures of every measured part from ``results`` into ``folder``; return their paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    written = []
    colors = dict(zip(LABELS, plt.get_cmap("tab10").colors))
    if "step" in results:
        step = results["step"]
        horizons = np.asarray(step["horizons"], np.float64)
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
        for ax, (variant, title) in zip(axes, (("scaled", "switch at T/4"),
                                               ("fixed", f"switch at {PAPER_SWITCH:,}"))):
            for policy, entry in step["variants"][variant]["policies"].items():
                mean = np.array([r["mean"] for r in entry["regret"]])
                err = np.array([[r["mean"] - r["low"] for r in entry["regret"]],
                                [r["high"] - r["mean"] for r in entry["regret"]]])
                ax.errorbar(horizons, mean, yerr=err, marker="o", capsize=3, color=colors[policy],
                            label=f"{LABELS[policy]} (slope {entry['slope']['slope']:.2f})")
                if variant == "fixed" and policy != "swa" and entry["curve"]:
                    t = np.asarray(entry["curve"]["t"])
                    keep = t >= horizons[0] / 2  # the anytime run between the horizons
                    ax.plot(t[keep], np.asarray(entry["curve"]["mean"])[keep], color=colors[policy],
                            alpha=0.4, linewidth=1)
            anchor = horizons[0]
            for power, style in ((1.0, ":"), (2 / 3, "--")):
                ax.plot(horizons, 10 * (horizons / anchor) ** power, color="grey", linestyle=style,
                        linewidth=1, label=f"slope {power:.2f}")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("horizon T")
            ax.set_title(f"step instance, {title}", fontsize=10)
            ax.legend(fontsize=8)
        axes[0].set_ylabel(f"mean regret R(T), {step['seeds']} trajectories (bars: 95 %)")
        axes[1].text(0.98, 0.02, "thin: UCB1 and wSWA's one run to the largest T", fontsize=7,
                     ha="right", transform=axes[1].transAxes)
        path = folder / FIGURES["step"]
        fig.savefig(path, dpi=90, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    if "parametric" in results:
        para = results["parametric"]
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, case in zip(axes, ("av", "anv")):
            for policy, row in para[case]["policies"].items():
                ax.plot(row["curve"]["t"], row["curve"]["mean"], color=colors[policy],
                        label=LABELS[policy])
            ax.set_title(f"{case.upper()}, K = 10, mean of {para['seeds']} trajectories", fontsize=10)
            ax.set_xlabel("round t")
            ax.set_ylabel("mean regret R(t)")
            ax.legend(fontsize=8)
        path = folder / FIGURES["parametric"]
        fig.savefig(path, dpi=90, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    if "contextual" in results:
        ctx = results["contextual"]
        runs = ctx["runs"]
        fig, axes = plt.subplots(1, 3, figsize=(14, 4))
        styles = {"pooled": "-", "per_account": "--", "shrinkage": ":"}
        spread_colors = dict(zip(CONTEXTUAL_SPREADS, plt.get_cmap("tab10").colors))
        for run in runs.values():
            if run["drift"] == 0.0 and run["learner"] in styles:
                kwargs = dict(color=spread_colors[run["spread"]], linestyle=styles[run["learner"]],
                              label=f"{run['learner']}, spread {run['spread']}")
                axes[0].plot(run["curve"]["t"], run["curve"]["regret"], **kwargs)
                axes[1].plot(run["curve"]["t"], run["curve"]["mse"], **kwargs)
        drift_colors = dict(zip(CONTEXTUAL_DRIFTS, plt.get_cmap("tab10").colors[3:]))
        for run in runs.values():
            if run["spread"] == 0.5 and run["learner"] in ("per_account", "windowed"):
                axes[2].plot(run["curve"]["t"], run["curve"]["regret"], color=drift_colors[run["drift"]],
                             linestyle="--" if run["learner"] == "per_account" else "-",
                             label=f"{'stationary' if run['learner'] == 'per_account' else 'windowed'}, "
                                   f"drift {run['drift']}")
        for ax, title, label in ((axes[0], "(1) regret, drift 0", "cumulative regret per account"),
                                 (axes[1], "(1) prediction error, drift 0", "prediction MSE"),
                                 (axes[2], "(2) stationary against windowed, spread 0.5",
                                  "cumulative regret per account")):
            if ax is not axes[2]:
                ax.set_xscale("log")
            ax.set_xlabel("step")
            ax.set_ylabel(label)
            ax.set_title(title, fontsize=10)
            ax.legend(fontsize=6)
        axes[0].set_yscale("log")
        axes[1].set_yscale("log")
        path = folder / FIGURES["contextual"]
        fig.savefig(path, dpi=90, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    return written


# ------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--seeds", type=int, default=100,
                        help="trajectories per policy and setting, step and parametric (default 100)")
    parser.add_argument("--horizons", type=int, nargs="+", default=list(DEFAULT_HORIZONS),
                        help="horizons T of the step instance (default 1e3 3e3 1e4 3e4 1e5)")
    parser.add_argument("--parametric-horizon", type=int, default=PAPER_HORIZON,
                        help="T of the AV and ANV runs (default the paper's 30,000)")
    parser.add_argument("--contextual-seeds", type=int, default=50,
                        help="follower-simulator instances per setting (default 50)")
    parser.add_argument("--contextual-steps", type=int, default=2_000,
                        help="steps of every follower run (default 2,000)")
    parser.add_argument("--figures", action="store_true",
                        help="with --page-only: also redraw the figures from the JSON")
    results_page.add_page_arguments(parser)
    args = parser.parse_args(argv)

    def write(json_path: Path, date: str | None = None, machine: str | None = None) -> Path:
        if args.figures:
            write_figures(json.loads(Path(json_path).read_text()), Path(json_path).parent)
        return write_page(json_path, date, machine)

    if results_page.rewrite_page_only(parser, args, write):
        return
    horizons = sorted(set(args.horizons))
    if "step" in args.parts and (len(horizons) < 2 or horizons[0] < 2):
        parser.error(f"--horizons {args.horizons}: give at least two horizons of 2 rounds or more "
                     "(the slope needs two)")
    results: dict[str, Any] = {}
    if args.out is not None and args.out.is_file() and set(args.parts) != set(PARTS):
        results = json.loads(args.out.read_text())  # keep the parts not measured now
    stamp = results_page.stamp("bandits.py", argv)
    results["measured"] = stamp
    for part in PARTS:
        if part not in args.parts:
            continue
        print(f"{part}:", file=sys.stderr, flush=True)
        if part == "step":
            results[part] = measure_step(args.seeds, horizons)
        elif part == "parametric":
            results[part] = measure_parametric(args.seeds, args.parametric_horizon)
        else:
            results[part] = measure_contextual(args.contextual_seeds, args.contextual_steps)
        results[part]["measured"] = stamp
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        for path in write_figures(results, args.out.parent):
            print(f"figure: {path}", file=sys.stderr)
    results_page.publish(results, args.out, write_page)


if __name__ == "__main__":
    main()
