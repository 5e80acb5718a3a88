"""Surrogates recover policies of their own form exactly; VIPER's weights steer the fit."""

from __future__ import annotations

import numpy as np
import pytest

from rwrl.datasets.behaviour_policies import PolicyError, resolve_checkpoint
from rwrl.explain.explain_run import ExplainError, ExplainSettings, parse_depths
from rwrl.explain.fidelity import action_agreement
from rwrl.explain.surrogates import fit_linear, fit_tree
from rwrl.explain.tree_views import importances, observation_names, save_tree_png, tree_text
from rwrl.explain.viper import q_gap_weigher, q_gap_weights, uniform_weights, viper


def step_teacher(obs: np.ndarray) -> np.ndarray:
    """+1 where obs[0] > 0.3, else -1: a depth-1 tree's own form."""
    return np.where(obs[:, :1] > 0.3, 1.0, -1.0).astype(np.float32)


def sampled_states(seed: int, n: int = 400, d: int = 3) -> np.ndarray:
    """Uniform states in [-1, 1]^d, obs[0] on the grid -1, -0.9, ..., 1: every sample of 400
    holds 0.3 and 0.4, so the learned threshold 0.35 splits held-out grid states exactly."""
    rng = np.random.default_rng(seed)
    states = rng.uniform(-1, 1, size=(n, d))
    states[:, 0] = rng.integers(-10, 11, size=n) / 10
    return states.astype(np.float32)


def test_a_depth_one_tree_recovers_a_step_policy_exactly_through_viper():
    collect = lambda policy, i: sampled_states(i)  # noqa: E731  (states do not depend on the policy here)
    held_out = sampled_states(99)
    result = viper(step_teacher, lambda o, a, w: fit_tree(o, a, w, 1), collect, held_out, iterations=3)
    assert result.policy.depth == 1
    assert [a.r2 for a in result.agreements] == [1.0, 1.0, 1.0]
    assert result.best_iteration == 0  # all tie: the earliest
    assert result.dataset_sizes == [400, 800, 1200]  # aggregated, not replaced
    np.testing.assert_array_equal(result.policy(held_out), step_teacher(held_out))
    names = ["x", "y", "z"]
    assert importances(result.policy, names) == {"x": 1.0}
    text = tree_text(result.policy, names)
    # the split sits halfway between the grid states 0.3 and 0.4
    threshold = float(text.splitlines()[0].split("<=")[1])
    assert threshold == pytest.approx(0.35, abs=1e-4) and "value: [-1.0000]" in text and "value: [1.0000]" in text


def test_a_linear_surrogate_recovers_a_linear_teacher_exactly():
    coef = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
    intercept = np.array([0.25, -0.5])
    teacher = lambda obs: obs @ coef.T + intercept  # noqa: E731
    obs = sampled_states(0)
    policy = fit_linear(obs, teacher(obs), np.ones(len(obs)))
    np.testing.assert_allclose(policy.coef, coef, atol=1e-9)
    np.testing.assert_allclose(policy.intercept, intercept, atol=1e-9)
    held_out = sampled_states(1)
    agreement = action_agreement(teacher(held_out), policy(held_out))
    assert agreement.r2 == pytest.approx(1.0, abs=1e-12) and agreement.action_error < 1e-6


def test_a_multi_output_tree_fits_every_action_dimension_with_one_set_of_splits():
    obs = sampled_states(2)
    actions = np.concatenate([step_teacher(obs), 2 * step_teacher(obs)], axis=1)
    policy = fit_tree(obs, actions, np.ones(len(obs)), 1)
    np.testing.assert_array_equal(policy(obs), actions)


def test_q_gap_weights_by_hand():
    # Q(s, a) = -(a - s)^2, teacher pi(s) = s so Q(s, pi(s)) = 0; candidates -1 and 1:
    # s = 0: min(-1, -1) = -1, gap 1; s = 2: min(-9, -1) = -9, gap 9; mean 5 -> 0.2, 1.8.
    q = lambda obs, act: -((act - obs) ** 2)[:, 0]  # noqa: E731
    obs = np.array([[0.0], [2.0]])
    weights = q_gap_weights(q, obs, obs, np.array([[-1.0], [1.0]]))
    np.testing.assert_allclose(weights, [0.2, 1.8])
    # no gap anywhere: uniform, not 0/0
    flat = q_gap_weights(lambda o, a: np.zeros(len(o)), obs, obs, np.array([[1.0]]))
    np.testing.assert_array_equal(flat, [1.0, 1.0])


def test_q_gap_weights_move_a_depth_one_split_to_where_the_action_matters():
    # states 0, 1, 2 with teacher actions 0, 1, 3. Uniform weights: splitting {0, 1} | {2}
    # leaves squared error 0.25 + 0.25 = 0.5, {0} | {1, 2} leaves 1 + 1 = 2, so the first.
    # Q punishes a wrong action 100x more at states 0 and 1, so their gap dominates and
    # the split must separate them: {0} | {1, 2}.
    obs = np.array([[0.0], [1.0], [2.0]])
    teacher = lambda o: np.array([[0.0], [1.0], [3.0]])[o[:, 0].astype(int)]  # noqa: E731
    scale = lambda o: np.where(o[:, 0] < 1.5, 100.0, 1.0)  # noqa: E731
    q = lambda o, a: -scale(o) * ((a - teacher(o)) ** 2)[:, 0]  # noqa: E731
    fit = lambda o, a, w: fit_tree(o, a, w, 1)  # noqa: E731
    collect = lambda policy, i: obs  # noqa: E731
    plain = viper(teacher, fit, collect, obs, iterations=1).policy
    weighted = viper(teacher, fit, collect, obs, iterations=1,
                     weigh=q_gap_weigher(q, np.array([-5.0]), np.array([5.0]), samples=32)).policy
    np.testing.assert_allclose(plain(obs)[:, 0], [0.5, 0.5, 3.0])
    assert weighted(obs)[0, 0] == 0.0 and weighted(obs)[1, 0] == weighted(obs)[2, 0]
    assert 1.0 < weighted(obs)[1, 0] < 1.1  # state 1 outweighs state 2 in their shared leaf
    np.testing.assert_array_equal(uniform_weights(obs, obs), [1.0, 1.0, 1.0])


def test_viper_keeps_the_iteration_most_faithful_on_held_out_states():
    # iteration 0 sees only obs[0] <= 0.3 (all -1), so its tree is constant and misses the
    # step; later iterations see both sides and recover it.
    def collect(policy, i):
        states = sampled_states(i)
        return states[states[:, 0] <= 0.3] if i == 0 else states
    result = viper(step_teacher, lambda o, a, w: fit_tree(o, a, w, 1), collect, sampled_states(99),
                   iterations=3)
    assert result.agreements[0].r2 < 0.5 and result.agreements[1].r2 == 1.0
    assert result.best_iteration == 1 and result.scores is None


def test_viper_with_a_score_keeps_the_best_scored_iteration_and_breaks_ties_by_fidelity():
    def collect(policy, i):
        states = sampled_states(i)
        return states[states[:, 0] <= 0.3] if i == 0 else states
    fit = lambda o, a, w: fit_tree(o, a, w, 1)  # noqa: E731
    # a score that prefers the constant tree of iteration 0 (it pushes -1 everywhere)
    prefers_constant = lambda policy: -float(np.mean(policy(sampled_states(7))))  # noqa: E731
    result = viper(step_teacher, fit, collect, sampled_states(99), iterations=3, score=prefers_constant)
    assert result.best_iteration == 0 and result.scores[0] == pytest.approx(1.0)
    # equal scores: the most faithful, then the earliest, as without a score
    result = viper(step_teacher, fit, collect, sampled_states(99), iterations=3, score=lambda policy: 5.0)
    assert result.best_iteration == 1 and result.scores == [5.0, 5.0, 5.0]


def test_agreement_of_a_constant_teacher():
    same = np.ones((4, 1))
    assert action_agreement(same, same).r2 == 1.0
    assert np.isnan(action_agreement(same, same * 0).r2)
    assert action_agreement(same, same * 0).action_error == 1.0


def test_observation_names_number_entries_of_several_values():
    slices = {"velocity": slice(3, 5), "position": slice(0, 3), "height": slice(5, 6)}
    assert observation_names(slices) == ["position[0]", "position[1]", "position[2]",
                                         "velocity[0]", "velocity[1]", "height"]


def test_the_tree_picture_is_a_png(tmp_path):
    obs = sampled_states(3)
    policy = fit_tree(obs, step_teacher(obs), np.ones(len(obs)), 2)
    path = save_tree_png(policy, ["x", "y", "z"], tmp_path / "tree.png", title="step")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="2 observation names for a tree of 3 inputs"):
        tree_text(policy, ["x", "y"])


@pytest.mark.parametrize("text, message", [
    ("", "is empty"), (" , ", "is empty"), ("0", "depth 0 must be an integer >= 1"),
    ("1,-2", "depth -2 must be"), ("1,a", "each must be an integer >= 1")])
def test_bad_depth_lists_are_refused_in_one_line(text, message):
    with pytest.raises(ExplainError, match=message):
        parse_depths(text)


def test_parse_depths():
    assert parse_depths("1, 2,3") == (1, 2, 3)


@pytest.mark.parametrize("kwargs, message", [
    ({"depths": ()}, "depths is empty"), ({"iterations": 0}, "iterations = 0 must be >= 1"),
    ({"time_limit": 0}, "time_limit = 0"), ({"select": "r2"}, "select = 'r2': allowed return, fidelity")])
def test_bad_settings(kwargs, message):
    with pytest.raises(ExplainError, match=message):
        ExplainSettings(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"depth": 0}, "depth = 0 must be an integer >= 1"),
    ({"weights": np.full(400, -1.0)}, "weights must be"),
    ({"weights": np.zeros(400)}, "no state with a positive weight")])
def test_bad_fits(kwargs, message):
    obs = sampled_states(0)
    args = {"depth": 1, "weights": np.ones(400), **kwargs}
    with pytest.raises(ValueError, match=message):
        fit_tree(obs, step_teacher(obs), args["weights"], args["depth"])


def test_paths_without_a_policy_are_refused(tmp_path):
    with pytest.raises(PolicyError, match="does not exist"):
        resolve_checkpoint(tmp_path / "missing")
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    with pytest.raises(PolicyError, match="has no checkpoint under"):
        resolve_checkpoint(run)
    with pytest.raises(PolicyError, match="neither an rwrl run directory"):
        resolve_checkpoint(tmp_path)
    ckpt = run / "checkpoints" / "ckpt-000000000100"
    ckpt.mkdir()
    (ckpt / "state.npz").write_bytes(b"")
    assert resolve_checkpoint(run) == ckpt and resolve_checkpoint(ckpt) == ckpt
