"""The categorical projection and TD loss on hand-computed cases."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rwrl.agents import distributional

# Support 0, 1, 2, 3, 4: spacing 1, so shifts are easy to do by hand.
Z = jnp.arange(5, dtype=jnp.float32)
P = jnp.array([0.1, 0.2, 0.3, 0.25, 0.15], jnp.float32)


@pytest.mark.parametrize(
    "z_p, probs, expected",
    [
        # A shift of exactly one atom: atom j's mass lands on atom j+1; the top
        # atom's mass (at 5) is clipped to 4 and joins atom 3's there.
        (Z + 1.0, P, [0.0, 0.1, 0.2, 0.3, 0.25 + 0.15]),
        # A shift of one atom down: mirror image, the mass at -1 joins atom 0.
        (Z - 1.0, P, [0.1 + 0.2, 0.3, 0.25, 0.15, 0.0]),
        # Half an atom up: each mass splits evenly between j and j+1 (0.5 each);
        # the top atom's mass at 4.5 is clipped to 4 whole.
        (Z + 0.5, P, [0.05, 0.05 + 0.1, 0.1 + 0.15, 0.15 + 0.125, 0.125 + 0.15]),
        # Atoms beyond both bounds go whole to the end atoms.
        (jnp.array([-10.0, 10.0]), jnp.array([0.3, 0.7]), [0.3, 0.0, 0.0, 0.0, 0.7]),
        # Atoms exactly at the bounds stay there.
        (jnp.array([0.0, 4.0]), jnp.array([0.4, 0.6]), [0.4, 0.0, 0.0, 0.0, 0.6]),
        # One atom at 2.25 is 1/4 of the way from 2 to 3: 3/4 to atom 2, 1/4 to atom 3.
        (jnp.array([2.25]), jnp.array([1.0]), [0.0, 0.0, 0.75, 0.25, 0.0]),
        # A degenerate source, every atom at 1.5 (a terminal target, r=1.5):
        # all mass halves between atoms 1 and 2.
        (jnp.full(5, 1.5), P, [0.0, 0.5, 0.5, 0.0, 0.0]),
    ],
)
def test_projection_hand_computed(z_p, probs, expected):
    projected = distributional.categorical_projection(z_p.astype(jnp.float32), probs.astype(jnp.float32), Z)
    np.testing.assert_allclose(projected, expected, atol=1e-6)


def test_projection_conserves_mass_and_in_range_mean():
    rng = np.random.default_rng(0)
    z_q = distributional.categorical_support(-5.0, 105.0, 51)
    for _ in range(20):
        probs = rng.dirichlet(np.ones(51)).astype(np.float32)
        z_p = jnp.asarray(rng.uniform(-20.0, 120.0) + rng.uniform(0.5, 1.0) * np.asarray(z_q), jnp.float32)
        projected = distributional.categorical_projection(z_p, jnp.asarray(probs), z_q)
        assert float(jnp.sum(projected)) == pytest.approx(1.0, abs=1e-5)
        assert float(jnp.min(projected)) >= 0.0
        # Linear interpolation between neighbours keeps the mean of what lies
        # inside the support; clipping moves the rest to the bounds.
        clipped_mean = float(jnp.sum(jnp.clip(z_p, -5.0, 105.0) * probs))
        assert float(jnp.sum(projected * z_q)) == pytest.approx(clipped_mean, rel=1e-4, abs=1e-3)


def test_support():
    atoms = distributional.categorical_support(-5.0, 105.0, 51)
    assert atoms.shape == (51,) and atoms.dtype == jnp.float32
    assert float(atoms[0]) == -5.0 and float(atoms[-1]) == 105.0
    np.testing.assert_allclose(np.diff(atoms), 2.2, rtol=1e-5)


def test_td_loss_terminal_target_with_uniform_prediction():
    # discount 0: the target is all mass at r_t = 2.25, i.e. 3/4 on atom 2 and
    # 1/4 on atom 3, whatever p_t. Uniform logits give log-probability -log 5
    # on every atom, so the cross-entropy is log 5.
    loss = distributional.categorical_td_loss(jnp.zeros(5), jnp.float32(2.25), jnp.float32(0.0), P, Z)
    assert float(loss) == pytest.approx(np.log(5.0), rel=1e-6)


def test_td_loss_gradient_is_prediction_minus_projected_target():
    # r_t = 0.5, discount 0.5: target atoms 0.5 + 0.5 * z = 0.5, 1, 1.5, 2, 2.5;
    # with p_t one-hot on z = 3 (target atom 2) the target is one-hot on atom 2.
    # Cross-entropy's gradient in the logits is softmax(logits) - target, and
    # p_t gets no gradient (the target is a fixed regression target).
    logits = jnp.array([0.3, -0.2, 0.1, 0.0, 0.5], jnp.float32)
    p_t = jnp.array([0.0, 0.0, 0.0, 1.0, 0.0], jnp.float32)
    grad_logits, grad_p = jax.grad(distributional.categorical_td_loss, argnums=(0, 3))(
        logits, jnp.float32(0.5), jnp.float32(0.5), p_t, Z)
    target = np.array([0.0, 0.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(grad_logits, jax.nn.softmax(logits) - target, atol=1e-6)
    np.testing.assert_allclose(grad_p, 0.0)


def test_td_loss_vmap_equals_loop():
    rng = np.random.default_rng(1)
    batch = 7
    logits_tm1 = jnp.asarray(rng.normal(size=(batch, 5)), jnp.float32)
    r_t = jnp.asarray(rng.uniform(-1, 3, batch), jnp.float32)
    discount_t = jnp.asarray(rng.choice([0.0, 0.9**3], batch), jnp.float32)
    p_t = jax.nn.softmax(jnp.asarray(rng.normal(size=(batch, 5)), jnp.float32))
    batched = jax.vmap(distributional.categorical_td_loss, in_axes=(0, 0, 0, 0, None))(
        logits_tm1, r_t, discount_t, p_t, Z)
    looped = [distributional.categorical_td_loss(logits_tm1[i], r_t[i], discount_t[i], p_t[i], Z)
              for i in range(batch)]
    np.testing.assert_allclose(batched, looped, rtol=1e-6)


def test_categorical_mean():
    # Logits log(P): the mean is sum P * z = 0.2 + 0.6 + 0.75 + 0.6 = 2.15.
    assert float(distributional.categorical_mean(jnp.log(P), Z)) == pytest.approx(2.15, rel=1e-6)
