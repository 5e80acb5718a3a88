"""Run each recipe of docs/integrations.md as written, then check what it left behind."""

import importlib.util
import pathlib
import re

import numpy as np
import pytest

DOC = pathlib.Path(__file__).parents[2] / "docs" / "integrations.md"
RECIPES = dict(re.findall(r"```python\n# recipe: (\w+)\n(.*?)```", DOC.read_text(), re.S))
NEEDS = {"rllib": "ray.rllib", "torchrl": "torchrl", "sb3": "stable_baselines3", "sbx": "sbx",
         "cleanrl": "gymnasium"}


def test_every_recipe_is_run_here():
    assert sorted(RECIPES) == sorted(NEEDS)


def _run(name):
    module = NEEDS[name]
    if importlib.util.find_spec(module.split(".")[0]) is None:
        pytest.skip(f"{module} is not installed (pip install -e '.[integrations]')")
    namespace = {"__name__": f"recipe_{name}"}
    exec(compile(RECIPES[name], f"{DOC}:{name}", "exec"), namespace)
    return namespace


def test_rllib_recipe_reports_episode_cost():
    import ray
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        runners = _run("rllib")["results"]["env_runners"]
    finally:
        ray.shutdown()
    assert runners["num_episodes"] >= 1
    # cost = violated constraints per step (tasks/task.py), summed over the episode
    violations = sum(v for k, v in runners.items() if k.startswith("violations/"))
    assert runners["episode_cost"] == pytest.approx(violations)


def test_torchrl_recipe_reads_cost_per_env_and_step():
    rollout = _run("torchrl")["rollout"]
    assert rollout.batch_size == (8, 1_000)
    # walker-walk truncates at its 1000th step: the last step of every env, nowhere else
    truncated = rollout["next", "truncated"].squeeze(-1).numpy()
    assert truncated[:, -1].all() and not truncated[:, :-1].any()
    violated = (~rollout["next", "constraints"]).sum(-1).double()
    assert (rollout["next", "cost"] == violated).all()


@pytest.mark.parametrize("name", ["sb3", "sbx"])
def test_sac_recipe_runs_1000_steps(name):
    model = _run(name)["model"]
    assert model.num_timesteps == 1_000


def test_cleanrl_recipe_counts_every_finished_episode():
    finished = _run("cleanrl")["finished_costs"]
    # 200-step episodes plus one reset step each: ends at steps 199, 400, 601, 802 of 1000
    assert len(finished) == 16 * 4
    assert all(0 <= c <= 200 * 3 for c in finished)  # at most 3 violations a step, cartpole
    assert np.isfinite(finished).all()
