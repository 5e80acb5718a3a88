"""Simulate PCC's image-based control tasks: the planar system and the inverted pendulum from pixels.

Levine, Chow, Shu, Li, Ghavamzadeh and Bui 2020, "Prediction, Consistency, Curvature:
Representation Learning for Locally-Linear Control" (ICLR; arXiv 1909.01506). The paper's body
could not be read (PAPERS.md, section 4); the simulators, goal regions and control settings
below are those of the unofficial VinAIResearch/PCC-pytorch@1127f83 (``mdp/*.py``,
``data/sample_*.py``, ``ilqr_config/*.json``; [C]), re-written here in numpy. Randomness comes only
from a seed (``numpy.random.Generator``); the code draws from the global generator.

Shapes: a planar state is (row, col) in pixel units (float), an observation (40, 40); a pendulum
state is (angle, angular velocity) in (rad, rad/s), angle 0 upright, an observation two frames
(2, 48, 48): the previous and the current one. Observations are float32 in {0, 1} (1 = white).
Batched functions take (..., state) and return (..., ...).

Planar system (``mdp/plane_obstacles_mdp.py``, ``data/sample_planar.py``):

* A 40 x 40 world, 6 obstacles at the code's centres, an agent of half-size 1.5 moved by
  ``u`` in [-3, 3]^2 (the code's ``max_step``): ``s' = clip(s + u, 1.5, 38.5)``, and the agent
  stays at s when s' is invalid. Valid: inside [1.5, 38.5]^2 and no obstacle CENTRE inside the
  agent's square ``[s - 1.5, s + 1.5]^2`` (the code's test; the obstacles' drawn radius plays
  no part, and only the end of a move is checked: a diagonal move may cut an obstacle's
  corner). No transition noise (the code's default 0).
* Rendering: obstacles where the code draws them (its PIL ellipse fills the 5 x 5 box about
  pixel (int(row), int(col)): here the pixels within 2.5 of that pixel, the same 21 pixels); the
  agent as the 3 x 3 pixels about ``floor(s + 0.5)`` (rwrl's choice, the agent's width 3; the
  code draws a 2 x 2 block ``[round(s) - 1, round(s) + 1)`` with ``rw_rendered = 1``).
* Training triples: the states cycle through every valid integer position in row-major order
  (as the code); each takes a random "valid" action, drawn uniformly in [-3, 3]^2 until both
  components are within 0.1 of an integer and ``s + u`` is valid (the code's rejection
  sampler, so the data hold no collisions); ``x' = render(s')``.
* Control: start uniform in [3, 7]^2, goal one of (37, 37), (37, 3), (3, 37) at random; in
  the goal region when within distance 2 of the goal; q = 10, r = 1, 40 steps, plans of 10.

Inverted pendulum (``mdp/pendulum_mdp.py``, ``mdp/pole_base.py``, ``data/sample_pole.py``):

* ``theta'' = (m g l sin(theta) - u) / (m l^2 / 3)`` with m = 0.1 kg, l = 0.5 m, g = 9.81 m/s^2
  (a rod about its end; torque u in N m), 50 steps per second. The code integrates one step
  with scipy's ``solve_ivp`` (RK45, adaptive); here 4 RK4 sub-steps of 5 ms (rwrl's choice:
  no scipy call per step; on 200 random states both are within 2e-7 of a tight-tolerance
  solution after one step). Then the angle is
  wrapped to [-pi, pi) and the velocity clipped to [-3 pi, 3 pi].
* Rendering: a 48 x 48 black frame, a white rod of width 4 pixels from the centre (24, 24)
  toward ``(24 + 22 sin(theta), 24 - 22 cos(theta))`` (x right, y down; length 48 / 2 - 2, as
  the code): pixels whose centre lies within 2 of that segment (rwrl's rasteriser, about 100
  pixels; the code's PIL line has about 90, and some 30 pixels differ, along the rod's edges
  and at its ends).
* Training triples (both pendulum tasks share them, and so share a model, as the code): s0
  uniform in [-pi, pi] x [-3 pi, 3 pi], actions uniform in [-1, 1] (the code samples with its
  default torque 1.0), s1 = step(s0, a0), s2 = step(s1, a1); x = (frame(s0), frame(s1)),
  u = a1, x' = (frame(s1), frame(s2)).
* Control: torque 0.65 (the executed action is clipped to [-0.65, 0.65]); "swing": start
  angle uniform in [0.9 pi, 0.95 pi] at rest, "balance": start at (0, 0); goal (0, 0); in the
  goal region when |theta| <= pi / 6; q = 50, r = 1, 100 steps, plans of 10. The first
  observation and the goal image repeat one frame (the code's ``get_x_data``).

Example (the planar agent moves, and stops at an obstacle)::

    >>> task = make_task("planar")
    >>> task.step(np.array([10.0, 10.0]), np.array([2.0, -1.0])).tolist()
    [12.0, 9.0]
    >>> task.step(np.array([17.0, 5.5]), np.array([3.0, 0.0])).tolist()   # centre (20.5, 5.5) inside
    [17.0, 5.5]
    >>> task.observe_still(np.array([10.0, 10.0])).shape
    (40, 40)
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import NamedTuple

import numpy as np

from rwrl.core.checks import count

# ----------------------------------------------------------------- planar constants
#: side of the planar world and of its image, pixels.
PLANAR_SIZE = 40
#: obstacle centres (row, col), pixel units (the code's ``obstacles``).
OBSTACLES = np.array([[20.5, 5.5], [20.5, 13.5], [20.5, 27.5], [20.5, 35.5], [10.5, 20.5], [30.5, 20.5]])
#: radius of an obstacle's drawn disc, pixels (the code's ``obstacles_r``; it is not used in collisions).
OBSTACLE_DRAW_RADIUS = 2.5
#: half the agent's width, pixels: its square is [s - 1.5, s + 1.5]^2.
HALF_AGENT = 1.5
#: largest move per step along each axis, pixels (the code's ``max_step``).
MAX_STEP = 3.0
#: how close to an integer each component of a training action is, pixels (the code's ``is_low_error``).
ACTION_GRID_TOLERANCE = 0.1
#: radius of the goal region about the goal position, pixels (``distance_thresh``).
PLANAR_GOAL_RADIUS = 2.0
#: the goal positions a planar task draws from (``ilqr_config/plane.json``).
PLANAR_GOALS = np.array([[37.0, 37.0], [37.0, 3.0], [3.0, 37.0]])
#: the box a planar start position is drawn in, pixels.
PLANAR_START = (3.0, 7.0)

# ----------------------------------------------------------------- pendulum constants
#: gravitational acceleration, m/s^2.
GRAVITY = 9.81
#: mass of the rod, kg.
POLE_MASS = 0.1
#: length of the rod, m (pivot at one end).
POLE_LENGTH = 0.5
#: control steps per second (the code's ``frequency``).
CONTROL_HZ = 50
#: RK4 sub-steps per control step.
SUBSTEPS = 4
#: the angular velocity is clipped to [-MAX_SPEED, MAX_SPEED], rad/s.
MAX_SPEED = 3 * np.pi
#: largest torque of the training data, N m (the code samples with its default torque 1.0).
DATA_TORQUE = 1.0
#: largest torque while controlling, N m (``ilqr_config/swing.json``, ``balance.json``).
CONTROL_TORQUE = 0.65
#: side of a pendulum frame, pixels.
FRAME_SIZE = 48
#: width of the drawn rod, pixels.
ROD_WIDTH = 4.0
#: in the goal region when |angle| <= this, rad.
PENDULUM_GOAL_ANGLE = np.pi / 6
#: the swing-up task's start angles, rad (``start_min``, ``start_max``: 0.9 pi and 0.95 pi).
SWING_START = (0.9 * np.pi, 0.95 * np.pi)


@dataclasses.dataclass(frozen=True)
class ControlSettings:
    """How a task is controlled and scored (PCC-pytorch's ``ilqr_config``)."""

    #: weight of the latent state cost, Q = q I (``q_weight``).
    q: float
    #: weight of the action cost, R = r I (``r_weight``).
    r: float
    #: steps per episode, the metric's denominator (``horizon_prob``).
    horizon: int
    #: actions per iLQR plan (``plan_len``).
    plan_len: int


class Triples(NamedTuple):
    """Training data: N transitions ``(x, u, x')`` and the true states behind them."""

    #: (N, *obs_shape) float32 images in {0, 1}.
    x: np.ndarray
    #: (N, m) float32 actions.
    u: np.ndarray
    #: (N, *obs_shape) float32 images after the action.
    x_next: np.ndarray
    #: (N, state) float64 true state behind the current frame of x.
    s: np.ndarray
    #: (N, state) float64 true state behind the current frame of x'.
    s_next: np.ndarray


# ----------------------------------------------------------------- planar system


def planar_valid(s: np.ndarray) -> np.ndarray:
    """Return whether each position (..., 2) is inside the world and holds no obstacle centre in its square."""
    s = np.asarray(s, np.float64)
    inside = np.all((s >= HALF_AGENT) & (s <= PLANAR_SIZE - HALF_AGENT), axis=-1)
    offset = np.abs(s[..., None, :] - OBSTACLES)                       # (..., 6, 2)
    hit = np.any(np.all(offset <= HALF_AGENT, axis=-1), axis=-1)
    return inside & ~hit


def planar_step(s: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Return the next position(s) (..., 2): move by clip(u, -3, 3) within the world, stay if it collides."""
    s = np.asarray(s, np.float64)
    u = np.clip(np.asarray(u, np.float64), -MAX_STEP, MAX_STEP)
    moved = np.clip(s + u, HALF_AGENT, PLANAR_SIZE - HALF_AGENT)
    return np.where(planar_valid(moved)[..., None], moved, s)


def _obstacle_image() -> np.ndarray:
    rows, cols = np.mgrid[:PLANAR_SIZE, :PLANAR_SIZE]
    image = np.zeros((PLANAR_SIZE, PLANAR_SIZE), np.float32)
    for row, col in np.floor(OBSTACLES):
        image[(rows - row) ** 2 + (cols - col) ** 2 <= OBSTACLE_DRAW_RADIUS ** 2] = 1.0
    return image


#: the obstacles alone, (40, 40).
OBSTACLE_IMAGE = _obstacle_image()
OBSTACLE_IMAGE.setflags(write=False)


def planar_render(s: np.ndarray) -> np.ndarray:
    """Return the image(s) (..., 40, 40) of the obstacles and the agent at s (..., 2)."""
    s = np.asarray(s, np.float64)
    centre = np.floor(s + 0.5).astype(int)                              # (..., 2)
    grid = np.arange(PLANAR_SIZE)
    on_row = np.abs(grid - centre[..., :1]) <= 1                        # (..., 40)
    on_col = np.abs(grid - centre[..., 1:]) <= 1
    agent = on_row[..., :, None] & on_col[..., None, :]
    return np.maximum(OBSTACLE_IMAGE, agent.astype(np.float32))


def planar_grid() -> np.ndarray:
    """Return every valid integer position (P, 2), row-major (the code's ``get_all_pos``)."""
    rows, cols = np.mgrid[:PLANAR_SIZE, :PLANAR_SIZE]
    positions = np.stack([rows.ravel(), cols.ravel()], axis=-1).astype(np.float64)
    return positions[planar_valid(positions)]


def planar_training_actions(s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return one action per position (N, 2), near-integer and keeping s + u valid, by rejection."""
    u = np.zeros_like(s)
    todo = np.arange(len(s))
    while todo.size:
        draw = rng.uniform(-MAX_STEP, MAX_STEP, size=(todo.size, 2))
        near = np.all(np.abs(draw - np.round(draw)) <= ACTION_GRID_TOLERANCE, axis=-1)
        ok = near & planar_valid(s[todo] + draw)
        u[todo[ok]] = draw[ok]
        todo = todo[~ok]
    return u


class Planar:
    """The planar system with 6 obstacles: move a point agent to a corner, from 40 x 40 binary images."""

    name = "planar"
    #: tasks with the same ``dataset`` share training data (and so a trained model).
    dataset = "planar"
    obs_shape = (PLANAR_SIZE, PLANAR_SIZE)
    action_low = np.full(2, -MAX_STEP)
    action_high = np.full(2, MAX_STEP)
    control = ControlSettings(q=10.0, r=1.0, horizon=40, plan_len=10)

    def sample_triples(self, n: int, seed: int) -> Triples:
        """Return n training transitions: every valid grid position in turn, a random valid action each."""
        count("n", n)
        grid = planar_grid()
        s = grid[np.arange(n) % len(grid)]
        u = planar_training_actions(s, np.random.default_rng(seed))
        s_next = planar_step(s, u)
        return Triples(planar_render(s), u.astype(np.float32), planar_render(s_next), s, s_next)

    def draw_episode(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Return a random (start, goal) pair of positions."""
        start = rng.uniform(*PLANAR_START, size=2)
        goal = PLANAR_GOALS[rng.integers(len(PLANAR_GOALS))].copy()
        return start, goal

    def step(self, s: np.ndarray, u: np.ndarray) -> np.ndarray:
        return planar_step(s, u)

    def observe(self, s_prev: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Return the observation after moving from s_prev to s: the image of s."""
        return planar_render(s)

    def observe_still(self, s: np.ndarray) -> np.ndarray:
        """Return the observation of the agent resting at s (a start or a goal image)."""
        return planar_render(s)

    def in_goal(self, s: np.ndarray, goal: np.ndarray) -> bool:
        return bool(np.linalg.norm(np.asarray(s) - goal) <= PLANAR_GOAL_RADIUS)


# ----------------------------------------------------------------- inverted pendulum


def pendulum_acceleration(angle: np.ndarray, torque: np.ndarray) -> np.ndarray:
    """Return the angular acceleration (rad/s^2) of the rod at ``angle`` (0 upright) under ``torque`` (N m)."""
    inertia = POLE_MASS * POLE_LENGTH ** 2 / 3.0
    return (POLE_MASS * GRAVITY * POLE_LENGTH * np.sin(angle) - torque) / inertia


def wrap_angle(theta: np.ndarray) -> np.ndarray:
    """Return the angle(s) wrapped to [-pi, pi)."""
    return np.mod(np.asarray(theta, np.float64) + np.pi, 2 * np.pi) - np.pi


def pendulum_step(s: np.ndarray, u: np.ndarray, torque_limit: float) -> np.ndarray:
    """Return the state(s) (..., 2) one control step after s under the torque u clipped to the limit."""
    s = np.asarray(s, np.float64)
    u = np.clip(np.asarray(u, np.float64).reshape(s.shape[:-1]), -torque_limit, torque_limit)

    def derivative(state):
        return np.stack([state[..., 1], pendulum_acceleration(state[..., 0], u)], axis=-1)

    h = 1.0 / (CONTROL_HZ * SUBSTEPS)
    for _ in range(SUBSTEPS):
        k1 = derivative(s)
        k2 = derivative(s + 0.5 * h * k1)
        k3 = derivative(s + 0.5 * h * k2)
        k4 = derivative(s + h * k3)
        s = s + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    return np.stack([wrap_angle(s[..., 0]), np.clip(s[..., 1], -MAX_SPEED, MAX_SPEED)], axis=-1)


def pendulum_frame(angle: np.ndarray) -> np.ndarray:
    """Return the frame(s) (..., 48, 48) of the rod at ``angle`` (...,)."""
    angle = np.asarray(angle, np.float64)[..., None, None]
    centre = FRAME_SIZE / 2.0
    length = FRAME_SIZE / 2.0 - 2.0
    ys, xs = np.mgrid[:FRAME_SIZE, :FRAME_SIZE].astype(np.float64)
    dx, dy = np.sin(angle) * length, -np.cos(angle) * length              # segment direction, pixels
    along = np.clip(((xs - centre) * dx + (ys - centre) * dy) / length ** 2, 0.0, 1.0)
    distance_sq = (xs - centre - along * dx) ** 2 + (ys - centre - along * dy) ** 2
    return (distance_sq <= (ROD_WIDTH / 2.0) ** 2).astype(np.float32)


class Pendulum:
    """The inverted pendulum from two stacked 48 x 48 frames: swing it up ("swing") or keep it up ("balance")."""

    dataset = "pendulum"
    obs_shape = (2, FRAME_SIZE, FRAME_SIZE)
    action_low = np.full(1, -CONTROL_TORQUE)
    action_high = np.full(1, CONTROL_TORQUE)
    control = ControlSettings(q=50.0, r=1.0, horizon=100, plan_len=10)

    def __init__(self, task: str = "swing"):
        if task not in ("swing", "balance"):
            raise ValueError(f"task = {task!r} is not allowed: 'swing' or 'balance'")
        self.name = task

    def sample_triples(self, n: int, seed: int) -> Triples:
        """Return n training transitions from random states and actions (torque up to 1 N m)."""
        count("n", n)
        rng = np.random.default_rng(seed)
        s0 = np.stack([rng.uniform(-np.pi, np.pi, n), rng.uniform(-MAX_SPEED, MAX_SPEED, n)], axis=-1)
        a0, a1 = rng.uniform(-DATA_TORQUE, DATA_TORQUE, size=(2, n, 1))
        s1 = pendulum_step(s0, a0, DATA_TORQUE)
        s2 = pendulum_step(s1, a1, DATA_TORQUE)
        f0, f1, f2 = (pendulum_frame(s[:, 0]) for s in (s0, s1, s2))
        return Triples(np.stack([f0, f1], axis=1), a1.astype(np.float32), np.stack([f1, f2], axis=1), s1, s2)

    def draw_episode(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Return a (start, goal) pair of states; the goal is upright at rest."""
        angle = rng.uniform(*SWING_START) if self.name == "swing" else 0.0
        return np.array([angle, 0.0]), np.zeros(2)

    def step(self, s: np.ndarray, u: np.ndarray) -> np.ndarray:
        return pendulum_step(s, u, CONTROL_TORQUE)

    def observe(self, s_prev: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Return the observation after moving from s_prev to s: their two frames, (2, 48, 48)."""
        return np.stack([pendulum_frame(s_prev[0]), pendulum_frame(s[0])])

    def observe_still(self, s: np.ndarray) -> np.ndarray:
        """Return the frame of s twice (a start or a goal image), (2, 48, 48)."""
        frame = pendulum_frame(s[0])
        return np.stack([frame, frame])

    def in_goal(self, s: np.ndarray, goal: np.ndarray) -> bool:
        return bool(abs(s[0]) <= PENDULUM_GOAL_ANGLE)


#: the tasks, by name (a new task: one class with the same members, and one line here).
TASKS = {"planar": Planar, "swing": lambda: Pendulum("swing"), "balance": lambda: Pendulum("balance"),
         "cartpole": lambda: importlib.import_module("rwrl.planning.pcc_cartpole").Cartpole()}


def make_task(name: str) -> Planar | Pendulum:
    """Return the task called ``name`` (one of ``TASKS``)."""
    if name not in TASKS:
        raise ValueError(f"task = {name!r} is not allowed: one of {sorted(TASKS)}")
    return TASKS[name]()


__all__ = ["ControlSettings", "Triples", "Planar", "Pendulum", "TASKS", "make_task", "planar_valid",
           "planar_step", "planar_render", "planar_grid", "planar_training_actions", "pendulum_step", "wrap_angle",
           "pendulum_frame", "pendulum_acceleration", "OBSTACLES", "OBSTACLE_IMAGE"]
