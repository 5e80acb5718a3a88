"""Continual training with quadratic penalties: metrics by hand, seeded runs, the fast full path, bad input."""

import dataclasses

import jax
import numpy as np
import pytest

from rwrl.continual import curvature as cv
from rwrl.continual import digits
from rwrl.continual import regularized as rg

TINY = rg.Config(hidden=(16,), epochs=2)


@pytest.fixture(scope="module")
def tasks():
    return digits.permuted_digits(num_tasks=2)


@pytest.fixture(scope="module")
def kfac_run(tasks):
    return rg.run(tasks, "kfac", 100.0, seed=0, config=TINY)


def test_average_accuracy_and_forgetting_by_hand():
    r = np.array([[0.9, 0.1, 0.1],
                  [0.7, 0.8, 0.1],
                  [0.5, 0.6, 0.9]])
    # last row's mean: (0.5 + 0.6 + 0.9) / 3
    assert rg.average_accuracy(r) == pytest.approx(2.0 / 3.0)
    # task 0: best 0.9 (after task 0), now 0.5 -> 0.4; task 1: best 0.8, now 0.6 -> 0.2; mean 0.3
    assert rg.forgetting(r) == pytest.approx(0.3)
    assert rg.forgetting(np.array([[0.9]])) == 0.0


def test_the_same_seed_gives_the_same_run_and_another_seed_another(tasks, kfac_run):
    again = rg.run(tasks, "kfac", 100.0, seed=0, config=TINY)
    np.testing.assert_array_equal(again.accuracy, kfac_run.accuracy)
    assert again.approximation_error == kfac_run.approximation_error
    other = rg.run(tasks, "kfac", 100.0, seed=1, config=TINY)
    assert not np.array_equal(other.accuracy, kfac_run.accuracy)


def test_a_run_reports_its_matrix_metrics_error_and_times(kfac_run):
    r = kfac_run
    assert r.accuracy.shape == (2, 2) and r.average_accuracy == pytest.approx(r.accuracy[1].mean())
    # one task end makes a penalty: one error, strictly between 0 (exact) and 1 (nothing right)
    assert len(r.approximation_error) == len(r.curvature_seconds) == len(r.full_seconds) == 1
    assert 0.0 < r.approximation_error[0] < 1.0 and r.curvature_seconds[0] > 0 and r.seconds > 0


def test_the_kfac_penalty_forgets_less_than_finetuning(tasks, kfac_run):
    plain = rg.run(tasks, "finetune", 0.0, seed=0, config=TINY)
    assert plain.approximation_error == ()
    # same initial weights and batches: task 0 is learnt the same way, then the penalty holds it
    assert plain.accuracy[0, 0] == kfac_run.accuracy[0, 0] > 0.6
    assert kfac_run.forgetting < plain.forgetting - 0.1


def test_the_merged_full_penalty_has_the_gradient_of_the_stacked_one():
    model = rg.MLP((3,))
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 4))
    penalties = []
    for k, weight in enumerate((2.0, 0.5)):
        anchor = model.init(jax.random.PRNGKey(k), x)
        full = cv.full_fisher(model, anchor, (x,), jax.random.PRNGKey(9), output="categorical", fisher="exact")
        penalties.append(cv.quadratic_penalty(anchor, full, weight))
    params = model.init(jax.random.PRNGKey(7), x)
    fast = rg.merged_full_grad(rg.merged_full(penalties, params), params)
    for a, b in zip(jax.tree_util.tree_leaves(fast), jax.tree_util.tree_leaves(cv.total_grad(cv.stack(penalties),
                                                                                              params))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_validation_tasks_hold_out_the_same_rows_of_each_task(tasks):
    held = rg.validation_tasks(tasks)
    assert [len(t.y_train) for t in held] == [1006, 1006] and [len(t.y_test) for t in held] == [251, 251]
    np.testing.assert_array_equal(held[0].y_test, held[1].y_test)
    # kept and held-out rows partition the task's training rows (as multisets: sorted rows agree)
    def rows(a):
        return a[np.lexsort(a.T[::-1])]

    both = np.concatenate([held[0].x_train, held[0].x_test])
    np.testing.assert_array_equal(rows(both), rows(tasks[0].x_train))


def test_select_lambda_takes_the_best_score_and_the_smaller_of_a_tie(tasks, monkeypatch):
    scores = {1.0: 0.5, 10.0: 0.8, 100.0: 0.8, 1000.0: 0.2}

    def fake_run(held, method, lam, seed, config):
        assert len(held) == 2 and not config.measure_error
        return dataclasses.replace(_RESULT, average_accuracy=scores[lam])

    monkeypatch.setattr(rg, "run", fake_run)
    assert rg.select_lambda(tasks, "ewc", grid=(1000.0, 100.0, 10.0, 1.0)) == (10.0, scores)


_RESULT = rg.Result("ewc", 1.0, 0, np.zeros((2, 2)), 0.0, 0.0, (), (), (), 0.0)


@pytest.mark.parametrize("call, message", [
    (lambda t: rg.run(t, "si", 1.0, 0), "method = 'si' is not allowed: give one of 'finetune', 'l2'"),
    (lambda t: rg.run(t, "ewc", -1.0, 0), "lam = -1.0 is not allowed: give a finite number >= 0"),
    (lambda t: rg.run(t, "ewc", float("inf"), 0), "lam = inf is not allowed"),
    (lambda t: rg.run([], "ewc", 1.0, 0), "tasks = \\[\\] is not allowed"),
    (lambda t: rg.run(t, "ewc", 1.0, 0, rg.Config(epochs=0)), "epochs = 0 is not allowed: give an integer >= 1"),
    (lambda t: rg.run(t, "ewc", 1.0, 0, rg.Config(hidden=())), "hidden = \\(\\) is not allowed"),
    (lambda t: rg.run(t, "ewc", 1.0, 0, rg.Config(num_samples=0)), "num_samples = 0 is not allowed"),
    (lambda t: rg.run(t, "ewc", 1.0, 0, rg.Config(learning_rate=0.0)), "learning_rate = 0.0 is not allowed"),
    (lambda t: rg.run(t, "ewc", 1.0, 0, rg.Config(fisher="empirical")), "fisher = 'empirical' is not allowed"),
    (lambda t: rg.select_lambda(t, "finetune"), "method = 'finetune' has no lambda"),
    (lambda t: rg.validation_tasks(t, fraction=1.0), "fraction = 1.0 is not allowed"),
])
def test_bad_input_is_one_line(tasks, call, message):
    with pytest.raises(ValueError, match=message) as error:
        call(tasks)
    assert "\n" not in str(error.value)
