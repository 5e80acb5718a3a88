"""PCC's cartpole balance task from pixels, on rwrl's own cartpole (physics and MuJoCo rendering).

Levine, Chow, Shu, Li, Ghavamzadeh and Bui 2020, "Prediction, Consistency, Curvature" (ICLR;
arXiv 1909.01506), cartpole task. The task's settings are those of the unofficial
VinAIResearch/PCC-pytorch@1127f83 ([C]: ``mdp/cartpole_mdp.py``, ``mdp/pole_base.py``,
``data/sample_pole.py``, ``datasets.py``, ``ilqr_config/cartpole.json``, ``ilqr_utils.py``); the
physics and the images are rwrl's ``cartpole`` domain (dm_control's model, ``rwrl.domains.cartpole``)
stepped by rwrl's batched engine (``rwrl.tasks.task.BatchedTask``) and drawn by rwrl's offscreen
renderer (``rwrl.envs.render.BatchRenderer``; it needs ``MUJOCO_GL=egl`` or ``osmesa``). Randomness
comes only from a seed (``numpy.random.Generator``).

Shapes: a state is (x, theta, x_dot, theta_dot): the cart's slider position (m), the pole's hinge
angle (rad, 0 upright, positive leaning toward +x: right in the image), and their velocities, i.e.
rwrl's ``qpos`` then ``qvel`` (the reference orders them (theta, theta_dot, x, x_dot)). An action is
the cart's force in N, (1,), in [-10, 10]. An observation is two 80 x 80 frames (2, 80, 80): the
previous and the current one, float32 grayscale in [0, 1] (luma 0.299 R + 0.587 G + 0.114 B of the
RGB frame, / 255; NOT binarised: the reference draws white shapes on black, {0, 1} images, but
rwrl's frames hold the skybox, floor and rails, which no threshold separates cleanly from the
cart and pole; PCC's Bernoulli decoder then scores grey targets by their cross-entropy).

Where this differs from the reference's own simulator, and why:

* Physics: rwrl's cartpole (dm_control's ``cartpole.xml``: cart 1 kg, a capsule pole 1 m long of
  0.1 kg pivoting at its end, MuJoCo's RK4 at 10 ms, joint damping 2e-6 N m s/rad at the hinge and
  5e-4 N s/m at the slider, the slider limited to +-1.8 m by a soft constraint). The reference's
  equations (Barto's cartpole) use the same masses and a pole of half-length 0.5 m, g = 9.81,
  no damping and no rail ends. Kept rwrl's: the task asks for rwrl's physics.
* Action scaling: u is the force in N, as the reference's (``action_range`` [-10, 10]); rwrl's
  action is ``ctrl = u / 10`` in [-1, 1] (the model's motor has gear 10), so the forces agree and
  the reference's cost weights (q = 100 on z, r = 1 on u) keep their meaning. u is clipped to
  [-10, 10] before it is applied, as the reference clips it.
* Time step: one PCC step is 20 ms (the reference's ``frequency`` 50), i.e. 2 of rwrl's 10 ms
  control steps with the same action held (rwrl's cartpole acts every 10 ms: ``CONTROL_TIMESTEP``).
* Projection after a step: the angle is wrapped to [-pi, pi) (as the reference); the velocities are
  NOT clipped (the reference clips theta_dot to +-2 pi and x_dot to +-6 after each step): rwrl's
  physics is left as it is.
* Each step starts from (x, theta, x_dot, theta_dot) alone: the env is reset (zero warm start,
  zero time) and set to that state, so that a step is a function of (s, u) only.
* Camera and images: rwrl's ``fixed`` camera (camera 0, the domain's pixel camera: 4 m in front of
  the rail, looking along +y) at 80 x 80, in place of the reference's 2-D drawing (a 16 x 8 pixel
  cart whose centre maps x in +-2.4 m to the image, a 52 pixel pole 6 wide). This camera draws the
  cart plane at 25 pixels per m (the cart 10 pixels wide, the pole some 25 long), so the whole
  cart is in view for |x| <= 1.4 m (measured: at x = 1.4 its last column is the image's last).
* Shadows and reflections are switched off in the model the renderer draws (every light's
  ``castshadow`` and every material's ``reflectance`` set to 0; physics untouched): llvmpipe draws
  dm_control's 2048-texel shadow map and the floor's reflection at any image size, and without
  them an 80 x 80 frame took 2 ms instead of 19 ms here (16 frames, 2 loaded cores), the 15,000
  frames of 5,000 triples some 30 s instead of 5 min. They add nothing the state does not show.
* Training states: theta uniform in [-pi/10, pi/10] (the reference's ``angle_samp_range =
  2 * goal_range`` is a Python list repeated, so its first two entries, the goal range, are the
  bounds), theta_dot uniform in [-2 pi, 2 pi], x_dot uniform in [-6, 6] m/s (the reference's
  ranges), and x uniform in [-1.4, 1.4] m (the reference's [-2.4, 2.4] is the width its image
  shows the whole cart in; here the same for rwrl's camera, inside the rail's 1.8 m). As in the
  reference, a fast cart near the edge may leave the image by s2 (6 m/s moves it 0.24 m).

Training triples (``data/sample_pole.py``): s0 random as above, a0, a1 uniform in [-10, 10] N,
s1 = step(s0, a0), s2 = step(s1, a1); x = (frame(s0), frame(s1)), u = a1,
x' = (frame(s1), frame(s2)).

Control (``ilqr_config/cartpole.json``): start (0, theta0, 0, 0) with theta0 uniform in
[-pi/8, pi/8], goal (0, 0, 0, 0); q = 100, r = 1, 50 steps, plans of 5 actions; the start and
goal observations repeat one frame (``ilqr_utils.get_x_data``). In the goal region when
|theta| <= pi/10 (``CartPoleMDP.goal_range``, ``PoleBase.is_goal``).

Example (needs offscreen rendering)::

    >>> task = Cartpole()
    >>> task.observe_still(np.zeros(4)).shape
    (2, 80, 80)
    >>> task.in_goal(np.array([0.0, 0.3, 0.0, 0.0]), np.zeros(4))
    True
"""

from __future__ import annotations

import copy

import mujoco
import numpy as np

from rwrl.core.checks import count
from rwrl.envs.render import BatchRenderer
from rwrl.planning.pcc_tasks import ControlSettings, Triples, wrap_angle
from rwrl.tasks.task import BatchedTask

#: side of a frame, pixels.
FRAME_SIZE = 80
#: largest force on the cart, N (the reference's ``action_range``).
MAX_FORCE = 10.0
#: N of force per unit of rwrl's action (the motor's gear in ``cartpole.xml``).
GEAR = 10.0
#: rwrl control steps (10 ms each) per PCC step (the reference's 50 Hz).
SUBSTEPS = 2
#: in the goal region when |theta| <= this, rad.
GOAL_ANGLE = np.pi / 10
#: the start angle of a control episode is uniform in +-this, rad (``start_min``, ``start_max``).
START_ANGLE = np.pi / 8
#: half-ranges of the training states: x (m), theta (rad), x_dot (m/s), theta_dot (rad/s).
SAMPLE_RANGE = np.array([1.4, np.pi / 10, 6.0, 2 * np.pi])
#: the camera of the frames (rwrl's cartpole ``PIXELS_CAMERA``: "fixed").
CAMERA = 0
#: envs stepped and rendered together when sampling.
CHUNK = 256
#: the luma weights of R, G and B.
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


class _PlainScene:
    """A ``BatchRenderer`` source: the task's envs, drawn without shadows or reflections."""

    def __init__(self, task: BatchedTask):
        self.task = task
        self.num_envs = task.num_envs
        self._models: dict[int, mujoco.MjModel] = {}

    def render_model(self, env_id: int) -> mujoco.MjModel:
        model = self.task.render_model(env_id)
        plain = self._models.get(id(model))
        if plain is None:
            plain = copy.copy(model)
            plain.light_castshadow[:] = 0
            plain.mat_reflectance[:] = 0.0
            self._models[id(model)] = plain
        return plain

    def copy_env_data(self, env_id: int, data: mujoco.MjData) -> None:
        self.task.copy_env_data(env_id, data)


class CartpoleSim:
    """``num_envs`` of rwrl's cartpole and a renderer of them: steps and frames of given states."""

    def __init__(self, num_envs: int):
        self.task = BatchedTask("cartpole", "balance", num_envs)
        self.num_envs = num_envs
        self.renderer = BatchRenderer(_PlainScene(self.task), FRAME_SIZE, FRAME_SIZE, CAMERA)

    def _set(self, s: np.ndarray) -> np.ndarray:
        ids = np.arange(len(s))
        self.task.physics.reset(ids)
        self.task.physics.set_state(ids, s[:, :2], s[:, 2:])
        return ids

    def step(self, s: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Return the states (n, 4) one PCC step (20 ms) after s (n, 4) under forces u (n, 1) N."""
        ids = self._set(s)
        ctrl = np.zeros((self.num_envs, 1))
        ctrl[ids] = np.clip(np.asarray(u, np.float64).reshape(len(s), 1), -MAX_FORCE, MAX_FORCE) / GEAR
        for _ in range(SUBSTEPS):
            self.task.physics.step(ctrl)
        physics = self.task.physics
        out = np.concatenate([physics.qpos[ids], physics.qvel[ids]], axis=1)
        out[:, 1] = wrap_angle(out[:, 1])
        return out

    def frames(self, s: np.ndarray) -> np.ndarray:
        """Return the grayscale frames (n, 80, 80) float32 in [0, 1] of states s (n, 4)."""
        ids = self._set(s)
        rgb = self.renderer.render(ids)
        return (rgb.astype(np.float32) @ LUMA) / np.float32(255.0)


def _chunked(fn, *arrays: np.ndarray, size: int) -> np.ndarray:
    """Return fn applied to consecutive chunks of ``size`` rows of the arrays, concatenated."""
    return np.concatenate([fn(*(a[i:i + size] for a in arrays)) for i in range(0, len(arrays[0]), size)])


class Cartpole:
    """Balance rwrl's cartpole from two stacked 80 x 80 grayscale frames (see the module docstring)."""

    name = "cartpole"
    dataset = "cartpole"
    obs_shape = (2, FRAME_SIZE, FRAME_SIZE)
    action_low = np.full(1, -MAX_FORCE)
    action_high = np.full(1, MAX_FORCE)
    control = ControlSettings(q=100.0, r=1.0, horizon=50, plan_len=5)

    def __init__(self):
        self._sims: dict[int, CartpoleSim] = {}

    def _sim(self, num_envs: int) -> CartpoleSim:
        if num_envs not in self._sims:
            self._sims[num_envs] = CartpoleSim(num_envs)
        return self._sims[num_envs]

    def _batched(self, method: str, *arrays: np.ndarray) -> np.ndarray:
        """Return ``CartpoleSim.<method>`` of the rows of ``arrays``, CHUNK envs at a time (one for one row)."""
        sim = self._sim(1 if len(arrays[0]) == 1 else CHUNK)
        return _chunked(getattr(sim, method), *arrays, size=sim.num_envs)

    def _step(self, s: np.ndarray, u: np.ndarray) -> np.ndarray:
        return self._batched("step", s, u)

    def _frames(self, s: np.ndarray) -> np.ndarray:
        return self._batched("frames", s)

    def sample_triples(self, n: int, seed: int) -> Triples:
        """Return n training transitions from random states and forces (see the module docstring)."""
        count("n", n)
        rng = np.random.default_rng(seed)
        s0 = rng.uniform(-SAMPLE_RANGE, SAMPLE_RANGE, size=(n, 4))
        a0, a1 = rng.uniform(-MAX_FORCE, MAX_FORCE, size=(2, n, 1))
        s1 = self._step(s0, a0)
        s2 = self._step(s1, a1)
        f0, f1, f2 = (self._frames(s) for s in (s0, s1, s2))
        return Triples(np.stack([f0, f1], axis=1), a1.astype(np.float32), np.stack([f1, f2], axis=1), s1, s2)

    def draw_episode(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Return a (start, goal) pair of states: the pole within pi/8 of upright, at rest; the goal upright."""
        return np.array([0.0, rng.uniform(-START_ANGLE, START_ANGLE), 0.0, 0.0]), np.zeros(4)

    def step(self, s: np.ndarray, u: np.ndarray) -> np.ndarray:
        s = np.asarray(s, np.float64)
        return self._step(s.reshape(-1, 4), np.asarray(u, np.float64).reshape(-1, 1)).reshape(s.shape)

    def frame(self, s: np.ndarray) -> np.ndarray:
        """Return the frame(s) (..., 80, 80) of state(s) s (..., 4)."""
        s = np.asarray(s, np.float64)
        return self._frames(s.reshape(-1, 4)).reshape(*s.shape[:-1], FRAME_SIZE, FRAME_SIZE)

    def observe(self, s_prev: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Return the observation after moving from s_prev to s: their two frames, (2, 80, 80)."""
        return self.frame(np.stack([s_prev, s]))

    def observe_still(self, s: np.ndarray) -> np.ndarray:
        """Return the frame of s twice (a start or a goal image), (2, 80, 80)."""
        frame = self.frame(s)
        return np.stack([frame, frame])

    def in_goal(self, s: np.ndarray, goal: np.ndarray) -> bool:
        return bool(abs(wrap_angle(s[1])) <= GOAL_ANGLE)


__all__ = ["Cartpole", "CartpoleSim", "FRAME_SIZE", "MAX_FORCE", "GOAL_ANGLE", "SAMPLE_RANGE"]
