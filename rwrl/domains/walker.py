"""Planar walker: stand, walk or run with a seven-body, six-actuator biped.

Model, observation, reward and initial states are those of
``dm_control.suite.walker`` (Tassa et al. 2018; its run task moves at 8 m/s);
safety constraints and perturbable parameters are those of the real-world
suite (Dulac-Arnold et al. 2020; ``realworldrl_suite/environments/walker.py``),
RWRL_REFERENCE.md. Shapes: N environments; every array is (N, ...).

Differences from the published suite, by intent:
  * ``joint_angle`` holds when *every* leg joint is within its limits (the
    published predicate is a much weaker "any" form).
  * ``torso_length`` keeps each thigh on its own side (y = -0.05 right,
    +0.05 left); the published XML edit puts both at y = -0.05. The walker is
    planar (every joint turns about y, no self-collisions), so the dynamics
    are the same either way.
"""

from __future__ import annotations

from typing import Sequence

import mujoco
import numpy as np
from dm_control.suite import walker as dm_walker

from rwrl.core.engine import BatchedPhysics
from rwrl.domains import rewards
from rwrl.domains.base import Constraint, Domain, PerturbParam, SafetyVars, set_joint_damping
from rwrl.domains.randomizers import randomize_limited_and_rotational_joints

# -- constants -----------------------------------------------------------------
#: minimal torso height (m) above which the stand reward is 1.
STAND_HEIGHT = 1.2
#: horizontal centre-of-mass speed (m/s) above which the move reward is 1, per task.
MOVE_SPEED = {"stand": 0.0, "walk": 1.0, "run": 8.0}
#: the leg joints in the published order of the ``joint_pos`` safety variable.
LEG_JOINTS = ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")
#: joint_angle limits (rad) at safety_coeff 1, per joint of ``LEG_JOINTS``: lower ...
JOINT_ANGLE_LOW = np.deg2rad([-30.0, -30.0, -160.0, -160.0, -75.0, -75.0])
#: ... and upper.
JOINT_ANGLE_HIGH = np.deg2rad([110.0, 110.0, 15.0, 15.0, 60.0, 60.0])
#: largest leg joint speed (rad/s) at safety_coeff 1.
JOINT_VELOCITY_LIMIT = 65.0
#: dangerous_fall: -xmat[torso, zx] must stay above this times safety_coeff.
TORSO_FORWARD_LIMIT = -0.5
#: degrees of freedom of the planar root (rootz, rootx, rooty), skipped by joint_vels.
ROOT_DOFS = 3
#: half-length (m) of the lower leg capsule: the knee sits this far above the leg body.
LEG_HALF_LENGTH = 0.25
#: distance (m) of each thigh body from the torso centre along y (right, left).
THIGH_OFFSET_Y = {"right_thigh": -0.05, "left_thigh": 0.05}
#: torsional and rolling friction set beside the sliding one by the published edit.
SECONDARY_FRICTION = (0.1, 0.1)


# -- perturbations (spec edits equal to the published XML edits) ------------------
def _set_thigh_length(spec: mujoco.MjSpec, value: float) -> None:
    # The thigh capsule (half-length = value) hangs below the hip and the
    # lower leg body starts one leg half-length below the thigh's end.
    for side in ("right", "left"):
        thigh = spec.geom(f"{side}_thigh")
        thigh.pos = [0.0, 0.0, -value]
        thigh.size = [thigh.size[0], value, 0.0]
        spec.body(f"{side}_leg").pos = [0.0, 0.0, -LEG_HALF_LENGTH - 2 * value]


def _set_torso_length(spec: mujoco.MjSpec, value: float) -> None:
    torso = spec.geom("torso")
    torso.size = [torso.size[0], value, 0.0]
    for name, y in THIGH_OFFSET_Y.items():
        spec.body(name).pos = [0.0, y, -value]


def _set_contact_friction(spec: mujoco.MjSpec, value: float) -> None:
    # The published edit sets the default geom class and the floor, i.e. every geom.
    for geom in spec.geoms:
        geom.friction = [value, *SECONDARY_FRICTION]


class Walker(Domain):
    """Planar walker stand, walk and run (dense rewards)."""

    name = "walker"
    TASKS = {task: {"move_speed": speed} for task, speed in MOVE_SPEED.items()}
    CONTROL_TIMESTEP = 0.025
    ACTION_ROC_LIMIT = 1.55
    #: combined challenges: the perturbed parameter and level -> (min, max, std)
    COMBINED_PERTURBATION = (
        "thigh_length",
        {"easy": (0.225, 0.25, 0.002), "medium": (0.225, 0.4, 0.015),
         "hard": (0.225, 0.55, 0.04)})

    def model_xml(self):
        return dm_walker.get_model_and_assets()

    def perturb_params(self):
        return {
            "thigh_length": PerturbParam("thigh_length", 0.225, 0.1, 0.7, 0.05,
                                         _set_thigh_length, "m"),
            "torso_length": PerturbParam("torso_length", 0.3, 0.1, 0.7, 0.05,
                                         _set_torso_length, "m"),
            "joint_damping": PerturbParam(
                "joint_damping", 0.1, 0.1, 10.0, 0.5,
                lambda s, v: set_joint_damping(s, LEG_JOINTS, v), "N m s/rad"),
            "contact_friction": PerturbParam("contact_friction", 0.7, 0.01, 2.0, 0.05,
                                             _set_contact_friction),
        }

    def constraints(self):
        def joint_angle(sv: SafetyVars, c: float) -> np.ndarray:
            q = sv["joint_pos"]
            return ((q > JOINT_ANGLE_LOW * c) & (q < JOINT_ANGLE_HIGH * c)).all(axis=1)

        def joint_velocity(sv: SafetyVars, c: float) -> np.ndarray:
            return sv["joint_vels"].max(axis=1) < JOINT_VELOCITY_LIMIT * c

        def dangerous_fall(sv: SafetyVars, c: float) -> np.ndarray:
            return sv["torso_forwards"] > TORSO_FORWARD_LIMIT * c

        def torso_upright(sv: SafetyVars, c: float) -> np.ndarray:
            return sv["z_up"] > 1 - c

        return (
            Constraint("joint_angle", joint_angle, "every leg joint within its limits "
                       "(hip [-30, 110], knee [-160, 15], ankle [-75, 60])°·c"),
            Constraint("joint_velocity", joint_velocity,
                       f"max |leg joint speed| < {JOINT_VELOCITY_LIMIT}·c rad/s"),
            Constraint("dangerous_fall", dangerous_fall,
                       "-xmat[torso, zx] > -0.5·c (torso stays forwards)"),
            Constraint("torso_upright", torso_upright, "torso z-axis z-component > 1 - c"),
        )

    # -- physical accessors ------------------------------------------------------
    def setup(self, model: mujoco.MjModel) -> None:
        self._torso = model.body("torso").id
        self._com_velocity = model.sensor("torso_subtreelinvel").adr[0]
        self._leg_qpos = np.array([model.joint(j).qposadr[0] for j in LEG_JOINTS])

    def torso_upright(self, physics: BatchedPhysics) -> np.ndarray:
        """Return the z-component of the torso's z-axis (N,): 1 upright, -1 upside down."""
        return physics.field("xmat")[:, self._torso, 8]

    def torso_height(self, physics: BatchedPhysics) -> np.ndarray:
        """Return the torso centre's height (N,), m."""
        return physics.field("xpos")[:, self._torso, 2]

    def horizontal_velocity(self, physics: BatchedPhysics) -> np.ndarray:
        """Return the centre of mass's forward velocity (N,), m/s."""
        return physics.field("sensordata")[:, self._com_velocity]

    @staticmethod
    def orientations(physics: BatchedPhysics) -> np.ndarray:
        """Return the xx and xz entries of every body's frame (N, 2 * (nbody - 1))."""
        xmat = physics.field("xmat")
        return xmat[:, 1:, 0:3:2].reshape(xmat.shape[0], -1)

    # -- task logic ----------------------------------------------------------------
    def initialize_episode(self, physics: BatchedPhysics, ids: np.ndarray,
                           rngs: Sequence[np.random.Generator]) -> None:
        for env_id, rng in zip(ids, rngs):
            qpos = physics.qpos[env_id].copy()
            randomize_limited_and_rotational_joints(physics.env_model(env_id), qpos, rng)
            physics.qpos[env_id] = qpos

    def observation(self, physics: BatchedPhysics) -> dict[str, np.ndarray]:
        return {
            "orientations": self.orientations(physics),
            "height": self.torso_height(physics).copy(),
            "velocity": physics.qvel.copy(),
        }

    def reward(self, physics: BatchedPhysics) -> np.ndarray:
        standing = rewards.tolerance(self.torso_height(physics),
                                     bounds=(STAND_HEIGHT, float("inf")), margin=STAND_HEIGHT / 2)
        upright = (1 + self.torso_upright(physics)) / 2
        stand_reward = (3 * standing + upright) / 4
        speed = self.task_kwargs["move_speed"]
        if speed == 0:
            return stand_reward
        move_reward = rewards.tolerance(self.horizontal_velocity(physics),
                                        bounds=(speed, float("inf")), margin=speed / 2,
                                        value_at_margin=0.5, sigmoid="linear")
        return stand_reward * (5 * move_reward + 1) / 6

    def safety_vars(self, physics: BatchedPhysics) -> SafetyVars:
        xmat = physics.field("xmat")
        return {
            "joint_pos": physics.qpos[:, self._leg_qpos],
            "joint_vels": np.abs(physics.qvel[:, ROOT_DOFS:]),
            "torso_forwards": -xmat[:, self._torso, 6],
            "z_up": xmat[:, self._torso, 8].copy(),
            "actions": physics.ctrl.copy(),
        }
