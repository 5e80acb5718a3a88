"""EpisodeMarks: the one NEXT_STEP autoreset bookkeeping."""

import numpy as np

from rwrl.envs.autoreset import EpisodeMarks


def test_an_ended_env_skips_one_step_then_counts_again():
    marks = EpisodeMarks(3)
    no = np.zeros(3, bool)
    stepped, finished = marks.step(no, np.array([True, False, False]))
    assert stepped.all() and finished.tolist() == [True, False, False]
    # env 0 autoresets now: it did not step and cannot finish, even if flags say so
    stepped, finished = marks.step(np.array([True, False, False]), np.array([False, False, True]))
    assert stepped.tolist() == [False, True, True]
    assert finished.tolist() == [False, False, True]
    stepped, _ = marks.step(no, no)
    assert stepped.tolist() == [True, True, False]


def test_an_explicit_reset_clears_the_pending_autoreset():
    marks = EpisodeMarks(2)
    marks.step(np.zeros(2, bool), np.ones(2, bool))
    marks.reset(np.array([True, False]))
    assert marks.resetting.tolist() == [False, True]
    marks.reset()
    assert not marks.resetting.any()
