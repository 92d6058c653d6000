"""The servers under test, each started fresh in its own process(es).

``livehelp`` is the benchmark shop under gunicorn's gevent worker (one
process, or two joined by Redis); the baselines are bench.relay_server
(``websockets``) and bench.socketio_app (Flask-SocketIO under the same
gunicorn worker).
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import typing as t
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import sqlalchemy as sa

from bench import load
from bench import procstat
from bench.seed import PASSWORD
from bench.seed import seed

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from servers import free_port  # noqa: E402
from servers import Gunicorn  # noqa: E402
from servers import GUNICORN_SETTINGS as GUNICORN_SETTINGS  # noqa: E402
from servers import REDIS_SERVER  # noqa: E402
from servers import RedisServer  # noqa: E402
from servers import wait_until  # noqa: E402

PG_SERVER = os.environ.get(
    "LIVEHELP_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test"
)
#: Enough for 5,000 chats (customer sockets plus operators) and HTTP.
WORKER_CONNECTIONS = 12_000


class Running(t.NamedTuple):
    """A started server: how to talk to it, which processes to measure."""

    target: t.Any
    pids: t.Callable[[], list[int]]
    #: Processes beside the server that do its work (PostgreSQL, Redis).
    helpers: t.Callable[[], dict[str, list[int]]]


def postgres_available() -> bool:
    engine = sa.create_engine(PG_SERVER, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


@contextlib.contextmanager
def database(kind: str) -> t.Iterator[str]:
    """A new, empty database: a SQLite file, or a PostgreSQL database."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="livehelp-bench-") as directory:
            yield f"sqlite:///{directory}/bench.sqlite3"
        return
    name = f"livehelp_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(PG_SERVER).set(
        database=name, drivername="postgresql+psycopg"
    )
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def livehelp(
    db_kind: str,
    chats: int,
    operators: int,
    processes: int = 1,
    split_customers: bool = False,
    gunicorn_config: Path | None = GUNICORN_SETTINGS,
    environment: dict[str, str] | None = None,
) -> t.Iterator[Running]:
    """The shop on ``processes`` gunicorn processes joined by Redis.

    Operators use the last process; customers the first, so every message
    crosses Redis, or all of them in turn with ``split_customers``.
    ``gunicorn_config`` is a settings file for gunicorn's ``-c``: by default
    the one docs/deployment.md runs the shop with, ``None`` for none;
    ``environment`` is added to the servers'.
    """
    with contextlib.ExitStack() as stack:
        uri = stack.enter_context(database(db_kind))
        seeded = seed(uri, chats, operators)
        env = {"BENCH_DATABASE_URI": uri, **(environment or {})}
        redis_pids: list[int] = []
        if processes > 1:
            if REDIS_SERVER is None:
                raise RuntimeError("two processes need redis-server")
            redis = RedisServer().start()
            stack.callback(redis.close)
            env["BENCH_HUB_URL"] = redis.url
            redis_pids = [redis.pid()]
        shops = [
            stack.enter_context(_gunicorn("bench.wsgi:app", env, gunicorn_config))
            for _ in range(processes)
        ]
        cookies = [sign_in(shops[-1].url, email) for email in seeded.operator_emails]
        bases = [shop.ws_url("") for shop in shops]
        target = load.LiveHelpTarget(
            bases if split_customers else bases[:1], bases[-1], seeded.chats, cookies
        )

        def helpers() -> dict[str, list[int]]:
            found = {"redis": redis_pids} if redis_pids else {}
            return found | _database_pids(db_kind)

        yield Running(
            target,
            lambda: [pid for shop in shops for pid in shop.worker_pids()],
            helpers,
        )


@contextlib.contextmanager
def _gunicorn(
    app: str, env: dict[str, str], config: Path | None = None, **options: t.Any
) -> t.Iterator[Gunicorn]:
    settings = ["-c", str(config)] if config is not None else []
    server = Gunicorn(
        app,
        chdir=ROOT,
        # PYTHONPATH first, so a patched copy of the package can be measured.
        env={
            "PYTHONPATH": os.pathsep.join(filter(None, [_pythonpath(), str(ROOT)])),
            **env,
        },
        worker_connections=WORKER_CONNECTIONS,
        # Enough backlog for thousands of sockets opening at once.
        extra=["--backlog", "4096", "--timeout", "120", *settings],
        **options,
    )
    try:
        yield server.wait_ready(60)
    finally:
        server.stop()


def _pythonpath() -> str:
    return os.environ.get("PYTHONPATH", "")


def sign_in(base: str, email: str) -> str:
    """Sign an operator in through the login form; returns the Cookie header."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + "/livehelp/panel/login").read().decode()
    token = re.search(r'name="_lh_csrf" value="([^"]+)"', page)
    if token is None:
        raise RuntimeError("no CSRF token on the login page")
    form = {"email": email, "password": PASSWORD, "_lh_csrf": token.group(1)}
    opener.open(base + "/livehelp/panel/login", urllib.parse.urlencode(form).encode())
    return "; ".join(f"{cookie.name}={cookie.value}" for cookie in jar)


@contextlib.contextmanager
def relay(operators: int, echo: bool = False) -> t.Iterator[Running]:
    with _relay_server(operators) as (url, pid):
        yield Running(load.RelayTarget(url, echo=echo), lambda: [pid], dict)


@contextlib.contextmanager
def storing_relay(db_kind: str, chats: int, operators: int) -> t.Iterator[Running]:
    """The relay storing each message with the driver alone, in a seeded shop's
    database: the floor under Flask-LiveHelp's figures."""
    with database(db_kind) as uri:
        seed(uri, chats, operators)
        with _relay_server(operators, uri) as (url, pid):
            yield Running(
                load.RelayTarget(url, stores=db_kind),
                lambda: [pid],
                lambda: _database_pids(db_kind),
            )


@contextlib.contextmanager
def _relay_server(
    operators: int, uri: str | None = None
) -> t.Iterator[tuple[str, int]]:
    """bench.relay_server listening: its URL and process id."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.relay_server", str(port), str(operators)]
        + ([uri] if uri else []),
        cwd=ROOT,
    )
    try:
        wait_until(lambda: _accepts(port), 30, "the websockets relay listening")
        yield f"ws://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.contextmanager
def socketio(operators: int) -> t.Iterator[Running]:
    with _gunicorn(
        "bench.socketio_app:app",
        {"BENCH_OPERATORS": str(operators)},
        health="/health",
    ) as server:
        yield Running(load.SocketIOTarget(server.ws_url("")), server.worker_pids, dict)


def _database_pids(db_kind: str) -> dict[str, list[int]]:
    """The database's processes, whose CPU is counted apart."""
    if db_kind == "postgresql":
        return {"postgresql": procstat.pids_named("postgres")}
    return {}


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        time.sleep(0.05)
        return False
