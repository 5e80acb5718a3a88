"""HCL: the detector on a synthetic switch and a recurring task, Bayes' rule, the losses, seeding, bad input."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp

from rwrl.continual import flow as flows
from rwrl.continual import hcl

DIM, N = 6, 64
#: the synthetic stream: task A = N(0, I), task B = N(1.5, I) in every coordinate; A 70 batches, B 60, A 40.
SEGMENTS = (("A", 70), ("B", 60), ("A", 40))
MEANS = {"A": 0.0, "B": 1.5}
#: the detector's settings in these tests: a short warm-up so that the stream stays short.
SMALL = dict(warmup=25, window=15, num_couplings=2, hidden=16)


def _synthetic_stream(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(MEANS[name], 1.0, size=(N, DIM)) for name, count in SEGMENTS for _ in range(count)]


@pytest.fixture(scope="module")
def detector_run():
    detector = hcl.TaskDetector(DIM, hcl.detector_config(seed=0, **SMALL))
    return detector, [detector.update(x) for x in _synthetic_stream()]


def test_the_detector_finds_the_mean_jump_within_five_batches_and_no_change_before(detector_run):
    _, steps = detector_run
    declared = [s.index for s in steps if s.changed]
    # the jump is at batch 70; patience 3 makes batch 72 the earliest possible declaration
    assert declared[0] in range(72, 75)
    assert all(not s.changed for s in steps[:70])
    first = steps[declared[0]]
    assert first.new_task and first.recognised is None and first.statistic > first.threshold
    # B's inputs score far below A's reference: N(0, I)'s entropy is 6 * 1.419 = 8.5 nats; a shift
    # of 1.5 in 6 coordinates costs 6 * 1.5^2 / 2 = 6.75 nats more per input
    assert first.log_likelihood < first.reference - 4.0
    report = hcl.detection_report(declared, [70, 130])
    assert report.false_alarms == 0 and report.missed == 0 and report.delays[0] <= 4


def test_the_recurring_task_is_recognised_not_made_new(detector_run):
    detector, steps = detector_run
    back = [s for s in steps[130:] if s.changed]
    assert len(back) == 1 and back[0].recognised == 0 and not back[0].new_task
    assert detector.task == 0 and detector.model.num_tasks == 2
    assert {s.task for s in steps[:70]} == {0} and {s.task for s in steps[75:130]} == {1}
    assert {s.task for s in steps[135:]} == {0}


def test_the_same_seed_gives_the_same_run_and_another_seed_another(detector_run):
    detector, steps = detector_run
    stream = _synthetic_stream()[:80]

    def run(seed):
        again = hcl.TaskDetector(DIM, hcl.detector_config(seed=seed, **SMALL))
        return [dataclasses.replace(again.update(x), seconds=0.0) for x in stream], again.model.params

    same, params = run(0)
    assert str(same) == str([dataclasses.replace(s, seconds=0.0) for s in steps[:80]])  # str: nan == nan
    other, other_params = run(1)
    assert str(other) != str(same)
    assert not np.array_equal(params["means"], other_params["means"])


def test_classes_follow_bayes_rule_summed_over_the_tasks_that_saw_them():
    model = hcl.HCL(DIM, hcl.HCLConfig(mode="finetune", num_classes=3, max_tasks=2, preprocess="none", **SMALL))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, DIM)).astype(np.float32)
    # task 0 saw classes 0 and 1, task 1 saw class 0: components 0, 1 and 3 (k = task * 3 + class)
    model.train_supervised(x[:4], np.array([0, 1, 0, 1]), np.zeros(4, int))
    model.train_supervised(x[4:], np.zeros(4, int), np.ones(4, int))
    lp = np.asarray(flows.log_prob(model.flow, model.params, jnp.asarray(x)), np.float64)
    joint = np.stack([logsumexp(lp[:, [0, 3]], axis=1), lp[:, 1]], axis=1)
    expected = joint - logsumexp(joint, axis=1, keepdims=True)
    got = model.class_log_probs(x)
    np.testing.assert_allclose(got[:, :2], expected, atol=1e-5)
    assert np.all(got[:, 2] == -np.inf)  # class 2 was never seen
    np.testing.assert_array_equal(model.predict(x), np.argmax(expected, axis=1))
    assert model.evaluate(x, model.predict(x)).accuracy == 1.0


def test_the_fr_penalty_is_zero_at_the_snapshot_and_replay_adds_a_positive_term():
    f = flows.make_flow(DIM, 4, num_couplings=2, hidden=16)
    params = flows.init_params(f, jax.random.PRNGKey(0))
    u = jax.random.normal(jax.random.PRNGKey(1), (8, DIM))
    comps = jnp.array([0, 1] * 4)
    old = jnp.array([-1e9, -1e9, 0.0, 0.0])  # components 2 and 3 are replayed
    args = (params, params, u, comps, old, jnp.float32(1.0), jax.random.PRNGKey(2))
    finetune = hcl._loss(f, "finetune", 1.0, 1.0, 16, *args)
    np.testing.assert_allclose(hcl._loss(f, "fr", 1.0, 1.0, 16, *args), finetune, rtol=1e-6)
    # generated inputs' NLL: at least d/2 log(2 pi) = 5.51 nats at the identity flow, so GR adds > 0
    assert float(hcl._loss(f, "gr", 1.0, 1.0, 16, *args)) > float(finetune) + 0.5 * DIM * math.log(2 * math.pi)
    moved = jax.tree_util.tree_map(lambda p: p + 0.1, params)
    fr = hcl._loss(f, "fr", 1.0, 1.0, 16, moved, *args[1:])
    assert float(fr) > float(hcl._loss(f, "finetune", 1.0, 1.0, 16, moved, *args[1:]))


def test_detection_report_matches_declarations_to_boundaries():
    # boundaries 10 and 25: 5 comes before any (false alarm), 12 finds 10 (delay 2), 13 is a second
    # declaration for 10 (false alarm), 30 finds 25 (delay 5)
    report = hcl.detection_report([13, 5, 12, 30], [10, 25])
    assert report.delays == (2, 5) and report.false_alarms == 2 and report.missed == 0
    assert report.mean_delay == 3.5
    # with a tolerance of 3 batches, 30 is too late for 25: a miss and a third false alarm
    late = hcl.detection_report([13, 5, 12, 30], [10, 25], tolerance=3)
    assert late.delays == (2, None) and late.false_alarms == 3 and late.missed == 1


@pytest.mark.parametrize("make, message", [
    (lambda: hcl.HCLConfig(fr_weight=float("nan")), r"fr_weight = nan is not allowed: give a finite number >= 0"),
    (lambda: hcl.HCLConfig(fr_weight=float("inf")), r"fr_weight = inf is not allowed"),
    (lambda: hcl.HCLConfig(mode="ewc"), r"mode = 'ewc' is not allowed: give one of fr, gr, finetune"),
    (lambda: hcl.HCLConfig(preprocess="zscore"), r"preprocess = 'zscore' is not allowed"),
    (lambda: hcl.HCLConfig(quantile=1.0), r"quantile = 1.0 is not allowed: give a finite number > 0 and < 1"),
    (lambda: hcl.HCLConfig(patience=0), r"patience = 0 is not allowed: give an integer >= 1"),
    (lambda: hcl.HCLConfig(learning_rate=-1e-3), r"learning_rate = -0.001 is not allowed"),
])
def test_bad_settings_are_one_line(make, message):
    with pytest.raises(hcl.HCLError, match=message) as error:
        hcl.check_config(make())
    assert "\n" not in str(error.value)


@pytest.fixture(scope="module")
def pixels_model():
    return hcl.HCL(DIM, hcl.HCLConfig(num_classes=2, max_tasks=2, **SMALL))


@pytest.mark.parametrize("call, message", [
    (lambda m: m.observe(np.zeros((3,)), np.zeros(3, int)), r"x: shape \(3,\) is not allowed: give \(n, 6\)"),
    (lambda m: m.observe(np.zeros((3, 5)), np.zeros(3, int)), r"x: shape \(3, 5\) is not allowed"),
    (lambda m: m.observe(np.full((2, 6), np.nan), np.zeros(2, int)), r"x: non-finite values are not allowed"),
    (lambda m: m.observe(np.full((2, 6), 2.0), np.zeros(2, int)), r"x: values in \[2, 2\] are not allowed"),
    (lambda m: m.observe(np.zeros((2, 6)), None), r"y = None is not allowed with num_classes = 2"),
    (lambda m: m.observe(np.zeros((2, 6)), np.zeros(3, int)), r"y: shape \(3,\) of int64 is not allowed"),
    (lambda m: m.observe(np.zeros((2, 6)), np.array([0, 2])), r"y: labels 0..2 are not allowed: give labels 0..1"),
    (lambda m: m.train_supervised(np.zeros((2, 6)), np.zeros(2, int), np.array([0, 2])),
     r"tasks: \(2,\) of int64 is not allowed: give \(2,\) integers 0..1"),
])
def test_bad_input_is_one_line(pixels_model, call, message):
    with pytest.raises(hcl.HCLError, match=message) as error:
        call(pixels_model)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("call, message", [
    (lambda: hcl.HCL(1), r"dim = 1 is not allowed: give an integer >= 2"),
    (lambda: hcl.TaskDetector(4, hcl.HCLConfig(num_classes=2)), r"num_classes = 2 is not allowed: give 1"),
    (lambda: hcl.detection_report([3], [5, 2]), r"boundaries = \[5, 2\] is not allowed"),
    (lambda: hcl.detection_report([3], [2], tolerance=-1), r"tolerance = -1 is not allowed"),
])
def test_bad_arguments_are_one_line(call, message):
    with pytest.raises(hcl.HCLError, match=message) as error:
        call()
    assert "\n" not in str(error.value)
