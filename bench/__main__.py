"""Run the benchmarks and print their tables: ``python -m bench [--quick]``.

Every figure is measured beside its baseline in the same run, on the same
machine: the widget against its size budget, the status request against a
bare Flask route in the same server, chat delivery against a bare
``websockets`` echo and relay and a Flask-SocketIO relay doing the same job.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gzip
import platform
import resource
import sys
import tempfile
import time
import typing as t
from pathlib import Path

import flask_livehelp
from bench import calls
from bench import load
from bench import procstat
from bench import targets
from bench.crossing import crossing
from bench.pauses import gc_pauses
from bench.posting import posting
from bench.profile import cpu_split
from bench.profile import Profiler
from bench.report import kb
from bench.report import ms
from bench.report import percentile
from bench.report import ratio
from bench.report import slug
from bench.report import table
from bench.report import us

#: Operator sockets; each serves an equal share of the chats.
OPERATORS = 10
STATIC = Path(flask_livehelp.__file__).parent / "static" / "livehelp"
STATUS_PATH = (
    "/livehelp/widget/status?lang=en&pid=31415926535897932&page=https%3A%2F%2F"
    "shop.example%2Fregnjakke&title=Regnjakke%20%E2%80%93%20Nordlys&ref="
)


@dataclasses.dataclass
class Settings:
    sizes: list[int]
    rate: float
    duration: float
    warmup: float
    databases: list[str]
    throughput_chats: int
    profiler: Profiler = dataclasses.field(default_factory=lambda: Profiler(None))
    #: Where each delivery's send time and latency go, one file a figure.
    latencies: Path | None = None
    #: With ``latencies``, Flask-LiveHelp's worker of the delivery table
    #: notes its greenlet switches there too (:mod:`bench.switches`).
    switches: bool = False
    #: Where Flask-LiveHelp's worker of the delivery table counts its calls
    #: (:mod:`bench.calls`).
    calls: Path | None = None
    #: The figures whose worker counts its calls, and where.
    counted: dict[str, Path] = dataclasses.field(default_factory=dict)

    def worker_environment(self, label: str) -> dict[str, str]:
        """What Flask-LiveHelp's server of the delivery table's figure
        ``label`` is started with."""
        environment = {}
        if self.switches and self.latencies is not None:
            self.latencies.mkdir(parents=True, exist_ok=True)
            switches = self.latencies / f"{slug(label)}.switches"
            environment["BENCH_SWITCHES"] = str(switches)
        if self.calls is not None:
            stem = self.counted[label] = calls.fresh_stem(self.calls, slug(label))
            environment["BENCH_CALLS"] = str(stem)
        return environment


def settings_from(arguments: argparse.Namespace) -> Settings:
    databases = list(arguments.db)
    if "postgresql" in databases and not targets.postgres_available():
        databases.remove("postgresql")
        print(f"NOTE: no PostgreSQL at {targets.PG_SERVER}; not measured.\n")
    if not databases:
        print("NOTE: SQLite instead, so that something is measured.\n")
        databases = ["sqlite"]
    # A quick run: two sizes, short windows, fewer customers for throughput.
    sizes, duration, warmup, throughput_chats = (
        ([50, 500], 4, 1, 20)
        if arguments.quick
        else (arguments.sizes, arguments.duration, 2, 50)
    )
    return Settings(
        sizes,
        arguments.rate,
        duration,
        warmup,
        databases,
        throughput_chats,
        Profiler(arguments.profile),
        arguments.latencies,
        arguments.switches,
        arguments.calls,
    )


# Measuring one chat load.


@dataclasses.dataclass
class Sample:
    """CPU seconds of the server and its helpers at one moment."""

    server: float
    helpers: dict[str, float]

    @classmethod
    def take(cls, running: targets.Running) -> Sample:
        return cls(
            procstat.cpu_seconds(running.pids()),
            {
                name: procstat.cpu_seconds(pids)
                for name, pids in running.helpers().items()
            },
        )


def measured_window(
    running: targets.Running, settings: Settings, label: str | None
) -> tuple[list[Sample], t.Callable[[], None], t.Callable[[], None]]:
    """Samples at a window's start and end; the window profiled if asked."""
    samples: list[Sample] = []

    stem = None if label is None else settings.counted.get(label)

    def started() -> None:
        samples.append(Sample.take(running))
        if label is not None:
            settings.profiler.start(label, running.pids())
        if stem is not None:
            calls.mark(stem, "start")

    def ended() -> None:
        samples.append(Sample.take(running))
        settings.profiler.stop()
        if stem is not None:
            calls.mark(stem, "end")

    return samples, started, ended


@dataclasses.dataclass
class ChatFigures:
    result: load.ChatResult
    cpu_per_message: float | None
    helper_cpu_per_message: dict[str, float]
    memory_per_chat: float | None


async def measure_chats(
    running: targets.Running,
    chats: int,
    settings: Settings,
    label: str,
    profiled: bool = True,
) -> ChatFigures:
    chat_load = load.ChatLoad(running.target, chats, min(OPERATORS, chats))
    before = procstat.rss_bytes(running.pids())
    connect_seconds = await chat_load.open()
    await asyncio.sleep(1)
    after = procstat.rss_bytes(running.pids())
    samples, started, ended = measured_window(
        running, settings, label if profiled else None
    )
    result = await chat_load.run(
        settings.rate, settings.duration, settings.warmup, started, ended
    )
    result.connect_seconds = connect_seconds
    await chat_load.close()
    if settings.latencies is not None and result.to_operator:
        write_latencies(settings.latencies / f"{slug(label)}.csv", result)
    handled = 2 * result.sent
    start, end = samples
    return ChatFigures(
        result,
        (end.server - start.server) / handled if handled else None,
        {
            name: (end.helpers[name] - start.helpers[name]) / handled
            for name in end.helpers
        },
        (after - before) / chats,
    )


def write_latencies(path: Path, result: load.ChatResult) -> None:
    """Each delivery to the operator: when it was sent, and how long it took."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = zip(result.to_operator_sent, result.to_operator, strict=True)
    path.write_text(
        "sent (unix time),to operator (ms)\n"
        + "".join(f"{sent:.6f},{seconds * 1000:.3f}\n" for sent, seconds in rows)
    )


def chat_servers(
    settings: Settings, chats: int, delivery_table: bool = False
) -> list[tuple[str, t.Any]]:
    """Every server of the latency table, as (name, context manager factory);
    for the delivery table itself, Flask-LiveHelp's worker is started to
    note what ``--switches`` and ``--calls`` ask for."""
    operators = min(OPERATORS, chats)
    servers: list[tuple[str, t.Any]] = [
        ("websockets echo", lambda: targets.relay(operators, echo=True)),
        ("websockets relay", lambda: targets.relay(operators)),
        ("flask-socketio relay", lambda: targets.socketio(operators)),
    ]
    for kind in settings.databases:
        servers.append(
            (
                f"websockets relay, storing in {kind}",
                lambda kind=kind: targets.storing_relay(kind, chats, operators),
            )
        )
    for kind in settings.databases:
        name = f"flask-livehelp, {kind}"
        label = f"{name} {chats}"
        environment = settings.worker_environment(label) if delivery_table else {}
        servers.append(
            (
                name,
                lambda kind=kind, environment=environment: targets.livehelp(
                    kind, chats, operators, environment=environment
                ),
            )
        )
    return servers


# The sections.


def widget_weight(settings: Settings) -> str:
    from bench.app import create_app

    with tempfile.TemporaryDirectory() as directory:
        app = create_app(f"sqlite:///{directory}/widget.sqlite3", LIVEHELP_JOBS="off")
        with app.app_context():
            flask_livehelp.get_state().db.create_all()
        frame = app.test_client().get("/livehelp/widget/frame").data
    parts = {
        "loader.js (every shop page)": (STATIC / "loader.js").read_bytes(),
        "frame page (on opening the chat)": frame,
        "chat.js": (STATIC / "chat.js").read_bytes(),
        "chat.css": (STATIC / "chat.css").read_bytes(),
    }
    rows = [
        [name, f"{len(data):,} B", f"{len(gzip.compress(data, 9)):,} B"]
        for name, data in parts.items()
    ]
    whole = sum(len(gzip.compress(data, 9)) for data in parts.values())
    rows.append(["whole widget", "", f"{whole:,} B"])
    rows.append(["budget: loader / whole", "", "2,048 B / 12,288 B"])
    return table("Widget weight (gzip -9)", ["part", "raw", "gzipped"], rows)


async def status_rate(settings: Settings) -> str:
    duration = max(2.0, settings.duration / 2)
    with targets.livehelp("sqlite", chats=1, operators=1) as running:
        port = int(running.target.operator_base.rsplit(":", 1)[1])
        rows = []
        rates: dict[str, float] = {}
        for name, path in (
            ("bare Flask route (baseline)", "/bench/bare"),
            # What the loader on every shop page asks, every few seconds.
            ("widget status", STATUS_PATH),
        ):
            await load.requests_per_second("127.0.0.1", port, path, 20, 1)
            before = procstat.cpu_seconds(running.pids())
            rate = await load.requests_per_second("127.0.0.1", port, path, 20, duration)
            cpu = procstat.cpu_seconds(running.pids()) - before
            rates[name] = rate
            rows.append([name, f"{rate:,.0f}", us(cpu / (rate * duration))])
        baseline = rates["bare Flask route (baseline)"]
        for row, rate in zip(rows, rates.values(), strict=True):
            row.append(f"{100 * rate / baseline:.0f} %")
    return table(
        "Status requests, one gevent worker, 20 keep-alive connections",
        ["route", "requests/s", "server CPU/request", "of bare route"],
        rows,
    )


async def latency(settings: Settings, memory: list[list[str]]) -> str:
    rows = []
    breakdowns = []
    for chats in settings.sizes:
        echo: ChatFigures | None = None
        for name, start in chat_servers(settings, chats, delivery_table=True):
            label = f"{name} {chats}"
            with start() as running:
                figures = await measure_chats(
                    running, chats, settings, label, profiled="livehelp" in name
                )
                stem = settings.counted.get(label)
                if stem is not None and figures.result.sent:
                    # Read while the worker runs: it writes them on the end mark.
                    title = f"{name}, {chats:,} chats"
                    handled = 2 * figures.result.sent
                    breakdowns.append(calls.per_message(stem, handled, title))
                recordings = settings.profiler.perf_data.get(label)
                if recordings:
                    breakdowns.append(cpu_split(f"{name}, {chats:,} chats", recordings))
            result = figures.result
            if name == "websockets echo":
                echo = figures
            helpers = ", ".join(
                f"{helper} {us(cost)}"
                for helper, cost in figures.helper_cpu_per_message.items()
            )
            rows.append(
                [
                    name,
                    f"{chats:,}",
                    ms(percentile(result.to_operator, 0.5)),
                    ms(percentile(result.to_operator, 0.99)),
                    ms(percentile(result.round_trip, 0.5)),
                    ms(percentile(result.round_trip, 0.99)),
                    str(result.lost),
                    us(figures.cpu_per_message),
                    ratio(
                        figures.cpu_per_message,
                        echo.cpu_per_message if echo else None,
                    ),
                    helpers or "-",
                ]
            )
            memory.append(
                [
                    name,
                    f"{chats:,}",
                    kb(figures.memory_per_chat),
                    f"{result.connect_seconds:.1f} s",
                ]
            )
            print(f"  measured {name} at {chats} chats", file=sys.stderr)
    return table(
        f"Delivery at {settings.rate:g} messages/s (half from customers, half"
        f" answers), {settings.duration:g} s, {OPERATORS} operator sockets",
        [
            "server",
            "chats",
            "to operator p50",
            "p99",
            "round trip p50",
            "p99",
            "unanswered after 10 s",
            "server CPU/message",
            "vs echo",
            "database/Redis CPU/message",
        ],
        rows,
    ) + "".join(f"\n{tables}" for tables in breakdowns)


async def memory_as_browsers_connect(settings: Settings) -> str:
    """Memory per chat when the clients offer permessage-deflate, as browsers do.

    A server that grants it keeps a compressor and a decompressor per socket
    from the first message on, so the chats send for a second first.
    """
    rows = []
    offered = load.COMPRESSION.set("deflate")
    try:
        for chats in settings.sizes:
            for name, start in chat_servers(settings, chats):
                if name.startswith("websockets relay"):
                    continue  # the same server as the echo
                with start() as running:
                    grown = await _memory_after_chatting(running, chats, settings)
                rows.append([name, f"{chats:,}", kb(grown / chats)])
                print(
                    f"  measured {name} at {chats} chats, compression offered",
                    file=sys.stderr,
                )
    finally:
        load.COMPRESSION.reset(offered)
    return table(
        "Memory per open chat when clients offer compression, as browsers do"
        " (after a second of chatting)",
        ["server", "chats", "memory/chat"],
        rows,
    )


async def _memory_after_chatting(
    running: targets.Running, chats: int, settings: Settings
) -> float:
    """The server's RSS growth over opening ``chats`` and a second of chatting."""
    chat_load = load.ChatLoad(running.target, chats, min(OPERATORS, chats))
    before = procstat.rss_bytes(running.pids())
    await chat_load.open()
    await chat_load.run(settings.rate, 1, 0)
    await asyncio.sleep(1)
    grown = procstat.rss_bytes(running.pids()) - before
    await chat_load.close()
    return grown


async def throughput(settings: Settings) -> str:
    rows = []
    runs = [(kind, 1) for kind in settings.databases]
    if targets.REDIS_SERVER is not None:
        runs.append((settings.databases[-1], 2))
    chats = settings.throughput_chats
    for kind, processes in runs:
        with targets.livehelp(
            kind, chats, min(OPERATORS, chats), processes, split_customers=True
        ) as running:
            # Operators are there, as in a shop, but only customers write.
            chat_load = load.ChatLoad(running.target, chats, min(OPERATORS, chats))
            await chat_load.open(readers=False)
            samples, started, ended = measured_window(
                running, settings, f"throughput {kind} {processes}"
            )
            rate = await load.stored_per_second(
                running.target, chat_load.customers, settings.duration, started, ended
            )
            await chat_load.close()
        stored = rate * settings.duration
        start, end = samples
        helpers = ", ".join(
            f"{name} {us((end.helpers[name] - start.helpers[name]) / stored)}"
            for name in end.helpers
        )
        rows.append(
            [
                kind,
                "2 + Redis" if processes > 1 else "1",
                f"{rate:,.0f}",
                us((end.server - start.server) / stored),
                helpers or "-",
            ]
        )
        print(
            f"  measured throughput on {kind}, {processes} process(es)", file=sys.stderr
        )
    return table(
        f"Stored messages per second, {chats} customers sending as fast as"
        " they are acknowledged",
        [
            "database",
            "processes",
            "stored/s",
            "server CPU/message",
            "helpers CPU/message",
        ],
        rows,
    )


async def scale(settings: Settings) -> str:
    """The same delivery with customers on one process and operators on another."""
    chats = 500 if 500 in settings.sizes else settings.sizes[-1]
    kind = settings.databases[-1]
    rows = []
    for processes in (1, 2):
        with targets.livehelp(kind, chats, min(OPERATORS, chats), processes) as running:
            label = f"scale {kind} {processes} processes"
            figures = await measure_chats(running, chats, settings, label)
        result = figures.result
        helpers = ", ".join(
            f"{name} {us(cost)}"
            for name, cost in figures.helper_cpu_per_message.items()
        )
        rows.append(
            [
                "1"
                if processes == 1
                else "2 + Redis (customers on one, operators on the other)",
                ms(percentile(result.to_operator, 0.5)),
                ms(percentile(result.to_operator, 0.99)),
                ms(percentile(result.round_trip, 0.99)),
                str(result.lost),
                us(figures.cpu_per_message),
                helpers or "-",
            ]
        )
    return table(
        f"Two processes joined by Redis, {chats} chats,"
        f" {settings.rate:g} messages/s, {kind}",
        [
            "processes",
            "to operator p50",
            "p99",
            "round trip p99",
            "unanswered after 10 s",
            "server CPU/message (all)",
            "database/Redis CPU/message",
        ],
        rows,
    )


SECTIONS = (
    "widget",
    "status",
    "posting",
    "latency",
    "browsers",
    "throughput",
    "scale",
    "crossing",
    "gc",
)


async def run(arguments: argparse.Namespace) -> str:
    settings = settings_from(arguments)
    printed = [machine(settings, arguments)]
    print(printed[0])
    memory: list[list[str]] = []
    for section in arguments.only:
        began = time.perf_counter()
        if section == "widget":
            text = widget_weight(settings)
        elif section == "status":
            text = await status_rate(settings)
        elif section == "posting":
            text = posting(settings.databases, settings.duration)
        elif section == "latency":
            text = await latency(settings, memory)
            text += "\n" + table(
                "Memory per open chat (server RSS growth ÷ chats; includes the"
                " operators' share)",
                ["server", "chats", "memory/chat", "time to open all"],
                memory,
            )
        elif section == "browsers":
            text = await memory_as_browsers_connect(settings)
        elif section == "throughput":
            text = await throughput(settings)
        elif section == "scale":
            text = await scale(settings)
        elif section == "crossing":
            text = crossing(settings.rate, settings.duration)
        else:
            text = await gc_pauses(
                settings.databases,
                500 if 500 in settings.sizes else settings.sizes[-1],
                OPERATORS,
                settings.rate,
                settings.duration,
            )
        print(text)
        print(f"({section}: {time.perf_counter() - began:.0f} s)\n", file=sys.stderr)
        printed.append(text)
    return "\n".join(printed)


def machine(settings: Settings, arguments: argparse.Namespace) -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    cores = len(
        [
            line
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("processor")
        ]
    )
    command = "python -m bench " + " ".join(sys.argv[1:])
    return (
        f"## Flask-LiveHelp benchmarks, {time.strftime('%Y-%m-%d')}\n\n"
        f"Machine: {cores} cores, {cpu}; Python {platform.python_version()};"
        f" databases: {', '.join(settings.databases)}. Command: `{command.strip()}`.\n"
    )


#: What ``--db`` chooses from, in the order measured: sections that take one
#: database take the last asked for.
DATABASES = ("sqlite", "postgresql")


def databases(text: str) -> list[str]:
    """``--db``'s value: the databases named, in :data:`DATABASES`' order."""
    named = set(text.split(","))
    unknown = named - set(DATABASES)
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown databases: {', '.join(sorted(unknown))}"
        )
    return [kind for kind in DATABASES if kind in named]


def raise_open_files_limit() -> None:
    """Thousands of sockets on both ends; child servers inherit the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="a short run: 50 and 500 chats, 4 s each"
    )
    parser.add_argument(
        "--only",
        type=lambda text: text.split(","),
        default=list(SECTIONS),
        help=f"comma-separated sections of {', '.join(SECTIONS)}",
    )
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[50, 500, 5000],
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=100,
        help="messages per second of the delivery tables (the issue's target: 500)",
    )
    parser.add_argument(
        "--duration", type=float, default=10, help="seconds per measurement"
    )
    parser.add_argument(
        "--db",
        type=databases,
        default=list(DATABASES),
        help=f"comma-separated databases of {', '.join(DATABASES)}, measured in turn",
    )
    parser.add_argument(
        "--output", type=Path, help="also write the tables to this file"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="record Flask-LiveHelp's processes with py-spy (and perf, where"
        " installed) into this directory",
    )
    parser.add_argument(
        "--latencies",
        type=Path,
        help="write each delivery's send time and latency to a CSV file a figure"
        " in this directory, to line up with the servers' own logs",
    )
    parser.add_argument(
        "--calls",
        type=Path,
        help="count the Python calls Flask-LiveHelp's worker of the delivery"
        " table makes in the measured window, into this directory, and print"
        " them per message (that worker's CPU figures are then not the usual ones)",
    )
    parser.add_argument(
        "--switches",
        action="store_true",
        help="with --latencies: Flask-LiveHelp's worker of the delivery table"
        " also notes its greenlet switches there, for python -m bench.switches",
    )
    arguments = parser.parse_args()
    unknown = set(arguments.only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    if arguments.switches and arguments.latencies is None:
        parser.error("--switches needs --latencies")
    raise_open_files_limit()
    text = asyncio.run(run(arguments))
    if arguments.output:
        arguments.output.write_text(text)


if __name__ == "__main__":
    main()
