"""Evaluation on other env settings (RunConfig.eval_env_kwargs) and level-restricted agents in sweeps."""

from __future__ import annotations

from pathlib import Path

import pytest

from rwrl.experiments.config import RunConfig
from rwrl.experiments.run import RunHooks, _build_trainer
from rwrl.experiments.sweeps.plan import Overrides, SweepSpecError, expand, load_plan

REPO = Path(__file__).resolve().parents[2]
HELD_OUT = [0.5, 2.0]


def test_the_eval_env_takes_the_eval_kwargs_over_the_training_ones():
    config = RunConfig(agent="dmpo", env="cartpole-swingup", num_envs=2, eval_episodes=6,
                       env_kwargs={"time_limit": 30, "perturb_spec": {"enable": True, "param": "pole_length",
                                                                     "scheduler": "uniform",
                                                                     "values": [0.75, 1.25]}},
                       eval_env_kwargs={"perturb_spec": {"enable": True, "param": "pole_length",
                                                         "scheduler": "uniform", "values": HELD_OUT}})
    assert config.eval_config().env_make_kwargs()["time_limit"] == 30  # kept from training
    assert RunConfig().eval_config() == RunConfig()
    trainer = _build_trainer(config, Path("unused"), RunHooks(progress=False))
    _, train_info = trainer.train_env.reset(seed=0)
    _, eval_info = trainer.eval_env.reset(seed=0)
    assert set(train_info["perturbation"]["pole_length"]) <= {0.75, 1.25}
    assert set(eval_info["perturbation"]["pole_length"]) <= set(HELD_OUT)
    assert trainer.eval_env.unwrapped.time_limit == 30


def test_the_robust_sweep_runs_each_baseline_in_its_own_level():
    plan = load_plan(REPO / "sweeps" / "robust.toml")
    by_level = {}
    for run in plan.runs:
        by_level.setdefault(run.level, set()).add(run.config.agent)
        values = run.config.eval_env_kwargs["perturb_spec"]["values"]
        assert not {0.75, 1.25} & set(values)  # evaluated on held-out lengths (and nominal)
    assert by_level == {"nominal": {"dmpo"}, "domain-randomization": {"dmpo"},
                        "model-set": {"rmpo", "srmpo"}}
    assert len(plan.runs) == 4 * 3
    rmpo = next(r.config for r in plan.runs if r.config.agent == "rmpo")
    assert rmpo.agent_config["values"] == [0.75, 1.0, 1.25] and "perturb_spec" not in rmpo.env_kwargs
    only_rmpo = load_plan(REPO / "sweeps" / "robust.toml", Overrides(agents=("rmpo",)))
    assert {r.level for r in only_rmpo.runs} == {"model-set"} and len(only_rmpo.runs) == 3


def _sweep(**level):
    return {"sweep": {"name": "t", "agents": ["dmpo", "rmpo"], "envs": ["cartpole-swingup"], "seeds": 1},
            "levels": [{"name": "a", **level}]}


@pytest.mark.parametrize("level, match", [
    (dict(agents=["sac"]), r"\[\[levels\]\] 'a' agents: unknown agent 'sac'"),
    (dict(agents="dmpo"), "give a non-empty list of names"),
    ({"eval_env_kwargs.perturb_spec.values": [9.0], "eval_env_kwargs.perturb_spec.enable": True,
      "eval_env_kwargs.perturb_spec.scheduler": "uniform"}, r"\(eval_env_kwargs\).*values"),
    ({"eval_env_kwargs.colour": 1}, "eval_env_kwargs allows"),
])
def test_bad_level_agents_and_eval_kwargs_are_named(level, match):
    with pytest.raises(SweepSpecError, match=match):
        expand(_sweep(**level), "test", Overrides())
