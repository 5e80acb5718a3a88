"""Write a benchmark's results page: one markdown file beside its JSON, rebuilt from that JSON.

A benchmark that writes ``OUT/<name>.json`` also writes ``OUT/<name>.md`` with this
module, and the page is a function of the JSON alone (plus the date, machine and
command the JSON records under ``"measured"``). So ``--page-only`` rebuilds the
committed page from the committed JSON without measuring again, and gives exactly
what the measuring run wrote.

Text that a person adds below ``NOTES_MARKER`` (what the numbers mean, dated) is
kept when the benchmark rewrites the page; everything above the marker is the
benchmark's.

>>> print("\\n".join(table(["agent", "return"], [["d4pg", 858], ["dmpo", None]], "lr")))
| agent | return |
|---|---:|
| d4pg | 858 |
| dmpo | – |
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

#: the line between the benchmark's part of a page and the notes written by hand.
NOTES_MARKER = ("<!-- Notes below this line are written by hand; the benchmark keeps them "
                "when it rewrites the page. -->")
#: a cell with no figure (a run not finished, a backend skipped).
MISSING = "–"
NOT_RECORDED = "not recorded"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], align: str = "") -> list[str]:
    """Return the lines of a markdown table.

    Args:
      header: the column names.
      rows: one sequence of cells per row; a cell is shown with ``str``, None as ``MISSING``.
      align: one letter per column, ``l`` (default) or ``r`` (numbers).
    """
    align = align.ljust(len(header), "l")
    if len(align) != len(header) or set(align) - {"l", "r"}:
        raise ValueError(f"align {align!r}: one of 'l' or 'r' per column of {list(header)}")
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    for row in rows:
        cells = [MISSING if cell is None else str(cell) for cell in row]
        if len(cells) != len(header):
            raise ValueError(f"row {cells} has {len(cells)} cells for {len(header)} columns")
        lines.append("| " + " | ".join(cells) + " |")
    return lines



def t_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Return (mean, low, high): the mean of ``values`` and its 95 % Student-t interval.

    ``rwrl.metrics.mean_interval`` as a tuple: NaN ends with fewer than two values; all NaN
    with none.
    """
    from rwrl.metrics.mean_interval import mean_interval
    entry = mean_interval(values)
    return tuple(float("nan") if entry[k] is None else entry[k] for k in ("mean", "ci_low", "ci_high"))


def machine_description() -> str:
    """Return what a result depends on about this machine: CPUs, system, load when measured."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, "
            f"Python {platform.python_version()}, load average {load:.1f} at the start")


def stamp(script: str, argv: Sequence[str]) -> dict[str, str]:
    """Return the ``"measured"`` entry a benchmark stores in its JSON: today, this machine, the command.

    Args:
      script: the benchmark's file name (``throughput.py``).
      argv: its command-line arguments.
    """
    return {"date": datetime.date.today().isoformat(), "machine": machine_description(),
            "command": shlex.join(["python", f"benchmarks/{script}", *argv])}


def measured(results: dict, date: str | None = None, machine: str | None = None,
             command: str | None = None) -> dict[str, Any]:
    """Return the date, machine and command of ``results``: its ``"measured"`` entry first,
    then the given values (for a JSON written before benchmarks recorded them), else ``NOT_RECORDED``.

    The entry ``given`` lists the keys taken from the given values (``rebuild_command`` repeats them).
    """
    recorded = results.get("measured") or {}
    given = {"date": date, "machine": machine, "command": command}
    meta: dict[str, Any] = {key: recorded.get(key) or given[key] or NOT_RECORDED for key in given}
    meta["given"] = [key for key in given if not recorded.get(key) and given[key]]
    return meta


def render_page(title: str, command: str, date: str, machine: str,
                sections: Sequence[tuple[str | None, Sequence[str]]],
                source: str | None = None, rebuild: str | None = None) -> str:
    """Return a results page: the title, what was run where and when, then the sections.

    Args:
      sections: (heading or None, lines) in order; a heading becomes a ``##`` heading.
      source: the JSON file the page is written from (a name beside the page).
      rebuild: the command that rewrites the page from ``source`` without measuring.
    """
    lines = [f"# {title}", "", f"- Command: `{command}`", f"- Date: {date}",
             f"- Machine: {machine}"]
    if source is not None:
        written = f"- Written from [`{source}`]({source}) by the benchmark"
        lines.append(written + (f"; `{rebuild}` rebuilds it without measuring." if rebuild else "."))
    for heading, body in sections:
        lines.append("")
        if heading:
            lines += [f"## {heading}", ""]
        lines += list(body)
    return "\n".join(lines) + "\n"


def with_notes(text: str, previous: str | None) -> str:
    """Return ``text`` followed by the hand-written notes of ``previous`` (the page being replaced)."""
    if not previous or NOTES_MARKER not in previous:
        return text
    notes = previous.split(NOTES_MARKER, 1)[1]
    return text.rstrip("\n") + "\n\n" + NOTES_MARKER + notes


def write_page(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically, keeping the notes of the page already there; return ``path``."""
    from rwrl.storage.atomic_files import atomic_write_bytes
    path = Path(path)
    previous = path.read_text() if path.is_file() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, with_notes(text, previous).encode())
    return path


def add_page_arguments(parser: Any) -> None:
    """Add ``--out``, ``--page-only``, ``--date`` and ``--machine`` to a benchmark's ``argparse`` parser."""
    parser.add_argument("--out", type=Path, default=None,
                        help="also write the JSON here, and its results page beside it (.md)")
    parser.add_argument("--page-only", action="store_true",
                        help="measure nothing: rewrite the results page (.md) of the JSON at --out")
    parser.add_argument("--date", default=None,
                        help="with --page-only: the date of a JSON that does not record it")
    parser.add_argument("--machine", default=None,
                        help="with --page-only: the machine of a JSON that does not record it")


def publish(result: dict, out: Path | None, write: Any) -> None:
    """Print ``result`` as JSON; with ``out``, also write it there atomically and its page beside it.

    ``write(json_path)`` writes the page (the benchmark's ``write_page``). A missing
    parent folder of ``out`` is made: a measurement is never lost to it.
    """
    from rwrl.storage.atomic_files import atomic_write_bytes
    text = json.dumps(result, indent=2)
    print(text)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out, (text + "\n").encode())
        print(f"page: {write(out)}", file=sys.stderr)


def continue_results(out: Path | None, settings: dict[str, Any]) -> dict[str, Any]:
    """Return the results at ``out`` to continue, or a fresh record ({"settings", "runs"}).

    SystemExit naming the settings that differ if ``out`` was measured with others.
    """
    if out is None or not Path(out).is_file():
        return {"settings": settings, "runs": {}}
    results = json.loads(Path(out).read_text())
    differ = sorted(k for k in settings if results.get("settings", {}).get(k) != settings[k])
    if differ:
        raise SystemExit(f"{out} was measured with other settings ({', '.join(differ)}): give the same "
                         "ones, or another --out")
    return results


def save_results(results: dict[str, Any], out: Path, write: Any = None) -> None:
    """Write ``results`` to ``out`` atomically; with ``write``, also its page (``write(out)``)."""
    from rwrl.storage.atomic_files import atomic_write_bytes
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, (json.dumps(results, indent=1) + "\n").encode())
    if write is not None:
        write(out)


def measure_resumable(script: str, argv: Sequence[str], out: Path | None, settings: dict[str, Any],
                      measure: Any, claims: Any, write: Any) -> dict[str, Any]:
    """Continue the results at ``out`` (or start them) and measure what is missing.

    The record is ``continue_results``'s, with each sitting's ``stamp`` in
    ``sessions`` (the first is ``measured``); ``measure(results)`` fills it (saving
    as it goes); the claims (``claims(results)``) are printed, and the results and
    their page (``write``) saved.
    """
    results = continue_results(out, settings)
    results.setdefault("sessions", []).append(stamp(script, argv))
    results["measured"] = results["sessions"][0]
    measure(results)
    print(json.dumps({"claims": claims(results)}, indent=1))
    if out is not None:
        save_results(results, out, write)
        print(f"page: {page_path(out)}", file=sys.stderr)
    return results


def rewrite_page_only(parser: Any, args: Any, write: Any) -> bool:
    """With ``--page-only``, rewrite the page of the JSON at ``--out`` and return True.

    ``write(json_path, date, machine)`` writes the page; without ``--out`` the
    parser exits with an error naming it. Without ``--page-only``: False.
    """
    if not args.page_only:
        return False
    if args.out is None:
        parser.error("--page-only needs --out, the JSON to write the page from")
    print(f"page: {write(args.out, args.date, args.machine)}")
    return True


def rebuild_command(script: str, json_arg: str, meta: dict[str, Any]) -> str:
    """Return the command that rewrites a page from its JSON, with the date and machine that
    ``meta`` (``measured``'s) took from the command line because the JSON lacks them."""
    words = ["python", f"benchmarks/{script}", "--page-only", *json_arg.split()]
    for key in ("date", "machine"):
        if key in meta["given"]:
            words += [f"--{key}", meta[key]]
    return shlex.join(words)


def write_json_page(json_path: Path, page: Any, *page_args: Any) -> Path:
    """Write the page of a benchmark's JSON beside it; return the page's path.

    ``page(results, source, *page_args)`` renders the page of the JSON's
    ``results``; ``source`` is ``json_path`` as given (the page's commands name it).
    """
    results = json.loads(Path(json_path).read_text())
    return write_page(page_path(json_path), page(results, str(json_path), *page_args))


def page_path(json_path: Path) -> Path:
    """Return the page of a benchmark JSON: the same name with ``.md``."""
    return Path(json_path).with_suffix(".md")


def fmt(value: Any, spec: str = ".0f") -> str:
    """Return ``value`` formatted with ``spec``, or ``MISSING`` when it is None or NaN."""
    if value is None or (isinstance(value, float) and value != value):
        return MISSING
    return format(value, spec)
