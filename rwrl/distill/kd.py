"""The knowledge-distillation loss of TAKD (Mirzadeh et al., AAAI 2020, arXiv 1902.03393, Eq. 3).

For one example with student logits ``z_s``, teacher logits ``z_t`` (both of
shape ``(classes,)``) and integer label ``y``::

    loss = (1 - lam) * CE(y, softmax(z_s))
           + lam * tau**2 * KL(softmax(z_t / tau) || softmax(z_s / tau))

The KL is summed over classes (``sum_c p_t[c] * (log p_t[c] - log p_s[c])``).
The released code (``train.py``) computes the same expression with PyTorch's
``nn.KLDivLoss()``, whose default reduction averages over batch *and* classes,
so its KD term is the one above divided by the number of classes;
``classes_mean=True`` reproduces that. The ``tau**2`` keeps the soft term's
gradient at the same scale as the hard term's when ``tau`` changes (Hinton et
al. 2015). ``lam = 0`` is training on labels alone; ``lam = 1`` is pure
distillation. The teacher's logits are constants (no gradient flows into
them).

Shapes: the loss functions take one unbatched example; ``batch_kd_loss``
averages the vmapped loss over a leading batch axis.

>>> import jax.numpy as jnp
>>> z = jnp.array([2.0, 0.0, -1.0])
>>> float(kd_loss(z, z, 0, temperature=4.0, lam=1.0))  # student equals teacher: no KD loss
0.0
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp


def check_kd_args(temperature: float, lam: float) -> None:
    """Raise a one-line ValueError unless ``temperature`` is finite and > 0 and ``lam`` is in [0, 1]."""
    if not isinstance(temperature, (int, float)) or not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature = {temperature!r} is not allowed: give a finite number > 0")
    if not isinstance(lam, (int, float)) or not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam = {lam!r} is not allowed: give a number in [0, 1]")


def soft_kl(student_logits: jax.Array, teacher_logits: jax.Array, temperature: float) -> jax.Array:
    """Return KL(softmax(z_t / tau) || softmax(z_s / tau)) for one example, summed over classes.

    Args:
      student_logits: (classes,) the student's logits z_s.
      teacher_logits: (classes,) the teacher's logits z_t; treated as constants.
      temperature: tau > 0.
    """
    teacher_logits = jax.lax.stop_gradient(teacher_logits)
    log_p_t = jax.nn.log_softmax(teacher_logits / temperature)
    log_p_s = jax.nn.log_softmax(student_logits / temperature)
    return jnp.sum(jnp.exp(log_p_t) * (log_p_t - log_p_s))


def kd_loss(student_logits: jax.Array, teacher_logits: jax.Array, label: jax.Array,
            temperature: float, lam: float, classes_mean: bool = False) -> jax.Array:
    """Return TAKD's loss (Eq. 3) for one example: (1 - lam) CE + lam tau^2 KL.

    Args:
      student_logits: (classes,) the student's logits.
      teacher_logits: (classes,) the teacher's logits (constants).
      label: () the integer class.
      temperature: tau, finite and > 0 (a Python number, checked here).
      lam: the weight of the soft term, in [0, 1].
      classes_mean: divide the KL by the number of classes, as the released
        code's ``nn.KLDivLoss()`` default does.

    Returns:
      () the loss.
    """
    check_kd_args(temperature, lam)
    if student_logits.ndim != 1 or student_logits.shape != teacher_logits.shape:
        raise ValueError(f"logits of shapes {student_logits.shape} and {teacher_logits.shape}: "
                         "give one example's (classes,) logits for student and teacher")
    cross_entropy = -jax.nn.log_softmax(student_logits)[label]
    kl = soft_kl(student_logits, teacher_logits, temperature)
    if classes_mean:
        kl = kl / student_logits.shape[0]
    return (1.0 - lam) * cross_entropy + lam * temperature ** 2 * kl


def batch_kd_loss(student_logits: jax.Array, teacher_logits: jax.Array, labels: jax.Array,
                  temperature: float, lam: float, classes_mean: bool = False) -> jax.Array:
    """Return the mean of ``kd_loss`` over a batch: logits (batch, classes), labels (batch,)."""
    check_kd_args(temperature, lam)
    per_example = jax.vmap(functools.partial(kd_loss, temperature=temperature, lam=lam,
                                             classes_mean=classes_mean))
    return jnp.mean(per_example(student_logits, teacher_logits, labels))
