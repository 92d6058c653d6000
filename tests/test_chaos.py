"""Nothing lost, doubled or out of order while connections break and workers die.

The production recipe (two gunicorn masters with a gevent worker each,
PostgreSQL, the Redis hub) behind a load balancer that cuts a random
WebSocket every 0.4 s, half with a reset and half with a bare FIN. Customers
and operators are real Chromium pages running the shipped widget and panel;
they chat while a worker of each master is killed with -9 once. Afterwards
every stored message is on both sides' screens exactly once, none was ever
put above a later one, nothing was stored twice, and the servers' logs hold
no traceback.
"""

from __future__ import annotations

import collections.abc as c
import os
import signal
import time
import typing as t

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from playwright.sync_api import Page

from browser import ask
from browser import chat
from browser import go_online
from browser import reordered
from browser import reply
from browser import sign_in
from browser import watched_page
from browser import write
from chaos import ChaosProxy
from conftest import need
from deployment import base_environment
from deployment import create_operator
from deployment import flask
from deployment import no_tracebacks
from deployment import OPERATOR
from deployment import TESTS
from mailservers import SMTPServer
from servers import Gunicorn
from servers import RedisServer
from servers import VENV_BIN
from servers import wait_until

CUSTOMERS = 6
OPERATORS = 2
ROUNDS = 8
#: Sockets cut between one round's lines and the next round's, at least.
CUTS_PER_ROUND = 3
#: Before these rounds a worker is killed: the first master's, then the other's.
KILLS = {3: 0, 6: 1}


@pytest.fixture(scope="module")
def shop(
    postgres: str, redis_server: RedisServer, mailbox: SMTPServer
) -> c.Iterator[tuple[Gunicorn, Gunicorn, ChaosProxy]]:
    need(
        (VENV_BIN / "gunicorn").exists(),
        "gunicorn[gevent] (pip install gunicorn[gevent])",
    )
    environment = {
        **base_environment(postgres, redis_server, mailbox),
        # The widget asks once a second whether anyone is online.
        "SHOP_LIVEHELP_STATUS_POLL_SECONDS": "1",
    }
    flask(environment, "livehelp", "db-upgrade")
    for number in range(OPERATORS):
        create_operator(
            environment,
            name=f"Operator {number}",
            email=f"operator{number}@example.com",
            max_chats=CUSTOMERS,
        )
    servers = [
        Gunicorn("deployed_app:app", chdir=TESTS, env=environment) for _ in range(2)
    ]
    try:
        for server in servers:
            server.wait_ready()
        proxy = ChaosProxy([server.port for server in servers])
        yield servers[0], servers[1], proxy
        proxy.close()
    finally:
        for server in servers:
            server.stop()
    no_tracebacks(*servers)


def conversations(postgres: str) -> dict[str, int]:
    """Each chat's id by its first question."""
    engine = sa.create_engine(postgres)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT body, conversation_id FROM livehelp_message WHERE seq = 1"
                )
            )
            return {body: conversation_id for body, conversation_id in rows}
    finally:
        engine.dispose()


def messages(postgres: str) -> list[tuple[int, int, str, str, bool]]:
    engine = sa.create_engine(postgres)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT conversation_id, seq, author, body, staff_only"
                    " FROM livehelp_message ORDER BY conversation_id, seq"
                )
            )
            return [tuple(row) for row in rows]  # type: ignore[misc]
    finally:
        engine.dispose()


def shown_seqs(log: t.Any) -> list[int]:
    return [
        int(seq)
        for seq in log.locator("[data-seq]").evaluate_all(
            "items => items.map((item) => item.dataset.seq)"
        )
    ]


def settle(
    page: Page,
    check: t.Callable[[], bool],
    timeout: float,
    what: str,
    report: t.Callable[[], t.Any] = lambda: None,
) -> None:
    """Wait for ``check``, letting Playwright hear the pages meanwhile."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"Not {what} within {timeout} s: {report()}")
        page.wait_for_timeout(250)


def test_nothing_lost_doubled_or_reordered_while_sockets_break_and_workers_die(
    shop: tuple[Gunicorn, Gunicorn, ChaosProxy],
    new_page: t.Callable[..., Page],
    postgres: str,
) -> None:
    first, second, proxy = shop
    staff = []
    for number in range(OPERATORS):
        page = watched_page(new_page)
        sign_in(page, proxy.url, f"operator{number}@example.com", OPERATOR["password"])
        go_online(page)
        staff.append(page)
    # Chats start while sockets break: a first welcome or a start's answer
    # lost, and the widget tries again.
    proxy.start_dropping(every=0.4)
    customers = []
    for number in range(CUSTOMERS):
        page = watched_page(new_page)
        page.goto(proxy.url + "/")
        ask(page, f"Question {number}")
        customers.append(page)
    wait_until(
        lambda: len(conversations(postgres)) == CUSTOMERS, 30, "every chat stored"
    )
    proxy.stop_dropping()
    chat_of = {
        number: conversations(postgres)[f"Question {number}"]
        for number in range(CUSTOMERS)
    }
    owner: dict[int, Page] = {}
    for number, conversation_id in chat_of.items():
        operator = staff[number % OPERATORS]
        operator.click(
            f"#lh-queue .lh-item:has(.lh-preview:text-is('Question {number}'))"
        )
        operator.click("#lh-accept")
        expect(operator.locator("#lh-composer")).to_be_visible()
        owner[conversation_id] = operator

    proxy.start_dropping(every=0.4)
    for round_ in range(ROUNDS):
        if round_ in KILLS:
            server = (first, second)[KILLS[round_]]
            os.kill(server.worker_pids()[0], signal.SIGKILL)
        for number, customer in enumerate(customers):
            write(customer, f"Customer {number}, line {round_}")
        for conversation_id, operator in owner.items():
            operator.click(f"#lh-active [data-conversation='{conversation_id}']")
            reply(operator, f"Operator in {conversation_id}, line {round_}")
        # However fast the pages are, every round goes through cuts.
        enough = sum(proxy.cuts.values()) + CUTS_PER_ROUND
        settle(
            staff[0],
            lambda enough=enough: sum(proxy.cuts.values()) >= enough,
            30,
            "sockets cut",
        )
    proxy.stop_dropping()

    # Everyone sees it all, once and in order, once the connections are back.
    def stored_texts() -> list[tuple[int, int, str, str, bool]]:
        return [row for row in messages(postgres) if row[1] > 0]

    sent = 2 * ROUNDS * CUSTOMERS
    lines = lambda: {row[3] for row in stored_texts() if "line" in row[3]}  # noqa: E731
    settle(
        staff[0],
        lambda: len(lines()) == sent,
        60,
        "every line stored",
        lambda: (
            sorted(lines()),
            proxy.open_pipes(),
            f"now {time.monotonic():.3f}",
            "\n".join(proxy.events),
        ),
    )
    rows = stored_texts()
    said = [row[3] for row in rows if "line" in row[3]]
    assert len(said) == len(set(said)) == sent, "a message was stored twice"
    for number, customer in enumerate(customers):
        conversation_id = chat_of[number]
        visible = [r[1] for r in rows if r[0] == conversation_id and not r[4]]
        log = chat(customer).locator("#lh-log")
        expect(log.locator("[data-seq]")).to_have_count(len(visible), timeout=60_000)
        assert shown_seqs(log) == visible
    for conversation_id, operator in owner.items():
        every = [r[1] for r in rows if r[0] == conversation_id]
        operator.click(f"#lh-active [data-conversation='{conversation_id}']")
        log = operator.locator("#lh-log")
        expect(log.locator("[data-seq]")).to_have_count(len(every), timeout=60_000)
        assert shown_seqs(log) == every
    for page in [*customers, *staff]:
        assert reordered(page) == []
    # Both masters still serve, with a new worker each.
    for server in (first, second):
        server.wait_ready()
    time.sleep(1)
