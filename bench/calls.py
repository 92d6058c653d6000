"""How many Python calls the worker makes a message, counted by cProfile.

CPU per message moves by a tenth or more from run to run on a shared
machine; the number of calls a message takes does not, so it shows what a
change to the hot path saved where the CPU figures cannot. ``python -m bench
--calls DIR`` starts Flask-LiveHelp's worker of the delivery table with
``BENCH_CALLS``: the worker counts every call of the measured window (the
bench marks its start and end with files beside the stem it is given) and
writes the counts as ``pstats`` data, which the bench prints per message,
by package and for the functions called most.

cProfile is on the whole worker's thread, so every greenlet is counted; its
timings are not trustworthy across greenlet switches and are not shown.
Counting slows the worker down: the CPU figures of such a run are not the
usual ones.
"""

from __future__ import annotations

import collections
import cProfile
import pstats
import re
import threading
import time
from pathlib import Path

from bench.report import table

#: Seconds between the worker's looks for the start and end marks.
LOOK_SECONDS = 0.05
#: Functions listed beside the packages.
TOP = 25


def count_when_marked(stem: Path) -> None:
    """In the worker: count calls between ``stem.start`` and ``stem.end``,
    then write them to ``stem.prof``."""

    def run() -> None:
        _wait_for(stem.with_suffix(".start"))
        profile = cProfile.Profile()
        profile.enable()
        _wait_for(stem.with_suffix(".end"))
        profile.disable()
        profile.dump_stats(stem.with_suffix(".part"))
        stem.with_suffix(".part").rename(stem.with_suffix(".prof"))

    threading.Thread(target=run, name="bench-calls", daemon=True).start()


def _wait_for(path: Path) -> None:
    while not path.exists():
        time.sleep(LOOK_SECONDS)


def mark(stem: Path, which: str) -> None:
    """In the bench: ``"start"`` or ``"end"`` of the window."""
    stem.with_suffix(f".{which}").touch()


def per_message(stem: Path, messages: int, title: str, wait: float = 30) -> str:
    """The worker's calls per message, as tables: by package, then by
    function."""
    counts = _read(stem.with_suffix(".prof"), wait)
    by_package: collections.Counter[str] = collections.Counter()
    for function, calls in counts.items():
        by_package[_package(function[0])] += calls
    total = sum(by_package.values())
    packages = [
        [package, f"{calls / messages:.1f}"]
        for package, calls in by_package.most_common()
    ]
    functions = [
        [f"{_place(path)}:{line} {name}", f"{calls / messages:.2f}"]
        for (path, line, name), calls in collections.Counter(counts).most_common(TOP)
    ]
    return "\n".join(
        [
            table(
                f"Python calls a message, {title}: {total / messages:.1f} in all",
                ["package", "calls/message"],
                packages,
            ),
            table(
                f"Functions called most, {title}",
                ["function", "calls/message"],
                functions,
            ),
        ]
    )


def _read(path: Path, wait: float) -> dict[tuple[str, int, str], int]:
    deadline = time.monotonic() + wait
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the worker wrote no call counts to {path}")
        time.sleep(LOOK_SECONDS)
    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    return {function: entry[1] for function, entry in stats.items()}


def _package(path: str) -> str:
    """``site-packages/sqlalchemy/...`` as ``sqlalchemy``; built-ins as such."""
    if path == "~":
        return "built-in functions"
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0]
    if "/flask_livehelp/" in path:
        return "flask_livehelp"
    if "/bench/" in path:
        return "bench"
    return "standard library"


def _place(path: str) -> str:
    for marker in ("site-packages/", "/src/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return re.sub(r".*/python3\.\d+/", "", path)


def fresh_stem(directory: Path, name: str) -> Path:
    """Where the figure ``name`` is counted, with no marks of an earlier run."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = directory / name
    for suffix in (".start", ".end", ".part", ".prof"):
        stem.with_suffix(suffix).unlink(missing_ok=True)
    return stem
