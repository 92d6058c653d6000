"""How long the worker's garbage collections hold every chat in it.

The benchmark shop is started twice under gunicorn's gevent worker: as
gunicorn starts it, and with ``example_shop/gunicorn.conf.py``, which
freezes what the worker loaded before serving. Each time, the chats are
opened and then carry messages, and every collection older than the
youngest generation is timed in the worker (``bench.app.record_collections``).
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
import typing as t
from pathlib import Path

from bench import load
from bench import targets
from bench.report import ms
from bench.report import table

WORKERS = (
    ("as gunicorn starts it", None),
    ("frozen after loading", targets.GUNICORN_SETTINGS),
)


@dataclasses.dataclass
class Collection:
    ended: float
    generation: int
    held: float


async def gc_pauses(
    databases: list[str], chats: int, operators: int, rate: float, duration: float
) -> str:
    rows = []
    for kind in databases:
        for worker, config in WORKERS:
            collections, phases = await _collections(
                kind, config, chats, operators, rate, duration
            )
            for phase, (start, end) in phases.items():
                during = [c for c in collections if start <= c.ended < end]
                rows.append(
                    [kind, worker, phase, *_figures(during, 2), *_figures(during, 1)]
                )
    return table(
        f"Garbage collections in the worker, {chats} chats, {rate:g} messages/s",
        [
            "database",
            "worker",
            "while",
            "full collections",
            "longest",
            "middle generation's",
            "longest",
        ],
        rows,
    )


async def _collections(
    kind: str,
    config: Path | None,
    chats: int,
    operators: int,
    rate: float,
    duration: float,
) -> tuple[list[Collection], dict[str, tuple[float, float]]]:
    with tempfile.TemporaryDirectory(prefix="livehelp-gc-") as directory:
        path = Path(directory) / "collections"
        path.touch()
        with targets.livehelp(
            kind,
            chats,
            operators,
            gunicorn_config=config,
            environment={"BENCH_GC_PAUSES": str(path)},
        ) as running:
            phases = await _phases(running, chats, operators, rate, duration)
        return _read(path), phases


async def _phases(
    running: targets.Running, chats: int, operators: int, rate: float, duration: float
) -> dict[str, tuple[float, float]]:
    """Open the chats, then chat; when each began and ended."""
    chat_load = load.ChatLoad(running.target, chats, operators)
    began = time.time()
    await chat_load.open()
    opened = time.time()
    await chat_load.run(rate, duration, 0)
    chatted = time.time()
    await chat_load.close()
    return {
        f"{chats} chats open": (began, opened),
        f"they chat for {duration:g} s": (opened, chatted),
    }


def _read(path: Path) -> list[Collection]:
    return [
        Collection(float(ended), int(generation), float(held))
        for ended, generation, held in (
            line.split() for line in path.read_text().splitlines()
        )
    ]


def _figures(collections: list[Collection], generation: int) -> list[t.Any]:
    held = [c.held for c in collections if c.generation == generation]
    return [len(held), ms(max(held)) if held else "-"]
