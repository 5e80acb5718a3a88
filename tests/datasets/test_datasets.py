"""Datasets: a round trip through plain Minari, exact replay in the recovered env,
a deterministic checksum, and a killed generation that never loads as complete."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import gymnasium
import minari
import numpy as np
import pytest
from typer.testing import CliRunner

from rwrl.datasets import naming
from rwrl.datasets.create import _open_staging, create_dataset
from rwrl.datasets.behaviour_policies import PolicyError, make_vector_env, random_policy
from rwrl.datasets.episodes import derived_seeds, run_episodes
from rwrl.datasets.store import env_spec, float32_box, staging_dir, write_dataset
from tests.datasets.conftest import cli

ID = "rwrl/cartpole-swingup-none-1pct-v0"


@pytest.fixture(scope="module")
def made(tiny_policies, tmp_path_factory):
    """``rwrl dataset create cartpole-swingup --size 1`` run through the CLI into its own root."""
    root = tmp_path_factory.mktemp("minari")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(root))
        result = CliRunner().invoke(cli(), [
            "dataset", "create", "cartpole-swingup", "--challenge", "none", "--size", "1",
            "--policy", str(tiny_policies), "--num-envs", "5", "--ref-episodes", "2",
            "--no-progress"])
        assert result.exit_code == 0, result.output
        yield root


@pytest.fixture
def root(made, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(made))
    return made


def test_plain_minari_loads_the_published_shape_with_infos(root):
    dataset = minari.load_dataset(ID)
    assert dataset.total_episodes == naming.episode_count("cartpole-swingup", 1) == 5
    assert dataset.total_steps == 5 * 1000
    for episode in dataset.iterate_episodes():
        assert episode.observations.shape == (1001, 5) and episode.observations.dtype == np.float32
        assert episode.actions.shape == (1000, 1) and np.all(np.abs(episode.actions) <= 1)
        assert not episode.terminations.any() and episode.truncations.tolist() == [False] * 999 + [True]
        constraints, cost = episode.infos["constraints"], episode.infos["cost"]
        assert constraints.shape == (1001, 3) and constraints.dtype == bool and cost.shape == (1001,)
        np.testing.assert_array_equal(cost, (~constraints).sum(axis=1))  # cost counts violations
    # behaviour noise: the 5 episodes differ, and the actions are not the policy's saturated +-1
    returns = [e.rewards.sum() for e in dataset.iterate_episodes()]
    assert len(set(returns)) == 5


def test_reference_scores_make_minari_normalized_scores_work(root):
    dataset = minari.load_dataset(ID)
    meta = dataset.storage.metadata
    low, high = meta["ref_min_score"], meta["ref_max_score"]
    assert np.isfinite(low) and np.isfinite(high) and low != high
    np.testing.assert_allclose(minari.get_normalized_score(dataset, np.array([low, high])), [0, 1])


def test_the_recovered_envs_replay_every_episode_exactly(root):
    dataset = minari.load_dataset(ID)
    seeds = [m["seed"] for m in dataset.storage.get_episode_metadata(range(5))]
    for eval_env in (False, True):
        env = dataset.recover_environment(eval_env=eval_env)
        for index in (0, 4):
            episode = dataset[index]
            obs, _ = env.reset(seed=int(seeds[index]))
            np.testing.assert_array_equal(np.float32(obs), episode.observations[0])
            for t in (range(1000) if index == 0 else range(50)):
                obs, reward, _, _, info = env.step(episode.actions[t])
                np.testing.assert_array_equal(np.float32(obs), episode.observations[t + 1])
                assert reward == episode.rewards[t] and info["cost"] == episode.infos["cost"][t + 1]


def test_a_challenge_is_rebuilt_by_the_recovered_env(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    kwargs = naming.challenge_kwargs("easy")
    env = make_vector_env("rwrl/cartpole-swingup-v0", kwargs, 2)
    space = env.single_action_space
    arrays = run_episodes(env, random_policy(space.low, space.high, 0), derived_seeds(0, "t", 0, 2))
    spec = env_spec("rwrl/cartpole-swingup-v0", kwargs)
    write_dataset(tmp_path / "rwrl" / "easy-v0", "rwrl/easy-v0", spec,
                  float32_box(env.single_observation_space), space, [arrays], {})
    dataset = minari.load_dataset("rwrl/easy-v0")
    recovered = dataset.recover_environment()
    assert recovered.observation_space.shape == (15,)  # easy adds dimensions (plain: 5)
    episode = dataset[1]
    obs, _ = recovered.reset(seed=int(arrays.seeds[1]))
    for t in range(200):  # easy also adds noise and a perturbed pole: both seeded by the reset
        np.testing.assert_array_equal(np.float32(obs), episode.observations[t])
        obs, *_ = recovered.step(episode.actions[t])


def test_list_and_show_report_the_dataset_and_verify_its_checksum(root):
    listed = CliRunner().invoke(cli(), ["dataset", "list"])
    assert listed.exit_code == 0 and ID in listed.output and "5 episodes" in listed.output
    shown = CliRunner().invoke(cli(), ["dataset", "show", ID, "--verify"])
    assert shown.exit_code == 0, shown.output
    summary = json.loads(shown.output)
    assert summary["checksum_verified"] is True and summary["rwrl_seed"] == 0
    assert summary["rwrl_command"].startswith("rwrl dataset create cartpole-swingup --challenge none --size 1")
    assert "Gaussian, std 0.2" in summary["rwrl_behaviour_noise"]


def _kill_mid_generation(policy, chunk_file):
    """Run the generation in a child process and SIGKILL it once ``chunk_file`` exists."""
    code = ("from rwrl.datasets.create import create_dataset\n"
            f"create_dataset('cartpole-swingup', 'none', 1, policy={str(policy)!r}, num_envs=2, "
            "ref_episodes=2, progress=False)")
    child = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while not chunk_file.exists():
            assert child.poll() is None, "the generation ended before it could be killed"
            assert time.monotonic() < deadline, f"no {chunk_file.name} within 120 s"
            time.sleep(0.02)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()


def test_same_command_same_checksum_and_a_killed_generation_continues_to_it(
        tiny_policies, tmp_path, monkeypatch):
    args = dict(policy=tiny_policies, num_envs=2, ref_episodes=2, progress=False)
    checksums = {}
    for name in ("clean", "killed"):
        monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / name))
        if name == "killed":  # SIGKILL while the second of three chunks is made
            _kill_mid_generation(tiny_policies, staging_dir(ID) / "chunk-00000.npz")
            with pytest.raises(FileNotFoundError):  # nothing loads, nothing is listed
                minari.load_dataset(ID)
            assert minari.list_local_datasets() == {}
        made = []
        summary = create_dataset("cartpole-swingup", "none", 1, on_chunk=made.append, **args)
        # continued, not restarted: the killed one kept its first chunk (at least)
        assert made == [0, 1, 2] if name == "clean" else made in ([1, 2], [2])
        assert not staging_dir(ID).exists()
        checksums[name] = summary["rwrl_content_sha256"]
    assert checksums["clean"] == checksums["killed"]
    # the same command over a complete dataset finds it; another command is refused
    assert create_dataset("cartpole-swingup", "none", 1, **args)["rwrl_content_sha256"] == checksums["clean"]
    with pytest.raises(FileExistsError, match="minari delete"):
        create_dataset("cartpole-swingup", "none", 1, **{**args, "seed": 1})
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "seed1"))
    other = create_dataset("cartpole-swingup", "none", 1, seed=1, **args)
    assert other["rwrl_content_sha256"] != checksums["clean"]


def test_staging_of_another_command_starts_over(tmp_path):
    staging = tmp_path / "stage"
    _open_staging(staging, {"seed": 0})
    (staging / "chunk-00000.npz").write_bytes(b"x")
    _open_staging(staging, {"seed": 0})
    assert (staging / "chunk-00000.npz").exists()
    _open_staging(staging, {"seed": 1})
    assert not (staging / "chunk-00000.npz").exists()


def test_a_policy_of_another_observation_size_is_refused(tiny_policies, tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    with pytest.raises(PolicyError, match=r"on 5 observations; .* \(easy\) has 15"):
        create_dataset("cartpole-swingup", "easy", 1, policy=tiny_policies, progress=False)


@pytest.mark.parametrize("field, kwargs, allowed", [
    ("task", {"task": "cartpole-balance"}, "cartpole-swingup"),
    ("challenge", {"challenge": "hard"}, "'none', 'easy'"),
    ("size", {"size": 3}, "1, 5, 20, 40, 100"),
])
def test_an_unknown_task_challenge_or_size_is_named(field, kwargs, allowed):
    args = {"task": "cartpole-swingup", "challenge": "none", "size": 1, **kwargs}
    with pytest.raises(ValueError, match=f"{field} = .* is not allowed: choose one of .*{allowed}"):
        create_dataset(**args)


def test_ids_follow_minaris_rules():
    from minari.dataset.minari_dataset import parse_dataset_id
    assert parse_dataset_id(naming.dataset_id("humanoid-walk", "easy", 40)) == \
        ("rwrl", "humanoid-walk-easy-40pct", 0)
    assert gymnasium.spec("rwrl/humanoid-walk-v0") is not None


def test_rwrl_ope_evaluates_the_trained_policy_set_with_its_default_loader(root, tiny_policies,
                                                                          tmp_path):
    """policies train -> dataset create -> ope: the manifest's checkpoints are the policy set."""
    from rwrl.cli import app
    out = tmp_path / "ope.json"
    result = CliRunner().invoke(app, [
        "ope", "--dataset", ID, "--policies", str(tiny_policies), "--method", "fqe",
        "--steps", "100", "--episodes", "2", "--num-envs", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = json.loads(out.read_text())
    manifest = json.loads((tiny_policies / "manifest.json").read_text())
    assert [r["name"] for r in table["rows"]] == [e["path"] for e in manifest["checkpoints"]]
    assert all(np.isfinite(r["estimate"]) and np.isfinite(r["true_discounted"])
               for r in table["rows"])
