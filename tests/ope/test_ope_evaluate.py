"""``rwrl ope`` end to end: a tiny Minari dataset of cartpole-swingup, constant policies, both methods."""

import dataclasses
import json

import gymnasium
import numpy as np
import pytest
from typer.testing import CliRunner

import rwrl  # noqa: F401  (registers the envs)
from rwrl.core.seeding import spawn_seeds
from rwrl.ope import evaluate
from rwrl.ope.evaluate import RolloutSettings, load_policy_set, load_transitions, rollout_values
from rwrl.ope.policy import NamedPolicy

TIME_LIMIT = 25  # steps per episode: tiny, the pipeline is what is tested
ACTIONS = {"push-left": -1.0, "still": 0.0, "push-right": 1.0}


def constant_loader(entry, directory):
    """The test's policy loader: a manifest entry's constant action."""
    del directory
    return lambda obs: np.full((len(obs), 1), entry["action"], dtype=np.float32)


@pytest.fixture
def dataset_id(tmp_path, monkeypatch):
    import minari

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    env = minari.DataCollector(gymnasium.make("rwrl/cartpole-swingup-v0", time_limit=TIME_LIMIT))
    env.action_space.seed(0)
    for episode in range(6):
        env.reset(seed=episode)
        done = False
        while not done:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            done = terminated or truncated
    env.create_dataset(dataset_id="rwrl/cartpole-swingup/ope-test-v0", algorithm_name="random",
                       description="ope test")
    return "rwrl/cartpole-swingup/ope-test-v0"


@pytest.fixture
def policies_dir(tmp_path):
    directory = tmp_path / "policies"
    directory.mkdir()
    entries = [{"name": name, "path": name, "action": a} for name, a in ACTIONS.items()]
    (directory / "manifest.json").write_text(json.dumps({"policies": entries}))
    return directory


def test_transitions_come_from_plain_minari_episodes(dataset_id):
    import minari

    data, horizon = load_transitions(minari.load_dataset(dataset_id))
    assert horizon == TIME_LIMIT
    assert data.obs.shape == (6 * TIME_LIMIT, 5) and data.actions.shape == (6 * TIME_LIMIT, 1)
    np.testing.assert_array_equal(data.discounts, 1.0)  # the time limit truncates, never terminates
    # the next observation of step t is the observation of step t + 1 within an episode
    np.testing.assert_array_equal(data.next_obs[:TIME_LIMIT - 1], data.obs[1:TIME_LIMIT])
    np.testing.assert_array_equal(data.initial_obs[1], data.obs[TIME_LIMIT])


def test_rollout_truths_equal_single_env_episodes():
    spec = gymnasium.spec("rwrl/cartpole-swingup-v0")
    spec = dataclasses.replace(spec, kwargs={**spec.kwargs, "time_limit": TIME_LIMIT})
    policy = NamedPolicy("half-right", constant_loader({"action": 0.5}, None))
    settings = RolloutSettings(episodes=3, num_envs=2, discount=0.9, seed=7)
    values = rollout_values(policy, spec, settings)
    discounted, returns = [], []
    # batch 0 (seed 7) holds episodes 0 and 1, batch 1 (seed 8) episode 2 (of its 2 envs).
    for seed in spawn_seeds(7, 2) + spawn_seeds(8, 2)[:1]:
        env = gymnasium.make(spec)
        obs, _ = env.reset(seed=int(seed))
        rewards, done = [], False
        while not done:
            obs, r, terminated, truncated, _ = env.step(np.array([0.5], np.float32))
            rewards.append(r)
            done = terminated or truncated
        discounted.append(sum(0.9 ** t * r for t, r in enumerate(rewards)))
        returns.append(sum(rewards))
    assert values["episodes"] == 3
    assert values["discounted"] == pytest.approx(np.mean(discounted), rel=1e-6)
    assert values["return"] == pytest.approx(np.mean(returns), rel=1e-6)
    assert values["average_reward"] == pytest.approx(np.mean(returns) / TIME_LIMIT, rel=1e-6)


def test_the_policy_manifest_is_checked(policies_dir):
    assert [p.name for p in load_policy_set(policies_dir, constant_loader)] == list(ACTIONS)
    (policies_dir / "manifest.json").write_text(json.dumps({"policies": [{"name": "a"}, {"name": "a"}]}))
    with pytest.raises(ValueError, match="distinct"):
        load_policy_set(policies_dir, constant_loader)
    with pytest.raises(FileNotFoundError, match="no policy manifest"):
        load_policy_set(policies_dir.parent, constant_loader)


@pytest.mark.slow  # 15-30 s; the killed-and-continued OPE run and the datasets' `rwrl ope` stay
def test_rwrl_ope_writes_the_table_and_reuses_the_truths(dataset_id, policies_dir, tmp_path, monkeypatch):
    from rwrl.cli import app

    out = tmp_path / "out" / "maxent.json"
    common = ["ope", "--dataset", dataset_id, "--policies", str(policies_dir), "--episodes", "4",
              "--num-envs", "4", "--loader", "tests.ope.test_ope_evaluate:constant_loader"]
    result = CliRunner().invoke(app, common + ["--method", "maxent", "--features", "16", "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = json.loads(out.read_text())
    assert [r["name"] for r in table["rows"]] == list(ACTIONS)
    assert set(table["metrics"]) == {"absolute_error", "rank_correlation", "regret_at_1"}
    horizon, gamma = table["horizon"], table["discount"]
    for row in table["rows"]:
        # max-ent's average reward on the discounted scale: rho (1 - gamma^T) / (1 - gamma)
        assert row["estimate"] == pytest.approx(row["native_estimate"] * (1 - gamma ** horizon) / (1 - gamma))
        assert 0.0 <= row["native_estimate"] <= 1.0  # a weighted mean of rewards in [0, 1]
    assert "push-right" in result.output and "rank_correlation" in result.output

    # the second method reuses the cached true values: rollouts would now fail
    def no_rollouts(*args, **kwargs):
        raise AssertionError("true values were recomputed")

    monkeypatch.setattr(evaluate, "rollout_values", no_rollouts)
    out_fqe = tmp_path / "out" / "fqe.json"
    result = CliRunner().invoke(app, common + ["--method", "fqe", "--steps", "100", "--out", str(out_fqe)])
    assert result.exit_code == 0, result.output
    fqe = json.loads(out_fqe.read_text())
    assert [r["true_discounted"] for r in fqe["rows"]] == [r["true_discounted"] for r in table["rows"]]
    assert all(r["estimate"] == r["native_estimate"] for r in fqe["rows"])

    # FQE-D: the C51 critic's estimates stay in the support [0, 1 / (1 - gamma)]
    out_dist = tmp_path / "out" / "fqe-dist.json"
    result = CliRunner().invoke(app, common + ["--method", "fqe", "--steps", "100", "--critic", "distributional",
                                               "--out", str(out_dist)])
    assert result.exit_code == 0, result.output
    rows = json.loads(out_dist.read_text())["rows"]
    assert all(0.0 <= r["estimate"] <= 1.0 / (1.0 - gamma) for r in rows)
    assert [r["estimate"] for r in rows] != [r["estimate"] for r in fqe["rows"]]
    result = CliRunner().invoke(app, common + ["--method", "fqe", "--critic", "quantile"])
    assert result.exit_code != 0 and "--critic" in result.output and "distributional" in result.output


def test_a_killed_ope_run_continues_with_the_next_policy(dataset_id, policies_dir, tmp_path, monkeypatch):
    from rwrl.ope.maxent import MaxEntConfig

    settings, config = RolloutSettings(episodes=2, num_envs=2), MaxEntConfig(num_features=16)

    def run(out):
        return evaluate.run_ope(dataset_id, policies_dir, "maxent", constant_loader, out,
                                settings=settings, maxent_config=config)

    whole = run(tmp_path / "whole" / "maxent.json")
    real_estimate, calls = evaluate.estimate, []

    def killed_at_the_second(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 2:
            raise KeyboardInterrupt  # the kill, between two policies
        return real_estimate(*args, **kwargs)

    monkeypatch.setattr(evaluate, "estimate", killed_at_the_second)
    out = tmp_path / "resumed" / "maxent.json"
    with pytest.raises(KeyboardInterrupt):
        run(out)
    partial = out.with_name("maxent.json.partial.json")
    (kept,) = json.loads(partial.read_text()).values()  # one key: this dataset, policy set and method
    assert not out.exists() and list(kept) == ["push-left"]
    calls.clear()
    monkeypatch.setattr(evaluate, "estimate", lambda *a, **k: (calls.append(a[1]), real_estimate(*a, **k))[1])
    resumed = run(out)
    assert len(calls) == 2  # push-left was kept, not estimated again
    assert resumed["rows"] == whole["rows"] and resumed["metrics"] == whole["metrics"]
    assert not partial.exists()


def test_an_unknown_method_is_named(policies_dir):
    from rwrl.cli import app

    result = CliRunner().invoke(app, ["ope", "--dataset", "x", "--policies", str(policies_dir),
                                      "--method", "dice"])
    assert result.exit_code != 0 and "dice" in result.output
