"""Policy distillation: the action loss, a fit that recovers a teacher, the chain, the student directories."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from typer.testing import CliRunner

from rwrl.agents.networks import DeterministicPolicy, GaussianPolicy
from rwrl.cli.app import app
from rwrl.datasets.behaviour_policies import PolicyError, load_policy
from rwrl.distill.chain import check_chain, parse_sizes
from rwrl.distill.policy import (GAUSSIAN, FitSettings, StateSettings, action_error, batch_action_error, fit,
                                 gaussian_kl_loss)
from rwrl.distill.runs import DistillError, load_teacher
from tests.tiny_run import train_tiny_run

FAST = ["--episodes", "2", "--epochs", "20", "--held-out-episodes", "1", "--eval-episodes", "2"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return train_tiny_run(tmp_path_factory.mktemp("distill") / "run", policy_hidden_sizes=(8, 8))


def test_action_error_is_the_mean_squared_difference():
    # (0.5 - 0)^2 = 0.25 and (-1 - 1)^2 = 4, averaged over the 2 dimensions: 2.125.
    assert float(action_error(np.array([0.5, -1.0]), np.array([0.0, 1.0]))) == pytest.approx(2.125)
    a = np.random.default_rng(0).uniform(-1, 1, (6, 3))
    assert float(batch_action_error(a, a)) == 0.0


def test_a_student_of_the_teachers_size_recovers_it_from_another_initialisation():
    net = DeterministicPolicy(2, (8,))
    states = np.random.default_rng(0).standard_normal((512, 5)).astype(np.float32)
    teacher = net.init(jax.random.PRNGKey(0), states)
    leaves, tree = jax.tree_util.tree_flatten(teacher)
    keys = jax.random.split(jax.random.PRNGKey(2), len(leaves))
    # the output layer starts near zero: perturb every weight so the teacher's actions span [-1, 1]
    teacher = jax.tree_util.tree_unflatten(
        tree, [x + 0.5 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])
    targets = net.apply(teacher, states)
    student = net.init(jax.random.PRNGKey(1), states)
    before = float(batch_action_error(net.apply(student, states), targets))
    fitted = fit(net.apply, student, states, targets, FitSettings(epochs=300, batch_size=128, learning_rate=3e-3))
    after = float(batch_action_error(net.apply(fitted, states), targets))
    assert before > 0.1 and after < 5e-3 and after < before / 100


@pytest.mark.parametrize("text, message", [
    ("", "is empty"), (" , ", "is empty"), ("64,x", "each must be an integer"), ("0", "each must be an integer"),
])
def test_bad_size_lists_are_refused(text, message):
    with pytest.raises(DistillError, match=message):
        parse_sizes(text)


def test_sizes_must_shrink_along_the_chain():
    check_chain((128, 128), (128, 64, 64, 8))  # equal widths are allowed, growth is not
    with pytest.raises(DistillError, match="student 1 of width 256 is wider than the teacher"):
        check_chain((128, 128), (256,))
    with pytest.raises(DistillError, match=r"student 3 of width 32 is wider than student 2 \(16 wide\)"):
        check_chain((128, 128), (64, 16, 32))
    with pytest.raises(DistillError, match="no student size"):
        check_chain((128,), ())


def test_bad_state_source_is_refused():
    with pytest.raises(ValueError, match="not a state source"):
        StateSettings(source="logs")
    with pytest.raises(ValueError, match="give a dataset exactly when states = 'dataset'"):
        StateSettings(source="dataset")
    with pytest.raises(ValueError, match="give a dataset exactly when states = 'dataset'"):
        StateSettings(source="rollouts", dataset="some/dataset-v0")


def test_the_gaussian_loss_is_the_kl_from_teacher_to_student_summed_over_dimensions():
    # KL(N(0, 1) || N(1, 2^2)) = log 2 + (1 + 1) / (2 * 4) - 1/2 = 0.44315; the second dimension
    # matches exactly (0), and the reverse direction differs: KL(N(1, 4) || N(0, 1)) = log(1/2) + (4 + 1) / 2 - 1/2 = 1.30685.
    s_mean, s_std = np.array([1.0, 0.3]), np.array([2.0, 0.5])
    t_mean, t_std = np.array([0.0, 0.3]), np.array([1.0, 0.5])
    assert float(gaussian_kl_loss(s_mean, s_std, t_mean, t_std)) == pytest.approx(np.log(2) - 0.25)
    assert float(gaussian_kl_loss(t_mean, t_std, s_mean, s_std)) == pytest.approx(2.0 - np.log(2))


def test_a_gaussian_student_recovers_its_teachers_means_and_stddevs_by_the_kl():
    net = GaussianPolicy(2, (8,))
    states = np.random.default_rng(0).standard_normal((512, 5)).astype(np.float32)
    leaves, tree = jax.tree_util.tree_flatten(net.init(jax.random.PRNGKey(0), states))
    keys = jax.random.split(jax.random.PRNGKey(2), len(leaves))
    teacher = jax.tree_util.tree_unflatten(
        tree, [x + 0.5 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])
    labels = GAUSSIAN.label(net.apply(teacher, states))
    student = net.init(jax.random.PRNGKey(1), states)
    before = float(GAUSSIAN.loss(net.apply(student, states), labels))
    fitted = fit(net.apply, student, states, labels, FitSettings(epochs=300, batch_size=128, learning_rate=3e-3),
                 GAUSSIAN)
    after = float(GAUSSIAN.loss(net.apply(fitted, states), labels))
    assert before > 1.0 and after < 0.1 and after < before / 100  # 7.54 -> 0.060 here
    _, std = net.apply(fitted, states)
    assert np.median(np.abs(np.asarray(std) / labels[:, 2:] - 1)) < 0.1  # the stddevs too, not the means alone


def test_a_run_without_a_checkpoint_is_a_one_line_error(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    result = CliRunner().invoke(app, ["distill", str(run), "--sizes", "4", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "has no checkpoint under" in result.output
    assert len(result.output.strip().splitlines()) == 1
    with pytest.raises(PolicyError, match="does not exist"):
        load_teacher(tmp_path / "nowhere")


def test_a_wider_student_is_a_one_line_error(tiny_run, tmp_path):
    result = CliRunner().invoke(app, ["distill", str(tiny_run), "--sizes", "16", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "wider than the teacher" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("states", ["rollouts", pytest.param("dagger", marks=pytest.mark.slow)])
def test_a_chain_writes_loadable_students_each_distilled_from_the_previous(tiny_run, tmp_path, states):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["distill", str(tiny_run), "--sizes", "8,4", "--out", str(out),
                                      "--states", states, "--rounds", "1", *FAST])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "distill.json").read_text())
    first, second = report["students"]
    assert [first["hidden_sizes"], second["hidden_sizes"]] == [[8, 8], [4, 4]]
    # the chain: the first link's teacher is the run's checkpoint, the second's is the first link
    assert first["teacher"] == report["teacher"] and second["teacher"] == first["directory"]
    teacher = load_policy(report["teacher"])
    students = [load_policy(next((tmp_path / "out" / d).glob("checkpoints/ckpt-*")))
                for d in ("student-1-8", "student-2-4")]
    config = json.loads((out / "student-2-4" / "config.json").read_text())
    assert config["agent"]["policy_hidden_sizes"] == [4, 4]
    assert config["run"]["agent_config"]["policy_hidden_sizes"] == [4, 4]
    assert config["distill"]["teacher"].endswith(next((out / "student-1-8").glob("checkpoints/ckpt-*")).name)
    assert 0.0 <= first["action_error"] < 0.1 and 0.0 <= second["action_error"] < 0.1
    expected_states = 2 * 50 * (2 if states == "dagger" else 1)
    assert first["states"] == second["states"] == expected_states
    lines = result.output.splitlines()
    assert lines[1].split()[:3] == ["width", "hidden", "act"] and lines[2].split()[0] == "8"


@pytest.mark.slow  # 8-18 s; the rollouts chain's test checks each student loads and acts
def test_each_link_is_labelled_by_the_link_before(tiny_run, tmp_path, monkeypatch):
    from rwrl.distill import chain

    probe = np.random.default_rng(0).standard_normal((16, 5)).astype(np.float32)
    labels = []

    def recording(teacher, *args, **kwargs):
        labels.append(teacher(probe))
        return original(teacher, *args, **kwargs)

    original = chain.distil
    monkeypatch.setattr(chain, "distil", recording)
    out = tmp_path / "out"
    chain.distil_chain(tiny_run, (8, 4, 2), out, StateSettings(episodes=1), FitSettings(epochs=5),
                       held_out_episodes=1, eval_episodes=1)
    links = [load_policy(next(tiny_run.glob("checkpoints/ckpt-*")))] + [
        load_policy(next((out / d).glob("checkpoints/ckpt-*"))) for d in ("student-1-8", "student-2-4")]
    # cartpole's action bounds are [-1, 1]: load_policy's env-unit actions are the unit ones
    for recorded, link in zip(labels, links):
        np.testing.assert_allclose(recorded, link(probe), atol=1e-6)


def _write_dataset(env_id, dataset_id, episodes, time_limit):
    import gymnasium
    import minari

    import rwrl  # noqa: F401  (registers the envs)
    env = minari.DataCollector(gymnasium.make(env_id, time_limit=time_limit))
    env.action_space.seed(0)
    for episode in range(episodes):
        env.reset(seed=episode)
        done = False
        while not done:
            done = any(env.step(env.action_space.sample())[2:4])
    env.create_dataset(dataset_id=dataset_id, algorithm_name="random", description="distill test")
    return dataset_id


def test_a_dataset_as_the_state_source_fits_on_every_state_it_logged(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    cartpole = _write_dataset("rwrl/cartpole-swingup-v0", "rwrl/cartpole-swingup/distill-v0", 3, 20)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["distill", str(tiny_run), "--sizes", "4", "--out", str(out),
                                      "--states", "dataset", "--dataset", cartpole, *FAST])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "distill.json").read_text())
    assert report["source"] == "dataset" and report["students"][0]["states"] == 3 * 20
    walker = _write_dataset("rwrl/walker-walk-v0", "rwrl/walker-walk/distill-v0", 1, 5)
    result = CliRunner().invoke(app, ["distill", str(tiny_run), "--sizes", "4", "--out", str(tmp_path / "w"),
                                      "--states", "dataset", "--dataset", walker, *FAST])
    assert result.exit_code == 2
    assert "its observations have 24 values, the teacher's task 5: give a dataset of the teacher's task" \
        in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.slow  # 10-25 s: a DMPO teacher trained first; the D4PG teacher's chain stays
def test_a_dmpo_teacher_is_distilled_into_a_gaussian_student_that_acts_by_its_clipped_mean(tmp_path):
    run = train_tiny_run(tmp_path / "dmpo", policy_hidden_sizes=(8, 8), agent="dmpo")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["distill", str(run), "--sizes", "4", "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "distill.json").read_text())
    assert report["loss"] == "gaussian"
    student = load_teacher(out / "student-1-4")
    assert student.head is GAUSSIAN and student.hidden_sizes == (4, 4)
    obs = np.random.default_rng(0).standard_normal((7, student.obs_size)).astype(np.float32)
    mean, _ = student.agent.networks.policy.apply(student.policy_params, obs)
    acted = load_policy(student.checkpoint)(obs)  # as the evaluation tools act
    assert np.allclose(acted, np.clip(np.asarray(mean), -1, 1) * student.high, atol=1e-6)
