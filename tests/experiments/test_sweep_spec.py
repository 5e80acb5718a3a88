"""Sweep files: expansion into runs, the paths, and errors that name the file, key and allowed values."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from rwrl.agents import AGENTS
from rwrl.experiments import run as run_module
from rwrl.experiments.sweeps.plan import Overrides, SweepSpecError, load_plan
from rwrl.metrics import sweep_results

REPO = Path(__file__).resolve().parents[2]

HEAD = """
[sweep]
name = "t"
agents = ["d4pg", "dmpo"]
envs = ["cartpole-swingup", "walker-walk"]
seeds = 3
steps = 1000
"""


def _plan(tmp_path, text, overrides=None):
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    return load_plan(path, overrides)


def test_levels_and_axes_are_crossed_with_agents_envs_and_seeds(tmp_path):
    plan = _plan(tmp_path, HEAD + """
[fixed]
agent_config.batch_size = 32
"env_kwargs.time_limit" = 100
[axes]
"noise_spec.gaussian.observations" = [0.0, 0.5]
[[levels]]
name = "none"
[[levels]]
name = "easy"
"delay_spec.actions" = 3
"perturb_spec" = {param = {per_domain = {cartpole = "pole_length", walker = "thigh_length"}}}
""")
    # 2 agents x 2 envs x (2 levels x 2 axis values) x 3 seeds
    assert len(plan.runs) == 2 * 2 * 4 * 3
    assert plan.levels == ("none", "easy") and plan.axes == ("noise_spec.gaussian.observations",)
    by_id = {r.run_id: r for r in plan.runs}
    run = by_id["dmpo__walker-walk__easy__noise_spec.gaussian.observations=0.5__s2"]
    assert run.level == "easy" and run.level_index == 1
    assert run.config.seed == 2 and run.config.steps == 1000 and run.config.report is False
    assert run.config.agent_config == {"batch_size": 32}
    assert run.config.env_kwargs == {"time_limit": 100, "delay_spec": {"actions": 3},
                                     "perturb_spec": {"param": "thigh_length"},
                                     "noise_spec": {"gaussian": {"observations": 0.5}}}
    none = by_id["d4pg__cartpole-swingup__none__noise_spec.gaussian.observations=0.0__s0"]
    assert "delay_spec" not in none.config.env_kwargs


def test_overrides_scale_and_replace_the_files_settings(tmp_path):
    text = HEAD + "[fixed]\neval_every = 400\n"
    plan = _plan(tmp_path, text, Overrides(scale=0.25, seeds=1, envs=("cartpole-balance",),
                                           agents=("d4pg",)))
    assert [r.run_id for r in plan.runs] == ["d4pg__cartpole-balance__base__s0"]
    config = plan.runs[0].config
    assert (config.steps, config.eval_every, config.checkpoint_every) == (250, 100, 5000)
    assert _plan(tmp_path, text, Overrides(scale=0.25, steps=77)).runs[0].config.steps == 77


@pytest.mark.parametrize("body, expected", [
    ("[fixed]\nbogus = 1\n", r"sweep\.toml: \[fixed\]: unknown key 'bogus'; allowed: the RunConfig fields"),
    ("[fixed]\nseed = 1\n", r"'seed' is set in \[sweep\]"),
    ("[axes]\n\"delay_spec.actions\" = 3\n", r"\[axes\] delay_spec.actions = 3: give a non-empty list"),
    ("[axes]\n\"delay_spec.actions\" = [0, 2000]\n",
     r"delay_spec\['actions'\] = 2000 is out of range: allowed integers in \[0, 1000\]"),
    ("[axes]\n\"noise_spec.gaussian.observation\" = [0.1]\n",
     r"unknown key 'observation'; allowed keys: \['actions', 'enable', 'observations', 'pixels'\]"),
    ("[fixed]\n\"perturb_spec.param\" = \"pole_length\"\n",
     r"on walker-walk: perturb_spec\['param'\] \(domain 'walker'\) = 'pole_length' is unknown: "
     r"allowed \['thigh_length'"),
    ("[fixed]\n\"perturb_spec.max\" = {per_domain = {cartpole = 1.5}}\n",
     r"perturb_spec.max: no value for domain 'walker' in per_domain \['cartpole'\]"),
    ("[fixed]\nagent_config.batch_sise = 8\n", r"unknown d4pg config field\(s\) \['batch_sise'\]; allowed: \["),
    ("[fixed]\nagent_config.batch_size = 0\n", r"agent_config for d4pg: batch_size=0: must be an integer >= 1"),
    ("[fixed]\ncombined_challenge = \"easy\"\n\"delay_spec.actions\" = 3\n",
     r"combined_challenge='easy' sets the delay, noise"),
    ("[fixed]\nsafety_coeff = 1.5\n", r"RunConfig.safety_coeff must be None or in \[0, 1\], got 1.5"),
    ("[fixed]\n\"env_kwargs.num_threads\" = 2\n",
     r"env_kwargs allows \['time_limit', 'pixels_width', 'pixels_height', 'pixels_camera', 'frame_stack'\]"),
    ("[[levels]]\nname = \"a\"\n\"delay_spec.actions\" = 1\n[axes]\n\"delay_spec.actions\" = [2]\n",
     r"'delay_spec.actions' is set by level 'a' and by \[axes\]"),
    ("[[levels]]\nname = \"a\"\n[[levels]]\nname = \"a\"\n", r"the name 'a' is used twice"),
])
def test_an_invalid_spec_names_the_file_the_key_and_the_allowed_values(tmp_path, body, expected):
    with pytest.raises(SweepSpecError, match=expected) as err:
        _plan(tmp_path, HEAD + body)
    assert str(err.value).startswith(str(tmp_path / "sweep.toml"))


@pytest.mark.parametrize("sweep, expected", [
    ('agents = ["d4pg", "sac"]', "unknown agent 'sac'; allowed: " + re.escape(str(sorted(AGENTS)))),
    ('envs = ["cartpole-swing"]', r"\[sweep\] envs: unknown env 'cartpole-swing'; did you mean "
                                  r"'cartpole-swingup' or 'cartpole-balance'\? \(`rwrl envs` lists"),
    ("seeds = 0", r"seeds = 0: give a count N >= 1"),
    ("color = 1", r"\[sweep\]: unknown key 'color'; allowed: \['name'"),
])
def test_an_invalid_sweep_table_names_the_key(tmp_path, sweep, expected):
    text = HEAD.replace('agents = ["d4pg", "dmpo"]', "") if sweep.startswith("agents") else HEAD
    text = text.replace('envs = ["cartpole-swingup", "walker-walk"]', "") if sweep.startswith("envs") else text
    text = text.replace("seeds = 3", "") if sweep.startswith("seeds") else text
    with pytest.raises(SweepSpecError, match=expected):
        _plan(tmp_path, text.replace("steps = 1000", f"steps = 1000\n{sweep}"))


def test_the_results_reader_names_the_run_files_the_run_layer_writes():
    assert sweep_results.RUN_CONFIG == run_module.CONFIG_FILE
    assert sweep_results.RUN_METRICS == run_module.METRICS_FILE
    assert sweep_results.RUN_SUMMARY == run_module.SUMMARY_FILE
    from rwrl.storage.run_lock import LOCK_FILE
    assert sweep_results.RUN_LOCK == LOCK_FILE


def _expected_runs(path: Path, agents=None, envs=None, seeds=None) -> int:
    """Runs = sum over agents of (levels open to it, at least 1) x product of axis lengths x envs x seeds.

    Read from the TOML; ``agents``, ``envs``, ``seeds`` stand for the command line's overrides.
    """
    data = tomllib.loads(path.read_text())
    sweep = data["sweep"]
    if seeds is None:
        seeds = sweep["seeds"] if isinstance(sweep["seeds"], int) else len(sweep["seeds"])
    agents, envs = agents or sweep["agents"], envs or sweep["envs"]
    levels = [level.get("agents", agents) for level in data.get("levels", [])] or [agents]
    points = sum(agent in level for agent in agents for level in levels)
    for values in data.get("axes", {}).values():
        points *= len(values)
    return points * len(envs) * seeds


#: the RL sweep files (bandit ones, ``kind = "bandit"``: tests/bandits/test_sweep.py).
SWEEP_FILES = sorted(p for p in (REPO / "sweeps").rglob("*.toml")
                     if tomllib.loads(p.read_text())["sweep"].get("kind", "rl") == "rl")


def test_the_paper_sweeps_cover_every_dimension():
    names = {p.stem for p in (REPO / "sweeps" / "paper").glob("*.toml")}
    assert names >= {"delay-actions", "delay-observations", "delay-rewards",
                     "noise-gaussian-observations", "noise-gaussian-actions", "noise-dropped",
                     "noise-stuck", "action-repetition", "dimensionality", "perturbation",
                     "multiobj", "safety", "combined"}


@pytest.mark.parametrize("path", SWEEP_FILES, ids=[p.stem for p in SWEEP_FILES])
def test_every_sweep_file_is_valid(path):
    plan = load_plan(path)
    assert len(plan.runs) == _expected_runs(path)
    assert len({r.run_id for r in plan.runs}) == len(plan.runs)
    if path.parent.name == "paper":
        assert {r.config.agent for r in plan.runs} == {"d4pg", "dmpo"}
        assert {r.config.env for r in plan.runs} == {"cartpole-swingup", "walker-walk",
                                                     "quadruped-walk", "humanoid-walk"}
    sweep = tomllib.loads(path.read_text())["sweep"]
    first, env = sweep["agents"][0], sweep["envs"][0]
    small = load_plan(path, Overrides(scale=0.01, seeds=1, envs=(env,), agents=(first,)))
    assert len(small.runs) == _expected_runs(path, (first,), (env,), 1)
    assert all(r.config.steps == max(1, round(plan.runs[0].config.steps * 0.01))
               for r in small.runs)


def test_a_sweep_runs_the_rate_control_family_with_its_own_env_kwargs(tmp_path):
    plan = _plan(tmp_path, """
[sweep]
name = "rc"
agents = ["d4pg", "rcd4pg"]
envs = ["ratecontrol"]
seeds = 1
steps = 600
[fixed]
"env_kwargs.reward_scale" = 0.01
"env_kwargs.cost" = "running"
"env_kwargs.frames" = {per_domain = {ratecontrol = 8}}
"eval_env_kwargs.split" = "test"
""")
    configs = [run.config for run in plan.runs]
    assert [c.agent for c in configs] == ["d4pg", "rcd4pg"]
    assert configs[0].env_kwargs == {"reward_scale": 0.01, "cost": "running", "frames": 8}
    assert configs[0].eval_config().env_kwargs["split"] == "test"


@pytest.mark.parametrize("envs, body, expected", [
    ('["ratecontrol"]', '"env_kwargs.cost" = "sometimes"\n',
     r"cost 'sometimes' is not allowed: one of final, running"),
    ('["ratecontrol"]', '"env_kwargs.reward" = "vmaf"\n', r"reward 'vmaf' is not allowed"),
    ('["ratecontrol"]', '"delay_spec.actions" = 2\n',
     r"challenge keyword\(s\) \['delay_spec'\] do not apply to env 'ratecontrol'"),
    ('["cartpole-swingup"]', '"env_kwargs.corpus" = "x"\n', r"unknown key\(s\) \['corpus'\]"),
    ('["ratecontrol"]', '"env_kwargs.corpse" = "x"\n',
     r"unknown key 'env_kwargs.corpse'.*for ratecontrol: \['corpus', "),
])
def test_a_family_sweep_refuses_what_its_env_does_not_take(tmp_path, envs, body, expected):
    text = f"[sweep]\nname = \"rc\"\nagents = [\"d4pg\"]\nenvs = {envs}\nseeds = 1\nsteps = 600\n[fixed]\n{body}"
    with pytest.raises(SweepSpecError, match=expected):
        _plan(tmp_path, text)

