"""The rate-control benchmark's online agents (``--online``): a finished sweep's policies on a test clip."""

import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import ratecontrol  # noqa: E402

from rwrl.cli import app  # noqa: E402

SWEEP = """[sweep]
name = "rc"
agents = ["d4pg", "rcd4pg"]
envs = ["ratecontrol"]
seeds = 1
steps = 16
[fixed]
num_envs = 2
eval_every = 16
eval_episodes = 2
"agent_config.min_replay_size" = 8
"agent_config.batch_size" = 8
"env_kwargs.frames" = 8
"env_kwargs.width" = 64
"env_kwargs.height" = 48
"env_kwargs.clip_count" = 3
"env_kwargs.reward_scale" = 0.01
"env_kwargs.cost" = "running"
"""


def test_an_online_sweeps_policies_code_a_test_clip_as_methods_of_the_benchmark(tmp_path):
    from rwrl.envs.ratecontrol import corpus_clips

    spec = tmp_path / "sweep.toml"
    spec.write_text(SWEEP)
    out = tmp_path / "sweep"
    with pytest.raises(SystemExit, match="is not finished"):
        (out / "runs" / "d4pg__ratecontrol__base__s0").mkdir(parents=True)
        ratecontrol.online_policies(out)
    result = CliRunner().invoke(app, ["sweep", "run", str(spec), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    online = ratecontrol.online_policies(out)
    assert sorted(online) == ["online-d4pg", "online-rcd4pg"] and len(online["online-d4pg"]) == 1
    clip = corpus_clips(split="test", frames=8, width=64, height=48, clip_count=3)[0]
    teacher = {"bits": [1.0] * 8, "psnr": [30.0] * 8}
    rows = ratecontrol.evaluate(clip, 32, teacher, [], online)
    budget = ratecontrol.budget_of(clip, 32)
    for name in online:
        (row,) = rows[name]  # one per seed
        assert len(row["qps"]) == 8 and 0 <= min(row["qps"]) <= max(row["qps"]) <= 51
        assert row["within"] == (row["bits"] <= budget) and row["budget"] == budget
    # the same policy on the same clip codes the same QPs (deterministic acting, x264 one thread)
    again = ratecontrol.evaluate(clip, 32, teacher, [], online)
    assert [r["qps"] for r in again["online-d4pg"]] == [r["qps"] for r in rows["online-d4pg"]]
    analysis = ratecontrol.analyse({clip.name: {32: rows}}, [32],
                                   ("two-pass", "online-d4pg", "online-rcd4pg"))
    assert analysis["online-d4pg"]["encodes"] == 1
    assert np.isfinite(analysis["online-rcd4pg"]["within_budget"])
