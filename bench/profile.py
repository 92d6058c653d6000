"""Where a server spends its CPU during a measurement: py-spy, sampled from outside.

``python -m bench --profile DIR`` records every Flask-LiveHelp server process
for the measured window of each delivery and throughput figure: a flame graph
(``.svg``, open it in a browser) and the collapsed stacks (``.txt``) that
:func:`summary` reads to print the functions that took the most of it.

Where Linux's ``perf`` is installed, it records the same window too
(``.perf.data``), and :func:`cpu_split` says which code the CPU ran in: the
interpreter, the kernel, SQLite, gevent. py-spy cannot say: it sees Python
frames only, so a sample in C code called by no Python frame (gevent's loop,
greenlet switches) is its hub's, and one in a system call counts although the
kernel's network work it waits for is not the process's CPU time.
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
from pathlib import Path

from bench.report import slug
from bench.report import table

#: Samples a second; py-spy reads the process from outside without pausing it.
RATE = 250


class Profiler:
    """Records the processes of one figure while its window is measured."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._running: list[subprocess.Popen[bytes]] = []
        self._py_spy = _py_spy()
        self._perf = shutil.which("perf")
        #: Each figure recorded by perf, and its processes' recordings.
        self.perf_data: dict[str, list[Path]] = {}
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
            if self._perf is not None:
                self._record_with_perf(label, pid, stem.with_suffix(".perf.data"))

    def _record_with_perf(self, label: str, pid: int, data: Path) -> None:
        self.perf_data.setdefault(label, []).append(data)
        self._running.append(
            subprocess.Popen(
                [str(self._perf), "record", "--freq", str(RATE), "--pid", str(pid),
                 "--quiet", "--output", str(data)],
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


#: Which code a shared object of perf's report holds, first match wins.
CODE = (
    ("Python's interpreter", r"libpython|^python"),
    ("the kernel (system calls, sockets, files)", r"^\[kernel"),
    ("SQLite", r"sqlite"),
    ("PostgreSQL's client (libpq, psycopg)", r"libpq|psycopg"),
    ("gevent, greenlet, libev", r"gevent|greenlet|corecext|libev"),
    ("the C library (malloc, memcpy)", r"^libc\.|^ld-linux|^libm\."),
)


def cpu_split(label: str, recordings: list[Path]) -> str:
    """A table: the share of the samples of figure ``label`` in each kind of code."""
    shares: collections.defaultdict[str, float] = collections.defaultdict(float)
    for data in recordings:
        for share, shared_object in _shares_by_object(data):
            shares[_kind_of_code(shared_object)] += share / len(recordings)
    largest_first = sorted(shares.items(), key=lambda kind_share: -kind_share[1])
    rows = [[kind, f"{share:.0f} %"] for kind, share in largest_first]
    return table(f"Which code the CPU ran in (perf), {label}", ["code", "share"], rows)


def _shares_by_object(data: Path) -> list[tuple[float, str]]:
    report = subprocess.run(
        ["perf", "report", "--input", str(data), "--stdio", "--sort", "dso",
         "--no-children", "-g", "none"],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    found = re.findall(r"^\s*([\d.]+)%\s+(\S+)", report, re.MULTILINE)
    return [(float(share), shared_object) for share, shared_object in found]


def _kind_of_code(shared_object: str) -> str:
    for kind, pattern in CODE:
        if re.search(pattern, shared_object):
            return kind
    return "other C extensions"


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
