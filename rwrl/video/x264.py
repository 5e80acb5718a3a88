"""libx264, the real H.264 encoder, with the quantiser of every frame chosen from outside.

The rate-control environment needs what an encoder's own rate control has:
set the quantiser (QP) of frame t, encode it, and see its size and quality
before frame t + 1 is decided. This module drives the libx264 that PyAV ships
(``av.libs/libx264-*.so``, x264 build 165) through its C API with ``ctypes``.

Why not PyAV's encoder API: FFmpeg's libx264 wrapper takes one rate-control
setting for the whole stream and has no per-frame quantiser. x264's own
command line has one (``--qpfile``), but that is the CLI's: it fills the
picture's ``i_qpplus1`` field frame by frame, and ``qpfile`` passed through
FFmpeg's ``x264-params`` is ignored (measured: the same bytes for QPs 10..51 and
for the default). So this module fills ``i_qpplus1`` itself, as the CLI does.

Settings, each needed for "the chosen QP is the QP used, and its size comes back
before the next decision":

* rate control in CRF mode with every frame's QP forced: in CQP mode x264 clips
  a forced QP to [qp_I, qp_B] around its constant (measured: 10 -> 27, 50 -> 33);
  ``qpmin 0``, ``qpmax 51``, ``qpstep 51`` so nothing clips a step;
* ``aq-mode 0`` (no per-macroblock offsets: every macroblock at the frame's QP),
  ``psy 0`` (x264's ``--tune psnr``: decisions by distortion, as the reward is PSNR);
* zero latency (``--tune zerolatency``: no B-frames, no lookahead, no frame
  threads): each ``encode`` returns that frame's packet;
* ``threads 1``: deterministic, and the env batches clips rather than threads.

``FrameResult.qp`` is the QP x264 reports for the coded picture
(``pic_out.i_qpplus1 - 1``), and the tests check it against the request and
check the stream by decoding it with PyAV's H.264 decoder: the decoded luma
equals the reconstruction read here, so its PSNR is the one reported. Quality is
measured on the luma plane (as rate-control papers report) of x264's own
reconstruction (``pic_out.img``, NV12): PSNR (capped at ``MAX_PSNR`` for a
lossless frame) and SSIM (Wang et al. 2004: 11 x 11 Gaussian window, sigma 1.5,
K1 0.01, K2 0.03). x264's ``--psnr``/``--ssim`` are not used: x264 turns them off
when its log is quiet.

Against PyAV's own API: a clip coded here at one QP Q for every frame is, NAL unit for
NAL unit (SPS, PPS, every slice), the stream PyAV's libx264 writes with the same
settings and its rate control clamped to Q (``x264-params``
``crf=23:qpmin=Q:qpmax=Q:qpstep=51:aq-mode=0:psy=0:threads=1``, preset veryfast, tune
zerolatency); the two differ only in x264's informational SEI, the text of its
settings (``qpmin=0 qpmax=51`` here), one byte at Q = 30 (tested). Per-frame QPs that
vary have no PyAV equivalent, which is why this module exists.

x264's two-pass and one-pass ABR rate control at a target bitrate (the baseline
an encoder ships with) run through the same class (``rate_control_encode``).
"""

from __future__ import annotations

import ctypes as C
import dataclasses
import functools
import glob
import math
import os
import tempfile
from typing import Sequence

import numpy as np

QP_MIN, QP_MAX = 0, 51
#: the PSNR of a frame reconstructed without loss (instead of infinity).
MAX_PSNR = 100.0
_BUILD = 165
_CSP_I420 = 0x0002
# x264_param_t: offsets of i_width and i_height (after cpu, i_threads,
# i_lookahead_threads, b_sliced_threads, b_deterministic, b_cpu_independent,
# i_sync_lookahead); checked at load against i_csp and i_bitdepth's defaults.
_WIDTH_AT, _HEIGHT_AT, _CSP_AT, _BITDEPTH_AT = 28, 32, 36, 40
_PARAM_BYTES = 16384  # x264_param_t is about 1 KB; room to spare, zeroed
_TYPES = {1: "I", 2: "I", 3: "P", 4: "B", 5: "B"}  # X264_TYPE_IDR, I, P, BREF, B


class _Nal(C.Structure):
    _fields_ = [("i_ref_idc", C.c_int), ("i_type", C.c_int), ("b_long_startcode", C.c_int),
                ("i_first_mb", C.c_int), ("i_last_mb", C.c_int), ("i_payload", C.c_int),
                ("p_payload", C.POINTER(C.c_uint8)), ("i_padding", C.c_int)]


class _Image(C.Structure):
    _fields_ = [("i_csp", C.c_int), ("i_plane", C.c_int), ("i_stride", C.c_int * 4),
                ("plane", C.POINTER(C.c_uint8) * 4)]


class _Properties(C.Structure):
    _fields_ = [("quant_offsets", C.c_void_p), ("quant_offsets_free", C.c_void_p),
                ("mb_info", C.c_void_p), ("mb_info_free", C.c_void_p),
                ("f_ssim", C.c_double), ("f_psnr_avg", C.c_double), ("f_psnr", C.c_double * 3),
                ("f_crf_avg", C.c_double)]


class _Picture(C.Structure):
    # the leading fields of x264_picture_t; the tail (HRD timing, SEI, opaque) as room
    _fields_ = [("i_type", C.c_int), ("i_qpplus1", C.c_int), ("i_pic_struct", C.c_int),
                ("b_keyframe", C.c_int), ("i_pts", C.c_int64), ("i_dts", C.c_int64),
                ("param", C.c_void_p), ("img", _Image), ("prop", _Properties),
                ("tail", C.c_uint8 * 512)]


@functools.cache
def _library() -> C.CDLL:
    """Load PyAV's libx264 and check the struct offsets this module assumes."""
    import av  # the wheel that ships libx264

    found = sorted(glob.glob(os.path.join(os.path.dirname(av.__file__), os.pardir, "av.libs",
                                          "libx264-*")))
    if not found:
        raise RuntimeError("PyAV's bundled libx264 was not found: the rate-control env needs "
                           "the 'av' wheel from PyPI (pip install av)")
    lib = C.CDLL(found[0])
    opener = getattr(lib, f"x264_encoder_open_{_BUILD}", None)
    if opener is None:
        raise RuntimeError(f"{found[0]} is not x264 build {_BUILD}: its structs may differ")
    opener.restype = C.c_void_p
    lib.x264_encoder_encode.argtypes = [C.c_void_p, C.POINTER(C.POINTER(_Nal)),
                                        C.POINTER(C.c_int), C.POINTER(_Picture),
                                        C.POINTER(_Picture)]
    lib.x264_encoder_close.argtypes = [C.c_void_p]
    lib.x264_encoder_delayed_frames.argtypes = [C.c_void_p]
    lib.x264_picture_clean.argtypes = [C.POINTER(_Picture)]
    param = (C.c_uint8 * _PARAM_BYTES)()
    lib.x264_param_default(param)
    csp = C.c_int.from_buffer(param, _CSP_AT).value
    depth = C.c_int.from_buffer(param, _BITDEPTH_AT).value
    if (csp, depth) != (_CSP_I420, 8):
        raise RuntimeError(f"x264_param_t layout differs from build {_BUILD}'s "
                           f"(csp {csp}, bit depth {depth})")
    lib.rwrl_open = opener
    return lib


@dataclasses.dataclass(frozen=True)
class FrameResult:
    """One coded frame: its size, the QP x264 used, the quality of its reconstruction."""

    bits: int
    qp: int
    #: luma PSNR (dB) of the reconstruction against the source frame (<= MAX_PSNR).
    psnr: float
    #: luma SSIM of the reconstruction (``ssim``); NaN unless asked for (it costs time).
    ssim: float
    #: 'I' or 'P' ('B' never: zero latency).
    frame_type: str
    #: the frame's NAL units, Annex B (headers before the first frame's slices).
    payload: bytes


def check_qp(qp: int) -> int:
    """Return ``qp`` as an int, or raise a ValueError naming it unless in [QP_MIN, QP_MAX]."""
    if isinstance(qp, (bool, np.bool_)) or not float(qp).is_integer():
        raise ValueError(f"qp {qp!r} is not allowed: an integer in [{QP_MIN}, {QP_MAX}]")
    if not QP_MIN <= int(qp) <= QP_MAX:
        raise ValueError(f"qp {int(qp)} is not allowed: an integer in [{QP_MIN}, {QP_MAX}]")
    return int(qp)


class X264Encoder:
    """One H.264 stream: ``encode(y, u, v, qp)`` frame by frame, ``close()`` for the bytes.

    Args:
      width, height: frame size (even).
      fps: frame rate (for the stream's timing and the rate-control modes' bitrates).
      preset: x264's speed preset ('ultrafast' .. 'placebo').
      keyint: frames between IDR frames (the first frame is one).
      rate_control: None (every frame's QP is chosen: ``encode(..., qp)``), or
        ``("abr", kbps, pass_number, stats_path)``: x264's own rate control at
        ``kbps`` (pass 0: one-pass ABR; pass 1 and 2: two-pass, stats in the file).
    """

    def __init__(self, width: int, height: int, *, fps: int = 30, preset: str = "veryfast",
                 keyint: int = 250, rate_control: tuple | None = None):
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ValueError(f"frame size {width}x{height} is not allowed: positive and even")
        self.width, self.height = int(width), int(height)
        self._lib = lib = _library()
        param = (C.c_uint8 * _PARAM_BYTES)()
        if lib.x264_param_default_preset(param, preset.encode(), b"zerolatency") < 0:
            raise ValueError(f"preset {preset!r} is not allowed: one of x264's presets "
                             "(ultrafast, superfast, veryfast, faster, fast, medium, slow, ...)")
        C.c_int.from_buffer(param, _WIDTH_AT).value = self.width
        C.c_int.from_buffer(param, _HEIGHT_AT).value = self.height
        options = {"fps": str(int(fps)), "keyint": str(int(keyint)), "threads": "1",
                   "bframes": "0", "aq-mode": "0", "psy": "0",
                   "qpmin": str(QP_MIN), "qpmax": str(QP_MAX), "qpstep": str(QP_MAX),
                   "log": "-1"}
        self.forced = rate_control is None
        if self.forced:
            options["crf"] = "23"  # its value never matters: every frame's QP is forced
        else:
            _, kbps, pass_number, stats = rate_control
            options["bitrate"] = str(int(round(kbps)))
            if pass_number:
                options.update({"pass": str(pass_number), "stats": str(stats)})
        for key, value in options.items():
            if lib.x264_param_parse(param, key.encode(), value.encode()) != 0:
                raise ValueError(f"x264 refused option {key}={value}")
        lib.x264_param_apply_profile(param, b"high")
        self._handle = lib.rwrl_open(param)
        if not self._handle:
            raise RuntimeError(f"x264 could not open an encoder for {width}x{height}")
        self._param = param
        self._in, self._out = _Picture(), _Picture()
        if lib.x264_picture_alloc(C.byref(self._in), _CSP_I420, self.width, self.height) < 0:
            raise MemoryError("x264_picture_alloc failed")
        self._planes = [self._plane_view(i, h, w) for i, (h, w) in enumerate(
            [(self.height, self.width)] + [(self.height // 2, self.width // 2)] * 2)]
        self._frames = 0
        self._chunks: list[bytes] = []

    def _plane_view(self, index: int, h: int, w: int) -> np.ndarray:
        stride = self._in.img.i_stride[index]
        full = np.ctypeslib.as_array(self._in.img.plane[index], shape=(h * stride,))
        return full.reshape(h, stride)[:, :w]

    def encode(self, y: np.ndarray, u: np.ndarray, v: np.ndarray,
               qp: int | None = None, *, with_ssim: bool = False) -> FrameResult:
        """Encode the next frame (planes uint8 (H, W), (H/2, W/2), (H/2, W/2)) at ``qp``."""
        if self._handle is None:
            raise RuntimeError("encode() after close()")
        if self.forced:
            if qp is None:
                raise ValueError("qp is required: this encoder's QPs are chosen per frame")
            qp = check_qp(qp)
        elif qp is not None:
            raise ValueError("qp is not allowed: this encoder runs x264's own rate control")
        for view, plane in zip(self._planes, (y, u, v)):
            if plane.shape != view.shape:
                raise ValueError(f"plane shape {plane.shape} is not allowed: expected {view.shape}")
            view[...] = plane
        self._in.i_qpplus1 = 0 if qp is None else qp + 1
        self._in.i_type = 0  # X264_TYPE_AUTO
        self._in.i_pts = self._frames
        nal, count = C.POINTER(_Nal)(), C.c_int()
        size = self._lib.x264_encoder_encode(self._handle, C.byref(nal), C.byref(count),
                                             C.byref(self._in), C.byref(self._out))
        if size <= 0:
            raise RuntimeError(f"x264 returned {size} for frame {self._frames} (zero latency "
                               "should return every frame at once)")
        payload = b"".join(C.string_at(nal[i].p_payload, nal[i].i_payload)
                           for i in range(count.value))
        self._frames += 1
        self._chunks.append(payload)
        out = self._out
        recon = self.reconstruction()
        return FrameResult(bits=8 * len(payload), qp=out.i_qpplus1 - 1, psnr=psnr(y, recon),
                           ssim=ssim(y, recon) if with_ssim else math.nan,
                           frame_type=_TYPES.get(out.i_type, "?"), payload=payload)

    def reconstruction(self) -> np.ndarray:
        """Return a copy of the last coded frame's luma as the decoder sees it, (H, W) uint8."""
        image = self._out.img
        stride = image.i_stride[0]
        full = np.ctypeslib.as_array(image.plane[0], shape=(self.height * stride,))
        return full.reshape(self.height, stride)[:, : self.width].copy()

    def close(self) -> bytes:
        """Free the encoder; return the whole stream (Annex B)."""
        if self._handle is not None:
            self._lib.x264_picture_clean(C.byref(self._in))
            self._lib.x264_encoder_close(self._handle)
            self._handle = None
        return b"".join(self._chunks)

    def __enter__(self) -> "X264Encoder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):  # an encoder left open frees its C memory with the object
        try:
            self.close()
        except Exception:
            pass


Frames = Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]


def encode_frames(frames: Frames, qps: Sequence[int], *, fps: int = 30,
                  preset: str = "veryfast", keyint: int = 250) -> list[FrameResult]:
    """Encode ``frames`` (a sequence of (y, u, v)) with frame t at ``qps[t]``."""
    if len(qps) != len(frames):
        raise ValueError(f"qps has {len(qps)} values for {len(frames)} frames: one per frame")
    height, width = frames[0][0].shape
    with X264Encoder(width, height, fps=fps, preset=preset, keyint=keyint) as encoder:
        return [encoder.encode(*frame, qp) for frame, qp in zip(frames, qps)]


def rate_control_encode(frames: Frames, kbps: float, *, passes: int = 2, fps: int = 30,
                        preset: str = "veryfast", keyint: int = 250) -> list[FrameResult]:
    """Encode ``frames`` with x264's own rate control at ``kbps``: two-pass (default) or ABR.

    The baseline an encoder ships with: ``passes=2`` is x264's two-pass (the first
    pass writes its statistics, the second spends the budget with them);
    ``passes=1`` is one-pass ABR. Same settings as the forced-QP encoder (zero
    latency, no AQ, psy off) so that the comparison is of rate control alone.
    """
    if not kbps > 0 or not math.isfinite(kbps):
        raise ValueError(f"kbps {kbps!r} is not allowed: a positive bitrate")
    if passes not in (1, 2):
        raise ValueError(f"passes {passes!r} is not allowed: 1 (ABR) or 2 (two-pass)")
    height, width = frames[0][0].shape
    options = dict(fps=fps, preset=preset, keyint=keyint)
    if passes == 1:
        with X264Encoder(width, height, rate_control=("abr", kbps, 0, None), **options) as enc:
            return [enc.encode(*frame) for frame in frames]
    with tempfile.TemporaryDirectory(prefix="rwrl-x264-") as tmp:
        stats = os.path.join(tmp, "x264.stats")
        for pass_number in (1, 2):
            with X264Encoder(width, height, rate_control=("abr", kbps, pass_number, stats),
                             **options) as enc:
                results = [enc.encode(*frame) for frame in frames]
    return results


def decode_luma(stream: bytes) -> list[np.ndarray]:
    """Decode an H.264 Annex B stream with PyAV (FFmpeg's decoder); return each frame's Y plane."""
    import av

    codec = av.CodecContext.create("h264", "r")
    planes = []
    for packet in codec.parse(stream) + codec.parse(None):
        planes += [frame.to_ndarray()[: frame.height] for frame in codec.decode(packet)]
    planes += [frame.to_ndarray()[: frame.height] for frame in codec.decode(None)]
    return planes


def psnr(reference: np.ndarray, decoded: np.ndarray) -> float:
    """Return the PSNR (dB, peak 255) of ``decoded`` against ``reference``, at most MAX_PSNR."""
    mse = np.mean((reference.astype(np.float64) - decoded.astype(np.float64)) ** 2)
    return MAX_PSNR if mse == 0 else min(MAX_PSNR, 10.0 * math.log10(255.0 ** 2 / mse))


def ssim(reference: np.ndarray, decoded: np.ndarray) -> float:
    """Return the mean SSIM of two uint8 images (Wang et al. 2004; Gaussian 11 x 11, sigma 1.5)."""
    from scipy.ndimage import gaussian_filter

    x, y = reference.astype(np.float64), decoded.astype(np.float64)
    blur = functools.partial(gaussian_filter, sigma=1.5, truncate=3.5, mode="reflect")
    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ratio = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(ratio.mean())
