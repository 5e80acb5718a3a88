"""``rwrl run`` on the rate-control family (``--env ratecontrol``, ``rwrl/ratecontrol-v0``).

A tiny corpus (3 procedural clips of 8 frames, 64 x 48: 2 train clips, 1 test clip)
keeps an episode at 8 steps and the run at a few seconds. The bad-input rows fail
before the first step.
"""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from rwrl.cli import app
from rwrl.metrics.episode_file import read_rows

runner = CliRunner()
FRAMES = 8
TINY_CORPUS = [f"--env-kwarg={kv}" for kv in
               (f"frames={FRAMES}", "width=64", "height=48", "clip_count=3")]


def _one_line(result, pattern: str) -> None:
    """Exit 2, one non-empty line matching ``pattern``, no traceback."""
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert re.search(pattern, lines[0]), lines[0]


def test_rcd4pg_trains_on_ratecontrol_under_the_bitrate_constraint(tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, [
        "run", "--agent", "rcd4pg", "--env", "ratecontrol", "--steps", "160", "--num-envs", "2",
        "--eval-every", "160", "--eval-episodes", "2", "--checkpoint-every", "160",
        *TINY_CORPUS, "--eval-env-kwarg", "split=test",
        "--agent-config", "batch_size=16", "--agent-config", "min_replay_size=32",
        "--agent-config", "policy_hidden_sizes=[8]", "--agent-config", "critic_hidden_sizes=[8]",
        "--no-progress", "--out", str(out)])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    # RC-D4PG names no constraint: it takes the family's only one
    assert config["agent"]["cost_constraint"] == "bitrate"
    assert config["run"]["eval_env_kwargs"] == {"split": "test"}
    rows = read_rows(out / "metrics.jsonl")
    train = [r for r in rows if r["phase"] == "train"]
    evals = [r for r in rows if r["phase"] == "eval"]
    assert len(train) == 160 // FRAMES  # one episode per clip, every step stored
    assert len(evals) == 2 * 2  # at step 0 and at the end, 2 episodes each
    for row in rows:
        assert row["length"] == FRAMES
        assert row["violations/bitrate"] in (0, 1)  # judged once, on the clip's last frame
        assert row["violation_rate/bitrate"] == row["violations/bitrate"] / FRAMES
        assert row["cost"] == row["violations/bitrate"]  # K = 1: the cost is that violation
        assert 20 * FRAMES < row["return"] < 100 * FRAMES  # PSNR in dB per frame
    # The untrained policy codes near QP 25, finer than every default budget's QP (28 to
    # 40), so episodes overshoot: J_C = 1/8 > beta = 0.1 and the ascent raises lambda.
    assert sum(r["violations/bitrate"] for r in train) > 0
    assert train[-1]["learner/lambda"] > 0.0
    assert (out / "report.html").exists()


@pytest.mark.parametrize("args, pattern", [
    (["--env-kwarg", "nosuchkey=3"],
     r"RunConfig\.env_kwargs: unknown key\(s\) \['nosuchkey'\] for rwrl/ratecontrol-v0: "
     r"allowed \['corpus', 'split', .*'target_qps'"),
    (["--env-kwarg", "time_limit=5"], r"unknown key\(s\) \['time_limit'\].*allowed \['corpus'"),
    (["--env-kwarg", 'delay_spec={"actions": 1}'],
     r"RunConfig\.env_kwargs: challenge keyword\(s\) \['delay_spec'\] do not apply to env "
     r"'ratecontrol'"),
    (["--eval-env-kwarg", 'noise_spec={"gaussian": {"enable": true}}'],
     r"RunConfig\.eval_env_kwargs: challenge keyword\(s\) \['noise_spec'\] do not apply"),
    (["--combined-challenge", "easy"],
     r"RunConfig\.combined_challenge must be None for env 'ratecontrol'.*got 'easy'"),
    (["--safety-coeff", "0.5"], r"RunConfig\.safety_coeff must be None for env 'ratecontrol'"),
    (["--agent", "rmpo"], r"RunConfig\.agent must be an agent without a model set for env "
                          r"'ratecontrol'"),
    # the env's values are checked with the config, before anything is built
    (["--env-kwarg", "split=val"],
     r"RunConfig\.env_kwargs: split 'val' is not allowed: one of train, test"),
    (["--env-kwarg", "cost=sometimes"],
     r"RunConfig\.env_kwargs: cost 'sometimes' is not allowed: one of final, running"),
    # the corpus's sizes are the factory's to check, when the env is made: still one line
    (["--env-kwarg", "width=7"], r"RunConfig\.env_kwargs of 'ratecontrol': width"),
    (["--env", "ratecontro"], r"RunConfig\.env must be '<domain>-<task>', .* or one of "
                              r"\('ratecontrol',\).*got 'ratecontro'"),
])
def test_bad_ratecontrol_input_is_one_line_and_leaves_no_run(tmp_path, args, pattern):
    result = runner.invoke(app, ["run", "--env", "ratecontrol", *TINY_CORPUS, "--steps", "16",
                                 "--no-progress", "--out", str(tmp_path / "runs" / "r"), *args])
    _one_line(result, pattern)
    assert not (tmp_path / "runs").exists()


def test_a_sweep_trains_the_rate_control_family(tmp_path):
    spec = tmp_path / "sweep.toml"
    paths = [kv.removeprefix("--env-kwarg=").split("=") for kv in TINY_CORPUS]
    sizes = "\n".join(f'"env_kwargs.{key}" = {value}' for key, value in paths)
    spec.write_text('[sweep]\nname = "rc"\nagents = ["d4pg"]\nenvs = ["ratecontrol"]\n'
                    'seeds = 1\nsteps = 32\n[fixed]\nnum_envs = 2\neval_every = 32\n'
                    'eval_episodes = 2\n"agent_config.min_replay_size" = 16\n'
                    '"agent_config.batch_size" = 8\n"env_kwargs.cost" = "running"\n'
                    f'{sizes}\n"eval_env_kwargs.split" = "test"\n')
    result = runner.invoke(app, ["sweep", "run", str(spec), "--out", str(tmp_path / "out"),
                                 "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = read_rows(tmp_path / "out" / "runs" / "d4pg__ratecontrol__base__s0" / "metrics.jsonl")
    assert {r["length"] for r in rows} == {FRAMES}
    assert sum(r["phase"] == "train" for r in rows) == 32 // FRAMES
