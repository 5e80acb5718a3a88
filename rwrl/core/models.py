"""Compiled models of a domain at given physical parameter values.

The nominal model is compiled from dm_control's XML exactly as dm_control
compiles it (textures included, for rendering and parity). Perturbed models
are compiled from an ``mujoco.MjSpec`` of the same XML with its textures
removed: the compiler then takes about 0.5 ms instead of about 60 ms, and it
recomputes everything that depends on an edited value (masses, inertias, body
frames), so a perturbed model equals one compiled from an edited XML.
"""

from __future__ import annotations

import collections
from typing import Callable, Mapping

import mujoco

#: An edit of one physical parameter: (spec, value) -> None, in place.
SpecEdit = Callable[[mujoco.MjSpec, float], None]


def strip_textures(spec: mujoco.MjSpec) -> None:
    """Remove every texture (and the materials' references to them) from a spec."""
    for material in spec.materials:
        material.textures = [""] * len(material.textures)
    for texture in list(spec.textures):
        spec.delete(texture)


class ModelFactory:
    """Compile a domain's model at parameter values, caching recent results.

    Args:
      xml: the model XML (dm_control's).
      assets: the XML's include files, name -> bytes.
      edits: parameter name -> the spec edit that sets it.
      cache_size: how many perturbed models to keep (a perturbation at every
        reset often revisits values only under ``constant`` schedules).
    """

    def __init__(self, xml: str, assets: Mapping[str, bytes],
                 edits: Mapping[str, SpecEdit], cache_size: int = 64):
        self.xml = xml
        self.assets = dict(assets)
        self.edits = dict(edits)
        self.nominal = mujoco.MjModel.from_xml_string(xml, self.assets)
        self._spec = mujoco.MjSpec.from_string(xml, self.assets)
        strip_textures(self._spec)
        self._cache: collections.OrderedDict = collections.OrderedDict()
        self._cache_size = cache_size

    def _edited_spec(self, values: Mapping[str, float], textured: bool) -> mujoco.MjSpec:
        if textured:
            spec = mujoco.MjSpec.from_string(self.xml, self.assets)
        else:
            spec = self._spec.copy()
        for name, value in sorted(values.items()):
            self.edits[name](spec, float(value))
        return spec

    def _cached(self, values: Mapping[str, float], textured: bool) -> mujoco.MjModel:
        key = (textured, tuple(sorted((k, float(v)) for k, v in values.items())))
        model = self._cache.get(key)
        if model is None:
            model = self._edited_spec(values, textured).compile()
            self._cache[key] = model
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return model

    def compile(self, values: Mapping[str, float]) -> mujoco.MjModel:
        """Return a texture-free model with ``values`` (name -> value) applied."""
        return self._cached(values, textured=False)

    def compile_textured(self, values: Mapping[str, float]) -> mujoco.MjModel:
        """Return a model with textures and ``values`` applied (for rendering).

        Cached like ``compile``, so that rendering every frame of a perturbed
        env compiles (about 60 ms) once per value, not once per frame.
        """
        if not values:
            return self.nominal
        return self._cached(values, textured=True)
