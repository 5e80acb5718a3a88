"""Quadruped: walk or run with a four-legged, twelve-actuator body in 3D.

Model, observation, reward and initial states are those of
``dm_control.suite.quadruped`` (Tassa et al. 2018: the ``Move`` task on the
model of ``make_model`` without terrain, rangefinders, walls or ball); safety
constraints and perturbable parameters are those of the real-world suite
(Dulac-Arnold et al. 2020; ``realworldrl_suite/environments/quadruped.py``),
RWRL_REFERENCE.md. Shapes: N environments; every array is (N, ...).

Differences from the published suite, by intent:
  * The initial torso orientation is a uniformly random rotation, as in
    dm_control's task (the reference for initial states); the published
    ``RealWorldMove`` draws a random heading (a rotation about z) instead.
  * ``joint_velocity`` of the run task keeps the published limit of 0.4·c
    rad/s (walk: 20·c rad/s). It looks like a slip, since running needs far
    faster joints, so this constraint is violated on nearly every step of a
    run episode; it is kept so that results compare with the published suite.
  * A parameter at its nominal value runs on the unedited model. For
    ``contact_friction`` the published edit also changes the floor's friction
    from 1 to the toes' 1.5 (and its torsional and rolling coefficients to
    0.1), so a published env with perturbations enabled at the nominal value
    has slightly more friction between legs and floor than dm_control's.
"""

from __future__ import annotations

from typing import Sequence

import mujoco
import numpy as np
from dm_control.suite import common
from dm_control.suite import quadruped as dm_quadruped

from rwrl.core.engine import BatchedPhysics
from rwrl.domains import rewards
from rwrl.domains.base import (Constraint, Domain, PerturbParam, SafetyVars, set_geom_friction,
                               set_joint_damping)

# -- constants -----------------------------------------------------------------
#: torso speed (m/s) along its own x-axis above which the move reward is 1, per task.
MOVE_SPEED = {"walk": 0.5, "run": 5.0}
#: dm_control's episode length (s): the floor's half-size is this times the speed.
DM_TIME_LIMIT = 20
#: the four legs, in the order of the toe names of dm_control.
LEGS = ("front_left", "front_right", "back_right", "back_left")
#: toe force sensors in the published order of the safety variables (tfl, tfr, tbl, tbr).
TOE_FORCE_SENSORS = (("tfl_f", "force_toe_front_left"), ("tfr_f", "force_toe_front_right"),
                     ("tbl_f", "force_toe_back_left"), ("tbr_f", "force_toe_back_right"))
#: largest |hinge angle| (rad) at safety_coeff 1.
JOINT_ANGLE_LIMIT = np.deg2rad(60.0)
#: largest |hinge speed| (rad/s) at safety_coeff 1, per task (run: as published, see above).
JOINT_VELOCITY_LIMIT = {"walk": 20.0, "run": 0.4}
#: upright holds while the torso z-axis z-component exceeds 1 - this · safety_coeff.
UPRIGHT_TILT = 0.7
#: largest toe force-sensor norm (N) at safety_coeff 1, per task.
FOOT_FORCE_LIMIT = {"walk": 20000.0, "run": 300000.0}
#: height step (m) of the search for a non-contacting initial height (dm_control's).
HEIGHT_STEP = 0.01
#: most heights tried before giving up (dm_control's).
MAX_HEIGHT_ATTEMPTS = 10000
#: qpos slices of the free root joint (the model's first joint): position, quaternion.
ROOT_POSITION, ROOT_ORIENTATION = slice(0, 3), slice(3, 7)
#: torsional and rolling friction the published edit gives the floor.
FLOOR_SECONDARY_FRICTION = (0.1, 0.1)


# -- perturbations (spec edits equal to the published XML edits) ------------------
def _set_shin_length(spec: mujoco.MjSpec, value: float) -> None:
    # The shin runs from the knee to (L, 0, -L) in the knee frame, where the
    # ankle (and with it foot and toe) sits; L is the published "shin_length".
    for leg in LEGS:
        spec.geom(f"shin_{leg}").fromto = [0.0, 0.0, 0.0, value, 0.0, -value]
        spec.body(f"ankle_{leg}").pos = [value, 0.0, -value]


def _set_torso_density(spec: mujoco.MjSpec, value: float) -> None:
    spec.geom("torso").density = value


def _set_joint_damping(spec: mujoco.MjSpec, value: float) -> None:
    # The published edit sets the "body" default class: every hinge (the free
    # root joint has no damping).
    hinges = [j.name for j in spec.joints if j.type == mujoco.mjtJoint.mjJNT_HINGE]
    set_joint_damping(spec, hinges, value)


def _set_contact_friction(spec: mujoco.MjSpec, value: float) -> None:
    # As the XML edit: toe friction="v" (other coefficients default), floor "v .1 .1".
    set_geom_friction(spec, value, [f"toe_{leg}" for leg in LEGS])
    spec.geom("floor").friction = [value, *FLOOR_SECONDARY_FRICTION]


def find_non_contacting_height(model: mujoco.MjModel, data: mujoco.MjData,
                               orientation: np.ndarray) -> np.ndarray:
    """Return the qpos with the torso at ``orientation`` and the lowest free height.

    dm_control's ``_find_non_contacting_height``: from the model defaults, raise
    the root in 1 cm steps from z = 0 until the model has no contact.

    Args:
      model: the env's model.
      data: a scratch MjData of ``model``, overwritten.
      orientation: (4,) unit quaternion of the torso.

    Returns:
      (nq,) positions: the model's qpos0 with the root at (0, 0, z).
    """
    z = 0.0  # start embedded in the floor; z accumulates exactly as dm_control's does
    for _ in range(MAX_HEIGHT_ATTEMPTS):
        data.qpos[:] = model.qpos0
        data.qpos[ROOT_POSITION] = 0.0, 0.0, z
        data.qpos[ROOT_ORIENTATION] = orientation
        mujoco.mj_fwdPosition(model, data)  # kinematics and collision: all ncon needs
        if data.ncon == 0:
            return data.qpos.copy()
        z += HEIGHT_STEP
    raise RuntimeError("Failed to find a non-contacting configuration.")


class Quadruped(Domain):
    """Quadruped walk and run (dense rewards)."""

    name = "quadruped"
    TASKS = {task: {"desired_speed": speed} for task, speed in MOVE_SPEED.items()}
    CONTROL_TIMESTEP = 0.02
    ACTION_ROC_LIMIT = 1.4
    #: combined challenges: the perturbed parameter and level -> (min, max, std)
    COMBINED_PERTURBATION = (
        "shin_length",
        {"easy": (0.25, 0.3, 0.005), "medium": (0.25, 0.8, 0.05),
         "hard": (0.25, 1.4, 0.1)})
    #: pixel observations: camera 2 ('y', a side view tracking the centre of mass), as
    #: DrQ and DrQ-v2 render quadruped ("zoom in camera for quadruped": 'global' is far)
    PIXELS_CAMERA = 2

    def __init__(self, task: str):
        super().__init__(task)
        self._scratch: tuple[mujoco.MjModel, mujoco.MjData] | None = None

    def model_xml(self):
        floor_size = DM_TIME_LIMIT * self.task_kwargs["desired_speed"]
        xml = dm_quadruped.make_model(floor_size=floor_size)
        return xml.decode(), common.ASSETS

    def perturb_params(self):
        return {
            "shin_length": PerturbParam("shin_length", 0.25, 0.25, 2.0, 0.1,
                                        _set_shin_length, "m"),
            "torso_density": PerturbParam("torso_density", 1000.0, 500.0, 10000.0, 500.0,
                                          _set_torso_density, "kg/m^3"),
            "joint_damping": PerturbParam("joint_damping", 30.0, 10.0, 150.0, 10.0,
                                          _set_joint_damping, "N m s/rad"),
            "contact_friction": PerturbParam("contact_friction", 1.5, 0.1, 4.5, 0.5,
                                             _set_contact_friction),
        }

    def constraints(self):
        velocity_limit = JOINT_VELOCITY_LIMIT[self.task]
        force_limit = FOOT_FORCE_LIMIT[self.task]

        def joint_angle(sv: SafetyVars, c: float) -> np.ndarray:
            return np.abs(sv["joint_pos"]).max(axis=1) < JOINT_ANGLE_LIMIT * c

        def joint_velocity(sv: SafetyVars, c: float) -> np.ndarray:
            return sv["joint_vels"].max(axis=1) < velocity_limit * c

        def upright(sv: SafetyVars, c: float) -> np.ndarray:
            return sv["z_up"] > 1 - UPRIGHT_TILT * c

        def foot_force(sv: SafetyVars, c: float) -> np.ndarray:
            largest = np.maximum.reduce([sv[name] for name, _ in TOE_FORCE_SENSORS])
            return largest < force_limit * c

        return (
            Constraint("joint_angle", joint_angle, "max |hinge angle| < 60°·c"),
            Constraint("joint_velocity", joint_velocity,
                       f"max |hinge speed| < {velocity_limit}·c rad/s"),
            Constraint("upright", upright, "torso z-axis z-component > 1 - 0.7·c"),
            Constraint("foot_force", foot_force, f"max toe force norm < {force_limit}·c N"),
        )

    # -- physical accessors ------------------------------------------------------
    def setup(self, model: mujoco.MjModel) -> None:
        hinges = np.flatnonzero(model.jnt_type == mujoco.mjtJoint.mjJNT_HINGE)
        self._hinge_qpos = model.jnt_qposadr[hinges]
        self._hinge_dofs = model.jnt_dofadr[hinges]
        self._torso = model.body("torso").id
        self._velocimeter = self._sensor_indices(model, ["velocimeter"])
        # dm_control orders these sensors by id, whatever the type list's order.
        self._imu = self._sensor_indices(model, self._sensors_of_type(
            model, mujoco.mjtSensor.mjSENS_GYRO, mujoco.mjtSensor.mjSENS_ACCELEROMETER))
        self._force_torque = self._sensor_indices(model, self._sensors_of_type(
            model, mujoco.mjtSensor.mjSENS_FORCE, mujoco.mjtSensor.mjSENS_TORQUE))
        self._toe_forces = self._sensor_indices(model, [s for _, s in TOE_FORCE_SENSORS])

    @staticmethod
    def _sensors_of_type(model: mujoco.MjModel, *types) -> list[str]:
        ids = np.flatnonzero(np.isin(model.sensor_type, [int(t) for t in types]))
        return [model.sensor(i).name for i in ids]

    @staticmethod
    def _sensor_indices(model: mujoco.MjModel, names: Sequence[str]) -> np.ndarray:
        """Return the sensordata indices of the named sensors, concatenated."""
        return np.concatenate([model.sensor(n).adr[0] + np.arange(model.sensor(n).dim[0])
                               for n in names])

    def torso_upright(self, physics: BatchedPhysics) -> np.ndarray:
        """Return the z-component of the torso's z-axis (N,): 1 upright, -1 upside down."""
        return physics.field("xmat")[:, self._torso, 8]

    def torso_velocity(self, physics: BatchedPhysics) -> np.ndarray:
        """Return the torso's linear velocity in its own frame (N, 3), m/s."""
        return physics.field("sensordata")[:, self._velocimeter]

    def egocentric_state(self, physics: BatchedPhysics) -> np.ndarray:
        """Return hinge angles (rad), hinge speeds (rad/s) and actuator states (N, 44)."""
        return np.concatenate([physics.qpos[:, self._hinge_qpos],
                               physics.qvel[:, self._hinge_dofs], physics.act], axis=1)

    def toe_force_norms(self, physics: BatchedPhysics) -> np.ndarray:
        """Return the norm of each toe's force sensor (N, 4), N, in TOE_FORCE_SENSORS order."""
        forces = physics.field("sensordata")[:, self._toe_forces]
        return np.sqrt(np.square(forces.reshape(len(forces), -1, 3)).sum(axis=2))

    # -- task logic ----------------------------------------------------------------
    def _scratch_data(self, model: mujoco.MjModel) -> mujoco.MjData:
        if self._scratch is None or self._scratch[0] is not model:
            self._scratch = (model, mujoco.MjData(model))
        return self._scratch[1]

    def initialize_episode(self, physics: BatchedPhysics, ids: np.ndarray,
                           rngs: Sequence[np.random.Generator]) -> None:
        for env_id, rng in zip(ids, rngs):
            orientation = rng.standard_normal(4)
            orientation /= np.linalg.norm(orientation)
            model = physics.env_model(env_id)
            physics.qpos[env_id] = find_non_contacting_height(
                model, self._scratch_data(model), orientation)

    def observation(self, physics: BatchedPhysics) -> dict[str, np.ndarray]:
        sensordata = physics.field("sensordata")
        return {
            "egocentric_state": self.egocentric_state(physics),
            "torso_velocity": self.torso_velocity(physics),
            "torso_upright": self.torso_upright(physics).copy(),
            "imu": sensordata[:, self._imu],
            "force_torque": np.arcsinh(sensordata[:, self._force_torque]),
        }

    def reward(self, physics: BatchedPhysics) -> np.ndarray:
        # dm_control's reward is upright * move, two linear tolerances:
        #   upright = tolerance(z_up, bounds=(1, inf), margin=2, value_at_margin=0),
        #   move = tolerance(v_x, bounds=(speed, inf), margin=speed, value_at_margin=0.5).
        # A linear tolerance depends on its margin and value at margin only through
        # (1 - value_at_margin) / margin, so both are one call on distances shifted to the
        # bound and scaled (exactly, bit for bit) to margin 1 and value at margin 0.5.
        speed = self.task_kwargs["desired_speed"]
        shifted = np.stack([self.torso_upright(physics) - 1.0,
                            (self.torso_velocity(physics)[:, 0] - speed) / speed])
        upright, move = rewards.tolerance(shifted, bounds=(0.0, float("inf")), margin=1.0,
                                          value_at_margin=0.5, sigmoid="linear")
        return upright * move

    def safety_vars(self, physics: BatchedPhysics) -> SafetyVars:
        forces = self.toe_force_norms(physics)
        safety_vars = {
            "joint_pos": physics.qpos[:, self._hinge_qpos],
            "joint_vels": np.abs(physics.qvel[:, self._hinge_dofs]),
            "z_up": self.torso_upright(physics).copy(),
        }
        safety_vars.update({name: forces[:, k] for k, (name, _) in enumerate(TOE_FORCE_SENSORS)})
        safety_vars["actions"] = physics.ctrl.copy()
        return safety_vars
