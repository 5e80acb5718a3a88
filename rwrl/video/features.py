"""First-pass statistics of a clip's frames: what the rate-control env observes of the content.

A two-pass encoder decides each frame's quantiser knowing statistics of the
whole video from a fast first pass. Mao et al. (2020, "Neural Rate Control for
Video Encoding using Imitation Learning", arXiv 2012.05339) feed such
first-pass statistics of the current and upcoming frames to their policy, but
their features are in the body of the paper, which this project could not
read (``shared/papers/PAPERS.md``). The features below are this module's
choice, each documented with its unit and scale.

Per frame t of a clip (``FEATURE_NAMES``, in order; every value is O(1)):

* ``ref_log_bpp``: (log2(b_t / (W H)) + 4) / 4, with b_t the frame's bits when
  the real encoder (``rwrl.video.x264``, the env's preset) codes the whole clip
  at the constant reference QP (default ``REFERENCE_QP`` = 32): the first pass.
  0 at 1/16 bit per pixel (a typical P-frame at QP 32), 1 at 1 bit per pixel
  (an I-frame); each 0.25 is a factor of 2 in size. The log because frame
  sizes span four orders of magnitude and the QP acts on them multiplicatively
  (about a factor 2 per 6 QP).
* ``ref_psnr``: (PSNR_t - 40) / 10, the frame's luma PSNR (dB) in that pass.
* ``intra``: 1 when the first pass coded the frame as an I-frame (the first
  frame, x264's scene cuts and keyint): such a frame costs many times a
  P-frame and every later frame of its shot predicts from it.
* ``spatial``: log2(1 + g_t) / 8 in [0, 1], with g_t the mean absolute
  horizontal and vertical luma gradient (grey levels per pixel, averaged over
  both directions): the texture an intra frame must code.
* ``temporal``: log2(1 + d_t) / 8 in [0, 1], with d_t the mean absolute luma
  difference to frame t - 1 (grey levels); 0 for frame 0, which has no
  previous frame. The residual a P-frame must code without motion search.
* ``scene_change``: 1 for frame 0 and where d_t exceeds ``SCENE_RATIO`` times
  the mean d of the frames since the last change (the last ``SCENE_WINDOW`` of
  them, not counting the change itself; a mean of at least ``SCENE_FLOOR`` grey
  levels; no change is declared on a shot's second frame, which has no such
  mean yet): a cut judged from the luma alone, independent of the encoder's own
  decision (``intra``).

Features are computed once per clip and kept in memory, keyed by the clip's
name, shape, frame rate and a hash of its pixels (procedural clips of
different seeds share names) and the encoder settings; ``cache_dir`` also keeps
them in ``.npz`` files read with ``allow_pickle=False``. Constant-QP encodes
(``constant_qp_encode``) are cached the same way: the env's budgets reuse them.

Example:
  >>> import numpy as np
  >>> from rwrl.video.clip import Clip
  >>> y = np.tile(np.arange(64, dtype=np.uint8) * 3, (4, 48, 1))
  >>> u = v = np.full((4, 24, 32), 128, np.uint8)
  >>> features = clip_features(Clip("ramp", 30, y, u, v, source="procedural", kind="flat"))
  >>> features.table.shape, features.table[:, FEATURE_NAMES.index("intra")].tolist()
  ((4, 6), [1.0, 0.0, 0.0, 0.0])
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rwrl.video.x264 import X264Encoder, check_qp

if TYPE_CHECKING:
    from rwrl.video.clip import Clip

#: the constant QP of the first pass (x264's default CRF is 23; 32 sits mid-range of the
#: budgets the env draws, QPs 28 to 40).
REFERENCE_QP = 32
#: names of the columns of ``ClipFeatures.table``, in order (see the module docstring).
FEATURE_NAMES = ("ref_log_bpp", "ref_psnr", "intra", "spatial", "temporal", "scene_change")
#: a frame whose luma difference to the previous one exceeds this many times the recent
#: mean difference is a scene change.
SCENE_RATIO = 3.0
#: frames of the current shot averaged for that recent mean (at most).
SCENE_WINDOW = 5
#: the least recent mean difference (grey levels) the ratio applies to, so that a nearly
#: static shot does not cut at every small change.
SCENE_FLOOR = 2.0
#: log2 of the bits per pixel scaled to 0 (1/16 bit per pixel) and the log2 span scaled to 1.
BPP_CENTRE_LOG2, BPP_SPAN_LOG2 = -4.0, 4.0
#: PSNR (dB) of ``ref_psnr`` = 0 and the dB mapped to 1.
PSNR_CENTRE, PSNR_SCALE = 40.0, 10.0
#: the most cached entries kept in memory (oldest dropped first); each is a few arrays of T.
_CACHE_SIZE = 4096


@dataclasses.dataclass(frozen=True)
class ConstantQpEncode:
    """A clip coded at one constant QP: each frame's size, quality and type."""

    qp: int
    #: (T,) int64 bits of each frame.
    bits: np.ndarray
    #: (T,) float64 luma PSNR (dB) of each frame's reconstruction.
    psnr: np.ndarray
    #: (T,) bool, True for an I-frame.
    intra: np.ndarray

    @property
    def total_bits(self) -> int:
        """Bits of the whole stream."""
        return int(self.bits.sum())


@dataclasses.dataclass(frozen=True)
class ClipFeatures:
    """The first-pass statistics of a clip's frames (see the module docstring)."""

    #: (T, len(FEATURE_NAMES)) float64, normalised features, columns in FEATURE_NAMES order.
    table: np.ndarray
    #: the first pass: the clip coded at the reference QP.
    reference: ConstantQpEncode
    #: (T,) float64 raw statistics: mean absolute luma gradient and difference (grey levels).
    gradient: np.ndarray
    difference: np.ndarray

    @property
    def num_frames(self) -> int:
        return self.table.shape[0]


_CACHE: dict[tuple, object] = {}


def clip_fingerprint(clip: "Clip") -> tuple:
    """Return (name, T, H, W, fps, blake2b of the pixels): what identifies a clip's content."""
    digest = hashlib.blake2b(digest_size=16)
    for plane in (clip.y, clip.u, clip.v):
        digest.update(np.ascontiguousarray(plane).data)
    return (clip.name, *clip.y.shape, int(clip.fps), digest.hexdigest())


def clear_cache() -> None:
    """Forget every cached feature table and constant-QP encode held in memory."""
    _CACHE.clear()


def _cached(key: tuple, compute):
    value = _CACHE.get(key)
    if value is None:
        value = compute()
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = value
    return value


def constant_qp_encode(clip: "Clip", qp: int, *, preset: str = "veryfast", keyint: int = 250,
                       fingerprint: tuple | None = None) -> ConstantQpEncode:
    """Return the sizes, PSNRs and types of ``clip`` coded at constant ``qp`` (cached).

    Args:
      clip: the clip.
      qp: an integer in [QP_MIN, QP_MAX].
      preset, keyint: the encoder's settings (those of the env that uses the result).
      fingerprint: ``clip_fingerprint(clip)`` when the caller has it (hashing costs
        about a millisecond per megabyte).
    """
    qp = check_qp(qp)
    key = ("qp", fingerprint or clip_fingerprint(clip), qp, preset, int(keyint))

    def compute() -> ConstantQpEncode:
        encoder = X264Encoder(clip.width, clip.height, fps=int(clip.fps), preset=preset,
                              keyint=keyint)
        with encoder:
            results = [encoder.encode(*clip.frame(t), qp) for t in range(clip.num_frames)]
        return ConstantQpEncode(qp, np.array([r.bits for r in results], np.int64),
                                np.array([r.psnr for r in results], np.float64),
                                np.array([r.frame_type == "I" for r in results], bool))

    return _cached(key, compute)


def scaled_log_bpp(bits_per_pixel):
    """Return (log2(bits per pixel) + 4) / 4: 0 at 1/16 bit per pixel, 1 at 1 (arrays too)."""
    return (np.log2(bits_per_pixel) - BPP_CENTRE_LOG2) / BPP_SPAN_LOG2


def luma_statistics(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the raw spatial and temporal statistics of luma frames (T, H, W) uint8.

    Returns:
      gradient (T,): mean absolute luma gradient (mean of the horizontal and the
        vertical one), grey levels.
      difference (T,): mean absolute difference to the previous frame (0 for frame 0).
      scene_change (T,) bool: the cut detector of the module docstring.
    """
    luma = y.astype(np.int16)
    horizontal = np.abs(np.diff(luma, axis=2)).mean(axis=(1, 2))
    vertical = np.abs(np.diff(luma, axis=1)).mean(axis=(1, 2))
    gradient = 0.5 * (horizontal + vertical)
    difference = np.zeros(len(y))
    difference[1:] = np.abs(np.diff(luma, axis=0)).mean(axis=(1, 2))
    scene_change = np.zeros(len(y), bool)
    shot_start = 0
    for t in range(len(y)):
        # the shot's frames after its first (whose difference spans the cut itself)
        recent = difference[max(shot_start + 1, t - SCENE_WINDOW):t]
        if t == 0 or (recent.size and difference[t] > SCENE_RATIO * max(recent.mean(),
                                                                         SCENE_FLOOR)):
            scene_change[t] = True
            shot_start = t
    return gradient, difference, scene_change


def normalised_features(reference: ConstantQpEncode, gradient: np.ndarray,
                        difference: np.ndarray, scene_change: np.ndarray,
                        pixels: int) -> np.ndarray:
    """Return the (T, F) table of ``FEATURE_NAMES`` from raw statistics (module docstring)."""
    bpp = np.maximum(reference.bits, 1) / pixels  # x264 never writes an empty frame; guard 0
    columns = {
        "ref_log_bpp": scaled_log_bpp(bpp),
        "ref_psnr": (reference.psnr - PSNR_CENTRE) / PSNR_SCALE,
        "intra": reference.intra.astype(np.float64),
        "spatial": np.log2(1.0 + gradient) / 8.0,
        "temporal": np.log2(1.0 + difference) / 8.0,
        "scene_change": scene_change.astype(np.float64),
    }
    return np.stack([columns[name] for name in FEATURE_NAMES], axis=1)


def clip_features(clip: "Clip", *, reference_qp: int = REFERENCE_QP, preset: str = "veryfast",
                  keyint: int = 250, cache_dir: os.PathLike | str | None = None,
                  fingerprint: tuple | None = None) -> ClipFeatures:
    """Return the first-pass features of ``clip`` (cached in memory, and in ``cache_dir`` if given).

    Args:
      clip: the clip.
      reference_qp: the constant QP of the first pass.
      preset, keyint: the encoder's settings (the env's, so that the reference bits
        are those the env's encoder would spend at that QP).
      cache_dir: a folder for ``.npz`` copies (created if missing); None: memory only.
      fingerprint: ``clip_fingerprint(clip)`` when the caller has it.
    """
    reference_qp = check_qp(reference_qp)
    fingerprint = fingerprint or clip_fingerprint(clip)
    key = ("features", fingerprint, reference_qp, preset, int(keyint))

    path = None
    if cache_dir is not None:
        name, frames, height, width, fps, digest = fingerprint
        path = Path(cache_dir) / (f"{name}-{width}x{height}x{frames}-{fps}fps-qp{reference_qp}"
                                  f"-{preset}-k{keyint}-{digest}.npz")

    def compute() -> ClipFeatures:
        if path is not None and path.is_file():
            return _read_npz(path, reference_qp)
        reference = constant_qp_encode(clip, reference_qp, preset=preset, keyint=keyint,
                                       fingerprint=fingerprint)
        gradient, difference, scene_change = luma_statistics(clip.y)
        table = normalised_features(reference, gradient, difference, scene_change,
                                    clip.width * clip.height)
        return ClipFeatures(table, reference, gradient, difference)

    features = _cached(key, compute)
    if path is not None and not path.is_file():  # also when memory had them already
        _write_npz(path, features)
    return features


def _write_npz(path: Path, features: ClipFeatures) -> None:
    """Write ``features`` to ``path`` atomically (a temporary file renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ref = features.reference
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".features-", suffix=".npz")
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, table=features.table, bits=ref.bits, psnr=ref.psnr, intra=ref.intra,
                     gradient=features.gradient, difference=features.difference)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _read_npz(path: Path, reference_qp: int) -> ClipFeatures:
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: np.array(data[k]) for k in data.files}
    if arrays["table"].shape[1:] != (len(FEATURE_NAMES),):
        raise ValueError(f"{path}: {arrays['table'].shape[1]} features, this rwrl has "
                         f"{len(FEATURE_NAMES)}: delete the file to recompute it")
    reference = ConstantQpEncode(reference_qp, arrays["bits"], arrays["psnr"], arrays["intra"])
    return ClipFeatures(arrays["table"], reference, arrays["gradient"], arrays["difference"])


__all__ = ["FEATURE_NAMES", "REFERENCE_QP", "ClipFeatures", "ConstantQpEncode", "clear_cache",
           "clip_features", "clip_fingerprint", "constant_qp_encode", "luma_statistics",
           "normalised_features", "scaled_log_bpp"]
