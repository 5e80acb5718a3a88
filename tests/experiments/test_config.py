"""RunConfig: validation names the field; config.json round trips."""

from __future__ import annotations

import pytest

from rwrl.experiments.config import ConfigError, RunConfig, read_config, write_config


@pytest.mark.parametrize("changes, field", [
    ({"agent": "ppo"}, "agent"),
    ({"env": "cartpole"}, "env"),
    ({"combined_challenge": "extreme"}, "combined_challenge"),
    ({"safety_coeff": 1.5}, "safety_coeff"),
    ({"steps": 0}, "steps"),
    ({"num_envs": -2}, "num_envs"),
    ({"eval_every": 0}, "eval_every"),
    ({"eval_episodes": 0}, "eval_episodes"),
    ({"checkpoint_every": 0}, "checkpoint_every"),
    ({"keep_checkpoints": 0}, "keep_checkpoints"),
    ({"seed": -1}, "seed"),
    ({"steps": 10.5}, "steps"),
    ({"num_envs": True}, "num_envs"),
    ({"save_replay": "yes"}, "save_replay"),
    ({"agent_config": ["sigma", 0.2]}, "agent_config"),
])
def test_an_invalid_value_names_its_field(changes, field):
    with pytest.raises(ConfigError, match=rf"RunConfig\.{field} must be"):
        RunConfig(**changes)


def test_unknown_fields_are_named():
    with pytest.raises(ConfigError, match="unknown RunConfig field.*num_env"):
        RunConfig.from_dict({"num_env": 4})


def test_challenge_options_become_make_vec_arguments():
    config = RunConfig(combined_challenge="easy", safety_coeff=0.5, env_kwargs={"time_limit": 50})
    assert config.env_id == "rwrl/cartpole-swingup-v0"
    assert config.env_make_kwargs() == {"time_limit": 50, "combined_challenge": "easy",
                                        "safety_spec": {"enable": True, "safety_coeff": 0.5}}


def test_config_json_round_trips(tmp_path):
    config = RunConfig(agent="dmpo", safety_coeff=0.3, agent_config={"batch_size": 64})
    write_config(tmp_path / "config.json", config, {"batch_size": 64, "hidden": [1, 2]})
    back, agent = read_config(tmp_path / "config.json")
    assert back == config
    assert agent == {"batch_size": 64, "hidden": [1, 2]}
