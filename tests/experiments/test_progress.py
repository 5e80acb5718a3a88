"""Progress: a bar on a terminal, bounded plain lines in a log; rates, ETA, last evaluation."""

from __future__ import annotations

import io
import time

from rwrl.storage.progress_reporter import ProgressReporter
from rwrl.experiments.run_progress import Progress, Stopwatch


def test_the_bar_shows_rates_eta_and_the_last_evaluation():
    out = io.StringIO()
    bar = Progress(total=1000, initial=200, file=out, terminal=True)
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


class _Log(io.StringIO):
    """A file or pipe: not a terminal (what a batch job's log is)."""

    def isatty(self) -> bool:
        return False


def test_a_log_gets_a_bounded_number_of_plain_lines():
    out = _Log()
    progress = Progress(total=30_000, initial=0, file=out)  # terminal=None: asks the stream
    progress.set_eval_return(12.5)
    for steps in range(0, 30_001, 8):  # a 30k-step run, one update per vector step of 8
        progress.update(env_steps=steps, updates=steps // 8)
    progress.close()
    text = out.getvalue()
    assert "\r" not in text and text.endswith("\n")
    lines = text.splitlines()
    # One line per 5 % crossed: 5 %, 10 %, ..., 100 %; none repeated at close.
    assert len(lines) == 20, lines
    assert lines[0].startswith("train:   5% 1504/30000 step |")
    assert lines[-1].startswith("train: 100% 30000/30000 step |")
    assert all(" step/s | elapsed " in line and "| ETA " in line for line in lines)
    assert "eval=12.5" in lines[-1]


def test_a_resumed_job_reports_from_where_it_stands():
    out = _Log()
    progress = ProgressReporter(100, initial=42, desc="tasks", unit="task", file=out, every=0.25)
    progress.update(49)  # below the next quarter (50): nothing yet
    assert out.getvalue() == ""
    progress.update(51)
    progress.close()  # moved no further: no second line
    assert out.getvalue().count("\n") == 1 and "tasks:  51% 51/100 task" in out.getvalue()


def test_a_disabled_reporter_prints_nothing():
    out = _Log()
    progress = Progress(total=100, initial=0, enabled=False, file=out)
    progress.update(100, 1)
    progress.close()
    assert out.getvalue() == ""
