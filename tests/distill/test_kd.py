"""TAKD's loss (Eq. 3 of arXiv 1902.03393) and the ladder's chains."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rwrl.distill import batch_kd_loss, kd_loss, soft_kl
from rwrl.distill import digits


def test_kd_loss_matches_a_hand_computed_two_class_case():
    # student logits (0, 0): softmax (1/2, 1/2) at any temperature; label 0: CE = log 2.
    # teacher logits (2 log 3, 0) at tau = 2 -> (log 3, 0): softmax (3/4, 1/4).
    # KL = 3/4 log(3/4 / 1/2) + 1/4 log(1/4 / 1/2) = 3/4 log 1.5 - 1/4 log 2.
    # loss = (1 - 0.3) log 2 + 0.3 * 2^2 * KL.
    kl = 0.75 * math.log(1.5) - 0.25 * math.log(2.0)
    expected = 0.7 * math.log(2.0) + 0.3 * 4.0 * kl
    got = kd_loss(jnp.zeros(2), jnp.array([2 * math.log(3.0), 0.0]), 0, temperature=2.0, lam=0.3)
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_released_codes_class_mean_divides_the_kl_by_the_number_of_classes():
    z_s, z_t = jnp.array([0.3, -1.0, 2.0]), jnp.array([1.0, 0.5, -0.5])
    full = kd_loss(z_s, z_t, 1, temperature=3.0, lam=1.0)
    mean = kd_loss(z_s, z_t, 1, temperature=3.0, lam=1.0, classes_mean=True)
    assert float(mean) == pytest.approx(float(full) / 3, rel=1e-6)


def test_lambda_zero_is_cross_entropy_and_lambda_one_is_tau_squared_kl():
    z_s, z_t = jnp.array([0.3, -1.0, 2.0]), jnp.array([1.0, 0.5, -0.5])
    ce = -float(jax.nn.log_softmax(z_s)[2])
    assert float(kd_loss(z_s, z_t, 2, temperature=7.0, lam=0.0)) == pytest.approx(ce, rel=1e-6)
    kl = float(soft_kl(z_s, z_t, 7.0))
    assert float(kd_loss(z_s, z_t, 2, temperature=7.0, lam=1.0)) == pytest.approx(49.0 * kl, rel=1e-6)


def test_equal_logits_give_no_soft_loss_and_no_gradient_reaches_the_teacher():
    z = jnp.array([2.0, 0.0, -1.0])
    assert float(soft_kl(z, z, 4.0)) == pytest.approx(0.0, abs=1e-7)
    assert float(soft_kl(z, z + 5.0, 4.0)) == pytest.approx(0.0, abs=1e-6)  # a shift changes no softmax
    grad_t = jax.grad(lambda t: kd_loss(jnp.zeros(3), t, 0, temperature=2.0, lam=1.0))(z)
    assert np.all(np.asarray(grad_t) == 0.0)


def test_high_temperature_soft_loss_tends_to_half_the_squared_centred_logit_gap_over_classes():
    # For large tau, tau^2 KL -> sum_c (dz_c - mean dz)^2 / (2 C) (Hinton et al. 2015, Sec. 2.1),
    # the reason Eq. 3 multiplies the KL by tau^2. At tau = 100 the O(1/tau) remainder is 0.2 %
    # (float64: 0.65683 against 0.65844); float32 loses the KL itself much above that.
    z_s, z_t = jnp.array([0.5, -0.2, 1.0, 0.0]), jnp.array([1.5, 0.3, -1.0, 0.2])
    gap = np.asarray(z_t - z_s)
    limit = float(np.sum((gap - gap.mean()) ** 2) / (2 * 4))
    assert float(kd_loss(z_s, z_t, 0, temperature=100.0, lam=1.0)) == pytest.approx(limit, rel=3e-3)


def test_batch_loss_is_the_mean_of_the_per_example_loss():
    rng = np.random.default_rng(0)
    z_s, z_t = rng.normal(size=(5, 4)).astype(np.float32), rng.normal(size=(5, 4)).astype(np.float32)
    y = rng.integers(0, 4, size=5)
    loop = np.mean([float(kd_loss(jnp.asarray(z_s[i]), jnp.asarray(z_t[i]), int(y[i]), 3.0, 0.4))
                    for i in range(5)])
    assert float(batch_kd_loss(z_s, z_t, y, 3.0, 0.4)) == pytest.approx(loop, rel=1e-5)


def test_linear_student_distils_a_linear_teachers_probabilities_exactly():
    # With lam = 1 the loss is tau^2 KL(teacher || student), zero only where the softened
    # probabilities agree; a linear student can represent a linear teacher, so training
    # drives its probabilities onto the teacher's (logits agree up to a shift per input).
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 5)).astype(np.float32)
    w_t = rng.normal(size=(5, 3)).astype(np.float32)
    z_t = jnp.asarray(x @ w_t)
    y = jnp.zeros(64, jnp.int32)  # unused at lam = 1
    loss = lambda w: batch_kd_loss(jnp.asarray(x) @ w, z_t, y, temperature=2.0, lam=1.0)  # noqa: E731
    opt = optax.adam(0.05)

    def step(carry, _):
        w, state = carry
        change, state = opt.update(jax.grad(loss)(w), state)
        return (w + change, state), None
    (w, _), _ = jax.lax.scan(step, (jnp.zeros((5, 3)), opt.init(jnp.zeros((5, 3)))), None, length=1500)
    p_s, p_t = jax.nn.softmax(jnp.asarray(x) @ w), jax.nn.softmax(z_t)
    assert float(loss(w)) < 1e-5
    np.testing.assert_allclose(np.asarray(p_s), np.asarray(p_t), atol=2e-3)


@pytest.mark.parametrize("temperature, lam, match", [
    (float("nan"), 0.5, r"temperature = nan is not allowed: give a finite number > 0"),
    (float("inf"), 0.5, r"temperature = inf is not allowed"),
    (0.0, 0.5, r"temperature = 0.0 is not allowed"),
    (2.0, 1.5, r"lam = 1.5 is not allowed: give a number in \[0, 1\]"),
    (2.0, -0.1, r"lam = -0.1 is not allowed"),
])
def test_bad_temperature_or_lambda_is_a_one_line_value_error(temperature, lam, match):
    with pytest.raises(ValueError, match=match):
        kd_loss(jnp.zeros(3), jnp.zeros(3), 0, temperature=temperature, lam=lam)


def test_batched_logits_given_to_the_per_example_loss_are_refused():
    with pytest.raises(ValueError, match=r"give one example's \(classes,\) logits"):
        kd_loss(jnp.zeros((2, 3)), jnp.zeros((2, 3)), 0, temperature=1.0, lam=0.5)


@pytest.mark.parametrize("chain, match", [
    ((), r"chain = \(\) is empty"),
    ((16, 64), r"chain = \(16, 64\) does not shrink"),
    ((64, 64), r"chain = \(64, 64\) does not shrink"),
    ((256, 32), r"size = 32 is not on the ladder: give one of \[4, 8, 16, 64, 256\]"),
])
def test_bad_chains_are_one_line_value_errors(chain, match):
    with pytest.raises(ValueError, match=match):
        digits.check_chain(chain)


def test_ladder_chains_give_each_student_nokd_blkd_each_assistant_and_the_full_path():
    chains = digits.ladder_chains((256, 16, 8, 4))
    assert chains == [(256,), (16,), (256, 16), (8,), (256, 8), (256, 16, 8), (4,), (256, 4),
                      (256, 16, 4), (256, 8, 4), (256, 16, 8, 4)]


def test_chains_are_deterministic_and_share_their_prefixes():
    split = digits.load_split()
    config = digits.TrainConfig(epochs=2)
    first = digits.run_chains([(16, 4), (16, 8, 4)], split, seed=3, config=config)
    again = digits.run_chains([(16, 8, 4)], split, seed=3, config=config)
    assert set(first) == {(16,), (16, 4), (16, 8), (16, 8, 4)}
    assert first[(16, 8, 4)] == again[(16, 8, 4)]
    assert len(split.y_train) == 359 and len(split.y_test) == 1438
