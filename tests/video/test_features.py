"""First-pass features: the real encoder's reference pass, luma statistics by hand, caching."""

import math

import numpy as np
import pytest

from rwrl.video import features as F
from rwrl.video.clip import Clip
from rwrl.video.corpus import procedural_corpus
from rwrl.video.x264 import encode_frames

H, W, T = 48, 64, 8


@pytest.fixture(scope="module")
def clips():
    return procedural_corpus(0, count=8, frames=T, width=W, height=H)


def frames_of(clip):
    return [clip.frame(t) for t in range(clip.num_frames)]


def column(table, name):
    return table[:, F.FEATURE_NAMES.index(name)]


def ramp_clip(offsets, name="ramp"):
    """Luma 2 x column + offset_t (no clipping: at most 126 + 80), grey chroma."""
    base = 2 * np.arange(W, dtype=np.uint8)
    y = np.stack([np.tile(base + np.uint8(o), (H, 1)) for o in offsets])
    u = v = np.full((len(offsets), H // 2, W // 2), 128, np.uint8)
    return Clip(name, 30, y, u, v, source="procedural", kind="flat")


def test_reference_columns_are_a_constant_qp_encode_by_the_real_encoder(clips):
    clip = clips[5]  # shapes: content changes every frame
    results = encode_frames(frames_of(clip), [F.REFERENCE_QP] * T)
    table = F.clip_features(clip).table
    bits = np.array([r.bits for r in results], np.float64)
    # (log2(bits per pixel) + 4) / 4: 0 at 1/16 bit per pixel
    np.testing.assert_array_equal(column(table, "ref_log_bpp"), (np.log2(bits / (W * H)) + 4) / 4)
    np.testing.assert_array_equal(column(table, "ref_psnr"),
                                  (np.array([r.psnr for r in results]) - 40) / 10)
    assert column(table, "intra").tolist() == [float(r.frame_type == "I") for r in results]
    encode = F.constant_qp_encode(clip, 36)
    direct = encode_frames(frames_of(clip), [36] * T)
    assert encode.bits.tolist() == [r.bits for r in direct]
    assert encode.total_bits == sum(r.bits for r in direct)


def test_luma_statistics_of_a_hand_made_clip():
    clip = ramp_clip([0, 10, 20, 70, 80])
    gradient, difference, cut = F.luma_statistics(clip.y)
    # horizontal steps of 2 grey levels, no vertical change: mean of (2, 0) = 1
    np.testing.assert_array_equal(gradient, [1.0] * 5)
    np.testing.assert_array_equal(difference, [0, 10, 10, 50, 10])
    # frame 0 always; frame 1 has no shot history; frame 2: 10 <= 3 x 10; frame 3:
    # 50 > 3 x mean(10, 10) = 30, a cut; frame 4 is its shot's second frame
    assert cut.tolist() == [True, False, False, True, False]
    table = F.clip_features(clip).table
    np.testing.assert_allclose(column(table, "spatial"), math.log2(2) / 8)
    np.testing.assert_allclose(column(table, "temporal"),
                               np.log2(1 + np.array([0, 10, 10, 50, 10])) / 8)
    assert column(table, "scene_change").tolist() == [1, 0, 0, 1, 0]


def test_features_are_finite_and_of_order_one_on_the_procedural_corpus(clips):
    for clip in clips:
        table = F.clip_features(clip).table
        assert table.shape == (T, len(F.FEATURE_NAMES))
        assert np.isfinite(table).all() and np.abs(table).max() <= 2.0, clip.name
        assert column(table, "intra")[0] == 1 and column(table, "scene_change")[0] == 1
    # no column is the same on every clip and frame
    stacked = np.concatenate([F.clip_features(c).table for c in clips])
    assert (stacked.std(axis=0) > 0).all()


def test_features_are_cached_by_content_not_by_name_alone():
    first = F.clip_features(ramp_clip([0, 5, 10, 15], name="same"))
    assert F.clip_features(ramp_clip([0, 5, 10, 15], name="same")) is first
    other = F.clip_features(ramp_clip([0, 40, 80, 120], name="same"))
    assert other is not first
    assert not np.array_equal(other.table, first.table)


def test_the_disk_cache_gives_back_the_same_features(tmp_path, clips):
    clip = clips[7]
    computed = F.clip_features(clip, cache_dir=tmp_path)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1 and files[0].name.startswith(f"{clip.name}-{W}x{H}x{T}-30fps-qp32-")
    F.clear_cache()
    read = F.clip_features(clip, cache_dir=tmp_path)
    assert read is not computed
    np.testing.assert_array_equal(read.table, computed.table)
    np.testing.assert_array_equal(read.reference.bits, computed.reference.bits)
    assert read.reference.total_bits == computed.reference.total_bits


def test_a_bad_reference_qp_is_one_line_naming_it(clips):
    with pytest.raises(ValueError, match=r"^qp 52 is not allowed: an integer in \[0, 51\]$"):
        F.clip_features(clips[0], reference_qp=52)
