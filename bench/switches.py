"""What the worker ran around its slowest deliveries, greenlet by greenlet.

A delivery that is late while the worker is busy waited for something that
ran in the same gevent loop. ``python -m bench --latencies DIR --switches``
starts Flask-LiveHelp's worker with ``BENCH_SWITCHES``: every switch between
greenlets is noted in memory (when, which greenlet ran until then, and where
in the package it stopped) and written to a file when the worker exits. The
notes cost the worker a few microseconds a switch, so CPU figures of such a
run are not the usual ones.

``python -m bench.switches DIR/figure.csv DIR/figure.switches`` then prints,
for the slowest deliveries, the deliveries around each and every stretch of
0.3 ms or more that one greenlet ran (the hub's stretches are its idle waits
and its own callbacks). Ten panels' heartbeats in a row were found so.
"""

from __future__ import annotations

import argparse
import atexit
import bisect
import csv
import dataclasses
import time
import typing as t
from pathlib import Path

#: A stretch shorter than this is not printed.
SHORTEST_MS = 0.3
#: Frames of these are named where a greenlet stopped.
OWN_CODE = ("flask_livehelp", "bench")


def record_switches(path: Path) -> None:
    """Note every greenlet switch of this process; write them at exit."""
    import greenlet

    notes: list[tuple[float, int, str]] = []
    names: dict[int, str] = {}

    def tracer(event: str, args: tuple[t.Any, t.Any]) -> None:
        origin = args[0]
        key = id(origin)
        if key not in names:
            names[key] = _name(origin)
        where = _stopped_at(origin) if event == "switch" else event
        notes.append((time.time(), key, where))

    def write() -> None:
        with path.open("w") as file:
            file.writelines(f"# {key} {name}\n" for key, name in names.items())
            file.writelines(f"{when:.6f} {key} {where}\n" for when, key, where in notes)

    atexit.register(write)
    greenlet.settrace(tracer)


def _name(running: t.Any) -> str:
    work = getattr(running, "_run", None) or getattr(running, "run", None)
    return f"{type(running).__name__}:{getattr(work, '__qualname__', '?')}"


def _stopped_at(running: t.Any) -> str:
    """The innermost three frames of our own code where ``running`` stopped."""
    frame, found = running.gr_frame, list[str]()
    while frame is not None and len(found) < 3:
        code = frame.f_code
        if any(part in code.co_filename for part in OWN_CODE):
            found.append(f"{Path(code.co_filename).name}:{frame.f_lineno}")
        frame = frame.f_back
    return " < ".join(found)


# The report.


@dataclasses.dataclass
class Switch:
    at: float
    name: str
    stopped_at: str


def read_switches(path: Path) -> list[Switch]:
    names: dict[str, str] = {}
    switches = []
    for line in path.read_text().splitlines():
        if line.startswith("# "):
            key, name = line[2:].split(" ", 1)
            names[key] = name
            continue
        at, key, *where = line.split(" ", 2)
        switches.append(Switch(float(at), names[key], where[0] if where else ""))
    return switches


def read_deliveries(path: Path) -> list[tuple[float, float]]:
    """(sent, milliseconds) of each delivery, as ``--latencies`` wrote them."""
    with path.open() as file:
        rows = list(csv.reader(file))[1:]
    return sorted((float(sent), float(took)) for sent, took in rows)


def report(
    deliveries: list[tuple[float, float]], switches: list[Switch], worst: int
) -> str:
    start = deliveries[0][0]
    times = [switch.at for switch in switches]
    lines: list[str] = []
    shown: list[float] = []
    for sent, took in sorted(deliveries, key=lambda d: -d[1]):
        if len(shown) == worst:
            break
        if any(abs(sent - other) < 0.1 for other in shown):
            continue  # the same stall
        shown.append(sent)
        lines.append(f"\nDelivery sent at {sent - start:.3f} s took {took:.1f} ms.")
        around = [d for d in deliveries if sent - 0.03 < d[0] < sent + 0.04]
        lines.append(
            "  sent/ms around it: "
            + " ".join(f"{s - start:.3f}/{ms:.0f}" for s, ms in around)
        )
        first = max(1, bisect.bisect(times, sent - 0.02))
        last = bisect.bisect(times, sent + took / 1000 + 0.01)
        for before, switch in zip(
            switches[first - 1 : last], switches[first:last], strict=False
        ):
            held = (switch.at - before.at) * 1000
            if held >= SHORTEST_MS:
                lines.append(
                    f"  {switch.at - start:8.4f} s  ran {held:5.2f} ms"
                    f"  {switch.name[:40]:40}  stopped at {switch.stopped_at}"
                )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.switches", description=__doc__
    )
    parser.add_argument("latencies", type=Path, help="a figure's CSV of --latencies")
    parser.add_argument("switches", type=Path, help="the same figure's switches")
    parser.add_argument("--worst", type=int, default=5, help="stalls to show")
    arguments = parser.parse_args()
    deliveries = read_deliveries(arguments.latencies)
    switches = read_switches(arguments.switches)
    print(report(deliveries, switches, arguments.worst), end="")


if __name__ == "__main__":
    main()
