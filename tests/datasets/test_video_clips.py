"""Clips rendered from the suite's tasks for the video corpus: named without rendering,
deterministic from their seed, a cut where the plan puts it."""

from __future__ import annotations

import numpy as np

from rwrl.datasets.video_clips import CAMERAS, RENDER_RECIPES, _plan, render_clip, rendered_clips

SMALL = {"frames": 4, "width": 32, "height": 24}


def test_names_and_kinds_come_without_rendering():
    clips = rendered_clips(seed=0, count=len(RENDER_RECIPES) + 1, **SMALL)
    names = [name for name, _, _ in clips]
    assert len(set(names)) == len(names)
    assert all(callable(render) for _, _, render in clips)  # nothing rendered yet
    assert [kind for _, kind, _ in clips] == [r.kind for r in RENDER_RECIPES] + [RENDER_RECIPES[0].kind]
    assert names[0].startswith("r00-walker-walk-") and names[-1].startswith(f"r{len(RENDER_RECIPES):02d}-walker-walk-")
    # the camera in the name is one of the domain's
    assert names[0].removeprefix("r00-walker-walk-") in CAMERAS["walker"]
    assert rendered_clips(seed=0, count=2, **SMALL)[1][0] == names[1]  # clip i whatever the count
    # another seed: other states, actions (and maybe cameras)
    assert _plan(0, 1, SMALL["frames"]) != _plan(0, 0, SMALL["frames"])


def test_a_cut_clip_is_deterministic_and_cuts_where_planned():
    cut = next(i for i, r in enumerate(RENDER_RECIPES) if r.kind == "cut")
    name, kind, frames = render_clip(cut, seed=0, **SMALL)
    assert kind == "cut" and frames.shape == (4, 24, 32, 3) and frames.dtype == np.uint8
    again = render_clip(cut, seed=0, **SMALL)[2]
    np.testing.assert_array_equal(again, frames)
    first_shot = _plan(cut, 0, SMALL["frames"])[2][0].frames  # frames of the first task
    change = np.abs(np.diff(frames.astype(int), axis=0)).mean(axis=(1, 2, 3))
    assert int(np.argmax(change)) + 1 == first_shot  # two tasks, two cameras: the largest change
