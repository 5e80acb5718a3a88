"""The categorical (C51) value distribution: support, projection and TD loss.

Bellemare, Dabney and Munos (2017), "A Distributional Perspective on
Reinforcement Learning" (https://arxiv.org/abs/1707.06887), as used by D4PG
(Barth-Maron et al. 2018) and distributional MPO.

Every function here takes one unbatched example (atoms on the last and only
axis, K atoms); learners batch them with ``jax.vmap``.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import rlax


def categorical_support(v_min: float, v_max: float, num_atoms: int) -> jax.Array:
    """Return the K evenly spaced atoms from v_min to v_max, both included, float32 (K,)."""
    return jnp.linspace(v_min, v_max, num_atoms, dtype=jnp.float32)


def categorical_projection(z_p: jax.Array, probs: jax.Array, z_q: jax.Array) -> jax.Array:
    """Project the categorical distribution (z_p, probs) onto the support z_q.

    The operator Phi of Bellemare et al. (2017), Eq. 7: each atom z_p[j] is
    first clipped to [z_q[0], z_q[-1]], then its mass is split between the two
    neighbouring atoms of z_q in proportion to closeness (the projection that
    minimises the Cramer distance). Mass is conserved. This is
    ``rlax.categorical_l2_project``, checked against hand-computed cases in
    tests/agents/test_distributional.py.

    Args:
        z_p: (Kp,) source atoms (e.g. r_t + discount_t * z_q), any order.
        probs: (Kp,) probabilities of the source atoms.
        z_q: (Kq,) target atoms, increasing.

    Returns:
        (Kq,) probabilities on z_q.
    """
    chex.assert_rank([z_p, probs, z_q], 1)
    chex.assert_equal_shape([z_p, probs])
    return rlax.categorical_l2_project(z_p, probs, z_q)


def categorical_td_loss(
    q_logits_tm1: jax.Array,
    r_t: jax.Array,
    discount_t: jax.Array,
    p_t: jax.Array,
    q_atoms: jax.Array,
    stop_target_gradient: bool = True,
) -> jax.Array:
    """Return the cross-entropy between the projected n-step target and Z(s_tm1, a_tm1).

    Bellemare et al. (2017), Algorithm 1, with the n-step target of D4PG
    (Barth-Maron et al. 2018, Section 3): the target distribution puts mass
    ``p_t[i]`` on ``r_t + discount_t * q_atoms[i]`` and is projected back onto
    ``q_atoms``. ``discount_t`` already holds gamma**n (0 after termination), so
    a terminal target is all mass at ``clip(r_t)``. The target carries no
    gradient. Cross-entropy differs from the KL of the paper by the target's
    entropy, a constant, so the gradients are the same.

    Args:
        q_logits_tm1: (K,) logits of the online critic at (s_tm1, a_tm1).
        r_t: () n-step discounted reward sum.
        discount_t: () discount to the bootstrap state, gamma**n or 0.
        p_t: (K,) target probabilities at the bootstrap state (softmax of the
            target critic's logits, or a mixture of them over sampled actions).
        q_atoms: (K,) the critic's support.
        stop_target_gradient: False lets gradients reach ``r_t``, ``discount_t``
            and ``p_t`` through the target (MetaL differentiates the critic's
            step with respect to a reward shaping); the gradient with respect
            to ``q_logits_tm1`` is the same either way.

    Returns:
        () the loss.
    """
    chex.assert_rank([q_logits_tm1, r_t, discount_t, p_t, q_atoms], [1, 0, 0, 1, 1])
    chex.assert_equal_shape([q_logits_tm1, p_t, q_atoms])
    target_atoms = r_t + discount_t * q_atoms
    target = categorical_projection(target_atoms, p_t, q_atoms)
    if stop_target_gradient:
        target = jax.lax.stop_gradient(target)
    return -jnp.sum(target * jax.nn.log_softmax(q_logits_tm1))


def categorical_mean(q_logits: jax.Array, q_atoms: jax.Array) -> jax.Array:
    """Return the expected value sum_i softmax(q_logits)_i * q_atoms_i over the last axis."""
    return jnp.sum(jax.nn.softmax(q_logits, axis=-1) * q_atoms, axis=-1)
