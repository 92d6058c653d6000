"""Fixtures: a host app per test, a live server, socket clients and a browser.

The database is SQLite by default; ``--db postgresql`` (or
``LIVEHELP_TEST_DB=postgresql``) runs every test against PostgreSQL at
``LIVEHELP_TEST_PG`` (default: the machine's server, database ``test``), in
a database of its own that is dropped afterwards.
"""

from __future__ import annotations

import collections
import collections.abc as c
import faulthandler
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import threading
import time
import typing as t
import uuid

import pytest
import sqlalchemy as sa
from flask import Flask
from flask import request
from flask_babel import Babel
from flask_mail import Mail
from flask_sqlalchemy import SQLAlchemy
from playwright.sync_api import expect
from simple_websocket import ConnectionClosed
from werkzeug.serving import make_server

from flask_livehelp import get_state
from flask_livehelp import LiveHelp
from flask_livehelp.services.limits import seconds_left
from wsclient import WsClient

# Real SMTP and IMAP servers for the mail tests; PostgreSQL, Redis and SMTP
# for the tests of a whole deployment.
pytest_plugins = ["mailservers", "deployment"]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
#: The PostgreSQL server, with psycopg (3) named: SQLAlchemy 2.0 (the
#: oldest we test) takes psycopg2 for a bare postgresql:// URL.
PG_SERVER = (
    sa.engine.make_url(
        os.environ.get("LIVEHELP_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
    )
    .set(drivername="postgresql+psycopg")
    .render_as_string(hide_password=False)
)


def need(condition: bool, reason: str) -> None:
    """Skip loudly when a real part is missing here; in CI, fail instead."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI must have this: {reason}")
    pytest.skip(f"SKIPPED, NOT TESTED: {reason}")


def printed_by(script: str) -> str:
    """What ``script`` prints, run by this Python in a process of its own:
    for gevent's monkey patching, which no test may leave behind."""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=("sqlite", "postgresql"),
        default=os.environ.get("LIVEHELP_TEST_DB", "sqlite"),
        help="database every test runs against",
    )


# Databases.


@pytest.fixture(scope="session")
def database_kind(pytestconfig: pytest.Config) -> str:
    return t.cast(str, pytestconfig.getoption("--db"))


@pytest.fixture(scope="session")
def postgres_database(database_kind: str) -> c.Iterator[str | None]:
    """A PostgreSQL database for this test session, dropped at the end."""
    if database_kind != "postgresql":
        yield None
        return
    name = f"livehelp_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as error:
        need(False, f"PostgreSQL at {PG_SERVER} ({error.orig})")
    url = sa.engine.make_url(PG_SERVER).set(database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def database_uri(tmp_path: t.Any, postgres_database: str | None) -> str:
    # A file, not sqlite://: the live server's threads need to share it.
    return postgres_database or f"sqlite:///{tmp_path / 'shop.sqlite3'}"


def drop_everything(database_uri: str) -> None:
    """Every table of the database, version tables included."""
    engine = sa.create_engine(database_uri)
    everything = sa.MetaData()
    everything.reflect(engine)
    everything.drop_all(engine)
    engine.dispose()


@pytest.fixture
def empty_database_uri(database_uri: str) -> c.Iterator[str]:
    """A database without a table, for tests of what makes the tables.

    On PostgreSQL the session's database keeps the tables of the tests
    before (see :func:`_empty`); a migration test must not find them.
    """
    drop_everything(database_uri)
    yield database_uri
    drop_everything(database_uri)


def _empty(db: SQLAlchemy) -> None:
    """Leave nothing of a test for the next one.

    SQLite: every test has a file of its own, which goes with its tmp_path.
    PostgreSQL: the session's database keeps its tables (making 30 tables per
    test would cost most of the run) and is emptied instead.
    """
    db.session.remove()
    for engine in db.engines.values():
        # First: pooled connections may have been ended by another app's
        # _empty (below), and a fresh one must run the TRUNCATE.
        engine.dispose()
        if engine.dialect.name == "postgresql":
            _truncate(engine)
            engine.dispose()


def _truncate(engine: sa.Engine, attempts: int = 5) -> None:
    # A thread of the test's server may still hold a connection in a
    # transaction (TRUNCATE would wait for it forever), or open a new one
    # while the tables are locked one by one (a deadlock): end the others'
    # connections, and try again after a deadlock.
    for attempt in range(attempts):
        try:
            with engine.begin() as connection:
                connection.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = current_database()"
                        " AND pid <> pg_backend_pid()"
                    )
                )
                tables = sa.inspect(connection).get_table_names()
                if tables:
                    names = ", ".join(f'"{name}"' for name in tables)
                    connection.execute(
                        sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
                    )
            return
        except sa.exc.OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2)


# The host app.


@pytest.fixture
def db() -> SQLAlchemy:
    # A new instance per test, so model classes and metadata never leak.
    return SQLAlchemy()


@pytest.fixture
def livehelp(db: SQLAlchemy) -> LiveHelp:
    return LiveHelp(db=db)


#: Test passwords need no protection; scrypt costs 0.7 s a hash here.
CHEAP_HASH = "pbkdf2:sha256:1"


def livehelp_settings(item: pytest.Item) -> dict[str, t.Any]:
    """What ``@pytest.mark.livehelp(...)`` sets for this test."""
    marker = item.get_closest_marker("livehelp")
    return dict(marker.kwargs) if marker else {}


@pytest.fixture(autouse=True)
def limit_window_not_turning(request: pytest.FixtureRequest) -> None:
    """A test of a per-minute limit starts with 10 s or more of the minute
    left: limits count in windows that start every minute, and a test run
    across the turn of one (a loaded machine, seen in CI) saw its count
    start over."""
    if any("per_minute" in key for key in livehelp_settings(request.node)):
        left = seconds_left(60)
        if left < 10:
            time.sleep(left + 0.05)


def make_app(
    database_uri: str, db: SQLAlchemy, livehelp: LiveHelp, **config: t.Any
) -> Flask:
    """A host app the way a shop builds one: db, Mail, Babel, then LiveHelp."""
    # Flask(__name__) makes tests/templates and tests/translations the host's.
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        SECRET_KEY="test",
        SQLALCHEMY_DATABASE_URI=database_uri,
        MAIL_DEFAULT_SENDER="shop@example.com",
        LIVEHELP_STATUS_POLL_SECONDS=1,
        LIVEHELP_PASSWORD_HASH=CHEAP_HASH,
    )
    app.config.update({f"LIVEHELP_{k.upper()}": v for k, v in config.items()})
    db.init_app(app)
    Mail(app)
    Babel(app, locale_selector=lambda: request.args.get("locale"))
    livehelp.init_app(app)
    with app.app_context():
        db.create_all()
    return app


@pytest.fixture
def app(
    request: pytest.FixtureRequest,
    database_uri: str,
    db: SQLAlchemy,
    livehelp: LiveHelp,
) -> c.Iterator[Flask]:
    settings = livehelp_settings(request.node)
    app = make_app(database_uri, db, livehelp, **settings)
    yield app
    get_state(app).jobs.stop()
    with app.app_context():
        _empty(db)
    get_state(app).hub.close()


@pytest.fixture
def app_context(app: Flask) -> c.Iterator[None]:
    with app.app_context():
        yield


@pytest.fixture
def state(app: Flask, app_context: None) -> t.Any:
    return get_state(app)


PASSWORD = "correct horse"


@pytest.fixture
def make_operator(app: Flask) -> c.Callable[..., t.Any]:
    """Create operators: ``make_operator(name="Mette", role="admin")``."""
    counter = iter(range(1, 1000))

    def create(**fields: t.Any) -> t.Any:
        number = next(counter)
        fields.setdefault("name", f"Operator {number}")
        fields.setdefault("email", f"operator{number}@example.com")
        fields.setdefault("password", PASSWORD)
        with app.app_context():
            session = get_state(app).db.session
            operator = get_state(app).operators.create_operator(**fields)
            # Loaded and detached, so tests can read it outside the app.
            session.refresh(operator)
            session.expunge(operator)
            return operator

    return create


@pytest.fixture
def operator(make_operator: c.Callable[..., t.Any]) -> t.Any:
    return make_operator(name="Mette", email="mette@example.com")


# A live server and socket clients.


class LiveServer:
    def __init__(self, app: Flask, ssl_context: ssl.SSLContext | None = None) -> None:
        self.app = app
        self.server = make_server(
            "127.0.0.1", 0, app, threaded=True, ssl_context=ssl_context
        )
        scheme = "http" if ssl_context is None else "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def ws_url(self, path: str) -> str:
        return self.url.replace("http", "ws", 1) + path

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def live_server(app: Flask) -> c.Iterator[LiveServer]:
    server = LiveServer(app)
    yield server
    server.stop()


class Socket:
    """A test client for our sockets: JSON frames in and out, with a timeout."""

    def __init__(
        self,
        url: str,
        headers: dict[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.ws = WsClient.connect(url, headers=headers or {}, ssl_context=ssl_context)

    def send(self, **frame: t.Any) -> None:
        self.send_raw(json.dumps(frame))

    def send_raw(self, text: str) -> None:
        try:
            self.ws.send(text)
        except OSError as error:
            # The client's reader thread closes the socket once the server
            # has closed the connection; a send racing it gets EBADF, which
            # says nothing of why the server closed.
            closed = ConnectionClosed(self.ws.close_reason, self.ws.close_message)
            raise closed from error

    def receive(self, timeout: float = 5) -> dict[str, t.Any]:
        text = self.ws.receive(timeout=timeout)
        if text is None:
            raise AssertionError(f"No frame within {timeout} s.")
        return t.cast("dict[str, t.Any]", json.loads(text))

    def expect(
        self, frame_type: str, /, timeout: float = 5, **fields: t.Any
    ) -> dict[str, t.Any]:
        """The next frame of ``frame_type`` (and these fields), skipping others."""
        seen = []
        while True:
            frame = self.receive(timeout)
            if frame["type"] == frame_type and all(
                frame.get(k) == v for k, v in fields.items()
            ):
                return frame
            seen.append(frame)
            if len(seen) > 50:
                raise AssertionError(f"No {frame_type} frame among {seen}")

    def expect_any(self, *frame_types: str, timeout: float = 5) -> dict[str, t.Any]:
        """The next frame of one of ``frame_types``, skipping others."""
        for _ in range(50):
            frame = self.receive(timeout)
            if frame["type"] in frame_types:
                return frame
        raise AssertionError(f"No frame of {frame_types}")

    def until(self, frame_type: str, timeout: float = 5) -> list[dict[str, t.Any]]:
        """Every frame before the next of ``frame_type`` (a backlog before
        its "synced"), however long a loaded server takes to send them."""
        frames = []
        while (frame := self.receive(timeout))["type"] != frame_type:
            frames.append(frame)
        return frames

    def quiet(self, timeout: float = 0.3) -> list[dict[str, t.Any]]:
        """Every frame that arrives within ``timeout``."""
        frames = []
        while (text := self.ws.receive(timeout=timeout)) is not None:
            frames.append(json.loads(text))
        return frames

    def close(self) -> None:
        try:
            self.ws.close()
        except ConnectionClosed:
            pass  # the server closed it first


@pytest.fixture
def sockets() -> c.Iterator[list[Socket]]:
    opened: list[Socket] = []
    yield opened
    for socket in opened:
        try:
            socket.close()
        except Exception:
            pass


@pytest.fixture
def visitor_socket(
    live_server: LiveServer, sockets: list[Socket]
) -> c.Callable[..., Socket]:
    def connect(**headers: str) -> Socket:
        socket = Socket(live_server.ws_url("/livehelp/widget/ws"), headers)
        sockets.append(socket)
        return socket

    return connect


def login(
    client: t.Any, email: str, password: str = PASSWORD, **request: t.Any
) -> t.Any:
    """Sign in to the panel with a test client, as the login form does.

    With every hidden field of the form: a host's CSRFProtect wants its own.
    ``request`` goes with both requests (``base_url="https://..."``, say).
    """
    page = client.get("/livehelp/panel/login", **request)
    hidden = dict(
        re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page.text)
    )
    return client.post(
        "/livehelp/panel/login",
        data={**hidden, "email": email, "password": password},
        **request,
    )


def signed_in_client(app: Flask, operator_id: int, session_key: str) -> t.Any:
    """A test client whose panel cookie signs it in, without the sign-in form.

    Its CSRF token is ``client.csrf``.
    """
    from itsdangerous import URLSafeTimedSerializer

    from flask_livehelp.auth import COOKIE_SALT

    client = app.test_client()
    client.csrf = "a-test-csrf-token"
    value = URLSafeTimedSerializer(app.secret_key, salt=COOKIE_SALT).dumps(
        {"o": operator_id, "k": session_key, "c": client.csrf}
    )
    client.set_cookie("livehelp_panel", value, path="/livehelp")
    return client


def panel_cookie(client: t.Any) -> str:
    """The panel's cookie of a signed-in test client, as a Cookie header."""
    cookie = client.get_cookie("livehelp_panel", path="/livehelp")
    assert cookie is not None, "not signed in to the panel"
    return f"livehelp_panel={cookie.value}"


@pytest.fixture
def operator_socket(
    app: Flask, live_server: LiveServer, sockets: list[Socket]
) -> c.Callable[[t.Any], Socket]:
    """Open the panel socket as ``operator``, signed in through the login form."""

    def connect(operator: t.Any) -> Socket:
        client = app.test_client()
        assert login(client, operator.email).status_code == 302
        socket = Socket(
            live_server.ws_url("/livehelp/panel/ws"), {"Cookie": panel_cookie(client)}
        )
        sockets.append(socket)
        socket.expect("hello")
        return socket

    return connect


# The example shop, as a shop developer runs it.

SHOP_OPERATOR = {"email": "operator@example.com", "password": "operator"}


@pytest.fixture
def shop(request: pytest.FixtureRequest, database_uri: str) -> c.Iterator[Flask]:
    """The example shop; ``@pytest.mark.livehelp(key=value)`` sets LIVEHELP_KEY."""
    from example_shop import create_app
    from example_shop.extensions import db as shop_db
    from example_shop.seed import create_demo_operator
    from example_shop.seed import seed

    settings = livehelp_settings(request.node)
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_uri,
            "LIVEHELP_STATUS_POLL_SECONDS": 1,
            "LIVEHELP_PASSWORD_HASH": CHEAP_HASH,
            **{f"LIVEHELP_{k.upper()}": v for k, v in settings.items()},
        }
    )
    seed(app)
    create_demo_operator(app)
    yield app
    get_state(app).jobs.stop()
    with app.app_context():
        _empty(shop_db)


@pytest.fixture
def shop_server(shop: Flask) -> c.Iterator[LiveServer]:
    server = LiveServer(shop)
    yield server
    server.stop()


# The browser.

CHROMIUM = (
    os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
# NETLOG=path.json keeps Chromium's own log of every connection, for a browser
# test whose sockets hang (chrome://net-export's format).
if os.environ.get("NETLOG"):
    CHROMIUM_ARGS += [
        f"--log-net-log={os.environ['NETLOG']}",
        "--net-log-capture-mode=Everything",
    ]


# A person waits a little longer than Playwright's default 5 s on a busy
# two-core machine (CI runs the whole suite on one).
expect.set_options(timeout=10_000)


@pytest.fixture(scope="session")
def browser_type_launch_args(
    browser_type_launch_args: dict[str, t.Any],
) -> dict[str, t.Any]:
    # Playwright cannot download its own browsers here; Debian's Chromium works.
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": CHROMIUM_ARGS,
        "timeout": 30_000,
    }


class PageLog:
    """What a test's pages said and heard, shown when a browser test fails.

    A flow that fails now and then on a loaded machine cannot be rerun by
    hand; the socket frames and console lines of that one run say where it
    stopped.
    """

    LIMIT = 2000

    def __init__(self) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=self.LIMIT)
        self.errors: list[str] = []
        self._start = time.monotonic()

    def add(self, who: str, text: str) -> None:
        self.lines.append(f"{time.monotonic() - self._start:7.3f} {who} {text[:300]}")

    def watch(self, page: t.Any, who: str) -> None:
        page.on("console", lambda m: self.add(who, f"console.{m.type}: {m.text}"))
        page.on("pageerror", lambda error: self.page_error(who, error))
        page.on("websocket", lambda ws: self._watch_socket(ws, who))

    def page_error(self, who: str, error: t.Any) -> None:
        self.errors.append(f"{who}: {error}")
        self.add(who, f"page error: {error}")

    def _watch_socket(self, ws: t.Any, who: str) -> None:
        name = f"{who} socket {ws.url.split('?')[0].rsplit('/', 2)[-2]}"
        self.add(name, "opening")
        ws.on("framesent", lambda payload: self.add(name, f"-> {payload}"))
        ws.on("framereceived", lambda payload: self.add(name, f"<- {payload}"))
        ws.on("socketerror", lambda error: self.add(name, f"error: {error}"))
        ws.on("close", lambda _: self.add(name, "closed"))


#: Seconds a test may take, set up and torn down included, before its
#: process prints every thread's stack and exits. Far above the slowest test
#: (about a minute): it turns a test that hangs into a failure that says
#: where, instead of a run that stalls until CI gives up on it.
HANG_SECONDS = 600


#: A copy of the terminal's stderr, taken before pytest captures it while
#: tests run (a dump written to the captured one is lost with the process).
HANG_REPORT = pytest.StashKey[int]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[HANG_REPORT] = os.dup(2)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> c.Generator[None, object, object]:
    report = item.config.stash[HANG_REPORT]
    faulthandler.dump_traceback_later(HANG_SECONDS, exit=True, file=report)
    try:
        return (yield)
    finally:
        faulthandler.cancel_dump_traceback_later()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> c.Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    return report


CALL_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def new_page(
    browser: t.Any, request: pytest.FixtureRequest
) -> c.Iterator[c.Callable[..., t.Any]]:
    """Open pages, each in a browser context of its own (one person each)."""
    contexts: list[t.Any] = []
    page_log = PageLog()

    def open_page(**context_args: t.Any) -> t.Any:
        context = browser.new_context(**context_args)
        contexts.append(context)
        page = context.new_page()
        page_log.watch(page, f"page{len(contexts)}")
        return page

    yield open_page
    if request.node.stash.get(CALL_FAILED, False):
        print("What the pages said and heard (seconds since the first page):")
        print("\n".join(page_log.lines))
    for context in contexts:
        context.close()
    # A script that throws has left a person looking at a half-updated page.
    assert not page_log.errors, f"The pages threw: {page_log.errors}"


@pytest.fixture(scope="session")
def chromium_present() -> None:
    need(os.path.exists(CHROMIUM), f"Chromium at {CHROMIUM} (apt-get install chromium)")


BROWSER_FIXTURES = {"page", "browser", "new_page"}
#: Real servers beside the app's own process: the integration tier.
SERVER_FIXTURES = {"live_server", "shop_server", "imap_server", "redis_server"}
#: Modules that start server processes of their own.
SERVER_MODULES = {"test_chaos", "test_deployment", "test_redis_hub"}


#: Settings a test shortens to see presence and silence time-outs pass in
#: seconds: it measures time, so it runs with no other test beside it.
TIMED_SETTINGS = {
    "heartbeat_seconds",
    "client_silence_seconds",
    "presence_grace_seconds",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.module.__name__ in SERVER_MODULES or _shortens_time_outs(item):
            item.add_marker(pytest.mark.alone)
        uses = set(getattr(item, "fixturenames", ()))
        if uses & BROWSER_FIXTURES or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.browser)
            item.fixturenames.insert(0, "chromium_present")
        if (
            item.get_closest_marker("browser")
            or uses & SERVER_FIXTURES
            or item.module.__name__ in SERVER_MODULES
        ):
            item.add_marker(pytest.mark.integration)


def _shortens_time_outs(item: pytest.Item) -> bool:
    settings = livehelp_settings(item)
    return any(settings.get(key, 60) < 60 for key in TIMED_SETTINGS)


@pytest.fixture
def events(state: t.Any) -> list[tuple[str, dict[str, t.Any]]]:
    """Everything published on the hub during the test."""
    seen: list[tuple[str, dict[str, t.Any]]] = []
    original = state.hub.deliver

    def record(channel: str, text: str) -> None:
        seen.append((channel, json.loads(text)))
        original(channel, text)

    state.hub.deliver = record
    return seen


def statements_of(state: t.Any, work: t.Callable[..., t.Any], *args: t.Any) -> int:
    """How many SQL statements ``work(*args)`` sends."""
    count = 0

    def counted(*args: t.Any) -> None:
        nonlocal count
        count += 1

    engine = state.db.engine
    sa.event.listen(engine, "before_cursor_execute", counted)
    try:
        work(*args)
    finally:
        sa.event.remove(engine, "before_cursor_execute", counted)
    return count
