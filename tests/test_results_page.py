"""Results pages: the markdown a benchmark writes beside its JSON (benchmarks/results_page.py)."""

import importlib
import json
import os
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import results_page  # noqa: E402

#: the pages written from committed JSON by benchmarks that measure and write JSON themselves.
GENERATED_PAGES = ("throughput.md", "learning.md", "sweep_throughput.md", "dataset_storage.md", "learner.md",
                   "versus_sbx.md", "bandits.md", "controller_selection.md", "distill_digits.md",
                   "realtime_distill.md")


def test_table_is_a_markdown_table_with_numbers_right_aligned_and_missing_cells_marked():
    lines = results_page.table(["agent", "return", "seeds"], [["d4pg", "858", 3], ["dmpo", None, 0]],
                               align="lr")
    assert "\n".join(lines) == (
        "| agent | return | seeds |\n"
        "|---|---:|---|\n"
        "| d4pg | 858 | 3 |\n"
        "| dmpo | – | 0 |")


@pytest.mark.parametrize("header, rows, align, match", [
    (["a", "b"], [["1"]], "", r"row \['1'\] has 1 cells for 2 columns"),
    (["a"], [["1"]], "c", r"align 'c': one of 'l' or 'r' per column of \['a'\]"),
    (["a"], [["1"]], "lr", r"align 'lr'"),
])
def test_table_refuses_rows_and_alignments_that_do_not_fit_the_header(header, rows, align, match):
    with pytest.raises(ValueError, match=match):
        results_page.table(header, rows, align)


def test_page_gives_command_date_machine_source_then_the_sections():
    text = results_page.render_page(
        "Speed", "python benchmarks/speed.py --out speed.json", "2026-12-06", "2 CPUs",
        [(None, ["Steps per second."]), ("Table", results_page.table(["n", "steps/s"], [[1, 10]], "rr"))],
        source="speed.json", rebuild="python benchmarks/speed.py --page-only --out speed.json")
    assert text == (
        "# Speed\n"
        "\n"
        "- Command: `python benchmarks/speed.py --out speed.json`\n"
        "- Date: 2026-12-06\n"
        "- Machine: 2 CPUs\n"
        "- Written from [`speed.json`](speed.json) by the benchmark; "
        "`python benchmarks/speed.py --page-only --out speed.json` rebuilds it without measuring.\n"
        "\n"
        "Steps per second.\n"
        "\n"
        "## Table\n"
        "\n"
        "| n | steps/s |\n"
        "|---:|---:|\n"
        "| 1 | 10 |\n")


def test_rewriting_a_page_replaces_the_benchmarks_part_and_keeps_the_notes_written_by_hand(tmp_path):
    path = tmp_path / "speed.md"
    results_page.write_page(path, "# Speed\n\n| 1 |\n")
    assert path.read_text() == "# Speed\n\n| 1 |\n"  # no notes yet: the text alone
    path.write_text(path.read_text() + "\n" + results_page.NOTES_MARKER + "\n\nWhy it is slow.\n")
    results_page.write_page(path, "# Speed\n\n| 2 |\n")
    assert path.read_text() == ("# Speed\n\n| 2 |\n\n" + results_page.NOTES_MARKER
                                + "\n\nWhy it is slow.\n")
    assert [p.name for p in tmp_path.iterdir()] == ["speed.md"]  # no temporary file left


def test_date_and_machine_come_from_the_json_and_the_command_line_only_fills_what_it_lacks():
    recorded = {"measured": {"date": "2026-12-06", "machine": "2 CPUs", "command": "python x.py"}}
    meta = results_page.measured(recorded, date="2026-01-01", machine="other")
    assert (meta["date"], meta["machine"], meta["given"]) == ("2026-12-06", "2 CPUs", [])
    assert results_page.rebuild_command("x.py", "--out r/x.json", meta) == \
        "python benchmarks/x.py --page-only --out r/x.json"
    meta = results_page.measured({}, date="2026-11-30", command="python x.py")
    assert (meta["date"], meta["machine"], meta["given"]) == ("2026-11-30", "not recorded",
                                                               ["date", "command"])
    assert results_page.rebuild_command("x.py", "--out r/x.json", meta) == \
        "python benchmarks/x.py --page-only --out r/x.json --date 2026-11-30"


def test_a_measuring_run_records_date_machine_and_command_in_its_json():
    entry = results_page.stamp("speed.py", ["--out", "a b.json"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", entry["date"])
    assert entry["machine"].startswith(f"{os.cpu_count()} CPUs")
    assert entry["command"] == "python benchmarks/speed.py --out 'a b.json'"


@pytest.mark.parametrize("name", GENERATED_PAGES)
def test_each_committed_page_is_what_its_benchmark_writes_from_the_committed_json(
        name, tmp_path, monkeypatch):
    # The page names the command that rebuilds it; run that command on a copy of the
    # results directory and compare, so a page edited by hand above its notes fails here.
    results = ROOT / "benchmarks" / "results"
    page = (results / name).read_text()
    (command,) = re.findall(r"`(python benchmarks/\S+ --page-only[^`]*)` rebuilds it", page)
    words = shlex.split(command)
    copy = tmp_path / "benchmarks" / "results"
    copy.mkdir(parents=True)
    json_name = Path(words[words.index("--page-only") + 2]).name
    shutil.copy(results / json_name, copy / json_name)
    marker, notes = page.partition(results_page.NOTES_MARKER)[1:]
    (copy / name).write_text("a stale page\n" + marker + notes)  # the notes must survive
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(Path(words[1]).stem)
    module.main(words[2:])
    assert (copy / name).read_text() == page


def test_sweep_throughput_writes_its_page_from_the_json_it_measured(tmp_path):
    import sweep_throughput

    result = {"sweep": "sweeps/main.toml", "steps_per_run": 100, "seeds": 1, "workers": 2,
              "local": {"backend": "local", "runs": 2, "failed": 0, "seconds": 10.0,
                        "runs_per_hour": 720.0, "env_steps_per_s": 20.0},
              "ray": {"backend": "ray", "runs": 2, "failed": 0, "seconds": 20.0,
                      "runs_per_hour": 360.0, "env_steps_per_s": 10.0},
              "ray_over_local_runs_per_hour": 0.5,
              "measured": {"date": "2026-12-06", "machine": "2 CPUs", "command": "python s.py"}}
    path = tmp_path / "sweep_throughput.json"
    path.write_text(json.dumps(result))
    text = sweep_throughput.write_page(path).read_text()
    assert "- Date: 2026-12-06\n- Machine: 2 CPUs\n" in text
    assert "| local | 2 | 0 | 10.0 | 720.0 | 20.0 |\n| ray | 2 | 0 | 20.0 | 360.0 | 10.0 |" in text
    assert "Ray / local, runs per hour: **0.500**." in text
