"""The production recipe of docs/deployment.md, for real: two gunicorn
processes with gevent workers, PostgreSQL and Redis.

A customer on one process chats with an operator on the other; a chat
nobody takes times out once, and its offline mail goes out once, although
both processes run the background loop. Skipped locally when PostgreSQL or
Redis is missing; CI has both.
"""

from __future__ import annotations

import collections.abc as c
import http.cookiejar
import os
import re
import subprocess
import time
import typing as t
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import need
from conftest import PG_SERVER
from conftest import Socket
from mailservers import SMTPServer
from servers import Gunicorn
from servers import REDIS_SERVER
from servers import RedisServer
from servers import VENV_BIN
from servers import wait_until

TESTS = Path(__file__).parent
OPERATOR = {"email": "mette@example.com", "password": "correct horse"}
QUEUE_TIMEOUT_SECONDS = 2


@pytest.fixture(scope="module")
def postgres() -> c.Iterator[str]:
    """A database of its own on the machine's PostgreSQL, whatever --db says."""
    name = f"livehelp_deploy_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as error:
        admin.dispose()
        need(False, f"PostgreSQL at {PG_SERVER} ({error.orig})")
    url = sa.engine.make_url(PG_SERVER).set(
        database=name, drivername="postgresql+psycopg"
    )
    yield url.render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def redis_server() -> c.Iterator[RedisServer]:
    need(REDIS_SERVER is not None, "redis-server (apt-get install redis-server)")
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def mailbox() -> c.Iterator[SMTPServer]:
    server = SMTPServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def environment(
    postgres: str, redis_server: RedisServer, mailbox: SMTPServer
) -> dict[str, str]:
    """The shop's settings, as a deployment passes them in the environment."""
    return {
        "SHOP_SQLALCHEMY_DATABASE_URI": postgres,
        "SHOP_LIVEHELP_HUB_URL": redis_server.url,
        "SHOP_LIVEHELP_HUB_PREFIX": f"test-{uuid.uuid4().hex[:6]}:",
        "SHOP_LIVEHELP_QUEUE_TIMEOUT_SECONDS": str(QUEUE_TIMEOUT_SECONDS),
        "SHOP_LIVEHELP_OFFLINE_MAILBOX": '"shop@example.com"',
        "SHOP_MAIL_SERVER": "127.0.0.1",
        "SHOP_MAIL_PORT": str(mailbox.port),
        "SHOP_MAIL_DEFAULT_SENDER": '"shop@example.com"',
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }


def flask(environment: dict[str, str], *args: str, stdin: str = "") -> str:
    """Run ``flask --app deployed_app ...`` as the deployment recipe does."""
    result = subprocess.run(
        [str(VENV_BIN / "flask"), "--app", "deployed_app", *args],
        env={**os.environ, **environment},
        cwd=TESTS,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def servers(environment: dict[str, str]) -> c.Iterator[tuple[Gunicorn, Gunicorn]]:
    """Two gunicorn processes, as two machines behind a load balancer."""
    need(
        (VENV_BIN / "gunicorn").exists(),
        "gunicorn[gevent] (pip install gunicorn[gevent])",
    )
    flask(environment, "livehelp", "db-upgrade")
    password = OPERATOR["password"]
    flask(
        environment,
        "livehelp",
        "create-operator",
        "--name",
        "Mette",
        "--email",
        OPERATOR["email"],
        "--role",
        "admin",
        stdin=f"{password}\n{password}\n",
    )
    started = [
        Gunicorn("deployed_app:app", chdir=TESTS, env=environment) for _ in range(2)
    ]
    try:
        for server in started:
            server.wait_ready()
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()
    for server in started:
        assert "Traceback" not in server.log(), server.log()


def sign_in(server: Gunicorn) -> str:
    """Sign in through the login form; returns the Cookie header."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(server.url + "/livehelp/panel/login").read().decode()
    token = re.search(r'name="_lh_csrf" value="([^"]+)"', page)
    assert token is not None
    form = urllib.parse.urlencode({**OPERATOR, "_lh_csrf": token.group(1)}).encode()
    opener.open(server.url + "/livehelp/panel/login", data=form)
    return "; ".join(f"{cookie.name}={cookie.value}" for cookie in jar)


@pytest.fixture
def sockets() -> c.Iterator[list[Socket]]:
    opened: list[Socket] = []
    yield opened
    for socket in opened:
        socket.close()


def open_socket(
    sockets: list[Socket], server: Gunicorn, path: str, **headers: str
) -> Socket:
    socket = Socket(server.ws_url(path), headers)
    sockets.append(socket)
    return socket


def stored(postgres: str, conversation_id: int) -> list[tuple[int, str, str]]:
    engine = sa.create_engine(postgres)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT seq, author, body FROM livehelp_message"
                    " WHERE conversation_id = :id ORDER BY seq"
                ),
                {"id": conversation_id},
            )
            return [tuple(row) for row in rows]  # type: ignore[misc]
    finally:
        engine.dispose()


def test_two_gevent_workers_serve_the_shop(
    servers: tuple[Gunicorn, Gunicorn],
) -> None:
    one, other = servers
    assert len(one.worker_pids()) == len(other.worker_pids()) == 1
    assert one.worker_pids() != other.worker_pids()
    assert "Using worker: gevent" in one.log()


def test_a_customer_on_one_process_chats_with_an_operator_on_the_other(
    servers: tuple[Gunicorn, Gunicorn], sockets: list[Socket], postgres: str
) -> None:
    shop_a, shop_b = servers
    operator = open_socket(
        sockets, shop_b, "/livehelp/panel/ws", Cookie=sign_in(shop_b)
    )
    operator.expect("hello")
    operator.send(type="status", state="online")
    customer = open_socket(sockets, shop_a, "/livehelp/widget/ws")
    customer.send(type="hello", page="https://shop.test/regnjakke")
    customer.expect("welcome")
    customer.send(type="start", id="q1", body="Har I regnjakken i blå?")
    conversation = customer.expect("ack", id="q1")["conversation"]

    assert operator.expect("queued", id=conversation)["preview"] == (
        "Har I regnjakken i blå?"
    )
    operator.send(type="accept", conversation=conversation)
    operator.expect("assigned", id=conversation)
    assert customer.expect("conversation", status="active")["operator"] == "Mette"
    customer.send(type="typing", state=True)
    assert operator.expect("typing", conversation=conversation)["author"] == "visitor"
    operator.send(type="message", conversation=conversation, id="o1", body="Ja, i M")
    assert customer.expect("message", id="o1")["body"] == "Ja, i M"
    customer.send(type="message", id="q2", body="Så tager jeg den!")
    assert operator.expect("message", id="q2")["body"] == "Så tager jeg den!"
    customer.send(type="end")
    operator.expect("ended", id=conversation)

    assert [(seq, author) for seq, author, _ in stored(postgres, conversation)] == [
        (1, "visitor"),
        (2, "system"),
        (3, "operator"),
        (4, "visitor"),
        (5, "system"),
    ]


def test_a_chat_nobody_takes_times_out_once_and_is_mailed_once(
    servers: tuple[Gunicorn, Gunicorn],
    sockets: list[Socket],
    postgres: str,
    mailbox: SMTPServer,
) -> None:
    """Both processes run the time-out and outbox jobs; each happens once."""
    shop_a, _ = servers
    customer = open_socket(sockets, shop_a, "/livehelp/widget/ws")
    customer.send(type="hello")
    customer.expect("welcome")
    customer.send(type="start", id="q1", body="Er der nogen?")
    conversation = customer.expect("ack", id="q1")["conversation"]
    before = len(mailbox.deliveries)

    # The time-out job runs every 5 s in each process.
    ended = customer.expect("conversation", timeout=20, status="missed")
    assert ended["id"] == conversation
    events = [(seq, body) for seq, author, body in stored(postgres, conversation)]
    assert events[1:] == [(2, "ended")]

    def mailed() -> list[t.Any]:
        return [d for d in mailbox.deliveries[before:] if b"Er der nogen?" in d.raw]

    wait_until(lambda: bool(mailed()), 20, "the offline mail reaching SMTP")
    # Long enough for both processes' outbox jobs to have run again.
    time.sleep(6)
    assert len(mailed()) == 1
    assert mailed()[0].recipients == ["shop@example.com"]
