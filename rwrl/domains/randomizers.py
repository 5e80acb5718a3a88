"""Initial-state randomisation shared by domains (dm_control.suite.utils.randomizers).

Draws the same distributions in the same order as dm_control's function of the
same name, from a numpy Generator (one per env) instead of a RandomState.
"""

from __future__ import annotations

import mujoco
import numpy as np


def randomize_limited_and_rotational_joints(model: mujoco.MjModel, qpos: np.ndarray,
                                            rng: np.random.Generator) -> None:
    """Draw one env's joint positions as dm_control's randomizer of the same name.

    Limited hinges and slides: uniform in range; unlimited hinges: uniform in
    [-pi, pi]; limited balls: a rotation of angle U[0, limit) about a random
    axis; unlimited balls: a normalised Gaussian quaternion; free joints: the
    orientation only, from a normalised U[0, 1)^4 (dm_control's choice).

    Args:
      model: the model whose joints to draw.
      qpos: (nq,) positions, written in place.
      rng: the env's generator, drawn in dm_control's order.
    """
    hinge, slide = int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE)
    ball, free = int(mujoco.mjtJoint.mjJNT_BALL), int(mujoco.mjtJoint.mjJNT_FREE)
    for j in range(model.njnt):
        kind, adr = int(model.jnt_type[j]), model.jnt_qposadr[j]
        low, high = model.jnt_range[j]
        if model.jnt_limited[j] and kind in (hinge, slide):
            qpos[adr] = rng.uniform(low, high)
        elif model.jnt_limited[j] and kind == ball:
            axis = rng.standard_normal(3)
            axis /= np.linalg.norm(axis)
            mujoco.mju_axisAngle2Quat(qpos[adr:adr + 4], axis, rng.random() * high)
        elif not model.jnt_limited[j] and kind == hinge:
            qpos[adr] = rng.uniform(-np.pi, np.pi)
        elif not model.jnt_limited[j] and kind == ball:
            quat = rng.standard_normal(4)
            qpos[adr:adr + 4] = quat / np.linalg.norm(quat)
        elif kind == free:
            quat = rng.random(4)
            qpos[adr + 3:adr + 7] = quat / np.linalg.norm(quat)
