"""Where a server spends its CPU during a measurement: py-spy, sampled from outside.

``python -m bench --profile DIR`` records every Flask-LiveHelp server process
for the measured window of each delivery and throughput figure: a flame graph
(``.svg``, open it in a browser) and the collapsed stacks (``.txt``) that
:func:`summary` reads to print the functions that took the most of it.
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
from pathlib import Path

from bench.report import slug

#: Samples a second; py-spy reads the process from outside without pausing it.
RATE = 250


class Profiler:
    """Records the processes of one figure while its window is measured."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._running: list[subprocess.Popen[bytes]] = []
        self._py_spy = _py_spy()
        if directory is not None and self._py_spy is None:
            raise SystemExit(
                "--profile needs py-spy (the bench extra): pip install py-spy"
            )

    def start(self, label: str, pids: list[int]) -> None:
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        name = slug(label)
        for number, pid in enumerate(pids):
            stem = self.directory / f"{name}-{number}"
            for kind, suffix in (("flamegraph", ".svg"), ("raw", ".txt")):
                self._running.append(
                    subprocess.Popen(
                        [
                            str(self._py_spy), "record", "--pid", str(pid),
                            "--rate", str(RATE), "--nonblocking",
                            "--format", kind, "--output", str(stem) + suffix,
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )  # fmt: skip

    def stop(self) -> None:
        for process in self._running:
            # SIGINT: py-spy writes what it sampled so far, then exits.
            process.send_signal(2)
        for process in self._running:
            process.wait(timeout=30)
        self._running.clear()


def _py_spy() -> str | None:
    """py-spy beside this Python (its venv, not always on the PATH), or on the PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def summary(collapsed: Path, top: int = 25) -> str:
    """The functions with the largest share of the samples, self and inclusive."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [_function(frame) for frame in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{collapsed.name}: {total} samples", "inclusive  self  function"]
    for function, count in inclusive.most_common(top):
        shares = f"{100 * count / total:8.1f}% {100 * own[function] / total:5.1f}%"
        lines.append(f"{shares}  {function}")
    return "\n".join(lines)


def _function(frame: str) -> str:
    """``name (path/file.py:12)`` as ``name (file.py)``: lines apart are one."""
    return re.sub(r" \((?:.*/)?([^/:]+)(?::\d+)?\)$", r" (\1)", frame)


if __name__ == "__main__":
    for path in sys.argv[1:]:
        print(summary(Path(path)), end="\n\n")
