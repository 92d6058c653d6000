"""The production recipe of docs/deployment.md, for real: two gunicorn
processes with gevent workers, PostgreSQL and Redis.

A customer on one process chats with an operator on the other; a chat
nobody takes times out once, and its offline mail goes out once, although
both processes run the background loop. Skipped locally when PostgreSQL or
Redis is missing; CI has both.
"""

from __future__ import annotations

import collections.abc as c
import time
import typing as t

import pytest
import redis
from simple_websocket import ConnectionClosed

from conftest import need
from conftest import Socket
from deployment import base_environment
from deployment import create_operator
from deployment import flask
from deployment import no_tracebacks
from deployment import sign_in
from deployment import stored
from deployment import TESTS
from mailservers import SMTPServer
from servers import Gunicorn
from servers import GUNICORN_SETTINGS
from servers import RedisServer
from servers import VENV_BIN
from servers import wait_until
from test_sockets import TLS_CERTIFICATE

QUEUE_TIMEOUT_SECONDS = 2
SOCKETS_PER_IP = 6
MESSAGES_PER_MINUTE = 4


@pytest.fixture(scope="module")
def environment(
    postgres: str, redis_server: RedisServer, mailbox: SMTPServer
) -> dict[str, str]:
    return {
        **base_environment(postgres, redis_server, mailbox),
        "SHOP_LIVEHELP_QUEUE_TIMEOUT_SECONDS": str(QUEUE_TIMEOUT_SECONDS),
        "SHOP_LIVEHELP_SOCKETS_PER_IP": str(SOCKETS_PER_IP),
        "SHOP_LIVEHELP_VISITOR_MESSAGES_PER_MINUTE": str(MESSAGES_PER_MINUTE),
    }


@pytest.fixture(scope="module")
def servers(environment: dict[str, str]) -> c.Iterator[tuple[Gunicorn, Gunicorn]]:
    """Two gunicorn processes, as two machines behind a load balancer."""
    need(
        (VENV_BIN / "gunicorn").exists(),
        "gunicorn[gevent] (pip install gunicorn[gevent])",
    )
    flask(environment, "livehelp", "db-upgrade")
    create_operator(environment)
    started = [
        Gunicorn(
            "deployed_app:app",
            chdir=TESTS,
            env=environment,
            extra=["-c", str(GUNICORN_SETTINGS)],
        )
        for _ in range(2)
    ]
    try:
        for server in started:
            server.wait_ready()
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()
    no_tracebacks(*started)


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


def test_two_gevent_workers_serve_the_shop(
    servers: tuple[Gunicorn, Gunicorn],
) -> None:
    one, other = servers
    assert len(one.worker_pids()) == len(other.worker_pids()) == 1
    assert one.worker_pids() != other.worker_pids()
    assert "Using worker: gevent" in one.log()


def open_sockets(environment: dict[str, str]) -> int:
    """The sockets this machine's address has open, as every process of the
    shop counts them together in Redis."""
    client = redis.Redis.from_url(environment["SHOP_LIVEHELP_HUB_URL"])
    try:
        prefix = environment["SHOP_LIVEHELP_HUB_PREFIX"]
        counts = client.hgetall(f"{prefix}sockets:127.0.0.1")
    finally:
        client.close()
    return sum(int(count) for count in counts.values())


def test_a_gunicorn_that_speaks_tls_itself_serves_the_chat(
    environment: dict[str, str],
    servers: tuple[Gunicorn, Gunicorn],
    sockets: list[Socket],
) -> None:
    """gunicorn's ``--certfile`` under gevent: its sockets are gevent's TLS
    sockets, which hold the system socket beneath them, and frames were
    written there, past the encryption. (A third server, on the database
    ``servers`` made.)"""
    server = Gunicorn(
        "deployed_app:app", chdir=TESTS, env=environment, tls=TLS_CERTIFICATE
    )
    try:
        server.wait_ready()
        customer = Socket(
            server.ws_url("/livehelp/widget/ws"), ssl_context=server.trusting
        )
        sockets.append(customer)
        customer.send(type="hello", page="https://shop.test/regnjakke")
        customer.expect("welcome")
        long = "Æ" * 2500
        customer.send(type="start", id="q1", body=long)
        assert customer.expect("ack", id="q1")["seq"] == 1
        customer.send(type="sync", after=0)
        assert customer.expect("message", id="q1")["body"] == long
        # Closed while its server runs, so it leaves the address's count of
        # open sockets (the limits test below counts them).
        assert open_sockets(environment) == 1
        customer.close()
        wait_until(lambda: open_sockets(environment) == 0, 10, "the socket closed")
    finally:
        server.stop()
    no_tracebacks(server)


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
    # Off for the next tests: one who only closed the panel would show away
    # for the grace time, and chats wait for an operator who is away.
    operator.send(type="status", state="offline")
    operator.expect("status", chosen="offline")

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


def test_limits_follow_the_visitor_and_the_address_across_both_processes(
    servers: tuple[Gunicorn, Gunicorn], sockets: list[Socket]
) -> None:
    shop_a, shop_b = servers
    # One visitor's lines, sent half to each process: one minute's budget.
    first = open_socket(sockets, shop_a, "/livehelp/widget/ws")
    first.send(type="hello")
    token = first.expect("welcome")["token"]
    first.send(type="start", id="q1", body="Hej")
    first.expect("ack", id="q1")
    second = open_socket(sockets, shop_b, "/livehelp/widget/ws")
    second.send(type="hello", token=token)
    second.expect("welcome")
    answers = []
    for number in range(2, MESSAGES_PER_MINUTE + 2):
        tab = (first, second)[number % 2]
        tab.send(type="message", id=f"m{number}", body=f"Linje {number}")
        answers.append(tab.expect_any("ack", "error"))
    assert [a["type"] for a in answers] == ["ack"] * (MESSAGES_PER_MINUTE - 1) + [
        "error"
    ]
    assert answers[-1]["code"] == "too-fast"
    # One address's open sockets, on both processes together (two are open).
    refused = []
    for number in range(SOCKETS_PER_IP):
        server = (shop_a, shop_b)[number % 2]
        tab = open_socket(sockets, server, "/livehelp/widget/ws")
        try:
            tab.send(type="hello")
        except (ConnectionClosed, OSError):
            pass  # turned away before hello: the reason waits in the buffer
        said = tab.expect_any("welcome", "error", timeout=10)
        if said["type"] == "error":
            refused.append((number, said["code"]))
    assert refused == [
        (number, "too-many") for number in range(SOCKETS_PER_IP - 2, SOCKETS_PER_IP)
    ]
