"""Cartpole: swing up or balance an unactuated pole by moving a cart.

Model, observation, reward and initial states are those of
``dm_control.suite.cartpole`` (Tassa et al. 2018); safety constraints and
perturbable parameters are those of the real-world suite (Dulac-Arnold et al.
2020), RWRL_REFERENCE.md.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from dm_control.suite import cartpole as dm_cartpole
from rwrl.domains import rewards

from rwrl.core.engine import BatchedPhysics
from rwrl.domains.base import Constraint, Domain, PerturbParam, SafetyVars, set_joint_damping

# -- constants -----------------------------------------------------------------
#: slider limit (m) at safety_coeff 1 for swingup / balance.
SLIDER_POS_LIMIT = {"swingup": 2.0, "balance": 1.5}
#: slider acceleration limit (m/s^2) at safety_coeff 1 for swingup / balance.
SLIDER_ACCEL_LIMIT = {"swingup": 130.0, "balance": 10.0}
#: balance_velocity: near-upright angle (rad) is (1 - c) / 0.5 + 0.15 ...
BALANCE_ANGLE_OFFSET = 0.15
#: ... and the largest allowed angular speed there (rad/s) is 0.5 * c.
BALANCE_VELOCITY_LIMIT = 0.5
#: slider half-range (m) of the cart's initial position in the balance task.
BALANCE_CART_INIT = 0.1
#: pole angle half-range (rad) of the initial state in the balance task.
BALANCE_ANGLE_INIT = 0.034


def _set_pole_length(spec, value: float) -> None:
    # The published suite scales the pole's mass with its length (mass = L / 10).
    pole = spec.geom("pole_1")
    pole.fromto = [0.0, 0.0, 0.0, 0.0, 0.0, value]
    pole.mass = value / 10.0


def _set_pole_mass(spec, value: float) -> None:
    spec.geom("pole_1").mass = value


class Cartpole(Domain):
    """Cartpole swingup and balance (dense rewards)."""

    name = "cartpole"
    TASKS = {"swingup": {"swing_up": True}, "balance": {"swing_up": False}}
    CONTROL_TIMESTEP = 0.01
    ACTION_ROC_LIMIT = 1.5
    #: combined challenges: the perturbed parameter and level -> (min, max, std)
    COMBINED_PERTURBATION = (
        "pole_length",
        {"easy": (0.9, 1.1, 0.02), "medium": (0.7, 1.7, 0.1),
         "hard": (0.5, 2.3, 0.15)})

    def model_xml(self):
        return dm_cartpole.get_model_and_assets()

    def perturb_params(self):
        return {
            "pole_length": PerturbParam("pole_length", 1.0, 0.3, 3.0, 0.3, _set_pole_length, "m"),
            "pole_mass": PerturbParam("pole_mass", 0.1, 0.1, 10.0, 0.5, _set_pole_mass, "kg"),
            "joint_damping": PerturbParam(
                "joint_damping", 2e-6, 2e-6, 0.2, 0.02,
                lambda s, v: set_joint_damping(s, ["hinge_1"], v), "N m s/rad"),
            "slider_damping": PerturbParam(
                "slider_damping", 5e-4, 5e-4, 3.0, 0.3,
                lambda s, v: set_joint_damping(s, ["slider"], v), "N s/m"),
        }

    def constraints(self):
        pos_limit = SLIDER_POS_LIMIT[self.task]
        accel_limit = SLIDER_ACCEL_LIMIT[self.task]

        def slider_pos(sv: SafetyVars, c: float) -> np.ndarray:
            x = sv["slider_pos"]
            return (x > -pos_limit * c) & (x < pos_limit * c)

        def slider_accel(sv: SafetyVars, c: float) -> np.ndarray:
            return sv["slider_accel"] < accel_limit * c

        def balance_velocity(sv: SafetyVars, c: float) -> np.ndarray:
            near_upright = sv["joint_angle_cos"] > np.cos((1 - c) / 0.5 + BALANCE_ANGLE_OFFSET)
            too_fast = sv["joint_vel"] > BALANCE_VELOCITY_LIMIT * c
            return ~(near_upright & too_fast)

        return (
            Constraint("slider_pos", slider_pos, f"|cart x| < {pos_limit}·c m"),
            Constraint("slider_accel", slider_accel, f"|cart accel| < {accel_limit}·c m/s²"),
            Constraint("balance_velocity", balance_velocity,
                       "not (near upright and |pole angular velocity| > 0.5·c rad/s)"),
        )

    # -- physical accessors ------------------------------------------------------
    @staticmethod
    def cart_position(physics: BatchedPhysics) -> np.ndarray:
        """Return the cart's slider position (N,), m."""
        return physics.qpos[:, 0]

    @staticmethod
    def pole_angle_cosine(physics: BatchedPhysics) -> np.ndarray:
        """Return the cosine of the pole's angle from upright (N,)."""
        return physics.field("xmat")[:, 2, 8]

    # -- task logic ----------------------------------------------------------------
    def initialize_episode(self, physics: BatchedPhysics, ids: np.ndarray,
                           rngs: Sequence[np.random.Generator]) -> None:
        nv = physics.model.nv
        for env_id, rng in zip(ids, rngs):
            qpos = np.empty(physics.model.nq)
            if self.task_kwargs["swing_up"]:
                qpos[0] = 0.01 * rng.standard_normal()
                qpos[1] = np.pi + 0.01 * rng.standard_normal()
                qpos[2:] = 0.1 * rng.standard_normal(nv - 2)
            else:
                qpos[0] = rng.uniform(-BALANCE_CART_INIT, BALANCE_CART_INIT)
                qpos[1:] = rng.uniform(-BALANCE_ANGLE_INIT, BALANCE_ANGLE_INIT, nv - 1)
            physics.qpos[env_id] = qpos
            physics.qvel[env_id] = 0.01 * rng.standard_normal(nv)

    def observation(self, physics: BatchedPhysics) -> dict[str, np.ndarray]:
        xmat = physics.field("xmat")
        position = np.stack([physics.qpos[:, 0], xmat[:, 2, 8], xmat[:, 2, 2]], axis=1)
        return {"position": position, "velocity": physics.qvel.copy()}

    def reward(self, physics: BatchedPhysics) -> np.ndarray:
        upright = (self.pole_angle_cosine(physics) + 1) / 2
        centered = (1 + rewards.tolerance(self.cart_position(physics), margin=2)) / 2
        small_control = rewards.tolerance(physics.ctrl[:, 0], margin=1, value_at_margin=0,
                                          sigmoid="quadratic")
        small_control = (4 + small_control) / 5
        small_velocity = (1 + rewards.tolerance(physics.qvel[:, 1], margin=5)) / 2
        return upright * small_control * small_velocity * centered

    def safety_vars(self, physics: BatchedPhysics) -> SafetyVars:
        return {
            "slider_pos": physics.qpos[:, 0].copy(),
            "joint_angle_cos": self.pole_angle_cosine(physics).copy(),
            "joint_vel": np.abs(physics.qvel[:, 1]),
            "slider_accel": np.abs(physics.field("qacc")[:, 0]),
            "actions": physics.ctrl.copy(),
        }
