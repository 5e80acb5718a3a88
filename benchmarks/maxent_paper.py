"""The max-ent estimator on the kind of synthetic MDPs its paper describes (issue 28).

Lazic et al. 2020 (NeurIPS, arXiv 2006.12620) evaluate on "two synthetic domains
and three benchmark problems" (a reviewer's words; the paper's experiment section,
its environments, data sizes and baselines were not readable here, see
rwrl/ope/maxent.py). This benchmark builds the settings its abstract names, all
tabular so that the truth is exact (``rho = d_pi . r_pi``, d_pi the stationary
distribution of the target's chain):

* ``ring``: 6 states on a ring, 2 actions (step left / right, slip 0.2), rewards
  U(0, 1) per (s, a); one-hot (s, a) features: a linear MDP.
* ``linear``: a random linear MDP, 30 states, 3 actions, d = 6:
  ``P(s' | s, a) = phi(s, a) . psi(s')``, phi on the simplex (Dirichlet 0.2),
  each psi_k a distribution over states (Dirichlet 0.1), ``r = phi . theta_r``,
  theta_r ~ U(0, 1)^d; the estimators get phi.
* ``linear-state-rewards``: the same dynamics, rewards r(s) ~ U(0, 1) per state,
  not linear in phi: the abstract's "approximately linear [feature dynamics] and
  arbitrary rewards".

Per domain, two deterministic targets, greedy and anti-greedy on a one-step
lookahead of the reward (so that their stationary distributions differ from the
behaviour's); the behaviour takes the target's action with probability 0.3 and the others evenly. Data:
episodes of ``--episode-length`` steps from uniform start states, ``--sizes``
transitions in all, one dataset per seed. Estimators (rwrl.ope.maxent, defaults
except the features): ``maxent`` (reward modelled linearly), ``maxent-observed``
(observed rewards), ``linear`` (the linear-MDP plug-in ``nu . theta_r``),
``maxent-onehot`` (max-ent on one-hot (s, a) features: the tabular
certainty-equivalent model), ``data-mean`` (the data's mean reward: what ignoring
the target gives). Reported: the absolute error |rho_hat - rho|, mean over seeds
with a 95 % bootstrap interval. Nothing is tuned.

Usage::

    python benchmarks/maxent_paper.py --out benchmarks/results/maxent_paper.json
    python benchmarks/maxent_paper.py --seeds 2 --sizes 500,1000 --out /tmp/maxent_paper/maxent_paper.json
    python benchmarks/maxent_paper.py --page-only --out benchmarks/results/maxent_paper.json
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import results_page
from rwrl.ope.tabular_mdp import TabularMDP, one_hot_state_action, ring_mdp

DOMAINS = ("ring", "linear", "linear-state-rewards")
ESTIMATORS = ("maxent", "maxent-observed", "linear", "maxent-onehot", "data-mean")
TARGET_PROBABILITY = 0.3  # the behaviour's probability of the target's action
MDP_SEED = 0  # the domains and targets are fixed; the seeds vary the data


def linear_mdp(rng: np.random.Generator, state_rewards: bool, states: int = 30, actions: int = 3,
               d: int = 6) -> TabularMDP:
    phi = rng.dirichlet(np.full(d, 0.2), size=(states, actions))
    psi = rng.dirichlet(np.full(states, 0.1), size=d)  # (d, S)
    theta_r = rng.uniform(size=d)
    r_state = rng.uniform(size=states)
    r = np.repeat(r_state[:, None], actions, axis=1) if state_rewards else phi @ theta_r
    return TabularMDP(phi @ psi, r, phi)


def make_domain(name: str) -> TabularMDP:
    rng = np.random.default_rng(MDP_SEED)
    return ring_mdp(rng) if name == "ring" else linear_mdp(rng, state_rewards=name == "linear-state-rewards")


def targets(mdp: TabularMDP) -> dict[str, np.ndarray]:
    """Return the two targets: greedy and anti-greedy on a one-step lookahead of the reward.

    ``q(s, a) = r(s, a) + sum_s' P(s' | s, a) max_b r(s', b)``: a good and a bad policy,
    whose stationary distributions differ from the behaviour's.
    """
    q = mdp.r + mdp.p @ mdp.r.max(axis=1)
    return {"greedy": q.argmax(axis=1), "anti-greedy": q.argmin(axis=1)}


def behaviour(table: np.ndarray, actions: int) -> np.ndarray:
    """Return (S, A) probabilities: the target's action TARGET_PROBABILITY, the others evenly."""
    probs = np.full((len(table), actions), (1 - TARGET_PROBABILITY) / (actions - 1))
    probs[np.arange(len(table)), table] = TARGET_PROBABILITY
    return probs


def sample(mdp: TabularMDP, probs: np.ndarray, transitions: int, length: int, rng: np.random.Generator):
    """Return the first ``transitions`` transitions of episodes of ``length`` steps (uniform starts)."""
    data = mdp.sample(probs, -(-transitions // length), length, rng)
    return dataclasses.replace(data, **{field: getattr(data, field)[:transitions] for field in
                                        ("obs", "actions", "rewards", "next_obs", "discounts")})


def estimates(mdp: TabularMDP, table: np.ndarray, data) -> dict[str, float]:
    """Return every estimator's estimate of the target's average reward from ``data``."""
    from rwrl.ope.maxent import MaxEntConfig, linear_average_reward, maxent_average_reward
    actions = mdp.r.shape[1]

    def policy(obs):  # one-hot states -> the table's one-hot actions
        return np.eye(actions)[table[obs.argmax(axis=1)]]

    def given(obs, acts):
        return mdp.phi[obs.argmax(axis=1), acts.argmax(axis=1)]

    return {
        "maxent": maxent_average_reward(policy, data, MaxEntConfig(), features=given).average_reward,
        "maxent-observed": maxent_average_reward(policy, data, MaxEntConfig(reward="observed"),
                                                 features=given).average_reward,
        "linear": linear_average_reward(policy, data, MaxEntConfig(), features=given),
        "maxent-onehot": maxent_average_reward(policy, data, MaxEntConfig(),
                                               features=one_hot_state_action).average_reward,
        "data-mean": float(np.mean(data.rewards)),
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    rows = []
    for domain in args.domains:
        mdp = make_domain(domain)
        for k, (target, table) in enumerate(targets(mdp).items()):
            truth = mdp.average_reward(table)
            probs = behaviour(table, mdp.r.shape[1])
            for size in args.sizes:
                start, per_seed = time.perf_counter(), []
                for seed in range(args.seeds):
                    rng = np.random.default_rng([MDP_SEED, k, size, seed])
                    per_seed.append(estimates(mdp, table, sample(mdp, probs, size, args.episode_length, rng)))
                rows.append({"domain": domain, "target": target, "transitions": size, "truth": truth,
                             "estimates": {e: [s[e] for s in per_seed] for e in ESTIMATORS},
                             "seconds": time.perf_counter() - start})
                print(f"{domain} {target} N {size}: truth {truth:.3f}, maxent error "
                      f"{np.mean(np.abs(np.array(rows[-1]['estimates']['maxent']) - truth)):.4f}",
                      file=sys.stderr, flush=True)
    return {"seeds": args.seeds, "sizes": args.sizes, "episode_length": args.episode_length,
            "target_probability": TARGET_PROBABILITY, "rows": rows}


def error_cell(estimates: list[float], truth: float) -> str:
    from rwrl.report.aggregate import bootstrap_ci
    errors = np.abs(np.asarray(estimates) - truth)
    low, high = bootstrap_ci(errors)
    return f"{errors.mean():.4f} [{results_page.fmt(low, '.4f')}, {results_page.fmt(high, '.4f')}]"


def page(results: dict[str, Any], source: str, date: str | None = None, machine: str | None = None) -> str:
    meta = results_page.measured(results, date, machine)
    data = results["settings"]
    sections: list[tuple[str | None, list[str]]] = [(None, [
        f"Absolute error of the average-reward estimate, mean over {data['seeds']} datasets (seeds) with "
        f"a 95 % bootstrap interval; episodes of {data['episode_length']} steps; the behaviour takes the "
        f"target's action with probability {data['target_probability']}. The domains are this benchmark's "
        "reading of the paper's synthetic settings (its experiment section was not read); see the "
        "module doc of `benchmarks/maxent_paper.py`."])]
    for domain in DOMAINS:
        rows = [r for r in data["rows"] if r["domain"] == domain]
        if not rows:
            continue
        body = results_page.table(
            ["target", "transitions", "true rho"] + list(ESTIMATORS),
            [[r["target"], r["transitions"], f"{r['truth']:.3f}"]
             + [error_cell(r["estimates"][e], r["truth"]) for e in ESTIMATORS] for r in rows],
            "lrr" + "r" * len(ESTIMATORS))
        sections.append((f"Domain `{domain}`", body))
    return results_page.render_page(
        "Max-ent off-policy evaluation on the paper's kind of synthetic MDPs", meta["command"], meta["date"],
        meta["machine"], sections, source=Path(source).name,
        rebuild=results_page.rebuild_command("maxent_paper.py", f"--out {source}", meta))


def write_page(json_path: Path, date: str | None = None, machine: str | None = None) -> Path:
    return results_page.write_json_page(json_path, page, date, machine)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domains", default=",".join(DOMAINS))
    parser.add_argument("--sizes", type=_ints, default=[1000, 3000, 10000, 30000], help="transitions per dataset")
    parser.add_argument("--seeds", type=int, default=10, help="datasets per (domain, target, size)")
    parser.add_argument("--episode-length", type=int, default=100)
    results_page.add_page_arguments(parser)
    args = parser.parse_args(argv)
    if results_page.rewrite_page_only(parser, args, write_page):
        return
    args.domains = [d for d in args.domains.split(",") if d]
    if set(args.domains) - set(DOMAINS) or not args.sizes or min(args.sizes) < 2 or args.seeds < 1:
        parser.error(f"--domains from {list(DOMAINS)}, --sizes >= 2 each, --seeds >= 1")
    result = {"measured": results_page.stamp("maxent_paper.py", argv), "settings": measure(args)}
    results_page.publish(result, args.out, write_page)


if __name__ == "__main__":
    main()
