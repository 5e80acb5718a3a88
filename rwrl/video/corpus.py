"""The video corpus of the rate-control family: clips made by a command, cached, no downloads.

Two sources of clips:

* procedural (this module): frames computed from formulas, deterministic from a
  seed. Each kind stresses one thing a rate controller must handle:

  - ``pan``: a smooth texture (a sum of gratings, strongest at low frequencies,
    as in natural images) translating at 0.5 to 4 pixels per frame: global
    motion that motion compensation predicts well; spatial detail varies by clip.
  - ``zoom``: the same kind of texture zooming in or out by 1.3x to 2x: motion
    that a translational motion model predicts only in part.
  - ``noise``: a slowly panning texture with Gaussian noise of standard deviation
    ``sigma`` (2, 8 or 24 levels) drawn afresh every frame: high spatial and
    temporal frequency that no prediction removes, so bits grow with ``sigma``.
  - ``shapes``: discs and rotating striped boxes crossing a smooth background:
    local motion, sharp edges, occlusions, uncovered background.
  - ``shake``: a static scene with hand-held camera jitter (a few pixels and a
    fraction of a degree): small, erratic global motion.
  - ``cut``: one kind, then at a frame between a third and two thirds of the
    clip another kind of unrelated content: a scene cut, where prediction fails
    and an intra frame costs many bits.

* rendered (``rwrl.datasets.video_clips``, a floor above: this room may not
  import the MuJoCo tasks): the suite's tasks filmed from their cameras, given
  to ``build_corpus`` as its ``rendered`` argument.

What such a corpus cannot tell about real video: it has no camera noise with a
real sensor's spectrum and signal dependence, no film grain, no compression
artefacts of an earlier encode, no natural textures (foliage, water, faces,
text), and its motion is linear, affine or simulated, not the statistics of
real scenes and hand-held cameras (motion blur, rolling shutter, lighting
changes). A rate controller tuned here should be checked on real sequences
(e.g. the Xiph test media, which are y4m files ``rwrl.video.y4m`` reads).

Sizes are QCIF (176x144) at 30 frames per second by default. Content is
defined in units of QCIF pixels, so one seed gives the same scene at any frame
size; motion is in those units per frame.

Files: ``build_corpus(root)`` writes ``root/clips/<name>.y4m`` and
``root/manifest.json`` (fields in ``build_corpus``). Building twice with one
seed writes byte-identical files (on one machine: numpy's ``sin`` may differ in
its last bit between CPUs, which can flip a rounding); building again keeps
the clips whose files match the manifest, so an interrupted build resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from rwrl.core.seeding import stream_id
from rwrl.storage.atomic_files import atomic_write_bytes, file_sha256
from rwrl.video.clip import NAME_PATTERN, SOURCES, Clip
from rwrl.video.y4m import decode_y4m, encode_y4m

#: the corpus format and content version: bump it when a generator's output changes.
CORPUS_VERSION = 1
#: the environment variable naming the default corpus folder.
ROOT_ENV = "RWRL_VIDEO_CORPUS"
#: frame width and height (QCIF, the classical test size), pixels; frame rate, frames/s.
DEFAULT_WIDTH, DEFAULT_HEIGHT, DEFAULT_FPS = 176, 144, 30
#: frames per clip (2 s at 30 frames/s).
DEFAULT_FRAMES = 60
#: procedural clips of a default corpus (each recipe of ``RECIPES`` twice).
DEFAULT_NUM_PROCEDURAL = 16
#: the share of each source's clips held out as the test split.
TEST_FRACTION = 0.25
SPLITS = ("train", "test")
MANIFEST = "manifest.json"

#: the frame width that content coordinates are measured in (QCIF pixels).
_UNIT_WIDTH = 176.0
#: lowest grating frequency of a texture, cycles per unit (a period of ~96 units).
_LOWEST_FREQUENCY = 1 / 96
#: gratings per texture.
_GRATINGS = 10
#: standard deviation of a texture around its base colour, levels of 255.
_TEXTURE_STD = 45.0

#: what a rendered-clip source yields: (name, kind, frames), frames (T, H, W, 3) uint8 or a
#: function returning them (called only when the clip is not in the corpus already).
RenderedClip = tuple[str, str, "np.ndarray | Callable[[], np.ndarray]"]


# --- scenes: colour as a function of position (units) and frame index ---------------------

@dataclass(frozen=True)
class _Texture:
    """A sum of coloured gratings: base + sum_k colour_k sin(2 pi freq_k . (x, y) + phase_k)."""

    base: np.ndarray  # (3,) levels
    freq: np.ndarray  # (K, 2) cycles per unit along x and y
    phase: np.ndarray  # (K,) radians
    colour: np.ndarray  # (K, 3) amplitude of each grating in each channel, levels

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        out = np.broadcast_to(self.base, x.shape + (3,)).copy()
        for freq, phase, colour in zip(self.freq, self.phase, self.colour):
            out += np.sin(2 * np.pi * (freq[0] * x + freq[1] * y) + phase)[..., None] * colour
        return out


def _random_texture(rng: np.random.Generator, max_freq: float) -> _Texture:
    """Draw a texture whose gratings lie between ``_LOWEST_FREQUENCY`` and ``max_freq``."""
    magnitude = np.exp(rng.uniform(np.log(_LOWEST_FREQUENCY), np.log(max_freq), _GRATINGS))
    angle = rng.uniform(0, np.pi, _GRATINGS)
    freq = magnitude[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    # amplitude ~ f^-1/2: coarse structure dominates, as in the spectra of natural images
    amplitude = (magnitude / _LOWEST_FREQUENCY) ** -0.5
    amplitude *= _TEXTURE_STD / np.sqrt(np.sum(amplitude ** 2) / 2)  # sin has variance 1/2
    tint = rng.normal(size=(_GRATINGS, 3))
    tint /= np.linalg.norm(tint, axis=1, keepdims=True)
    colour = amplitude[:, None] * (0.85 * rng.choice([-1.0, 1.0], (_GRATINGS, 1)) + 0.5 * tint)
    return _Texture(rng.uniform(70, 185, 3), freq, rng.uniform(0, 2 * np.pi, _GRATINGS), colour)


@dataclass(frozen=True)
class _Shape:
    """A disc or a striped box moving at constant velocity, bouncing off the frame's edges."""

    disc: bool
    start: np.ndarray  # (2,) centre at frame 0, units
    velocity: np.ndarray  # (2,) units per frame
    half: np.ndarray  # (2,) half width and height (disc: radius, radius), units
    angle: float  # radians at frame 0
    spin: float  # radians per frame
    colour: np.ndarray  # (3,) levels
    stripes: float  # stripe frequency along the shape's own x axis, cycles per unit

    def draw(self, out: np.ndarray, x: np.ndarray, y: np.ndarray, t: int,
             extent: np.ndarray) -> None:
        """Paint the shape at frame ``t`` over ``out`` (H, W, 3), anti-aliased over one unit."""
        centre = _bounce(self.start + self.velocity * t, extent)
        a = self.angle + self.spin * t
        dx, dy = x - centre[0], y - centre[1]
        along, across = np.cos(a) * dx + np.sin(a) * dy, -np.sin(a) * dx + np.cos(a) * dy
        if self.disc:
            distance = np.hypot(dx, dy) - self.half[0]
        else:  # signed distance to a box
            qx, qy = np.abs(along) - self.half[0], np.abs(across) - self.half[1]
            distance = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0)
        cover = np.clip(0.5 - distance, 0, 1)[..., None]
        fill = self.colour + 30.0 * np.sin(2 * np.pi * self.stripes * along)[..., None]
        out *= 1 - cover
        out += cover * fill


def _bounce(position: np.ndarray, extent: np.ndarray) -> np.ndarray:
    """Reflect positions into [0, extent] (a triangle wave): motion bouncing off the edges."""
    q = np.mod(position, 2 * extent)
    return np.where(q > extent, 2 * extent - q, q)


def _random_shapes(rng: np.random.Generator, count: int, extent: np.ndarray, moving: bool) -> list[_Shape]:
    shapes = []
    for _ in range(count):
        disc = bool(rng.random() < 0.5)
        radius = rng.uniform(0.04, 0.16) * extent.min() + 2
        speed, heading = rng.uniform(1.0, 5.0), rng.uniform(0, 2 * np.pi)
        shapes.append(_Shape(
            disc=disc, start=rng.uniform(0, 1, 2) * extent,
            velocity=speed * np.array([np.cos(heading), np.sin(heading)]) * moving,
            half=np.array([radius, radius if disc else radius * rng.uniform(0.4, 1.0)]),
            angle=rng.uniform(0, np.pi), spin=rng.uniform(-0.1, 0.1) * moving,
            colour=rng.uniform(25, 230, 3), stripes=rng.uniform(1 / 12, 1 / 4)))
    return shapes


# --- kinds: a camera path over a scene -------------------------------------------------------

@dataclass(frozen=True)
class _Frames:
    """The frame grid: pixel centres in units, and the frame's extent (width, height) in units."""

    num_frames: int
    height: int
    width: int
    x: np.ndarray = field(init=False)
    y: np.ndarray = field(init=False)
    extent: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        unit = _UNIT_WIDTH / self.width  # units per pixel
        x, y = np.meshgrid((np.arange(self.width) + 0.5) * unit, (np.arange(self.height) + 0.5) * unit)
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "extent", np.array([self.width, self.height]) * unit)


def _film(grid: _Frames, scene: Callable[[np.ndarray, np.ndarray, int], np.ndarray], *,
          offset: np.ndarray | None = None, scale: np.ndarray | None = None,
          angle: np.ndarray | None = None, noise: float = 0.0,
          rng: np.random.Generator | None = None) -> np.ndarray:
    """Return (T, H, W, 3) uint8 frames of ``scene`` seen by a moving camera.

    Frame t samples the scene at c + scale_t R(angle_t) (p - c) + offset_t for each
    pixel centre p (c: the frame's centre): offset pans, scale < 1 zooms in.
    """
    n = grid.num_frames
    offset = np.zeros((n, 2)) if offset is None else offset
    scale = np.ones(n) if scale is None else scale
    angle = np.zeros(n) if angle is None else angle
    cx, cy = grid.extent / 2
    frames = np.empty((n, grid.height, grid.width, 3), np.uint8)
    for t in range(n):
        dx, dy = grid.x - cx, grid.y - cy
        c, s = np.cos(angle[t]), np.sin(angle[t])
        xs = cx + scale[t] * (c * dx - s * dy) + offset[t, 0]
        ys = cy + scale[t] * (s * dx + c * dy) + offset[t, 1]
        image = scene(xs, ys, t)
        if noise > 0:
            image += rng.normal(0.0, noise, image.shape)
        frames[t] = np.clip(np.floor(image + 0.5), 0, 255)
    return frames


def _static(texture: _Texture, shapes: Sequence[_Shape] = (), extent: np.ndarray | None = None):
    def scene(x, y, t):
        image = texture(x, y)
        for shape in shapes:
            shape.draw(image, x, y, t, extent)
        return image
    return scene


def _pan(rng: np.random.Generator, grid: _Frames) -> np.ndarray:
    texture = _random_texture(rng, rng.uniform(1 / 24, 1 / 5))
    speed, heading = rng.uniform(0.5, 4.0), rng.uniform(0, 2 * np.pi)
    velocity = speed * np.array([np.cos(heading), np.sin(heading)])
    return _film(grid, _static(texture), offset=np.arange(grid.num_frames)[:, None] * velocity)


def _zoom(rng: np.random.Generator, grid: _Frames) -> np.ndarray:
    factor = rng.uniform(1.3, 2.0)
    end = factor if rng.random() < 0.5 else 1 / factor  # end scale: > 1 zooms out
    # keep the finest grating below ~0.3 cycles per pixel at the widest view (no aliasing)
    texture = _random_texture(rng, rng.uniform(1 / 24, 1 / 5) / max(1.0, end))
    progress = np.arange(grid.num_frames) / max(1, grid.num_frames - 1)
    centre = rng.uniform(-0.25, 0.25, 2) * grid.extent
    scale = end ** progress
    return _film(grid, _static(texture), scale=scale, offset=np.tile(centre, (grid.num_frames, 1)))


def _noise(rng: np.random.Generator, grid: _Frames, sigma: float) -> np.ndarray:
    texture = _random_texture(rng, rng.uniform(1 / 24, 1 / 6))
    heading = rng.uniform(0, 2 * np.pi)
    velocity = rng.uniform(0.0, 1.0) * np.array([np.cos(heading), np.sin(heading)])
    return _film(grid, _static(texture), offset=np.arange(grid.num_frames)[:, None] * velocity,
                 noise=sigma, rng=rng)


def _shapes(rng: np.random.Generator, grid: _Frames) -> np.ndarray:
    background = _random_texture(rng, rng.uniform(1 / 48, 1 / 12))
    shapes = _random_shapes(rng, int(rng.integers(3, 8)), grid.extent, moving=True)
    return _film(grid, _static(background, shapes, grid.extent))


def _shake(rng: np.random.Generator, grid: _Frames) -> np.ndarray:
    texture = _random_texture(rng, rng.uniform(1 / 24, 1 / 6))
    shapes = _random_shapes(rng, int(rng.integers(4, 9)), grid.extent, moving=False)
    n = grid.num_frames
    offset, angle = np.zeros((n, 2)), np.zeros(n)
    for t in range(1, n):  # AR(1) jitter: a hand that returns towards its aim
        offset[t] = 0.7 * offset[t - 1] + rng.normal(0.0, 1.5, 2)
        angle[t] = 0.7 * angle[t - 1] + rng.normal(0.0, 0.004)
    return _film(grid, _static(texture, shapes, grid.extent), offset=offset, angle=angle)


#: the kinds a cut joins.
_CUT_PARTS = ("pan", "zoom", "shapes", "shake")


def _cut(rng: np.random.Generator, grid: _Frames) -> np.ndarray:
    n = grid.num_frames
    first, second = (str(kind) for kind in rng.choice(_CUT_PARTS, 2, replace=False))
    if n < 2:
        return KINDS[first].make(rng, grid)
    at = int(rng.integers(-(-n // 3), max(1, 2 * n // 3) + 1))  # in [ceil(n/3), floor(2n/3)]
    head = KINDS[first].make(rng, _Frames(at, grid.height, grid.width))
    tail = KINDS[second].make(rng, _Frames(n - at, grid.height, grid.width))
    return np.concatenate([head, tail])


@dataclass(frozen=True)
class Kind:
    """A kind of procedural content: ``make(rng, grid, **params) -> (T, H, W, 3) uint8``."""

    make: Callable[..., np.ndarray]
    doc: str


#: kind name -> how its frames are made (the module docstring says what each is for).
KINDS = {
    "pan": Kind(_pan, "smooth texture panning at 0.5-4 px/frame"),
    "zoom": Kind(_zoom, "smooth texture zooming in or out by 1.3-2x"),
    "noise": Kind(_noise, "slow pan with fresh Gaussian noise of std sigma every frame"),
    "shapes": Kind(_shapes, "moving discs and rotating striped boxes over a smooth background"),
    "shake": Kind(_shake, "static scene, hand-held camera jitter"),
    "cut": Kind(_cut, "two kinds of unrelated content joined by a scene cut"),
}


@dataclass(frozen=True)
class Recipe:
    """One procedural clip's recipe: a label for its name, its kind and the kind's parameters."""

    label: str
    kind: str
    params: tuple[tuple[str, Any], ...] = ()


#: procedural clip i follows RECIPES[i % len(RECIPES)], with its own random stream.
RECIPES = (
    Recipe("pan", "pan"),
    Recipe("zoom", "zoom"),
    Recipe("noise2", "noise", (("sigma", 2.0),)),
    Recipe("noise8", "noise", (("sigma", 8.0),)),
    Recipe("noise24", "noise", (("sigma", 24.0),)),
    Recipe("shapes", "shapes"),
    Recipe("shake", "shake"),
    Recipe("cut", "cut"),
)


def procedural_name(index: int) -> str:
    """Return the name of procedural clip ``index``: ``p<index>-<label>`` (e.g. 'p03-noise8')."""
    return f"p{index:02d}-{RECIPES[index % len(RECIPES)].label}"


def procedural_clip(index: int, seed: int = 0, *, frames: int = DEFAULT_FRAMES,
                    width: int = DEFAULT_WIDTH, height: int = DEFAULT_HEIGHT,
                    fps: int = DEFAULT_FPS) -> Clip:
    """Return procedural clip ``index`` of the corpus of ``seed``.

    Its random stream depends on (seed, index) only, so a clip is the same in a
    corpus of any size.
    """
    _check_sizes(seed=seed, frames=frames, width=width, height=height, fps=fps)
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
        raise ValueError(f"index = {index!r} is not allowed: give a non-negative int")
    recipe = RECIPES[index % len(RECIPES)]
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream_id("video/procedural"), index)))
    rgb = KINDS[recipe.kind].make(rng, _Frames(frames, height, width), **dict(recipe.params))
    return Clip.from_rgb(procedural_name(index), rgb, fps, source="procedural", kind=recipe.kind)


def procedural_corpus(seed: int = 0, *, count: int = DEFAULT_NUM_PROCEDURAL, split: str | None = None,
                      frames: int = DEFAULT_FRAMES, width: int = DEFAULT_WIDTH,
                      height: int = DEFAULT_HEIGHT, fps: int = DEFAULT_FPS) -> list[Clip]:
    """Return the procedural clips 0 .. count-1 of ``seed`` in memory (no files).

    Args:
      split: None (every clip), 'train' or 'test': the clips of that split, the
        same split a corpus of these clips alone gets on disk (``assign_splits``).
    """
    _check_count(count, "count")
    if split is not None and split not in SPLITS:
        raise ValueError(f"split {split!r} is not allowed: use None, 'train' or 'test'")
    names = [procedural_name(i) for i in range(count)]
    chosen = assign_splits([(name, "procedural") for name in names], seed)
    return [procedural_clip(i, seed, frames=frames, width=width, height=height, fps=fps)
            for i, name in enumerate(names) if split in (None, chosen[name])]


def assign_splits(clips: Sequence[tuple[str, str]], seed: int,
                  test_fraction: float = TEST_FRACTION) -> dict[str, str]:
    """Return {name: 'train' or 'test'} for (name, source) pairs: a fixed split by clip.

    Each source is split on its own (a seeded permutation of its sorted names;
    round(n * test_fraction) clips, at least one, go to test), so the held-out
    clips include every source present and a source's split does not depend on
    how many clips the other has.
    """
    splits = {}
    for index, source in enumerate(SOURCES):
        names = sorted(name for name, s in clips if s == source)
        if not names:
            continue
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream_id("video/split"), index)))
        held_out = max(1, int(round(len(names) * test_fraction)))
        test = {names[i] for i in rng.permutation(len(names))[:held_out]}
        splits.update({name: "test" if name in test else "train" for name in names})
    return splits


# --- the corpus on disk ------------------------------------------------------------------------

def default_root() -> Path:
    """Return the default corpus folder: ``$RWRL_VIDEO_CORPUS`` or ``~/.cache/rwrl/video-corpus``."""
    return Path(os.environ.get(ROOT_ENV) or Path.home() / ".cache" / "rwrl" / "video-corpus")


def build_corpus(root: os.PathLike | str | None = None, *, seed: int = 0,
                 num_procedural: int = DEFAULT_NUM_PROCEDURAL,
                 rendered: Callable[..., Iterable[RenderedClip]] | None = None,
                 frames: int = DEFAULT_FRAMES, width: int = DEFAULT_WIDTH,
                 height: int = DEFAULT_HEIGHT, fps: int = DEFAULT_FPS,
                 progress: Callable[[str], None] | None = None) -> dict:
    """Write the corpus's clips and manifest under ``root``; return the manifest.

    Writes ``root/clips/<name>.y4m`` for every clip, then ``root/manifest.json``
    (atomic): ``version``, ``seed``, ``width``, ``height``, ``fps``, ``frames``,
    ``complete`` and ``clips``, a list of {``name``, ``source``, ``kind``,
    ``split``, ``file``, ``sha256`` (of the y4m file)}. During the build the
    manifest lists the clips written so far with ``complete`` false, so a build
    run again keeps every clip whose file still has its recorded sha256 (built
    with the same version, seed and sizes) and makes only the others. Files of
    clips the manifest does not list are ignored.

    Args:
      root: the corpus folder (created); None: ``default_root()``.
      seed: the seed of the procedural clips, of ``rendered`` and of the split.
      num_procedural: procedural clips 0 .. num_procedural-1 (``procedural_clip``).
      rendered: None, or a function called as ``rendered(seed=, frames=, width=,
        height=, fps=)`` returning (name, kind, frames) triples, frames a (T, H,
        W, 3) uint8 array or a function returning one (``RenderedClip``);
        ``rwrl.datasets.video_clips.rendered_clips`` is one.
      frames, width, height, fps: every clip's length, size (even) and rate.
      progress: called with one line per clip.

    Raises:
      ValueError: a bad argument, or a rendered clip of the wrong shape or a repeated name.
      rwrl.storage.atomic_files.WriteError: a write failed (one line naming the path).
    """
    _check_sizes(seed=seed, frames=frames, width=width, height=height, fps=fps)
    _check_count(num_procedural, "num_procedural")
    root = Path(default_root() if root is None else root)
    sizes = {"seed": seed, "width": width, "height": height, "fps": fps, "frames": frames}
    plan = [(procedural_name(i), "procedural", RECIPES[i % len(RECIPES)].kind,
             lambda i=i: procedural_clip(i, seed, frames=frames, width=width, height=height, fps=fps))
            for i in range(num_procedural)]
    if rendered is not None:
        items = rendered(seed=seed, frames=frames, width=width, height=height, fps=fps)
        plan += [(name, "rendered", kind, _rendered_maker(name, kind, rgb, frames, height, width, fps))
                 for name, kind, rgb in items]
    _check_plan([name for name, *_ in plan])
    (root / "clips").mkdir(parents=True, exist_ok=True)
    kept = _previous_entries(root, sizes)
    entries: list[dict] = []
    for number, (name, source, kind, make) in enumerate(plan, 1):
        start = time.perf_counter()
        entry, status = _build_clip(root, name, source, kind, make, kept.get(name))
        entries.append(entry)
        _write_manifest(root, sizes, entries, complete=False)
        if progress is not None:
            progress(f"[{number}/{len(plan)}] {name}: {source} {kind}, {status} "
                     f"({time.perf_counter() - start:.2f} s)")
    splits = assign_splits([(e["name"], e["source"]) for e in entries], seed)
    for entry in entries:
        entry["split"] = splits[entry["name"]]
    return _write_manifest(root, sizes, entries, complete=True)


def _rendered_maker(name: str, kind: str, rgb, frames: int, height: int, width: int, fps: int):
    def make() -> Clip:
        array = rgb() if callable(rgb) else rgb
        expected = (frames, height, width, 3)
        if not isinstance(array, np.ndarray) or array.dtype != np.uint8 or array.shape != expected:
            raise ValueError(f"rendered clip {name}: frames {getattr(array, 'dtype', type(array).__name__)} "
                             f"{getattr(array, 'shape', '')} are not allowed: give uint8 {expected}")
        return Clip.from_rgb(name, array, fps, source="rendered", kind=kind)
    return make


def _check_plan(names: list[str]) -> None:
    if not names:
        raise ValueError("the corpus would hold no clip: give num_procedural >= 1 or rendered clips")
    seen = set()
    for name in names:
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise ValueError(f"clip name {name!r} is not allowed: use letters, digits, '.', '_' "
                             f"and '-', starting with a letter or digit")
        if name in seen:
            raise ValueError(f"clip name {name!r} is given twice: names must be unique")
        seen.add(name)


def _build_clip(root: Path, name: str, source: str, kind: str, make: Callable[[], Clip],
                previous: dict | None) -> tuple[dict, str]:
    """Make and write one clip unless its file is already the one recorded; return (entry, status)."""
    path = root / "clips" / f"{name}.y4m"
    entry = {"name": name, "source": source, "kind": kind, "split": None,
             "file": f"clips/{name}.y4m"}
    if (previous is not None and previous.get("source") == source and previous.get("kind") == kind
            and path.is_file() and file_sha256(path) == previous.get("sha256")):
        return {**entry, "sha256": previous["sha256"]}, "kept"
    clip = make()
    data = encode_y4m(clip.y, clip.u, clip.v, clip.fps)
    digest = hashlib.sha256(data).hexdigest()
    if path.is_file() and file_sha256(path) == digest:
        return {**entry, "sha256": digest}, "unchanged"
    atomic_write_bytes(path, data)
    return {**entry, "sha256": digest}, "written"


def _previous_entries(root: Path, sizes: dict) -> dict[str, dict]:
    """Return {name: entry} of an earlier build's manifest with these sizes (else empty)."""
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}  # none, or unreadable: every clip is made again
    if not isinstance(manifest, dict) or manifest.get("version") != CORPUS_VERSION:
        return {}
    if any(manifest.get(key) != value for key, value in sizes.items()):
        return {}
    clips = manifest.get("clips")
    return {c["name"]: c for c in clips if isinstance(c, dict) and "name" in c} if isinstance(clips, list) else {}


def _write_manifest(root: Path, sizes: dict, entries: list[dict], complete: bool) -> dict:
    manifest = {"version": CORPUS_VERSION, **sizes, "complete": complete,
                "clips": [dict(e) for e in entries]}
    atomic_write_bytes(root / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    return manifest


def _rebuild_hint(root: Path) -> str:
    return f"run `rwrl video corpus --out {root}`"


def load_corpus(root: os.PathLike | str | None = None) -> dict:
    """Return the manifest of the corpus at ``root`` (None: ``default_root()``), checked.

    Raises:
      FileNotFoundError: no manifest there (one line saying how to build one).
      ValueError: the manifest is unreadable, of another version, incomplete, or
        lists a clip whose file is missing (one line naming the file).
    """
    root = Path(default_root() if root is None else root)
    path = root / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no video corpus there: {_rebuild_hint(root)}")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: unreadable ({' '.join(str(err).split())}): {_rebuild_hint(root)}") from None
    if not isinstance(manifest, dict) or manifest.get("version") != CORPUS_VERSION:
        version = manifest.get("version") if isinstance(manifest, dict) else None
        raise ValueError(f"{path}: corpus version {version!r}, this rwrl reads {CORPUS_VERSION}: "
                         f"{_rebuild_hint(root)}")
    clips = manifest.get("clips")
    if manifest.get("complete") is not True or not isinstance(clips, list):
        done = len(clips) if isinstance(clips, list) else 0
        raise ValueError(f"{path}: the corpus is incomplete ({done} clips written): "
                         f"{_rebuild_hint(root)} to finish it")
    for key in ("seed", "width", "height", "fps", "frames"):
        if not isinstance(manifest.get(key), int):
            raise ValueError(f"{path}: field {key!r} is missing or not an int: {_rebuild_hint(root)}")
    for entry in clips:
        _check_entry(entry, root, path)
    return manifest


def _check_entry(entry: Any, root: Path, path: Path) -> None:
    keys = ("name", "source", "kind", "split", "file", "sha256")
    if not isinstance(entry, dict) or any(not isinstance(entry.get(k), str) for k in keys):
        raise ValueError(f"{path}: clip entry {entry!r:.80} lacks one of {', '.join(keys)}: "
                         f"{_rebuild_hint(root)}")
    if entry["split"] not in SPLITS or entry["source"] not in SOURCES:
        raise ValueError(f"{path}: clip {entry['name']}: split {entry['split']!r} or source "
                         f"{entry['source']!r} is not allowed: {_rebuild_hint(root)}")
    if not (root / entry["file"]).is_file():
        raise ValueError(f"{root / entry['file']}: clip file missing: {_rebuild_hint(root)}")


def clip_names(root: os.PathLike | str | None = None, split: str | None = None) -> list[str]:
    """Return the names of the corpus's clips (of one split: 'train' or 'test'), manifest order."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"split {split!r} is not allowed: use None, 'train' or 'test'")
    return [c["name"] for c in load_corpus(root)["clips"] if split in (None, c["split"])]


def load_clip(root: os.PathLike | str | None, name: str) -> Clip:
    """Return the clip ``name`` of the corpus at ``root``, its file checked against its sha256.

    Raises:
      ValueError: no such clip, or its file changed since the build (one line).
    """
    root = Path(default_root() if root is None else root)
    return _load_entry(root, load_corpus(root), name)


def load_clips(root: os.PathLike | str | None = None, split: str | None = None) -> list[Clip]:
    """Return every clip of the corpus (of one split), manifest order."""
    root = Path(default_root() if root is None else root)
    manifest = load_corpus(root)
    return [_load_entry(root, manifest, name) for name in clip_names(root, split)]


def _load_entry(root: Path, manifest: dict, name: str) -> Clip:
    entry = next((c for c in manifest["clips"] if c["name"] == name), None)
    if entry is None:
        raise ValueError(f"{root / MANIFEST}: no clip {name!r} (`rwrl video clips --root {root}` "
                         f"lists {len(manifest['clips'])})")
    path = root / entry["file"]
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise ValueError(f"{path}: does not match its sha256 in {MANIFEST} (changed or damaged): "
                         f"{_rebuild_hint(root)}")
    video = decode_y4m(data, source=str(path))
    shape = (manifest["frames"], manifest["height"], manifest["width"])
    if video.y.shape != shape or video.fps != manifest["fps"]:
        raise ValueError(f"{path}: frames {video.y.shape} at {video.fps} fps, the manifest says "
                         f"{shape} at {manifest['fps']}: {_rebuild_hint(root)}")
    return Clip(name, manifest["fps"], video.y, video.u, video.v, source=entry["source"],
                kind=entry["kind"])


def _check_sizes(*, seed: int, frames: int, width: int, height: int, fps: int) -> None:
    for name, value, low in (("seed", seed, 0), ("frames", frames, 1), ("fps", fps, 1),
                             ("width", width, 2), ("height", height, 2)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} = {value!r} is not allowed: give an int >= {low}")
    for name, value in (("width", width), ("height", height)):
        if value % 2:
            raise ValueError(f"{name} = {value} is not allowed: 4:2:0 video needs an even size")


def _check_count(count: int, name: str) -> None:
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(f"{name} = {count!r} is not allowed: give an int >= 0")


__all__ = ["CORPUS_VERSION", "DEFAULT_FPS", "DEFAULT_FRAMES", "DEFAULT_HEIGHT",
           "DEFAULT_NUM_PROCEDURAL", "DEFAULT_WIDTH", "KINDS", "Kind", "RECIPES", "ROOT_ENV",
           "Recipe", "RenderedClip", "SPLITS", "TEST_FRACTION", "assign_splits", "build_corpus",
           "clip_names", "default_root", "load_clip", "load_clips", "load_corpus",
           "procedural_clip", "procedural_corpus", "procedural_name"]
