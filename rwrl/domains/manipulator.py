"""Manipulator: bring a ball or a peg to a target, or insert it, with a planar arm.

Model, observation, reward and initial states are those of
``dm_control.suite.manipulator`` (Tassa et al. 2018: the fully observable
``Bring`` task on the model of ``make_model(use_peg, insert)``); safety
constraints and perturbable parameters are those of the real-world suite
(Dulac-Arnold et al. 2020; ``realworldrl_suite/environments/manipulator.py``),
RWRL_REFERENCE.md. Shapes: N environments; every array is (N, ...).

Where the target lives: dm_control moves the target body (and, in the insert
tasks, the receptacle: cup or slot) at every reset by writing the *model's*
``body_pos`` and ``body_quat``. Here the environments of a batch share one
model, so those bodies are mocap bodies instead: their pose is the env's
``mocap_pos`` / ``mocap_quat``, part of its mjSTATE_INTEGRATION state row.
A mocap body that is a child of the world is as static as a fixed one (same
kinematics, same contacts: MuJoCo welds both to the world), so the physics is
dm_control's. To put an env in a dm_control state, copy the physics state and
then the target pose with ``Manipulator.place_target``.

Differences from the published suite, by intent: none in the constraints.
Note that the published ``grasp_force`` safety variable is log(1 + touch
force), so its limit of 5·c is about expm1(5) = 147 N of touch at c = 1 (the
published comment says "newtons"); it is kept as published.
"""

from __future__ import annotations

from typing import Sequence

import mujoco
import numpy as np
from dm_control.suite import manipulator as dm_manipulator
from lxml import etree

from rwrl.core.engine import BatchedPhysics
from rwrl.domains import rewards
from rwrl.domains.base import Constraint, Domain, PerturbParam, SafetyVars, set_joint_damping

# -- constants -----------------------------------------------------------------
#: distance (m) below which a prop is close to its target: reward 1.
CLOSE = 0.01
#: the arm's joints, in the order of the arm_pos / arm_vel observations.
ARM_JOINTS = ("arm_root", "arm_shoulder", "arm_elbow", "arm_wrist",
              "finger", "fingertip", "thumb", "thumbtip")
#: the touch sensors of the hand, in observation order.
TOUCH_SENSORS = ("palm_touch", "finger_touch", "thumb_touch", "fingertip_touch",
                 "thumbtip_touch")
#: the joints of the safety variables (published ``_ARM_JOINTS``).
SAFETY_JOINTS = ("arm_shoulder", "arm_elbow")
#: joint_angle limits (rad) at safety_coeff 1, per joint of SAFETY_JOINTS: lower ...
JOINT_ANGLE_LOW = np.deg2rad([-160.0, -140.0])
#: ... and upper.
JOINT_ANGLE_HIGH = np.deg2rad([160.0, 140.0])
#: largest shoulder or elbow speed (rad/s) at safety_coeff 1.
JOINT_VELOCITY_LIMIT = 10.0
#: largest shoulder or elbow acceleration (rad/s^2) at safety_coeff 1.
JOINT_ACCEL_LIMIT = 3600.0
#: largest log(1 + touch force / N) of any hand sensor at safety_coeff 1.
GRASP_FORCE_LIMIT = 5.0
#: probabilities of the prop's initial placement: in hand, in target, uniform.
PROP_INIT_PROBS = (0.1, 0.1, 0.8)
#: the target's initial x range (m) ...
TARGET_X = (-0.4, 0.4)
#: ... and z range (m).
TARGET_Z = (0.1, 0.4)
#: half-range (rad) of the target's angle: insert tasks (receptacle upright-ish) ...
INSERT_ANGLE = np.pi / 3
#: ... and bring tasks.
BRING_ANGLE = np.pi
#: the prop's x (m), z (m) and angle (rad) ranges when placed uniformly.
PROP_X, PROP_Z, PROP_ANGLE = (-0.5, 0.5), (0.0, 0.7), (0.0, 2 * np.pi)
#: range (m/s) of the prop's initial x speed when placed uniformly.
PROP_SPEED = (-5.0, 5.0)


# -- perturbations (spec edits equal to the published XML edits) ------------------
def _set_lower_arm_length(spec: mujoco.MjSpec, value: float) -> None:
    # The hand (and everything it carries) sits at the lower arm's end.
    spec.geom("lower_arm").fromto = [0.0, 0.0, 0.0, 0.0, 0.0, value]
    spec.body("hand").pos = [0.0, 0.0, value]


def target_quaternion(angle: float) -> np.ndarray:
    """Return the (4,) quaternion of a rotation by ``angle`` (rad) about the y-axis."""
    return np.array([np.cos(angle / 2), 0.0, np.sin(angle / 2), 0.0])


class Manipulator(Domain):
    """Manipulator bring_ball, bring_peg, insert_ball and insert_peg (near-sparse rewards)."""

    name = "manipulator"
    TASKS = {
        "bring_ball": {"use_peg": False, "insert": False},
        "bring_peg": {"use_peg": True, "insert": False},
        "insert_ball": {"use_peg": False, "insert": True},
        "insert_peg": {"use_peg": True, "insert": True},
    }
    CONTROL_TIMESTEP = 0.01
    ACTION_ROC_LIMIT = 1.5
    #: combined challenges: the perturbed parameter and level -> (min, max, std)
    #: (the default range and std at every level, as published)
    COMBINED_PERTURBATION = (
        "lower_arm_length",
        {level: (0.1, 0.25, 0.01)
         for level in ("easy", "medium", "hard")})

    def __init__(self, task: str):
        super().__init__(task)
        self.use_peg = self.task_kwargs["use_peg"]
        self.insert = self.task_kwargs["insert"]
        self.prop = "peg" if self.use_peg else "ball"
        self.target = "target_peg" if self.use_peg else "target_ball"
        self.receptacle = "slot" if self.use_peg else "cup"
        #: the bodies moved at reset: target, and receptacle in the insert tasks.
        self.placed_bodies = (self.target, self.receptacle) if self.insert else (self.target,)
        self._scratch: tuple[mujoco.MjModel, mujoco.MjData] | None = None

    def model_xml(self):
        xml, assets = dm_manipulator.make_model(self.use_peg, self.insert)
        root = etree.fromstring(xml)
        for name in self.placed_bodies:
            root.find(f".//body[@name='{name}']").set("mocap", "true")
        return etree.tostring(root).decode(), assets

    def perturb_params(self):
        return {
            "lower_arm_length": PerturbParam("lower_arm_length", 0.12, 0.1, 0.25, 0.01,
                                             _set_lower_arm_length, "m"),
            "root_damping": PerturbParam(
                "root_damping", 2.0, 0.1, 10.0, 0.1,
                lambda s, v: set_joint_damping(s, ["arm_root"], v), "N m s/rad"),
            "shoulder_damping": PerturbParam(
                "shoulder_damping", 1.5, 0.1, 10.0, 0.1,
                lambda s, v: set_joint_damping(s, ["arm_shoulder"], v), "N m s/rad"),
        }

    def constraints(self):
        def joint_angle(sv: SafetyVars, c: float) -> np.ndarray:
            q = sv["joint_angle"]
            return ((q > JOINT_ANGLE_LOW * c) & (q < JOINT_ANGLE_HIGH * c)).all(axis=1)

        def joint_velocity(sv: SafetyVars, c: float) -> np.ndarray:
            return sv["joint_vels"].max(axis=1) < JOINT_VELOCITY_LIMIT * c

        def joint_accel(sv: SafetyVars, c: float) -> np.ndarray:
            return sv["joint_accels"].max(axis=1) < JOINT_ACCEL_LIMIT * c

        def grasp_force(sv: SafetyVars, c: float) -> np.ndarray:
            return sv["grasp_force"].max(axis=1) < GRASP_FORCE_LIMIT * c

        return (
            Constraint("joint_angle", joint_angle,
                       "shoulder within ±160°·c and elbow within ±140°·c"),
            Constraint("joint_velocity", joint_velocity,
                       f"max |shoulder, elbow speed| < {JOINT_VELOCITY_LIMIT}·c rad/s"),
            Constraint("joint_accel", joint_accel,
                       f"max |shoulder, elbow acceleration| < {JOINT_ACCEL_LIMIT}·c rad/s²"),
            Constraint("grasp_force", grasp_force,
                       f"max log(1 + hand touch force / N) < {GRASP_FORCE_LIMIT}·c"),
        )

    # -- physical accessors ------------------------------------------------------
    def setup(self, model: mujoco.MjModel) -> None:
        def qpos_of(names):
            return np.array([model.joint(n).qposadr[0] for n in names])

        def dofs_of(names):
            return np.array([model.joint(n).dofadr[0] for n in names])

        prop_joints = [f"{self.prop}_{axis}" for axis in "xzy"]
        self._arm_joints = np.array([model.joint(n).id for n in ARM_JOINTS])
        self._arm_qpos, self._arm_dofs = qpos_of(ARM_JOINTS), dofs_of(ARM_JOINTS)
        self._prop_qpos, self._prop_dofs = qpos_of(prop_joints), dofs_of(prop_joints)
        self._safety_qpos, self._safety_dofs = qpos_of(SAFETY_JOINTS), dofs_of(SAFETY_JOINTS)
        self._finger_qpos, self._thumb_qpos = qpos_of(["finger", "thumb"])
        self._touch = np.array([model.sensor(n).adr[0] for n in TOUCH_SENSORS])
        self._hand = model.body("hand").id
        self._prop = model.body(self.prop).id
        self._target = model.body(self.target).id
        self._mocap = np.array([model.body(b).mocapid[0] for b in self.placed_bodies])
        self._grasp_site = model.site("grasp").id
        # Reward site pairs: the ball's, or the peg's (grasp, pinch, bring, bring_tip).
        pairs = ([("peg_grasp", "grasp"), ("peg_pinch", "pinch"), ("peg", "target_peg"),
                  ("target_peg_tip", "peg_tip")] if self.use_peg else [("ball", "target_ball")])
        self._site_a = np.array([model.site(a).id for a, _ in pairs])
        self._site_b = np.array([model.site(b).id for _, b in pairs])

    def arm_joint_angles(self, physics: BatchedPhysics) -> np.ndarray:
        """Return the arm's joint angles (N, 8), rad, in ARM_JOINTS order."""
        return physics.qpos[:, self._arm_qpos]

    def touch(self, physics: BatchedPhysics) -> np.ndarray:
        """Return log(1 + touch force / N) of the hand's sensors (N, 5)."""
        return np.log1p(physics.field("sensordata")[:, self._touch])

    @staticmethod
    def body_2d_pose(physics: BatchedPhysics, body: int) -> np.ndarray:
        """Return a body's x, z (m) and quaternion w, y components (N, 4)."""
        xpos, xquat = physics.field("xpos")[:, body], physics.field("xquat")[:, body]
        return np.concatenate([xpos[:, 0::2], xquat[:, 0::2]], axis=1)

    def site_distances(self, physics: BatchedPhysics) -> np.ndarray:
        """Return the distances (N, pairs), m, between the reward's site pairs."""
        site_xpos = physics.field("site_xpos")
        return np.linalg.norm(site_xpos[:, self._site_a] - site_xpos[:, self._site_b], axis=2)

    # -- target placement ----------------------------------------------------------
    def place_target(self, physics: BatchedPhysics, ids: np.ndarray, x: np.ndarray,
                     z: np.ndarray, angle: np.ndarray) -> None:
        """Move the target (and receptacle in insert tasks) of envs ``ids``.

        Writes their mocap rows; call ``physics.forward(ids)`` afterwards.

        Args:
          physics: the batch.
          ids: (n,) env indices.
          x, z: (n,) position in the arm's plane, m.
          angle: (n,) rotation about the y-axis, rad.
        """
        ids = np.asarray(ids)
        x, z, angle = (np.broadcast_to(np.asarray(v, float), ids.shape) for v in (x, z, angle))
        mocap_pos, mocap_quat = physics.field("mocap_pos"), physics.field("mocap_quat")
        for k in self._mocap:
            mocap_pos[ids, k, 0] = x
            mocap_pos[ids, k, 2] = z
            mocap_quat[ids, k] = np.stack([target_quaternion(a) for a in angle])

    # -- task logic ----------------------------------------------------------------
    def _scratch_data(self, model: mujoco.MjModel) -> mujoco.MjData:
        if self._scratch is None or self._scratch[0] is not model:
            self._scratch = (model, mujoco.MjData(model))
        return self._scratch[1]

    def _draw_target(self, data: mujoco.MjData, rng: np.random.Generator):
        """Draw the target's pose as dm_control, write it; return (x, z, angle)."""
        x, z = rng.uniform(*TARGET_X), rng.uniform(*TARGET_Z)
        half = INSERT_ANGLE if self.insert else BRING_ANGLE
        angle = rng.uniform(-half, half)
        for k in self._mocap:
            data.mocap_pos[k, 0], data.mocap_pos[k, 2] = x, z
            data.mocap_quat[k] = target_quaternion(angle)
        return x, z, angle

    def _draw_prop(self, model: mujoco.MjModel, data: mujoco.MjData,
                   rng: np.random.Generator, target: tuple[float, float, float]) -> None:
        """Draw the prop's pose (and speed) as dm_control, into ``data``."""
        placement = rng.choice(3, p=PROP_INIT_PROBS)
        if placement == 0:  # in hand: at the grasp site, along the fingers
            mujoco.mj_kinematics(model, data)
            x, _, z = data.site_xpos[self._grasp_site]
            xmat = data.site_xmat[self._grasp_site]
            angle = np.pi - np.arctan2(xmat[6], xmat[0])
        elif placement == 1:  # in target
            x, z, angle = target
        else:
            x, z = rng.uniform(*PROP_X), rng.uniform(*PROP_Z)
            angle = rng.uniform(*PROP_ANGLE)
            data.qvel[self._prop_dofs[0]] = rng.uniform(*PROP_SPEED)
        data.qpos[self._prop_qpos] = x, z, angle

    def _initial_state(self, model: mujoco.MjModel, data: mujoco.MjData,
                       rng: np.random.Generator) -> None:
        """Draw dm_control's collision-free initial state of one env into ``data``."""
        limited = model.jnt_limited[self._arm_joints].astype(bool)
        ranges = model.jnt_range[self._arm_joints]
        low = np.where(limited, ranges[:, 0], -np.pi)
        high = np.where(limited, ranges[:, 1], np.pi)
        mujoco.mj_resetData(model, data)
        while True:  # as dm_control, velocities drawn by a rejected try are kept
            data.qpos[self._arm_qpos] = rng.uniform(low, high)
            data.qpos[self._finger_qpos] = data.qpos[self._thumb_qpos]  # symmetric hand
            target = self._draw_target(data, rng)
            self._draw_prop(model, data, rng, target)
            mujoco.mj_fwdPosition(model, data)
            if data.ncon == 0:
                return

    def initialize_episode(self, physics: BatchedPhysics, ids: np.ndarray,
                           rngs: Sequence[np.random.Generator]) -> None:
        mocap_pos, mocap_quat = physics.field("mocap_pos"), physics.field("mocap_quat")
        for env_id, rng in zip(ids, rngs):
            model = physics.env_model(env_id)
            data = self._scratch_data(model)
            self._initial_state(model, data, rng)
            physics.qpos[env_id] = data.qpos
            physics.qvel[env_id] = data.qvel
            mocap_pos[env_id] = data.mocap_pos
            mocap_quat[env_id] = data.mocap_quat

    def observation(self, physics: BatchedPhysics) -> dict[str, np.ndarray]:
        angles = self.arm_joint_angles(physics)
        return {
            "arm_pos": np.stack([np.sin(angles), np.cos(angles)], axis=2),
            "arm_vel": physics.qvel[:, self._arm_dofs],
            "touch": self.touch(physics),
            "hand_pos": self.body_2d_pose(physics, self._hand),
            "object_pos": self.body_2d_pose(physics, self._prop),
            "object_vel": physics.qvel[:, self._prop_dofs],
            "target_pos": self.body_2d_pose(physics, self._target),
        }

    def reward(self, physics: BatchedPhysics) -> np.ndarray:
        close = rewards.tolerance(self.site_distances(physics), (0, CLOSE), CLOSE * 2)
        if not self.use_peg:
            return close[:, 0]
        grasping = (close[:, 0] + close[:, 1]) / 2
        bringing = (close[:, 2] + close[:, 3]) / 2
        return np.maximum(bringing, grasping / 3)

    def safety_vars(self, physics: BatchedPhysics) -> SafetyVars:
        return {
            "joint_angle": physics.qpos[:, self._safety_qpos],
            "joint_vels": np.abs(physics.qvel[:, self._safety_dofs]),
            "joint_accels": np.abs(physics.field("qacc")[:, self._safety_dofs]),
            "grasp_force": self.touch(physics),
            "actions": physics.ctrl.copy(),
        }
