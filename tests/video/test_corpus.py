"""The video corpus: BT.601 colours, clips, procedural kinds, the split by clip, the corpus on
disk (determinism, resuming, errors) and the `rwrl video` commands."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from rwrl.cli import app
from rwrl.video.clip import Clip, rgb_to_yuv420
from rwrl.video.corpus import (KINDS, RECIPES, assign_splits, build_corpus, clip_names,
                               default_root, load_clip, load_clips, load_corpus, procedural_clip,
                               procedural_corpus)

TINY = {"frames": 3, "width": 32, "height": 24}


# --- colour ------------------------------------------------------------------------------------

# Y = 16 + 219 Y', Y' = .299 R + .587 G + .114 B; Cb = 128 + 224 (B - Y') / 1.772;
# Cr = 128 + 224 (R - Y') / 1.402, with R, G, B in [0, 1]
@pytest.mark.parametrize("rgb, yuv", [
    ((0, 0, 0), (16, 128, 128)),  # black: the foot of each range
    ((255, 255, 255), (235, 128, 128)),  # white: Y' = 1, no colour difference
    ((255, 0, 0), (81, 90, 240)),  # red: Y 16 + 65.48; Cb 128 - 224 * .299 / 1.772 = 90.2; Cr 128 + 112
    ((0, 255, 0), (145, 54, 34)),  # green: Y 16 + 128.55; Cb 128 - 74.2; Cr 128 - 93.8
    ((0, 0, 255), (41, 240, 110)),  # blue: Y 16 + 24.97; Cb 128 + 112; Cr 128 - 18.2
])
def test_known_colours_follow_bt601_limited_range(rgb, yuv):
    frames = np.broadcast_to(np.array(rgb, np.uint8), (2, 4, 6, 3)).copy()
    y, u, v = rgb_to_yuv420(frames)
    assert (y.shape, u.shape, v.shape) == ((2, 4, 6), (2, 2, 3), (2, 2, 3))
    assert [np.unique(y).tolist(), np.unique(u).tolist(), np.unique(v).tolist()] == [[c] for c in yuv]


def test_chroma_is_the_mean_of_each_2x2_block():
    frames = np.zeros((1, 2, 2, 3), np.uint8)
    frames[0, 0, :, 0] = 255  # top row red, bottom row black
    y, u, v = rgb_to_yuv420(frames)
    assert y[0].tolist() == [[81, 81], [16, 16]]
    # mean of red's and black's chroma: Cb 128 - 37.8 / 2 = 109.1, Cr 128 + 112 / 2 = 184
    assert (u[0, 0, 0], v[0, 0, 0]) == (109, 184)


@pytest.mark.parametrize("kwargs, match", [
    ({"name": "a b"}, r"clip name 'a b' is not allowed"),
    ({"fps": 0}, r"clip c: fps = 0 is not allowed: give a positive int"),
    ({"source": "camera"}, r"clip c: source 'camera' is not allowed: use one of procedural, rendered"),
    ({"kind": ""}, r"clip c: kind '' is not allowed"),
    ({"y": np.zeros((1, 5, 8), np.uint8)}, r"clip c: y shape \(1, 5, 8\) is not allowed: give T >= 1 "
                                            r"frames of even height and width"),
    ({"u": np.zeros((1, 3, 3), np.uint8)}, r"clip c: u shape \(1, 3, 3\) is not allowed: y \(1, 6, 8\) "
                                            r"needs \(1, 3, 4\)"),
    ({"v": np.zeros((1, 3, 4), np.float32)}, r"clip c: v is not allowed: give a \(T, H, W\) uint8"),
])
def test_a_bad_clip_is_refused_in_one_line(kwargs, match):
    fields = dict(name="c", fps=30, y=np.zeros((1, 6, 8), np.uint8), u=np.zeros((1, 3, 4), np.uint8),
                  v=np.zeros((1, 3, 4), np.uint8), source="procedural", kind="pan")
    with pytest.raises(ValueError, match=match):
        Clip(**{**fields, **kwargs})


def test_clip_frame_and_sizes():
    clip = procedural_clip(0, **TINY)
    assert (clip.num_frames, clip.height, clip.width, clip.fps) == (3, 24, 32, 30)
    y, u, v = clip.frame(2)
    assert y is not None and np.shares_memory(y, clip.y) and u.shape == v.shape == (12, 16)
    with pytest.raises(IndexError, match=r"frame 3 is out of range \[0, 3\)"):
        clip.frame(3)


# --- procedural kinds --------------------------------------------------------------------------

def test_every_kind_has_a_recipe():
    assert {recipe.kind for recipe in RECIPES} == set(KINDS)


@pytest.mark.parametrize("index", range(len(RECIPES)), ids=[r.label for r in RECIPES])
def test_each_recipe_makes_moving_varied_frames_from_its_seed(index):
    clip = procedural_clip(index, seed=3, frames=6, width=48, height=32)
    assert (clip.source, clip.kind, clip.name) == ("procedural", RECIPES[index].kind,
                                                    f"p{index:02d}-{RECIPES[index].label}")
    assert clip.y.std() > 10 and clip.u.std() > 1  # textured, coloured
    assert np.abs(np.diff(clip.y.astype(int), axis=0)).mean(axis=(1, 2)).min() > 0  # every frame moves
    again = procedural_clip(index, seed=3, frames=6, width=48, height=32)
    np.testing.assert_array_equal(again.y, clip.y)
    np.testing.assert_array_equal(again.v, clip.v)
    assert not np.array_equal(procedural_clip(index, seed=4, frames=6, width=48, height=32).y, clip.y)


def _frame_change(clip: Clip) -> np.ndarray:
    """Mean absolute luma change from each frame to the next, levels."""
    return np.abs(np.diff(clip.y.astype(int), axis=0)).mean(axis=(1, 2))


def test_temporal_noise_grows_with_sigma():
    labels = [r.label for r in RECIPES]
    change = [_frame_change(procedural_clip(labels.index(f"noise{s}"), frames=4, width=64, height=48)).mean()
              for s in (2, 8, 24)]
    # RGB noise of std s reaches luma with std s_y = 219/255 * |(.299, .587, .114)| s = 0.574 s;
    # the difference of two frames' noise has std sqrt(2) s_y and mean |.| 2 s_y / sqrt(pi) = 0.647 s
    expected = 2 * (219 / 255) * np.linalg.norm([0.299, 0.587, 0.114]) / np.sqrt(np.pi) * np.array([2, 8, 24])
    assert change[0] < change[1] < change[2]
    # sigma 2: motion adds to it; sigma 8 and 24: the noise dominates
    np.testing.assert_allclose(change[1:], expected[1:], rtol=0.2)


def test_a_cut_is_the_largest_change_and_lies_in_the_middle_third():
    cut = [r.label for r in RECIPES].index("cut")
    for seed in range(3):
        change = _frame_change(procedural_clip(cut, seed, frames=12, width=64, height=48))
        at = int(np.argmax(change)) + 1  # the first frame of the second scene
        assert 4 <= at <= 8
        assert change[at - 1] > 2 * np.median(change)


def test_a_clip_is_the_same_in_a_corpus_of_any_size():
    small, large = procedural_corpus(count=2, **TINY), procedural_corpus(count=9, **TINY)
    assert [c.name for c in large][:2] == [c.name for c in small]
    np.testing.assert_array_equal(large[1].y, small[1].y)
    assert [c.name for c in large][8] == "p08-pan"  # the recipes cycle


# --- the split ---------------------------------------------------------------------------------

def test_the_split_is_by_clip_fixed_and_holds_out_each_source():
    clips = [(f"p{i}", "procedural") for i in range(8)] + [("r0", "rendered"), ("r1", "rendered")]
    splits = assign_splits(clips, seed=0)
    assert splits == assign_splits(list(reversed(clips)), seed=0)  # order does not matter
    test = {name for name, split in splits.items() if split == "test"}
    assert len(test) == 3  # round(8 / 4) = 2 procedural, max(1, round(2 / 4)) = 1 rendered
    assert {name[0] for name in test} == {"p", "r"}
    # a source's split does not depend on the other source's clips
    only_procedural = assign_splits(clips[:8], seed=0)
    assert only_procedural == {n: s for n, s in splits.items() if n.startswith("p")}
    assert any(assign_splits(clips, seed=s) != splits for s in range(1, 5))


def test_procedural_corpus_of_a_split():
    test = procedural_corpus(count=8, split="test", **TINY)
    train = procedural_corpus(count=8, split="train", **TINY)
    assert len(test) == 2 and len(train) == 6
    assert not {c.name for c in test} & {c.name for c in train}
    with pytest.raises(ValueError, match=r"split 'dev' is not allowed"):
        procedural_corpus(count=8, split="dev", **TINY)


# --- the corpus on disk ------------------------------------------------------------------------

class FakeRendered:
    """A rendered-clip source: flat colour clips, counting the renders asked for."""

    def __init__(self, count=2):
        self.count, self.calls, self.renders = count, [], 0

    def __call__(self, *, seed, frames, width, height, fps):
        self.calls.append(dict(seed=seed, frames=frames, width=width, height=height, fps=fps))

        def render(i):
            self.renders += 1
            return np.full((frames, height, width, 3), 40 * i + seed % 7, np.uint8)
        # the first clip as an array, the others lazily, as build_corpus takes both
        return [(f"r{i}", "flat", render(i) if i == 0 else (lambda i=i: render(i)))
                for i in range(self.count)]


def _shas(root) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_build_writes_clips_and_a_manifest(tmp_path):
    rendered = FakeRendered()
    lines = []
    manifest = build_corpus(tmp_path, seed=1, num_procedural=4, rendered=rendered, progress=lines.append, **TINY)
    assert rendered.calls == [dict(seed=1, frames=3, width=32, height=24, fps=30)]
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest == load_corpus(tmp_path)
    assert {k: manifest[k] for k in ("version", "seed", "width", "height", "fps", "frames", "complete")} == \
        {"version": 1, "seed": 1, "width": 32, "height": 24, "fps": 30, "frames": 3, "complete": True}
    assert [c["name"] for c in manifest["clips"]] == ["p00-pan", "p01-zoom", "p02-noise2", "p03-noise8",
                                                      "r0", "r1"]
    for entry in manifest["clips"]:
        assert hashlib.sha256((tmp_path / entry["file"]).read_bytes()).hexdigest() == entry["sha256"]
    assert {(c["source"], c["split"]) for c in manifest["clips"]} >= {("procedural", "test"),
                                                                      ("rendered", "test")}
    assert len(lines) == 6 and re.fullmatch(r"\[1/6\] p00-pan: procedural pan, written \(\d+\.\d\d s\)",
                                            lines[0])
    clip = load_clip(tmp_path, "p01-zoom")
    expected = procedural_clip(1, seed=1, **TINY)
    np.testing.assert_array_equal(clip.y, expected.y)
    np.testing.assert_array_equal(clip.u, expected.u)
    assert (clip.source, clip.kind, clip.fps) == ("procedural", "zoom", 30)
    flat = load_clip(tmp_path, "r1")
    assert (flat.source, flat.kind) == ("rendered", "flat") and flat.y.shape == (3, 24, 32)
    assert sorted(clip_names(tmp_path, "train") + clip_names(tmp_path, "test")) == sorted(clip_names(tmp_path))
    assert [c.name for c in load_clips(tmp_path, "test")] == clip_names(tmp_path, "test")


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    for folder, seed in (("a", 0), ("b", 0), ("c", 1)):
        build_corpus(tmp_path / folder, seed=seed, num_procedural=len(RECIPES), rendered=FakeRendered(), **TINY)
    assert _shas(tmp_path / "a") == _shas(tmp_path / "b")
    a, c = _shas(tmp_path / "a"), _shas(tmp_path / "c")
    assert all(a[name] != c[name] for name in a if name.startswith("p"))


def test_a_build_again_keeps_the_clips_and_resumes_an_interrupted_one(tmp_path):
    build_corpus(tmp_path, num_procedural=3, rendered=FakeRendered(), **TINY)
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "clips").iterdir()}
    rendered, lines = FakeRendered(), []
    build_corpus(tmp_path, num_procedural=3, rendered=rendered, progress=lines.append, **TINY)
    assert rendered.renders == 1  # only the clip given as an array; the lazy one was not rendered
    assert all(", kept (" in line for line in lines)
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "clips").iterdir()} == before
    # an interrupted build: a manifest of the clips written so far, one clip file lost
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["complete"], manifest["clips"] = False, manifest["clips"][:2]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "clips" / "p01-zoom.y4m").unlink()
    with pytest.raises(ValueError, match=r"the corpus is incomplete \(2 clips written\): run "
                                         r"`rwrl video corpus --out .*` to finish it"):
        load_corpus(tmp_path)
    lines.clear()
    build_corpus(tmp_path, num_procedural=3, rendered=FakeRendered(), progress=lines.append, **TINY)
    status = [line.split(", ")[1].split(" (")[0] for line in lines]
    # p01 is made again; p02 and the rendered ones were not in the manifest, so they are made and
    # found equal to their files: not rewritten
    assert status == ["kept", "written", "unchanged", "unchanged", "unchanged"]
    assert load_corpus(tmp_path)["complete"] is True
    # another size: nothing is kept
    lines.clear()
    build_corpus(tmp_path, num_procedural=1, progress=lines.append, **{**TINY, "frames": 2})
    assert ", written (" in lines[0]


def test_a_missing_corpus_says_how_to_build_it(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_corpus(tmp_path / "none")
    assert str(info.value) == (f"{tmp_path / 'none' / 'manifest.json'}: no video corpus there: "
                               f"run `rwrl video corpus --out {tmp_path / 'none'}`")


def test_a_damaged_corpus_is_named_in_one_line(tmp_path):
    build_corpus(tmp_path, num_procedural=2, **TINY)
    with pytest.raises(ValueError, match=r"manifest.json: no clip 'p09-x' \(`rwrl video clips --root"):
        load_clip(tmp_path, "p09-x")
    path = tmp_path / "clips" / "p00-pan.y4m"
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ValueError, match=r"p00-pan.y4m: does not match its sha256 in manifest.json "
                                         r"\(changed or damaged\): run `rwrl video corpus --out "):
        load_clip(tmp_path, "p00-pan")
    path.unlink()
    with pytest.raises(ValueError, match=r"p00-pan.y4m: clip file missing: run `rwrl video corpus"):
        load_corpus(tmp_path)
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(ValueError, match=r"manifest.json: unreadable \("):
        load_corpus(tmp_path)


@pytest.mark.parametrize("kwargs, match", [
    ({"width": 33}, r"width = 33 is not allowed: 4:2:0 video needs an even size"),
    ({"frames": 0}, r"frames = 0 is not allowed: give an int >= 1"),
    ({"seed": -1}, r"seed = -1 is not allowed: give an int >= 0"),
    ({"num_procedural": 0}, r"the corpus would hold no clip"),
    ({"rendered": lambda **_: [("p00-pan", "x", None)]}, r"clip name 'p00-pan' is given twice"),
    ({"rendered": lambda **_: [("r", "x", np.zeros((3, 24, 32), np.uint8))]},
     r"rendered clip r: frames uint8 \(3, 24, 32\) are not allowed: give uint8 \(3, 24, 32, 3\)"),
])
def test_bad_build_arguments_are_refused(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_corpus(tmp_path, **{"num_procedural": 1, **TINY, **kwargs})


def test_default_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RWRL_VIDEO_CORPUS", str(tmp_path))
    assert default_root() == tmp_path
    monkeypatch.delenv("RWRL_VIDEO_CORPUS")
    assert default_root().parts[-3:] == (".cache", "rwrl", "video-corpus")


# --- the commands ------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_builds_and_lists_a_tiny_corpus(tmp_path):
    root = tmp_path / "corpus"
    result = runner.invoke(app, ["video", "corpus", "--out", str(root), "--frames", "4", "--procedural", "3",
                                 "--rendered", "1", "--width", "32", "--height", "24"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split(":")[0] for line in lines[:4]] == ["[1/4] p00-pan", "[2/4] p01-zoom",
                                                          "[3/4] p02-noise2", "[4/4] r00-walker-walk-side"]
    # 3 procedural: round(0.75) = 1 held out; the one rendered clip is held out
    assert lines[4] == f"corpus: {root} (4 clips, 32x24, 4 frames at 30 fps): 2 train, 2 test"
    assert lines[5] == f"manifest: {root / 'manifest.json'}"
    assert load_clip(root, "r00-walker-walk-side").source == "rendered"
    listed = runner.invoke(app, ["video", "clips", "--root", str(root), "--split", "test"])
    assert listed.exit_code == 0, listed.output
    rows = listed.output.splitlines()
    assert len(rows) == 3 and rows[-1] == f"2 clips (32x24, 4 frames at 30 fps) in {root}"
    assert {row.split()[2] for row in rows[:2]} == {"procedural", "rendered"}


@pytest.mark.parametrize("args, match", [
    (["video", "clips", "--root", "{tmp}/none"], r"^error: .*manifest.json: no video corpus there: run "
                                                  r"`rwrl video corpus --out .*none`$"),
    (["video", "clips", "--root", "{tmp}", "--split", "dev"], r"^error: --split 'dev' is not allowed"),
    (["video", "corpus", "--out", "{tmp}/c", "--width", "33", "--rendered", "0"],
     r"^error: width = 33 is not allowed: 4:2:0 video needs an even size$"),
    (["video", "corpus", "--out", "{tmp}/c", "--frames", "0"], r"^error: Invalid value for '--frames'"),
])
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, args, match):
    result = runner.invoke(app, [a.replace("{tmp}", str(tmp_path)) for a in args])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert re.search(match, lines[0]), lines[0]
