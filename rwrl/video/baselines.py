"""Rate-control baselines at a bit budget: the best constant QP, and x264's own two-pass.

The rate-control problem of Mao et al. (2020, arXiv 2012.05339): choose every
frame's QP so that the video's quality is highest while its total size stays
within a budget. Two reference answers, both with the real encoder:

* ``constant_qp_for_budget``: one QP for every frame, the lowest (best quality)
  whose total bits fit. The evolution-strategies teacher (``teacher.py``)
  starts from it, and beating it is the teacher's first test.
* ``two_pass``: x264's own two-pass rate control at the budget's bitrate. The
  paper's baseline is libvpx (VP9) two-pass VBR; this suite's encoder is
  libx264 (H.264), so x264's two-pass ABR is the stand-in: the same idea (a
  first pass measures every frame's complexity, the second spreads the budget
  over them), a different codec and rate controller, so numbers against it are
  not the paper's numbers. x264 takes the bitrate in whole kbit/s, so the
  target is ``round(budget_bits / duration / 1000)`` kbit/s; and a two-pass
  controller aims at the average bitrate, it does not promise to stay under it
  (``tests/video/test_baselines.py`` measures by how much it misses).

Bisection assumes that a clip's total bits do not increase with its constant
QP. That nearly holds for x264, but not exactly: a mode decision can flip
between neighbouring QPs (measured: on the 10-frame 64 x 48 static-then-noisy
clip of the tests, QP 47 costs 6440 bits and QP 46 6424). What the search does promise,
monotone or not: the QP returned fits the budget and the QP one below it does
not (both were encoded), unless the QP returned is QP_MIN. On a clip where bits
are not monotone a lower QP further down could also fit; the tests compare the
bisection with a scan of every QP.
"""

from __future__ import annotations

import dataclasses
import math

from rwrl.video.x264 import QP_MAX, QP_MIN, FrameResult, Frames, encode_frames, rate_control_encode


class CodedClip:
    """What a clip coded frame by frame adds up to (``results``: one FrameResult per frame)."""

    results: list[FrameResult]

    @property
    def total_bits(self) -> int:
        """Bits of the whole clip."""
        return sum(r.bits for r in self.results)

    @property
    def mean_psnr(self) -> float:
        """Mean luma PSNR (dB) over the frames."""
        return sum(r.psnr for r in self.results) / len(self.results)


@dataclasses.dataclass(frozen=True)
class ConstantQp(CodedClip):
    """The lowest constant QP whose encoding fits a budget, and that encoding."""

    #: the QP of every frame.
    qp: int
    #: one result per frame at ``qp``.
    results: list[FrameResult]
    #: the bit budget asked for (bits for the whole clip).
    budget_bits: float
    #: False when even QP_MAX overshoots the budget (``qp`` is then QP_MAX).
    within_budget: bool
    #: number of whole-clip encodes the search made.
    encodes: int


def check_budget(budget_bits: float) -> float:
    """Return ``budget_bits`` as a float; raise a ValueError naming it unless positive, finite."""
    if isinstance(budget_bits, bool) or not math.isfinite(budget_bits) or not budget_bits > 0:
        raise ValueError(f"budget_bits {budget_bits!r} is not allowed: a positive number of bits")
    return float(budget_bits)


def check_frames(frames: Frames) -> None:
    """Raise a ValueError unless ``frames`` holds at least one (y, u, v) frame."""
    if len(frames) == 0:
        raise ValueError("frames is empty: at least one (y, u, v) frame is needed")


def constant_qp_for_budget(frames: Frames, budget_bits: float, *, fps: int = 30,
                           preset: str = "veryfast", keyint: int = 250) -> ConstantQp:
    """Return the lowest constant QP whose whole-clip bits are within ``budget_bits``.

    Bisection over the integer QPs in [QP_MIN, QP_MAX]: about 2 + log2(52), so
    8 encodes of the clip. QP_MAX is tried first: if even it overshoots, it is
    returned with ``within_budget=False``.

    Args:
      frames: the clip, a sequence of (y, u, v) uint8 planes.
      budget_bits: the most bits the whole clip may take (> 0).
      fps, preset, keyint: the encoder's settings (``encode_frames``).
    """
    budget = check_budget(budget_bits)
    check_frames(frames)
    encoded: dict[int, list[FrameResult]] = {}

    def fits(qp: int) -> bool:
        encoded[qp] = encode_frames(frames, [qp] * len(frames), fps=fps, preset=preset,
                                    keyint=keyint)
        return sum(r.bits for r in encoded[qp]) <= budget

    if not fits(QP_MAX):
        return ConstantQp(QP_MAX, encoded[QP_MAX], budget, False, len(encoded))
    if fits(QP_MIN):
        return ConstantQp(QP_MIN, encoded[QP_MIN], budget, True, len(encoded))
    over, fit = QP_MIN, QP_MAX  # invariant: `over` overshoots, `fit` fits, both encoded
    while fit - over > 1:
        middle = (over + fit) // 2
        if fits(middle):
            fit = middle
        else:
            over = middle
    return ConstantQp(fit, encoded[fit], budget, True, len(encoded))


def two_pass(frames: Frames, budget_bits: float, fps: int = 30, *, preset: str = "veryfast",
             keyint: int = 250) -> list[FrameResult]:
    """Encode ``frames`` with x264's two-pass rate control at the bitrate of ``budget_bits``.

    The target is budget_bits / (len(frames) / fps) / 1000 kbit/s, rounded by
    x264 to a whole kbit/s (at least 1). Stand-in for the paper's libvpx
    two-pass VBR (module docstring). Returns one FrameResult per frame.
    """
    budget = check_budget(budget_bits)
    check_frames(frames)
    kbps = budget / (len(frames) / fps) / 1000.0
    if round(kbps) < 1:
        raise ValueError(f"budget_bits {budget_bits!r} is {kbps:.3g} kbit/s over "
                         f"{len(frames)} frames at {fps} fps: x264 needs at least 1 kbit/s")
    return rate_control_encode(frames, kbps, passes=2, fps=fps, preset=preset, keyint=keyint)
