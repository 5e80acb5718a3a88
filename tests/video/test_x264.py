"""The real libx264 with per-frame QPs: the QP asked is the QP used, sizes and quality are the stream's."""

import math

import numpy as np
import pytest

from rwrl.video import x264

H, W, T = 48, 64, 8


def smooth_frames(seed: int = 0, count: int = T):
    """A smooth texture panning right by a pixel a frame, grey chroma."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    texture = gaussian_filter(rng.uniform(0, 255, (H, W + count)), 2.0).astype(np.uint8)
    grey = np.full((H // 2, W // 2), 128, np.uint8)
    return [(np.ascontiguousarray(texture[:, t : t + W]), grey, grey) for t in range(count)]


def test_every_frame_is_coded_at_the_qp_asked_and_returned_before_the_next():
    qps = [10, 51, 0, 30, 45, 20, 33, 27]
    with x264.X264Encoder(W, H) as encoder:
        results = []
        for frame, qp in zip(smooth_frames(), qps):
            results.append(encoder.encode(*frame, qp))
            assert results[-1].bits > 0  # zero latency: this frame's packet came back
    assert [r.qp for r in results] == qps
    assert [r.frame_type for r in results] == ["I"] + ["P"] * (T - 1)


def test_the_stream_decodes_to_the_reconstruction_whose_psnr_is_reported():
    qps = [12, 40, 25, 51, 18, 30, 36, 22]
    frames = smooth_frames(1)
    with x264.X264Encoder(W, H) as encoder:
        results = [encoder.encode(*frame, qp) for frame, qp in zip(frames, qps)]
        stream = encoder.close()
    assert sum(r.bits for r in results) == 8 * len(stream)
    decoded = x264.decode_luma(stream)
    assert len(decoded) == T
    for frame, plane, result in zip(frames, decoded, results):
        assert x264.psnr(frame[0], plane) == pytest.approx(result.psnr, abs=1e-9)


def test_a_frame_costs_fewer_bits_and_loses_quality_as_its_qp_rises():
    frames = smooth_frames(2, 1)
    coded = [x264.encode_frames(frames, [qp])[0] for qp in (10, 25, 40, 51)]
    bits = [r.bits for r in coded]
    quality = [r.psnr for r in coded]
    assert bits == sorted(bits, reverse=True) and len(set(bits)) == 4
    assert quality == sorted(quality, reverse=True)


def test_encoding_is_deterministic():
    frames = smooth_frames(3)
    first = x264.encode_frames(frames, [30] * T)
    again = x264.encode_frames(frames, [30] * T)
    assert [r.payload for r in first] == [r.payload for r in again]


def test_x264s_own_rate_control_lands_near_its_target():
    frames = smooth_frames(4, 30)
    for passes in (1, 2):
        results = x264.rate_control_encode(frames, 100.0, passes=passes)
        kbps = sum(r.bits for r in results) / 1000 / (len(frames) / 30)
        assert len(results) == len(frames)
        assert 0.3 * 100 < kbps < 2.0 * 100  # a 1-second clip: x264 misses by tens of percent


def test_ssim_is_one_for_equal_images_and_falls_with_noise():
    image = smooth_frames(5, 1)[0][0]
    noisy = np.clip(image + np.random.default_rng(0).normal(0, 20, image.shape), 0, 255)
    assert x264.ssim(image, image) == pytest.approx(1.0)
    assert 0 < x264.ssim(image, noisy.astype(np.uint8)) < 0.9
    assert x264.psnr(image, image) == x264.MAX_PSNR


@pytest.mark.parametrize("qp", [-1, 52, 2.5, True])
def test_a_qp_outside_the_encoders_range_is_refused_naming_it(qp):
    with x264.X264Encoder(W, H) as encoder, pytest.raises(ValueError, match=r"qp .* integer in \[0, 51\]"):
        encoder.encode(*smooth_frames(count=1)[0], qp)


def test_bad_sizes_and_settings_are_refused_in_one_line():
    with pytest.raises(ValueError, match="frame size 63x48"):
        x264.X264Encoder(63, 48)
    with pytest.raises(ValueError, match="preset 'warp'"):
        x264.X264Encoder(W, H, preset="warp")
    with pytest.raises(ValueError, match="kbps 0"):
        x264.rate_control_encode(smooth_frames(), 0)
    with pytest.raises(ValueError, match="qps has 2 values for 8 frames"):
        x264.encode_frames(smooth_frames(), [30, 30])
    with x264.X264Encoder(W, H) as encoder, pytest.raises(ValueError, match="plane shape"):
        encoder.encode(np.zeros((H, W + 2), np.uint8), *smooth_frames()[0][1:], 30)
    assert math.isnan(x264.encode_frames(smooth_frames(count=1), [30])[0].ssim)


def pyav_clamped_encode(frames, qp):
    """PyAV's own libx264 encode, its rate control clamped to ``qp`` (qpmin = qpmax = qp)."""
    import io

    import av

    buffer = io.BytesIO()
    container = av.open(buffer, "w", format="h264")
    stream = container.add_stream("libx264", rate=30)
    stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
    stream.options = {"preset": "veryfast", "tune": "zerolatency", "x264-params":
                      f"crf=23:qpmin={qp}:qpmax={qp}:qpstep=51:aq-mode=0:psy=0:threads=1"}
    packets = []
    for t, planes in enumerate(frames):
        frame = av.VideoFrame(W, H, "yuv420p")
        for plane, values in zip(frame.planes, planes):
            rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
            rows[: values.shape[0], : values.shape[1]] = values
        frame.pts = t
        packets += [bytes(p) for p in stream.encode(frame)]
    packets += [bytes(p) for p in stream.encode(None)]
    container.close()
    return packets


def nal_units(stream: bytes) -> list[bytes]:
    import re
    return [unit for unit in re.split(b"\x00\x00\x00\x01|\x00\x00\x01", stream) if unit]


def test_a_fixed_qp_encode_is_pyavs_own_encode_clamped_to_that_qp_but_for_x264s_settings_note():
    """The same SPS, PPS and slices, byte for byte; the streams differ only in x264's SEI,
    the text of its settings (qpmin/qpmax 0/51 here, 30/30 there)."""
    frames = smooth_frames(6)
    ours = b"".join(r.payload for r in x264.encode_frames(frames, [30] * T))
    theirs = b"".join(pyav_clamped_encode(frames, 30))
    kind = lambda unit: unit[0] & 0x1F  # noqa: E731
    coded = lambda stream: [u for u in nal_units(stream) if kind(u) != 6]  # noqa: E731
    assert coded(ours) == coded(theirs) and len(coded(ours)) == T + 2  # SPS, PPS, T slices
    notes = [[u for u in nal_units(s) if kind(u) == 6] for s in (ours, theirs)]
    assert b"qpmin=0 qpmax=51" in notes[0][0] and b"qpmin=30 qpmax=30" in notes[1][0]
    assert len(theirs) - len(ours) == len(notes[1][0]) - len(notes[0][0])
