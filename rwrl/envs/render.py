"""Offscreen rendering of the envs of a batch (MUJOCO_GL=egl or osmesa).

``BatchRenderer`` renders any envs of a ``PhysicsEnv`` with one GL context,
one ``MjrContext`` (the textures and meshes, uploaded once), one scene and
one ``MjData``, reused for every env and every step: per env it copies the
env's data out of the batch, updates the scene from it with the env's own
(perturbed, textured) model and renders. MuJoCo has no call that updates or
renders the scenes of a batch at once, so that loop of three C calls per
env is as batched as rendering gets; one context per batch spares the
context switches and texture uploads of one ``mujoco.Renderer`` per env.

Measured (benchmarks/pixels.py --tiled; Mesa llvmpipe, 2 loaded cores,
84 x 84, N = 16): drawing is nearly all of the cost, 20 to 35 ms a frame
(dm_control's models draw a 2048-texel shadow map and the floor's
reflection at any image size; without both, about 5 ms); copying an env's
data and updating the scene take tens of microseconds. Drawing the N envs
into tiles of one framebuffer and reading it back once ranged from 18 %
faster to 20 % slower than reading each frame back, within the noise of the
machine, and its pixels differ by up to a few intensity levels with the
tile's position (4x multisampling), which would break "env i of a vector env
renders as the single env of its seed": every env is drawn at the
framebuffer's origin. On a GPU, where the read-back wait would weigh more,
tiling remains to be measured.

Frames equal dm_control's ``physics.render(height, width, camera_id)`` of
the same state: the same model, scene options and offscreen buffer.

Example:
  >>> from rwrl.tasks.task import BatchedTask
  >>> task = BatchedTask("cartpole", "swingup", 2)
  >>> _ = task.reset(np.arange(2), [0, 1])
  >>> renderer = BatchRenderer(task, width=32, height=24, camera=0)
  >>> renderer.render().shape, renderer.render(np.array([1])).dtype
  ((2, 24, 32, 3), dtype('uint8'))
  >>> renderer.close()
"""

from __future__ import annotations

import atexit
import numbers
import os
import weakref

import mujoco
import numpy as np

#: scene categories drawn (everything, as dm_control and ``mujoco.Renderer`` draw).
_CATEGORIES = mujoco.mjtCatBit.mjCAT_ALL.value
#: the argument names of the pixel observations' width, height and camera.
PIXELS_NAMES = ("pixels_width", "pixels_height", "pixels_camera")
#: the model sizes a render model must share with the nominal one to use its GL context.
_ASSET_COUNTS = ("ntex", "nmat", "nmesh", "nhfield", "nskin", "nflex")


#: renderers holding a GL context, closed at exit while the GL display still exists.
_OPEN: "weakref.WeakSet[BatchRenderer]" = weakref.WeakSet()
_EXIT_HOOK: list[bool] = []


def _close_open_renderers() -> None:
    for renderer in list(_OPEN):
        renderer.close()


def _close_at_exit(renderer: "BatchRenderer") -> None:
    """Close ``renderer`` at exit, before the GL backend's own exit hook (EGL's eglTerminate).

    Exit hooks run last-registered first, and the backend registers its hook
    when its module is imported, before the first context: freeing a context
    after it would print an EGL error for every env not closed.
    """
    _OPEN.add(renderer)
    if not _EXIT_HOOK:
        atexit.register(_close_open_renderers)
        _EXIT_HOOK.append(True)


def _check_size(field: str, value, limit: int, buffer: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) \
            or not 1 <= value <= limit:
        raise ValueError(f"{field} = {value!r} is not allowed: give an integer in [1, {limit}] "
                         f"(the model's offscreen buffer is {buffer})")
    return int(value)


def camera_id(model: mujoco.MjModel, camera, field: str = "camera") -> int:
    """Return the id of ``camera`` (an id in [-1, ncam), -1 the free camera, or a name).

    Raises a ValueError naming the value and the model's cameras.
    """
    names = [model.camera(i).name for i in range(model.ncam)]
    allowed = f"an id in [-1, {model.ncam}) (-1: the free camera) or one of {names}"
    if isinstance(camera, str):
        if camera not in names:
            raise ValueError(f"{field} {camera!r} is not a camera of the model: give {allowed}")
        return names.index(camera)
    if isinstance(camera, (bool, np.bool_)) or not isinstance(camera, numbers.Integral) \
            or not -1 <= camera < model.ncam:
        raise ValueError(f"{field} = {camera!r} is not allowed: give {allowed}")
    return int(camera)


def _gl_error(err: BaseException) -> ValueError:
    """Return the one-line error of a failed GL context, naming MUJOCO_GL and the fix."""
    backend = os.environ.get("MUJOCO_GL", "")
    reason = (str(err).strip().splitlines() or [""])[0]
    return ValueError(f"offscreen rendering is unavailable with MUJOCO_GL={backend!r} "
                      f"({type(err).__name__}: {reason}): set MUJOCO_GL=egl (GPU or Mesa) or "
                      "osmesa (software) before Python starts")


class BatchRenderer:
    """Render envs of a ``PhysicsEnv`` offscreen; see the module docstring.

    Args:
      batched: a ``PhysicsEnv`` (``render_model``, ``copy_env_data``).
      width, height: image size in pixels, each in [1, the model's offscreen
        buffer] (``visual/global offwidth, offheight``: 640 x 480 in every
        domain of the suite).
      camera: a camera id in [-1, ncam) (-1: MuJoCo's free camera) or a name.
      names: the argument names of width, height and camera that the errors
        give (``render_mode``'s by default; the pixel observations' are
        ``PIXELS_NAMES``).

    The GL context is made on the first ``render`` (or ``open``); a failure
    to make one raises a ValueError naming MUJOCO_GL and the fix.
    """

    def __init__(self, batched, width: int, height: int, camera: int | str = 0,
                 names: tuple[str, str, str] = ("render_width", "render_height", "camera")):
        self.batched = batched
        nominal = batched.render_model(0)
        gl = nominal.vis.global_
        buffer = f"{gl.offwidth} x {gl.offheight}"
        self.width = _check_size(names[0], width, gl.offwidth, buffer)
        self.height = _check_size(names[1], height, gl.offheight, buffer)
        self.camera = camera_id(nominal, camera, names[2])
        self._nominal = nominal
        self._checked: set[int] = {id(nominal)}
        self._gl = self._context = self._scene = self._data = None
        self._mjv_camera = self._option = None

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        """(height, width, 3): the shape of one frame."""
        return self.height, self.width, 3

    def open(self) -> None:
        """Make the GL context now (a ValueError naming MUJOCO_GL if none can be made)."""
        if self._context is not None:
            return
        model = self._nominal
        try:
            from mujoco.rendering.classic import gl_context
            self._gl = gl_context.GLContext(model.vis.global_.offwidth,
                                            model.vis.global_.offheight)
            self._gl.make_current()
            self._context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150.value)
        except Exception as err:  # noqa: BLE001  (each GL backend fails in its own way)
            self.close()
            raise _gl_error(err) from None
        _close_at_exit(self)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN.value, self._context)
        self._scene = mujoco.MjvScene(model, maxgeom=10_000)
        self._option = mujoco.MjvOption()
        self._data = mujoco.MjData(model)
        self._mjv_camera = mujoco.MjvCamera()
        if self.camera == -1:
            mujoco.mjv_defaultFreeCamera(model, self._mjv_camera)
        else:
            self._mjv_camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
            self._mjv_camera.fixedcamid = self.camera

    def render(self, ids: np.ndarray | None = None) -> np.ndarray:
        """Return the (n, height, width, 3) uint8 frames of envs ``ids`` (None: every env)."""
        self.open()
        ids = np.arange(self.batched.num_envs) if ids is None else np.asarray(ids, np.int64)
        out = np.empty((len(ids), self.height, self.width, 3), np.uint8)
        rect = mujoco.MjrRect(0, 0, self.width, self.height)
        self._gl.make_current()
        for k, env_id in enumerate(ids):
            model = self._model(int(env_id))
            # the batch keeps each env's derived fields (positions, frames) current
            # after every step, reset and set_state: no mj_forward is needed
            self.batched.copy_env_data(int(env_id), self._data)
            mujoco.mjv_updateScene(model, self._data, self._option, None, self._mjv_camera,
                                   _CATEGORIES, self._scene)
            mujoco.mjr_render(rect, self._scene, self._context)
            mujoco.mjr_readPixels(out[k], None, rect, self._context)
        return np.ascontiguousarray(out[:, ::-1])  # GL rows run bottom-up

    def _model(self, env_id: int) -> mujoco.MjModel:
        """Return env ``env_id``'s render model, checked once to share the nominal's assets."""
        model = self.batched.render_model(env_id)
        if id(model) not in self._checked:
            # a perturbation edits sizes, masses, damping or friction: the textures,
            # materials and meshes uploaded to the GL context stay those of the nominal model
            for count in _ASSET_COUNTS:
                if getattr(model, count) != getattr(self._nominal, count):
                    raise ValueError(f"env {env_id}'s render model has {count} = "
                                     f"{getattr(model, count)}, the nominal one "
                                     f"{getattr(self._nominal, count)}: one GL context cannot "
                                     "render both")
            self._checked.add(id(model))
        return model

    def close(self) -> None:
        """Free the GL context (rendering again makes a new one)."""
        if self._context is not None:
            self._context.free()
        if self._gl is not None:
            self._gl.free()
        self._gl = self._context = self._scene = self._data = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001  (at interpreter exit GL may be gone already)
            pass
