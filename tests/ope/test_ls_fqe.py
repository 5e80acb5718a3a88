"""LS-FQE: FQE with least-squares refits of the critic's last layer (Levine et al. 2017's shallow updates).

On the ring MDP of tests/ope/ring_mdp.py (exact values) and, through ``rwrl ope``,
on the tiny Minari dataset of test_ope_evaluate.py.
"""

import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from rwrl.agents.shallow import head_features
from rwrl.ope.fqe import FQEConfig, compiled_refit, fitted_q_evaluation, make_head
from rwrl.ope.policy import apply_policy

from . import ring_mdp as ring
from .test_ope_estimators import GAMMA, TARGETS, behaviour_for
from .test_ope_evaluate import dataset_id, policies_dir  # noqa: F401  (fixtures)

SMALL = dict(discount=GAMMA, hidden_sizes=(32, 32), learning_rate=1e-3, target_update_period=50)


@pytest.fixture(scope="module")
def small_data():
    target = TARGETS["best"]
    return target, ring.dataset(behaviour_for(target), episodes=40, length=50, seed=2)  # 2,000 transitions


def test_the_refit_happens_after_every_ls_every_steps_and_changes_the_estimate(small_data):
    target, data = small_data
    plain = fitted_q_evaluation(ring.table_policy(target), data, FQEConfig(num_steps=300, **SMALL),
                                progress=False)
    ls = fitted_q_evaluation(ring.table_policy(target), data, FQEConfig(num_steps=300, ls_every=100, **SMALL),
                             progress=False)
    assert plain.refit_steps == () and plain.refit_losses.shape == (0, 2)
    assert ls.refit_steps == (100, 200, 300) and ls.refit_losses.shape == (3, 2)
    # iterations 1 and 2 (steps 1..100) come before the first refit: the same draws, the same losses;
    # iteration 3 starts from the refitted network
    np.testing.assert_array_equal(ls.losses[:2], plain.losses[:2])
    assert ls.losses[2] != plain.losses[2]
    assert ls.value != plain.value
    # the ridge solution never fits its batch worse than the current head (the prior's centre)
    before, after = ls.refit_losses.T
    assert np.all(after <= before * (1 + 1e-5)) and np.any(after < before)


def test_the_refit_solves_the_ridge_problem_toward_the_fqe_targets(small_data):
    target, data = small_data
    config = FQEConfig(num_steps=100, ls_every=100, ls_lambda=0.5, **SMALL)
    head = make_head(config)
    arrays = {"obs": jnp.asarray(data.obs), "actions": jnp.asarray(data.actions),
              "rewards": jnp.asarray(data.rewards, jnp.float32), "next_obs": jnp.asarray(data.next_obs),
              "next_actions": jnp.asarray(apply_policy(ring.table_policy(target), data.next_obs)),
              "discounts": jnp.asarray(data.discounts, jnp.float32)}
    params = head.critic.init(jax.random.PRNGKey(0), arrays["obs"][:1], arrays["actions"][:1])
    target_params = head.critic.init(jax.random.PRNGKey(1), arrays["obs"][:1], arrays["actions"][:1])
    idx = jnp.arange(0, 2000, 3)  # 667 transitions
    new_params, _, _ = compiled_refit(config)(params, target_params, arrays, idx)

    # the reference, in float64 numpy: features of Q, targets of Q_k, lam = ls_lambda * batch
    features, path = head_features(head.critic, params, arrays["obs"][idx], arrays["actions"][idx])
    assert path == ("Dense_0",)
    phi = np.concatenate([np.asarray(features, np.float64), np.ones((len(idx), 1))], axis=1)
    q_k = np.asarray(head.critic.apply(target_params, arrays["next_obs"][idx], arrays["next_actions"][idx]))[:, 0]
    y = data.rewards[idx] / config.scale + GAMMA * data.discounts[idx] * q_k
    old = params["params"]["Dense_0"]
    w0 = np.append(np.asarray(old["kernel"])[:, 0], np.asarray(old["bias"]))
    lam = 0.5 * len(idx)
    expected = np.linalg.solve(phi.T @ phi + lam * np.eye(len(w0)), phi.T @ y + lam * w0)
    new = new_params["params"]["Dense_0"]
    np.testing.assert_allclose(np.append(new["kernel"][:, 0], new["bias"]), expected, rtol=1e-4, atol=1e-6)
    # the torso is not touched
    for a, b in zip(jax.tree_util.tree_leaves(new_params["params"]["LayerNormMLP_0"]),
                    jax.tree_util.tree_leaves(params["params"]["LayerNormMLP_0"])):
        np.testing.assert_array_equal(a, b)


def test_a_prior_of_infinite_weight_makes_ls_fqe_plain_fqe(small_data):
    target, data = small_data
    plain = fitted_q_evaluation(ring.table_policy(target), data, FQEConfig(num_steps=200, **SMALL), progress=False)
    held = fitted_q_evaluation(ring.table_policy(target), data,
                               FQEConfig(num_steps=200, ls_every=100, ls_lambda=1e9, **SMALL), progress=False)
    assert held.refit_steps == (100, 200)
    assert held.value == pytest.approx(plain.value, rel=1e-4)


@pytest.mark.parametrize("name", list(TARGETS))
def test_ls_fqe_recovers_the_discounted_value(name):
    # measured: relative errors 2.2 % (worst) and 2.3 % (best) with 8 refits, plain FQE 0.1 % and
    # 1.9 % at the same 2,000 gradient steps; truths 1.49 and 3.94.
    target = TARGETS[name]
    data = ring.dataset(behaviour_for(target), episodes=200, length=50, seed=1)
    truth = ring.discounted_values(target, GAMMA)[data.initial_obs.argmax(axis=1)].mean()
    config = FQEConfig(discount=GAMMA, hidden_sizes=(64, 64), learning_rate=1e-3, num_steps=2000,
                       target_update_period=50, ls_every=250)
    result = fitted_q_evaluation(ring.table_policy(target), data, config, progress=False)
    assert len(result.refit_steps) == 8
    assert result.value == pytest.approx(truth, rel=0.05)


@pytest.mark.parametrize("kwargs, match", [
    ({"ls_every": 0}, r"^ls_every = 0: must be an integer >= 1 \(or None: no refit\)$"),
    ({"ls_every": 150}, r"^ls_every = 150: must be a multiple of target_update_period \(100\)"),
    ({"ls_every": 100, "critic": "distributional"}, r"needs critic='scalar'"),
    ({"ls_every": 100, "ls_lambda": float("nan")}, r"^ls_lambda = nan: must be finite and >= 0$"),
    ({"ls_every": 100, "ls_batch_size": 0}, r"ls_batch_size must be >= 1"),
])
def test_invalid_ls_fqe_configs_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FQEConfig(**kwargs)


@pytest.mark.slow  # 10-20 s; the refit and its estimates have unit tests here, the command its own
def test_rwrl_ope_runs_ls_fqe_and_records_it(dataset_id, policies_dir, tmp_path):  # noqa: F811
    from rwrl.cli import app

    common = ["ope", "--dataset", dataset_id, "--policies", str(policies_dir), "--episodes", "2",
              "--num-envs", "2", "--loader", "tests.ope.test_ope_evaluate:constant_loader",
              "--method", "fqe", "--steps", "200"]
    result = CliRunner().invoke(app, common + ["--out", str(tmp_path / "fqe.json")])
    assert result.exit_code == 0, result.output
    plain = json.loads((tmp_path / "fqe.json").read_text())
    assert plain["least_squares"] is None
    result = CliRunner().invoke(app, common + ["--ls-every", "100", "--ls-lambda", "0.5",
                                               "--out", str(tmp_path / "ls.json")])
    assert result.exit_code == 0, result.output
    ls = json.loads((tmp_path / "ls.json").read_text())
    # 6 episodes of 25 steps: 150 transitions, all of them in each refit
    assert ls["least_squares"] == {"every": 100, "lambda": 0.5, "batch_size": 150, "refits": 2}
    assert "LS-FQE: last layer refitted every 100 steps (2 refits)" in result.output
    assert [r["estimate"] for r in ls["rows"]] != [r["estimate"] for r in plain["rows"]]
    assert [r["true_discounted"] for r in ls["rows"]] == [r["true_discounted"] for r in plain["rows"]]


@pytest.mark.parametrize("args, message", [
    (["--ls-every", "0"], r"^error: ls_every = 0: must be an integer >= 1 \(or None: no refit\)$"),
    (["--ls-every", "150"], r"^error: ls_every = 150: must be a multiple of target_update_period \(100\)"),
    (["--ls-every", "100", "--ls-lambda", "nan"], r"^error: ls_lambda = nan: must be finite and >= 0$"),
    (["--ls-every", "100", "--ls-lambda", "-1"], r"^error: ls_lambda = -1.0: must be finite and >= 0$"),
    (["--ls-every", "100", "--critic", "distributional"], r"^error: ls_every = 100: .*needs critic='scalar'"),
    (["--ls-every", "100", "--method", "maxent"], r"^error: --ls-every 100: .*--method fqe only$"),
    (["--ls-every", "ten"], r"Invalid value for '--ls-every'"),
])
def test_bad_ls_fqe_input_is_one_line(tmp_path, monkeypatch, args, message):
    from rwrl.cli import app

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    result = CliRunner().invoke(app, ["ope", "--dataset", "d", "--policies", "p",
                                      "--out", str(tmp_path / "out" / "o.json"), *args])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "out").exists()
