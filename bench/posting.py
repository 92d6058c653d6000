"""What storing one message costs the service, against the driver alone.

In the benchmark's own process, without sockets or a load generator (so the
figure holds still from run to run): ``post_by_visitor``, each message
alone in its transaction as at low load, against the floor a shop cannot go
under, the same claim of the chat's next number, the same insert and a
commit written by hand for the driver (sqlite3 or psycopg) on a connection
of its own. On PostgreSQL the service claims and inserts in one statement,
a transaction of its own, and so does its floor.
"""

from __future__ import annotations

import datetime as dt
import time
import typing as t

import sqlalchemy as sa

from bench import statements
from bench import targets
from bench.app import create_app
from bench.report import ratio
from bench.report import table
from bench.report import us
from bench.seed import seed
from flask_livehelp import get_state

CHATS = 50
BODY = "Hello, is the blue raincoat also in size 38?"


def posting(databases: list[str], seconds: float) -> str:
    rows = []
    for kind in databases:
        with targets.database(kind) as uri:
            chats = _chats(uri)
            service = _service_cost(uri, chats, seconds)
            driver = _driver_cost(uri, kind, chats, seconds)
        rows.append([kind, us(service), us(driver), ratio(service, driver)])
    return table(
        "Storing one message alone (its own transaction), CPU per message",
        ["database", "post_by_visitor", "the driver alone", "vs driver"],
        rows,
    )


def _chats(uri: str) -> list[tuple[int, int]]:
    """(visitor, chat) ids of open chats to post to."""
    chat_ids = {chat.conversation_id for chat in seed(uri, CHATS, 2).chats}
    engine = sa.create_engine(uri)
    with engine.connect() as connection:
        pairs = connection.execute(
            sa.text("SELECT visitor_id, id FROM livehelp_conversation")
        ).all()
    engine.dispose()
    return [(visitor, chat) for visitor, chat in pairs if chat in chat_ids]


def _service_cost(uri: str, chats: list[tuple[int, int]], seconds: float) -> float:
    app = create_app(uri, LIVEHELP_JOBS="off")
    with app.app_context():
        conversations = get_state().conversations

        def post(number: int) -> None:
            visitor, chat = chats[number % len(chats)]
            conversations.post_by_visitor(
                visitor, chat, client_id=f"s{number}", body=BODY
            )

        return _cpu_per_call(post, seconds)


def _driver_cost(
    uri: str, kind: str, chats: list[tuple[int, int]], seconds: float
) -> float:
    engine = sa.create_engine(uri)
    connection = engine.raw_connection()
    claim = statements.claim(kind, "visitor")
    insert = statements.insert(kind, "visitor")
    at_once = statements.at_once("visitor")
    cursor = connection.cursor()

    def post(number: int) -> None:
        visitor, chat = chats[number % len(chats)]
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        stamp: object = now.isoformat(" ") if kind == "sqlite" else now
        cursor.execute(claim, (stamp, chat, visitor))
        chat_id, seq, name = cursor.fetchone()
        cursor.execute(insert, (chat_id, seq, f"d{number}", name, None, BODY, stamp))
        cursor.fetchone()
        connection.commit()

    def post_at_once(number: int) -> None:
        visitor, chat = chats[number % len(chats)]
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        cursor.execute(
            at_once, (now, chat, visitor, f"d{number}", None, None, BODY, now)
        )
        cursor.fetchone()

    if kind == "postgresql":
        connection.dbapi_connection.autocommit = True  # type: ignore[union-attr]
        post = post_at_once

    try:
        return _cpu_per_call(post, seconds)
    finally:
        connection.close()
        engine.dispose()


def _cpu_per_call(call: t.Callable[[int], None], seconds: float) -> float:
    """CPU seconds of this process per ``call``, over about ``seconds``."""
    for number in range(200):  # warm caches and connections
        call(-number - 1)
    calls, started, deadline = 0, time.process_time(), time.monotonic() + seconds
    while time.monotonic() < deadline:
        for _ in range(100):
            call(calls)
            calls += 1
    return (time.process_time() - started) / calls
