"""Humanoid: stand, walk or run with a 21-joint, 21-actuator 3-D body.

Model, observation, reward and initial states are those of
``dm_control.suite.humanoid`` (Tassa et al. 2018; its run task moves at
10 m/s): the initial pose is drawn again until nothing touches. Safety
constraints and perturbable parameters are those of the real-world suite
(Dulac-Arnold et al. 2020; ``realworldrl_suite/environments/humanoid.py``),
RWRL_REFERENCE.md. Shapes: N environments; every array is (N, ...).

Differences from the published suite, by intent: ``joint_vels`` covers all 21
non-root degrees of freedom (the published ``qvel[7:]`` skips the first
joint's, as the free root joint has 7 positions but only 6 velocities).
"""

from __future__ import annotations

from typing import Sequence

import mujoco
import numpy as np
from dm_control.suite import humanoid as dm_humanoid

from rwrl.core.engine import BatchedPhysics
from rwrl.domains import rewards
from rwrl.domains.base import Constraint, Domain, PerturbParam, SafetyVars, set_joint_damping
from rwrl.domains.randomizers import randomize_limited_and_rotational_joints

# -- constants -----------------------------------------------------------------
#: minimal head height (m) above which the stand reward is 1.
STAND_HEIGHT = 1.4
#: horizontal centre-of-mass speed (m/s) above which the move reward is 1, per task.
MOVE_SPEED = {"stand": 0.0, "walk": 1.0, "run": 10.0}
#: positions and velocities of the free root joint (xyz + quaternion; linear + angular).
ROOT_QPOS, ROOT_DOFS = 7, 6
#: the bodies whose egocentric positions form the ``extremities`` observation.
EXTREMITIES = ("left_hand", "left_foot", "right_hand", "right_foot")
#: largest |non-root joint angle| (rad) at safety_coeff 1.
JOINT_ANGLE_LIMIT = np.pi
#: largest |non-root joint speed| (rad/s) at safety_coeff 1.
JOINT_VELOCITY_LIMIT = 90.0
#: largest head or torso touch force (N) at safety_coeff 1.
DANGEROUS_FALL_LIMIT = 100.0
#: largest foot touch force (N) at safety_coeff 1.
FOOT_FORCE_LIMIT = 8000.0
#: touch sensors of the feet, in the published order of the safety variables.
FOOT_SENSORS = {"rl_f": "right_left_foot_touch", "rr_f": "right_right_foot_touch",
                "ll_f": "left_left_foot_touch", "lr_f": "left_right_foot_touch"}
#: touch sensors of a dangerous fall.
FALL_SENSORS = {"head_touch": "head_touch", "torso_touch": "torso_touch"}
#: joints of the default class "body" whose damping the published edit sets (the
#: hips and abdomen have their own class, damping 5, which the edit leaves alone).
DAMPED_JOINTS = tuple(f"{side}_{joint}" for side in ("right", "left") for joint in (
    "knee", "ankle_y", "ankle_x", "shoulder1", "shoulder2", "elbow"))
#: torsional and rolling friction set beside the sliding one by the published edit.
SECONDARY_FRICTION = (0.1, 0.1)


# -- perturbations (spec edits equal to the published XML edits) ------------------
def _set_contact_friction(spec: mujoco.MjSpec, value: float) -> None:
    # The published edit sets the "body" geom class and the floor, i.e. every geom.
    for geom in spec.geoms:
        geom.friction = [value, *SECONDARY_FRICTION]


def _set_head_size(spec: mujoco.MjSpec, value: float) -> None:
    # The head sphere only (its mass follows); the head's touch site keeps its size.
    head = spec.geom("head")
    head.size = [value, *head.size[1:]]


class Humanoid(Domain):
    """Humanoid stand, walk and run (dense rewards)."""

    name = "humanoid"
    TASKS = {task: {"move_speed": speed} for task, speed in MOVE_SPEED.items()}
    CONTROL_TIMESTEP = 0.025
    ACTION_ROC_LIMIT = 1.85
    #: combined challenges: the perturbed parameter and level -> (min, max, std)
    COMBINED_PERTURBATION = (
        "contact_friction",
        {"easy": (0.6, 0.8, 0.02), "medium": (0.5, 0.9, 0.04),
         "hard": (0.4, 1.0, 0.06)})

    def model_xml(self):
        return dm_humanoid.get_model_and_assets()

    def perturb_params(self):
        return {
            "contact_friction": PerturbParam("contact_friction", 0.7, 0.05, 1.2, 0.1,
                                             _set_contact_friction),
            "joint_damping": PerturbParam(
                "joint_damping", 0.2, 0.01, 2.5, 0.2,
                lambda s, v: set_joint_damping(s, DAMPED_JOINTS, v), "N m s/rad"),
            "head_size": PerturbParam("head_size", 0.09, 0.01, 0.19, 0.02, _set_head_size, "m"),
        }

    def constraints(self):
        def joint_angle(sv: SafetyVars, c: float) -> np.ndarray:
            return np.abs(sv["joint_pos"]).max(axis=1) < JOINT_ANGLE_LIMIT * c

        def joint_velocity(sv: SafetyVars, c: float) -> np.ndarray:
            return sv["joint_vels"].max(axis=1) < JOINT_VELOCITY_LIMIT * c

        def upright(sv: SafetyVars, c: float) -> np.ndarray:
            return sv["z_up"] > 1 - c

        def dangerous_fall(sv: SafetyVars, c: float) -> np.ndarray:
            return np.maximum(sv["head_touch"], sv["torso_touch"]) < DANGEROUS_FALL_LIMIT * c

        def foot_force(sv: SafetyVars, c: float) -> np.ndarray:
            return np.max([sv[k] for k in FOOT_SENSORS], axis=0) < FOOT_FORCE_LIMIT * c

        return (
            Constraint("joint_angle", joint_angle, "max |non-root joint angle| < pi·c rad"),
            Constraint("joint_velocity", joint_velocity,
                       f"max |non-root joint speed| < {JOINT_VELOCITY_LIMIT}·c rad/s"),
            Constraint("upright", upright, "torso z-axis z-component > 1 - c"),
            Constraint("dangerous_fall", dangerous_fall,
                       f"head and torso touch forces < {DANGEROUS_FALL_LIMIT}·c N"),
            Constraint("foot_force", foot_force, f"foot touch forces < {FOOT_FORCE_LIMIT}·c N"),
        )

    # -- physical accessors ------------------------------------------------------
    def setup(self, model: mujoco.MjModel) -> None:
        self._torso = model.body("torso").id
        self._head = model.body("head").id
        self._extremities = np.array([model.body(b).id for b in EXTREMITIES])
        com = model.sensor("torso_subtreelinvel").adr[0]
        self._com_velocity = np.arange(com, com + 3)
        self._touch = {k: model.sensor(s).adr[0]
                       for k, s in {**FOOT_SENSORS, **FALL_SENSORS}.items()}
        self._scratch: tuple[mujoco.MjModel, mujoco.MjData] | None = None

    def torso_upright(self, physics: BatchedPhysics) -> np.ndarray:
        """Return the z-component of the torso's z-axis (N,): 1 upright, -1 upside down."""
        return physics.field("xmat")[:, self._torso, 8]

    def head_height(self, physics: BatchedPhysics) -> np.ndarray:
        """Return the head centre's height (N,), m."""
        return physics.field("xpos")[:, self._head, 2]

    def center_of_mass_velocity(self, physics: BatchedPhysics) -> np.ndarray:
        """Return the whole body's centre-of-mass velocity (N, 3), m/s, world frame."""
        return physics.field("sensordata")[:, self._com_velocity]

    def torso_vertical_orientation(self, physics: BatchedPhysics) -> np.ndarray:
        """Return the world z-axis in the torso's frame (N, 3): xmat[torso, zx:zz]."""
        return physics.field("xmat")[:, self._torso, 6:9].copy()

    def extremities(self, physics: BatchedPhysics) -> np.ndarray:
        """Return hands and feet positions in the torso's frame (N, 12), m."""
        xpos = physics.field("xpos")
        torso_frame = physics.field("xmat")[:, self._torso].reshape(-1, 3, 3)
        torso_to_limb = xpos[:, self._extremities] - xpos[:, self._torso, None]
        return np.einsum("nki,nij->nkj", torso_to_limb, torso_frame).reshape(-1, 12)

    # -- task logic ----------------------------------------------------------------
    def initialize_episode(self, physics: BatchedPhysics, ids: np.ndarray,
                           rngs: Sequence[np.random.Generator]) -> None:
        for env_id, rng in zip(ids, rngs):
            model = physics.env_model(env_id)
            data = self._scratch_data(model)
            mujoco.mj_resetData(model, data)
            # Draw again until the pose is collision-free, as dm_control does.
            while True:
                randomize_limited_and_rotational_joints(model, data.qpos, rng)
                mujoco.mj_fwdPosition(model, data)
                if data.ncon == 0:
                    break
            physics.qpos[env_id] = data.qpos

    def _scratch_data(self, model: mujoco.MjModel) -> mujoco.MjData:
        # One scratch MjData, remade when an env runs on another (perturbed) model.
        if self._scratch is None or self._scratch[0] is not model:
            self._scratch = (model, mujoco.MjData(model))
        return self._scratch[1]

    def observation(self, physics: BatchedPhysics) -> dict[str, np.ndarray]:
        return {
            "joint_angles": physics.qpos[:, ROOT_QPOS:].copy(),
            "head_height": self.head_height(physics).copy(),
            "extremities": self.extremities(physics),
            "torso_vertical": self.torso_vertical_orientation(physics),
            "com_velocity": self.center_of_mass_velocity(physics),
            "velocity": physics.qvel.copy(),
        }

    def reward(self, physics: BatchedPhysics) -> np.ndarray:
        standing = rewards.tolerance(self.head_height(physics),
                                     bounds=(STAND_HEIGHT, float("inf")), margin=STAND_HEIGHT / 4)
        upright = rewards.tolerance(self.torso_upright(physics), bounds=(0.9, float("inf")),
                                    sigmoid="linear", margin=1.9, value_at_margin=0)
        stand_reward = standing * upright
        small_control = rewards.tolerance(physics.ctrl, margin=1, value_at_margin=0,
                                          sigmoid="quadratic").mean(axis=1)
        small_control = (4 + small_control) / 5
        horizontal_velocity = self.center_of_mass_velocity(physics)[:, :2]
        speed = self.task_kwargs["move_speed"]
        if speed == 0:
            dont_move = rewards.tolerance(horizontal_velocity, margin=2).mean(axis=1)
            return small_control * stand_reward * dont_move
        move = rewards.tolerance(np.linalg.norm(horizontal_velocity, axis=1),
                                 bounds=(speed, float("inf")), margin=speed, value_at_margin=0,
                                 sigmoid="linear")
        return small_control * stand_reward * ((5 * move + 1) / 6)

    def safety_vars(self, physics: BatchedPhysics) -> SafetyVars:
        sensordata = physics.field("sensordata")
        touch = {k: np.abs(sensordata[:, adr]) for k, adr in self._touch.items()}
        return {
            "joint_pos": physics.qpos[:, ROOT_QPOS:].copy(),
            "joint_vels": np.abs(physics.qvel[:, ROOT_DOFS:]),
            "z_up": self.torso_upright(physics).copy(),
            **touch,
            "actions": physics.ctrl.copy(),
        }
