"""The progress bar shows steps/s, updates/s, ETA and the last evaluation return."""

from __future__ import annotations

import io
import time

from rwrl.experiments.progress import Progress, Stopwatch


def test_the_bar_shows_rates_eta_and_the_last_evaluation():
    out = io.StringIO()
    bar = Progress(total=1000, initial=200, file=out)
    bar.set_eval_return(123.45)
    time.sleep(0.01)
    bar.update(env_steps=400, updates=50)
    bar.close()
    text = out.getvalue().rsplit("\r", 1)[-1]
    assert "400/1.00k" in text  # resumed at 200, now at 400 of 1000 env steps
    assert "step/s" in text and "<" in text  # tqdm's rate and remaining time (ETA)
    assert "upd/s=" in text and "eval=123.5" in text


def test_the_outside_learner_share_counts_compiles_as_learner_time():
    watch = Stopwatch({"learner": 6.0, "compile": 1.0, "env": 2.0, "total": 10.0})
    assert abs(watch.outside_learner_share() - 0.3) < 1e-12  # 1 - (6 + 1) / 10
