"""YUV4MPEG2 files: exact round trips, the header errors, and FFmpeg (PyAV) reading ours and
writing what we read."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from rwrl.video.y4m import decode_y4m, encode_y4m, read_y4m, write_y4m


def _planes(frames=3, height=6, width=8, seed=0):
    rng = np.random.default_rng(seed)
    chroma = ((height + 1) // 2, (width + 1) // 2)
    return (rng.integers(0, 256, (frames, height, width), dtype=np.uint8),
            rng.integers(0, 256, (frames, *chroma), dtype=np.uint8),
            rng.integers(0, 256, (frames, *chroma), dtype=np.uint8))


@pytest.mark.parametrize("height, width, fps", [(6, 8, 30), (144, 176, Fraction(30000, 1001)),
                                                 (5, 7, 25)])  # odd: chroma rounds up (3, 4)
def test_round_trip_is_exact(tmp_path, height, width, fps):
    y, u, v = _planes(4, height, width)
    path = tmp_path / "clip.y4m"
    write_y4m(path, y, u, v, fps)
    video = read_y4m(path)
    assert video.fps == fps and video.colorspace == "420jpeg"
    for written, read in zip((y, u, v), (video.y, video.u, video.v)):
        np.testing.assert_array_equal(read, written)
    # header line + per frame "FRAME\n" and 1.5 bytes a pixel (even sizes)
    header = path.read_bytes().split(b"\n", 1)[0]
    assert path.stat().st_size == len(header) + 1 + 4 * (6 + y[0].size + 2 * u[0].size)


def test_writes_ffmpeg_header_for_yuv420p():
    y, u, v = _planes(1, 144, 176)
    header = encode_y4m(y, u, v, 30).split(b"\n", 1)[0]
    assert header == b"YUV4MPEG2 W176 H144 F30:1 Ip A1:1 C420jpeg XYSCSS=420JPEG XCOLORRANGE=LIMITED"


@pytest.mark.parametrize("header", [
    b"YUV4MPEG2 W8 H6 F30:1 Ip A0:0 C420jpeg XYSCSS=420JPEG",  # what FFmpeg writes
    b"YUV4MPEG2 W8 H6 F30:1 C420",  # x264's and the Xiph media's tag
    b"YUV4MPEG2 W8 H6 F30:1 C420mpeg2 XYSCSS=420MPEG2",
    b"YUV4MPEG2 W8 H6 F30:1 I? Xsomething",  # no C: 4:2:0 by definition; unknown interlacing
])
def test_reads_every_420_header(header):
    y, u, v = _planes(2)
    body = b"".join(b"FRAME Ixyz\n" + y[t].tobytes() + u[t].tobytes() + v[t].tobytes()
                    for t in range(2))  # frame lines may carry parameters
    video = decode_y4m(header + b"\n" + body)
    np.testing.assert_array_equal(video.y, y)
    np.testing.assert_array_equal(video.v, v)
    assert video.fps == 30


_GOOD = b"YUV4MPEG2 W8 H6 F30:1 Ip C420jpeg\n"
_FRAME = b"FRAME\n" + bytes(8 * 6 + 2 * 4 * 3)


@pytest.mark.parametrize("data, match", [
    (b"YUV4MPEG W8 H6 F30:1\n", r"not a y4m file \(it does not start with 'YUV4MPEG2 '\)"),
    (b"YUV4MPEG2 W8 H6 F30:1", r"header has no end of line"),
    (b"YUV4MPEG2 H6 F30:1\n", r"^x\.y4m: y4m header field W is missing$"),
    (b"YUV4MPEG2 W8 H6\n", r"header field F is missing"),
    (b"YUV4MPEG2 Wabc H6 F30:1\n", r"header field W: 'abc' is not a positive integer"),
    (b"YUV4MPEG2 W8 H0 F30:1\n", r"header field H: '0' is not a positive integer"),
    (b"YUV4MPEG2 W8 H6 F30\n", r"header field F: '30' is not a frame rate NUM:DEN"),
    (b"YUV4MPEG2 W8 H6 F30:0\n", r"header field F: '30:0' is not a frame rate"),
    (b"YUV4MPEG2 W8 H6 F30:1 It\n", r"header field I: 't' is not allowed: only progressive"),
    (b"YUV4MPEG2 W8 H6 F30:1 C444\n", r"header field C: '444' is not allowed: only 8-bit 4:2:0"),
    (b"YUV4MPEG2 W8 H6 F30:1 C420p10\n", r"header field C: '420p10' is not allowed"),
    (_GOOD + _FRAME + _FRAME[:-1], r"frame 1 is truncated: 71 of 72 bytes"),
    (_GOOD + _FRAME + b"FRAM\n", r"frame 1: expected a 'FRAME' line"),
])
def test_a_malformed_file_gives_one_line_naming_the_field(data, match):
    with pytest.raises(ValueError, match=match) as info:
        decode_y4m(data, source="x.y4m")
    assert "\n" not in str(info.value) and str(info.value).startswith("x.y4m: ")


@pytest.mark.parametrize("planes, match", [
    ((np.zeros((1, 6, 8), np.int16), np.zeros((1, 3, 4), np.uint8), np.zeros((1, 3, 4), np.uint8)),
     r"y is not allowed: give a \(T, H, W\) uint8 array, got int16"),
    ((np.zeros((1, 6, 8), np.uint8), np.zeros((1, 3, 3), np.uint8), np.zeros((1, 3, 4), np.uint8)),
     r"u shape \(1, 3, 3\) is not allowed: y \(1, 6, 8\) needs chroma planes \(1, 3, 4\)"),
])
def test_writing_bad_planes_is_refused(planes, match):
    with pytest.raises(ValueError, match=match):
        encode_y4m(*planes, fps=30)
    with pytest.raises(ValueError, match=r"fps = 0 is not allowed"):
        encode_y4m(*_planes(1), fps=0)


def _av_planes(frame) -> list[np.ndarray]:
    """The Y, U, V planes of a decoded PyAV frame, without the rows' padding."""
    return [np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, :p.width]
            for p in frame.planes]


def test_ffmpeg_reads_our_file_as_we_wrote_it(tmp_path):
    y, u, v = _planes(3, 144, 176)
    path = tmp_path / "ours.y4m"
    write_y4m(path, y, u, v, 30)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (container.format.name, stream.codec_context.pix_fmt) == ("yuv4mpegpipe", "yuv420p")
        assert (stream.width, stream.height, stream.average_rate) == (176, 144, 30)
        frames = list(container.decode(video=0))
    assert len(frames) == 3
    assert frames[0].color_range == 1  # AVCOL_RANGE_MPEG: limited, as XCOLORRANGE=LIMITED says
    for t, frame in enumerate(frames):
        for ours, theirs in zip((y[t], u[t], v[t]), _av_planes(frame)):
            np.testing.assert_array_equal(theirs, ours)


def test_we_read_a_file_ffmpeg_wrote(tmp_path):
    y, u, v = _planes(2, 16, 24)
    path = tmp_path / "theirs.y4m"
    with av.open(str(path), "w", format="yuv4mpegpipe") as container:
        stream = container.add_stream("rawvideo", rate=25)
        stream.width, stream.height, stream.pix_fmt = 24, 16, "yuv420p"
        for t in range(2):
            frame = av.VideoFrame.from_ndarray(
                np.concatenate([y[t].ravel(), u[t].ravel(), v[t].ravel()]).reshape(24, 24),
                format="yuv420p")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    video = read_y4m(path)
    assert video.fps == 25
    for written, read in zip((y, u, v), (video.y, video.u, video.v)):
        np.testing.assert_array_equal(read, written)
