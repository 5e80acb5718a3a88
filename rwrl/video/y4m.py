"""Read and write YUV4MPEG2 (``.y4m``) files of 8-bit 4:2:0 video.

YUV4MPEG2 is the raw format of encoder research: the Xiph test media are
distributed in it, and x264 and FFmpeg read it directly. A file is one text
header line, then for each frame a ``FRAME`` line and the planes Y, U, V::

    YUV4MPEG2 W176 H144 F30:1 Ip A1:1 C420jpeg XYSCSS=420JPEG XCOLORRANGE=LIMITED
    FRAME
    <H*W bytes of Y><ceil(H/2)*ceil(W/2) bytes of U><same of V>
    FRAME
    ...

Shapes: ``y`` is (T, H, W), ``u`` and ``v`` are (T, ceil(H/2), ceil(W/2)),
all uint8.

The writer writes the header FFmpeg writes for ``yuv420p`` (``C420jpeg``,
chroma centred between luma samples), with square pixels and the BT.601
limited range that ``rwrl.video.clip.rgb_to_yuv420`` produces. The reader takes
every 8-bit 4:2:0 tag (``C420jpeg``, ``C420``, ``C420mpeg2``, ``C420paldv``:
they differ only in chroma siting) and a missing ``C`` tag (4:2:0 by the
format's definition); other colour spaces, interlaced video and broken headers
raise a one-line ValueError naming the field.

Example:
  >>> import numpy as np
  >>> y = np.zeros((2, 4, 6), np.uint8); u = v = np.full((2, 2, 3), 128, np.uint8)
  >>> data = encode_y4m(y, u, v, fps=30)
  >>> data[:data.index(b"\\n")].decode()
  'YUV4MPEG2 W6 H4 F30:1 Ip A1:1 C420jpeg XYSCSS=420JPEG XCOLORRANGE=LIMITED'
  >>> video = decode_y4m(data)
  >>> video.fps, video.y.shape, video.u.shape
  (Fraction(30, 1), (2, 4, 6), (2, 2, 3))
  >>> decode_y4m(b"YUV4MPEG2 W6 H4 Fabc\\n")
  Traceback (most recent call last):
  ValueError: <bytes>: y4m header field F: 'abc' is not a frame rate NUM:DEN of positive integers
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from rwrl.storage.atomic_files import atomic_write_bytes

#: the magic word that opens every YUV4MPEG2 file.
MAGIC = b"YUV4MPEG2"
#: the colour-space tags of 8-bit 4:2:0 (``C`` field): the same layout, different chroma siting.
COLORSPACES_420 = ("420jpeg", "420", "420mpeg2", "420paldv")
#: the interlacing tags read as progressive: ``p`` (progressive) and ``?`` (unknown).
PROGRESSIVE = ("p", "?")
#: the longest header line read (real headers are under 100 bytes).
MAX_HEADER_BYTES = 4096

_FRAME = b"FRAME"


@dataclass(frozen=True)
class Y4mVideo:
    """The frames of a y4m file: planes (T, H, W) and (T, ceil(H/2), ceil(W/2)), uint8.

    Attributes:
      y, u, v: the luma and the two chroma planes of every frame.
      fps: the frame rate (the ``F`` field), frames per second.
      colorspace: the ``C`` field as read ('420jpeg' when the file has none).
    """

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    fps: Fraction
    colorspace: str = "420jpeg"


def chroma_shape(height: int, width: int) -> tuple[int, int]:
    """Return the (height, width) of a 4:2:0 chroma plane: half of each, rounded up."""
    return (height + 1) // 2, (width + 1) // 2


def encode_y4m(y: np.ndarray, u: np.ndarray, v: np.ndarray, fps: int | Fraction) -> bytes:
    """Return the bytes of a y4m file holding the planes (shapes in the module docstring).

    Raises:
      ValueError: a plane is not uint8, the shapes disagree, or ``fps`` is not positive.
    """
    _check_planes(y, u, v)
    rate = Fraction(fps)
    if rate <= 0:
        raise ValueError(f"fps = {fps!r} is not allowed: give a positive frame rate")
    num_frames, height, width = y.shape
    header = (f"YUV4MPEG2 W{width} H{height} F{rate.numerator}:{rate.denominator} Ip A1:1 "
              f"C420jpeg XYSCSS=420JPEG XCOLORRANGE=LIMITED\n").encode()
    parts = [header]
    for t in range(num_frames):
        parts += [_FRAME + b"\n", y[t].tobytes(), u[t].tobytes(), v[t].tobytes()]
    return b"".join(parts)


def write_y4m(path: os.PathLike | str, y: np.ndarray, u: np.ndarray, v: np.ndarray,
              fps: int | Fraction) -> None:
    """Write the planes to ``path`` atomically (readers see the old or the new file).

    Raises:
      ValueError: as ``encode_y4m``.
      rwrl.storage.atomic_files.WriteError: the write failed (one line naming the path).
    """
    atomic_write_bytes(Path(path), encode_y4m(y, u, v, fps))


def read_y4m(path: os.PathLike | str) -> Y4mVideo:
    """Return the frames of the y4m file at ``path``.

    Raises:
      ValueError: the file is not 8-bit 4:2:0 progressive y4m (one line naming
        the file and the field or the frame).
    """
    return decode_y4m(Path(path).read_bytes(), source=str(path))


def decode_y4m(data: bytes, source: str = "<bytes>") -> Y4mVideo:
    """Return the frames of y4m bytes; ``source`` names them in errors."""
    end = data.find(b"\n", 0, MAX_HEADER_BYTES)
    if not data.startswith(MAGIC + b" "):
        raise ValueError(f"{source}: not a y4m file (it does not start with 'YUV4MPEG2 ')")
    if end < 0:
        raise ValueError(f"{source}: y4m header has no end of line in its first "
                         f"{MAX_HEADER_BYTES} bytes")
    width, height, fps, colorspace = _parse_header(data[len(MAGIC) + 1:end], source)
    chroma = chroma_shape(height, width)
    luma_size, chroma_size = height * width, chroma[0] * chroma[1]
    frame_size = luma_size + 2 * chroma_size
    frames, pos = [], end + 1
    while pos < len(data):
        line_end = data.find(b"\n", pos, pos + MAX_HEADER_BYTES)
        marker = data[pos:line_end if line_end >= 0 else pos + len(_FRAME)]
        if line_end < 0 or marker.split(b" ")[0] != _FRAME:
            raise ValueError(f"{source}: frame {len(frames)}: expected a 'FRAME' line at byte "
                             f"{pos}, found {bytes(marker[:16])!r}")
        pos = line_end + 1
        if pos + frame_size > len(data):
            raise ValueError(f"{source}: frame {len(frames)} is truncated: {len(data) - pos} "
                             f"of {frame_size} bytes")
        frames.append(np.frombuffer(data, np.uint8, frame_size, pos))
        pos += frame_size
    planes = np.stack(frames) if frames else np.zeros((0, frame_size), np.uint8)
    y = planes[:, :luma_size].reshape(-1, height, width)
    u = planes[:, luma_size:luma_size + chroma_size].reshape(-1, *chroma)
    v = planes[:, luma_size + chroma_size:].reshape(-1, *chroma)
    return Y4mVideo(y, u, v, fps, colorspace)


def _parse_header(line: bytes, source: str) -> tuple[int, int, Fraction, str]:
    """Return (width, height, fps, colorspace) of the header's fields (after the magic word)."""
    fields: dict[str, str] = {}
    for token in line.decode("ascii", errors="replace").split():
        fields.setdefault(token[0], token[1:])  # X (extension) and unknown tags are skipped
    for tag in "WHF":
        if tag not in fields:
            raise ValueError(f"{source}: y4m header field {tag} is missing")
    width = _positive_int(fields["W"], "W", source)
    height = _positive_int(fields["H"], "H", source)
    fps = _ratio(fields["F"], source)
    interlace = fields.get("I", "p")
    if interlace not in PROGRESSIVE:
        raise ValueError(f"{source}: y4m header field I: {interlace!r} is not allowed: "
                         f"only progressive video ('p' or '?') is read")
    colorspace = fields.get("C", "420jpeg")
    if colorspace not in COLORSPACES_420:
        raise ValueError(f"{source}: y4m header field C: {colorspace!r} is not allowed: "
                         f"only 8-bit 4:2:0 ({', '.join(COLORSPACES_420)}) is read")
    return width, height, fps, colorspace


def _positive_int(text: str, tag: str, source: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise ValueError(f"{source}: y4m header field {tag}: {text!r} is not a positive integer")
    return int(text)


def _ratio(text: str, source: str) -> Fraction:
    num, _, den = text.partition(":")
    if not (num.isdigit() and den.isdigit() and int(num) > 0 and int(den) > 0):
        raise ValueError(f"{source}: y4m header field F: {text!r} is not a frame rate NUM:DEN "
                         f"of positive integers")
    return Fraction(int(num), int(den))


def _check_planes(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
    for name, plane in (("y", y), ("u", u), ("v", v)):
        if not isinstance(plane, np.ndarray) or plane.dtype != np.uint8 or plane.ndim != 3:
            raise ValueError(f"{name} is not allowed: give a (T, H, W) uint8 array, got "
                             f"{getattr(plane, 'dtype', type(plane).__name__)} "
                             f"{getattr(plane, 'shape', '')}")
    expected = (y.shape[0], *chroma_shape(*y.shape[1:]))
    if y.shape[1] == 0 or y.shape[2] == 0:
        raise ValueError(f"y shape {y.shape} is not allowed: frames need a positive size")
    for name, plane in (("u", u), ("v", v)):
        if plane.shape != expected:
            raise ValueError(f"{name} shape {plane.shape} is not allowed: y {y.shape} needs "
                             f"chroma planes {expected}")


__all__ = ["COLORSPACES_420", "Y4mVideo", "chroma_shape", "decode_y4m", "encode_y4m",
           "read_y4m", "write_y4m"]
