"""Offscreen rendering of one env of a batch (MUJOCO_GL=egl or osmesa)."""

from __future__ import annotations

import mujoco
import numpy as np


class EnvRenderer:
    """Render env i of a ``PhysicsEnv`` with its own (perturbed, textured) model."""

    def __init__(self, batched, width: int = 320, height: int = 240, camera: int | str = 0):
        self.batched = batched
        self.width, self.height, self.camera = width, height, camera
        self._renderer: mujoco.Renderer | None = None
        self._model: mujoco.MjModel | None = None
        self._data: mujoco.MjData | None = None

    def render(self, env_id: int = 0) -> np.ndarray:
        """Return an (height, width, 3) uint8 image of env ``env_id``."""
        model = self.batched.render_model(env_id)
        if model is not self._model:
            self.close()
            self._model = model
            self._renderer = mujoco.Renderer(model, self.height, self.width)
            self._data = mujoco.MjData(model)
        self.batched.copy_env_data(env_id, self._data)
        mujoco.mj_forward(self._model, self._data)
        self._renderer.update_scene(self._data, camera=self.camera)
        return self._renderer.render().copy()

    def close(self) -> None:
        """Free the GL context."""
        if self._renderer is not None:
            self._renderer.close()
        self._renderer = self._model = self._data = None
