"""Group commit: messages posted together are stored in one transaction,
and each poster still gets exactly the answer it would get alone."""

from __future__ import annotations

import collections.abc as c
import datetime as dt
import logging
import re
import sqlite3
import threading
import typing as t

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from flask import Flask

from flask_livehelp import get_state
from flask_livehelp import Refused
from flask_livehelp.services.conversations.group_commit import Draft
from flask_livehelp.services.conversations.group_commit import GroupCommit
from flask_livehelp.services.conversations.posting import claim_rounds
from flask_livehelp.services.conversations.posting import Posting
from flask_livehelp.services.conversations.prepared import DIALECT_EVENTS
from flask_livehelp.services.conversations.prepared import driver_transaction
from flask_livehelp.services.conversations.prepared import NeedsDefaults
from flask_livehelp.services.conversations.prepared import numbered_placeholders
from flask_livehelp.services.conversations.prepared import Prepared
from flask_livehelp.services.conversations.prepared import SESSION_EVENTS
from flask_livehelp.services.conversations.prepared import STATEMENT_EVENTS
from flask_livehelp.services.conversations.prepared import watched
from servers import wait_until

#: Long enough for every poster of a test to join the first one's group.
pytestmark = pytest.mark.livehelp(group_commit_seconds=0.3)


WAYS = ["on the driver", "watched by the host"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    watches = getattr(metafunc.function, "watches_the_engine", False)
    if "app" in metafunc.fixturenames and not watches:
        metafunc.parametrize("stored_how", WAYS, indirect=True)


@pytest.fixture(autouse=True)
def stored_how(request: pytest.FixtureRequest) -> c.Iterator[str | None]:
    """Each test with an app both ways a batch is stored: handed to the
    driver, and, where the host listens to its engine's statements (query
    logging, tracing), through a connection, where its listeners see them."""
    way = getattr(request, "param", None)
    if way is None:
        yield way
        return
    app: Flask = request.getfixturevalue("app")
    with app.app_context():
        engine = get_state().db.engine
    host_watches = way == "watched by the host"

    def watch(*args: t.Any) -> None:
        pass

    if host_watches:
        sa.event.listen(engine, "before_cursor_execute", watch)
    with app.app_context():
        assert watched(engine, get_state().db.session()) == host_watches
    try:
        yield way
    finally:
        if host_watches:
            sa.event.remove(engine, "before_cursor_execute", watch)


@pytest.fixture(autouse=True)
def statements_for_batches(request: pytest.FixtureRequest) -> None:
    """The statements compiled for batches of up to 32 messages, as in a
    worker that has run a while: a fresh one stores its first batches a few
    messages at a time, while it compiles for larger ones in the background
    (tested below, where a test is ``cold``)."""
    if "app" not in request.fixturenames or getattr(request.function, "cold", False):
        return
    app: Flask = request.getfixturevalue("app")
    with app.app_context():
        state = get_state()
        statements = state.conversations._statements
        dialect = state.db.engine.dialect
    wait_until(
        lambda: statements.room(32, dialect) == 32, 30, "statements for batches of 32"
    )


def open_chats(app: Flask, count: int) -> list[tuple[int, int]]:
    """``count`` queued chats, each of its own visitor: (visitor, chat) ids."""
    with app.app_context():
        state = get_state()
        chats = []
        for number in range(count):
            visitor, _ = state.visitors.create(
                ip_address=None, user_agent=None, locale=None
            )
            conversation, _ = state.conversations.start(
                visitor.id, client_id=f"q{number}", body="Hej"
            )
            chats.append((visitor.id, conversation.id))
        return chats


def post_together(
    app: Flask, posts: list[tuple[int, int, str]], bodies: list[str] | None = None
) -> list[tuple[t.Any, bool] | BaseException]:
    """Each (visitor, chat, client id) posted by a thread of its own, all at
    once; the client id is the body, unless ``bodies`` gives each one."""
    answers: list[tuple[t.Any, bool] | BaseException] = [
        RuntimeError("not answered")
    ] * len(posts)
    barrier = threading.Barrier(len(posts))

    def post(number: int, visitor_id: int, chat_id: int, client_id: str) -> None:
        with app.app_context():
            barrier.wait()
            try:
                message, created = get_state().conversations.post_by_visitor(
                    visitor_id,
                    chat_id,
                    client_id=client_id,
                    body=client_id if bodies is None else bodies[number],
                )
                answers[number] = ((message.seq, message.client_id), created)
            except BaseException as error:  # noqa: B036 (Stopped, below)
                answers[number] = error
            finally:
                get_state().db.session.remove()

    threads = [threading.Thread(target=post, args=(n, *p)) for n, p in enumerate(posts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return answers


def stored(app: Flask, chat_id: int) -> list[tuple[int, str | None]]:
    with app.app_context():
        messages = get_state().conversations.messages_after(chat_id, 0)
        return [(m.seq, m.client_id) for m in messages]


def compiles(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every statement compiled from now on: the thread that compiled it,
    and its SQL."""
    compiled: list[tuple[str, str]] = []
    prepare = Prepared.__init__

    def noted(self: Prepared, statement: t.Any, dialect: sa.Dialect) -> None:
        prepare(self, statement, dialect)
        compiled.append((threading.current_thread().name, self.sql))

    monkeypatch.setattr(Prepared, "__init__", noted)
    return compiled


def second_messages_posted_together(
    app: Flask, chats: list[tuple[int, int]], monkeypatch: pytest.MonkeyPatch
) -> int:
    """Each chat's second message posted at once, each stored once and in
    order; how many statements inserted them."""
    answers, inserts = inserts_during(
        app,
        lambda: post_together(app, [(v, c, f"m{c}") for v, c in chats]),
        monkeypatch,
    )
    assert answers == [((2, f"m{c}"), True) for _, c in chats]
    for number, (_, chat_id) in enumerate(chats):
        assert stored(app, chat_id) == [(1, f"q{number}"), (2, f"m{chat_id}")]
    return t.cast(int, inserts)


def inserts_during(
    app: Flask, work: c.Callable[[], t.Any], monkeypatch: pytest.MonkeyPatch
) -> tuple[t.Any, int]:
    """What ``work`` returns, and how many statements inserted messages: one a
    transaction, whether committed apart or a transaction of its own.
    (Counted at the dialect, which every way of storing runs through, as an
    engine event would make the engine watched.)"""
    with app.app_context():
        dialect = get_state().db.engine.dialect
    inserts = []
    execute = dialect.do_execute

    def count(cursor: t.Any, statement: str, *args: t.Any) -> None:
        if "INSERT INTO livehelp_message" in statement:
            inserts.append(statement)
        execute(cursor, statement, *args)

    monkeypatch.setattr(dialect, "do_execute", count)
    try:
        return work(), len(inserts)
    finally:
        monkeypatch.undo()


def test_messages_posted_together_share_a_commit_and_keep_their_numbers(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    chats = open_chats(app, 8)
    inserts = second_messages_posted_together(app, chats, monkeypatch)
    # Eight messages, and (with a window that gathers them all) far fewer
    # transactions: one, or two if a thread came late.
    assert inserts <= 2, inserts


def test_a_host_listening_to_its_engine_sees_every_message_stored(
    app: Flask,
) -> None:
    """A shop tracing its SQL (OpenTelemetry, Flask-SQLAlchemy's recorded
    queries) sees our inserts like any other statement."""
    chats = open_chats(app, 3)
    with app.app_context():
        engine = get_state().db.engine
    seen: list[str] = []

    def record(*args: t.Any) -> None:
        seen.append(args[2])

    sa.event.listen(engine, "after_cursor_execute", record)
    try:
        post_together(app, [(v, c, f"m{c}") for v, c in chats])
    finally:
        sa.event.remove(engine, "after_cursor_execute", record)
    inserts = [sql for sql in seen if "INSERT INTO livehelp_message" in sql]
    assert inserts, seen
    for _, chat_id in chats:
        assert stored(app, chat_id)[-1] == (2, f"m{chat_id}")


test_a_host_listening_to_its_engine_sees_every_message_stored.watches_the_engine = True  # type: ignore[attr-defined]


def test_a_message_stored_together_is_stored_as_the_orm_stores_one(
    app: Flask,
) -> None:
    """The batch hands the driver its own SQL and values: the row must be what
    SQLAlchemy writes (the question, message 1, is written by the ORM), dates
    and defaults alike, or sorting and reading them would go wrong."""
    chats = open_chats(app, 2)
    answers = post_together(app, [(v, c, f"m{c}") for v, c in chats])
    with app.app_context():
        state = get_state()
        table = state.models.message.__table__
        for (_, chat_id), answer in zip(chats, answers, strict=True):
            rows = state.db.session.execute(
                sa.select(
                    table.c.kind,
                    table.c.staff_only,
                    table.c.via,
                    table.c.data.is_(None),
                    sa.type_coerce(table.c.created_at, sa.String),
                )
                .where(table.c.conversation_id == chat_id)
                .order_by(table.c.seq)
            ).all()
            by_orm, together = rows
            assert together[:3] == by_orm[:3] == ("text", False, "chat")
            assert together[3], "data must be SQL NULL, not JSON null"
            stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?"
            assert re.fullmatch(stamp, str(together[4])), together[4]
            assert re.fullmatch(stamp, str(by_orm[4])), by_orm[4]
            [_, stored] = state.conversations.messages_after(chat_id, 0)
            assert (stored.seq, stored.kind, stored.data) == (2, "text", None)
            assert stored.created_at.tzinfo is not None
            assert isinstance(answer, tuple)


def test_a_message_its_chat_refuses_is_refused_and_the_rest_stored(
    app: Flask,
) -> None:
    chats = open_chats(app, 4)
    ended_visitor, ended_chat = chats[1]
    with app.app_context():
        get_state().conversations.end(ended_chat, by="visitor")
    answers = post_together(app, [(v, c, f"m{c}") for v, c in chats])
    refused = answers[1]
    assert isinstance(refused, Refused) and refused.code == "ended"
    for number, (_, chat_id) in enumerate(chats):
        if number != 1:
            assert answers[number] == ((2, f"m{chat_id}"), True)
            assert stored(app, chat_id)[-1] == (2, f"m{chat_id}")
    assert all(
        client_id != f"m{ended_chat}" for _, client_id in stored(app, ended_chat)
    )


def test_a_message_sent_twice_at_once_is_stored_once(app: Flask) -> None:
    """A widget that reconnects resends what was not acknowledged, maybe while
    the first copy still waits in the group."""
    [(visitor_id, chat_id)] = open_chats(app, 1)
    answers = post_together(app, [(visitor_id, chat_id, "again")] * 2)
    assert sorted(answers, key=lambda answer: not answer[1]) == [  # type: ignore[index]
        ((2, "again"), True),
        ((2, "again"), False),
    ]
    assert stored(app, chat_id) == [(1, "q0"), (2, "again")]


def test_a_resend_among_new_messages_leaves_the_rest_stored_together(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client resending a message stored before fails its batch's insert;
    the new messages of the batch are still stored together, not each in a
    transaction of its own, so resending (after a reconnect, or at the rate
    limit to slow a busy worker down) costs the others nothing."""
    chats = open_chats(app, 8)
    (resender, resent_in), *others = chats
    posts = [(resender, resent_in, "q0")] + [(v, c, f"m{c}") for v, c in others]
    answers, inserts = inserts_during(
        app, lambda: post_together(app, posts), monkeypatch
    )
    assert answers == [((1, "q0"), False)] + [((2, f"m{c}"), True) for _, c in others]
    for _, chat_id in others:
        assert stored(app, chat_id)[1:] == [(2, f"m{chat_id}")]
    assert stored(app, resent_in) == [(1, "q0")]
    # The batch that failed, the new ones again, and the resend alone (one
    # more if a thread came late); each alone would be nine.
    assert inserts <= 4, inserts


@pytest.mark.livehelp(group_commit_messages=1000)
def test_a_batch_as_large_as_the_setting_allows_is_stored(app: Flask) -> None:
    """A batch's rows are a compound SELECT: more than 256 of them, rounded
    up to 512, are more terms than SQLite takes, and every batch that large
    failed, each of its messages then stored alone."""
    chats = open_chats(app, 257)
    with app.app_context():
        posting = get_state().conversations
        group = posting._group_commit()
        assert group is not None
        drafts = [
            Draft(chat_id, f"m{chat_id}", "Hej", "visitor", visitor_id)
            for visitor_id, chat_id in chats[: group.limit]
        ]
        posting._store_together(drafts)
    assert all(draft.stored is not None for draft in drafts)
    assert stored(app, chats[0][1]) == [(1, "q0"), (2, f"m{chats[0][1]}")]


def fail_once(
    app: Flask,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    when: c.Callable[..., bool],
) -> list[object]:
    """Make the dialect's ``method`` fail, as the database would, the first
    time ``when`` holds for its arguments; the failures so far."""
    with app.app_context():
        dialect = get_state().db.engine.dialect
    failures: list[object] = []
    original = getattr(dialect, method)

    def failing(*args: t.Any) -> t.Any:
        if not failures and when(*args):
            failures.append(args)
            raise dialect.loaded_dbapi.OperationalError("disk I/O error")
        return original(*args)

    monkeypatch.setattr(dialect, method, failing)
    return failures


def each_stored_alone_with_no_gap(
    app: Flask, chats: list[tuple[int, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Post a message to each chat together, the dialect restored after;
    check each got its number, as if the group had not failed."""
    answers = post_together(app, [(v, c, f"m{c}") for v, c in chats])
    monkeypatch.undo()
    assert answers == [((2, f"m{c}"), True) for _, c in chats]
    for _, chat_id in chats:
        assert [seq for seq, _ in stored(app, chat_id)] == [1, 2]


def test_a_group_that_fails_stores_each_message_alone_with_no_gap(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing of a failed group is kept: each message is then stored alone,
    with the very number it would have had."""
    chats = open_chats(app, 4)
    failures = fail_once(
        app,
        monkeypatch,
        "do_execute",
        lambda cursor, statement, *_: "INSERT INTO livehelp_message" in statement,
    )
    each_stored_alone_with_no_gap(app, chats, monkeypatch)
    assert len(failures) == 1


def test_a_group_whose_commit_fails_leaves_nothing_and_goes_alone(
    app: Flask,
    monkeypatch: pytest.MonkeyPatch,
    stored_how: str,
    database_kind: str,
) -> None:
    """The claim and the insert ran, the commit did not: nothing of the group
    is visible, and each message is stored alone with its number."""
    if database_kind == "postgresql" and stored_how == "on the driver":
        pytest.skip("PostgreSQL on the driver: one statement, no COMMIT to fail")
    chats = open_chats(app, 3)
    failures = fail_once(app, monkeypatch, "do_commit", lambda connection: True)
    each_stored_alone_with_no_gap(app, chats, monkeypatch)
    assert len(failures) == 1


def test_no_connection_goes_back_to_the_pool_storing_each_statement_at_once(
    app: Flask,
) -> None:
    """PostgreSQL stores a group as one statement in autocommit: the pool's
    connections must all come back committing only when told to."""
    chats = open_chats(app, 4)
    post_together(app, [(v, c, f"m{c}") for v, c in chats])
    with app.app_context():
        engine = get_state().db.engine
    lent = [engine.raw_connection() for _ in range(max(engine.pool.checkedin(), 1))]
    try:
        autocommitting = [c for c in lent if autocommits(c.dbapi_connection)]
    finally:
        for connection in lent:
            connection.close()
    assert not autocommitting


def autocommits(driver: object) -> bool:
    """Whether the driver's connection commits each statement by itself."""
    if isinstance(driver, sqlite3.Connection):
        return driver.isolation_level is None
    return getattr(driver, "autocommit", None) is True


def test_the_one_statement_runs_where_the_driver_binds_on_the_client(
    app: Flask, database_kind: str
) -> None:
    """psycopg2 puts the values into the SQL itself, and sends a NULL
    without a type: the visitors' operator ids are all NULL, which would
    make PostgreSQL read the column as text. (Run through psycopg's client
    cursor, which binds as psycopg2 does.)"""
    if database_kind != "postgresql":
        pytest.skip("PostgreSQL only (the --db postgresql pass runs it)")
    import psycopg
    from sqlalchemy.dialects.postgresql import psycopg2

    chats = open_chats(app, 2)
    drafts = [
        Draft(chat, f"m{chat}", "Hej", "visitor", visitor) for visitor, chat in chats
    ]
    with app.app_context():
        state = get_state()
        statements = state.conversations._statements
        url = state.db.engine.url.set(drivername="postgresql")
    [groups] = claim_rounds(drafts)
    prepared, parameters = statements.claim_and_insert(groups, psycopg2.dialect())
    now = dt.datetime.now(dt.UTC)
    with psycopg.connect(url.render_as_string(hide_password=False)) as connection:
        cursor = psycopg.ClientCursor(connection)
        cursor.execute(prepared.sql, prepared.parameters({"now": now, **parameters}))
        rows = cursor.fetchall()
        connection.rollback()
    assert sorted((chat, seq, client_id) for _, chat, seq, client_id, _ in rows) == [
        (chat, 2, f"m{chat}") for _, chat in chats
    ]


def test_who_was_in_a_stopped_leaders_group_is_stored_alone(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A leader killed while storing (its greenlet, say) commits nothing; the
    others of its group are not left waiting, and each is stored alone."""
    chats = open_chats(app, 3)
    store_together = Posting._store_together

    def stopped_with_company(self: Posting, drafts: list[Draft]) -> None:
        if len(drafts) > 1:
            raise Stopped
        store_together(self, drafts)

    monkeypatch.setattr(Posting, "_store_together", stopped_with_company)
    answers = post_together(app, [(v, c, f"m{c}") for v, c in chats])
    [stopped] = [n for n, answer in enumerate(answers) if isinstance(answer, Stopped)]
    for number, (_, chat_id) in enumerate(chats):
        if number == stopped:
            assert stored(app, chat_id) == [(1, f"q{number}")]
        else:
            assert answers[number] == ((2, f"m{chat_id}"), True)
            assert stored(app, chat_id) == [(1, f"q{number}"), (2, f"m{chat_id}")]


@pytest.mark.livehelp(group_commit_messages=1)
def test_group_commit_can_be_turned_off(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    chats = open_chats(app, 3)
    answers, inserts = inserts_during(
        app,
        lambda: post_together(app, [(v, c, f"m{c}") for v, c in chats]),
        monkeypatch,
    )
    assert answers == [((2, f"m{c}"), True) for _, c in chats]
    assert inserts == 3


def test_a_stranger_writing_into_a_chat_with_its_visitor_is_refused(
    app: Flask,
) -> None:
    """Two authors of one chat in one group are claimed apart: the chat's
    visitor gets the number, another visitor guessing its id gets nothing."""
    (owner, chat_id), (stranger, _) = open_chats(app, 2)
    answers = post_together(
        app, [(owner, chat_id, "mine"), (stranger, chat_id, "not mine")]
    )
    assert answers[0] == ((2, "mine"), True)
    assert isinstance(answers[1], Refused)
    assert stored(app, chat_id) == [(1, "q0"), (2, "mine")]


def test_both_sides_of_a_chat_in_one_group_get_consecutive_numbers(
    app: Flask, make_operator: c.Callable[..., t.Any]
) -> None:
    [(visitor_id, chat_id)] = open_chats(app, 1)
    with app.app_context():
        operator = make_operator(name="Anna")
        get_state().conversations.accept(operator, chat_id)
        operator_id = operator.id
    barrier = threading.Barrier(4)
    answers: dict[str, int] = {}

    def post(author: str, client_id: str) -> None:
        with app.app_context():
            conversations = get_state().conversations
            barrier.wait()
            if author == "visitor":
                message, _ = conversations.post_by_visitor(
                    visitor_id, chat_id, client_id=client_id, body=client_id
                )
            else:
                anna = get_state().operators.get(operator_id)
                message, _ = conversations.post_by_operator(
                    anna, chat_id, client_id=client_id, body=client_id
                )
            answers[client_id] = message.seq
            get_state().db.session.remove()

    threads = [
        threading.Thread(target=post, args=args)
        for args in (
            ("visitor", "v1"),
            ("operator", "o1"),
            ("visitor", "v2"),
            ("operator", "o2"),
        )
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # The question, the accepted event, then the four in some order.
    assert sorted(answers.values()) == [3, 4, 5, 6]
    assert [seq for seq, _ in stored(app, chat_id)] == [1, 2, 3, 4, 5, 6]
    assert {client_id: seq for seq, client_id in stored(app, chat_id)[2:]} == answers


class Stopped(BaseException):
    """As a greenlet is killed: not an Exception, nothing may swallow it."""


def test_a_leader_stopped_mid_batch_leaves_nobody_waiting() -> None:
    """Who queued behind a leader killed while storing leads next."""
    group = GroupCommit(window=0, limit=10)
    leader_storing = threading.Event()
    followers_queued = threading.Event()
    results: dict[str, object] = {}

    def store(batch: list[Draft]) -> None:
        if batch[0].client_id == "leader":
            # Its batch is taken: whoever comes now queues for the next.
            leader_storing.set()
            followers_queued.wait(10)
            raise Stopped
        for draft in batch:
            draft.stored = f"stored {draft.client_id}"  # type: ignore[assignment]

    def submit(client_id: str) -> None:
        try:
            results[client_id] = group.submit(
                Draft(1, client_id, "body", "visitor", 1), store
            )
        except Stopped:
            results[client_id] = "stopped"

    leader = threading.Thread(target=submit, args=("leader",))
    leader.start()
    assert leader_storing.wait(10), "the leader never stored"
    followers = [threading.Thread(target=submit, args=(n,)) for n in ("b", "c")]
    for follower in followers:
        follower.start()
    wait_until(lambda: len(group._queue) == 2, 10, "both followers queued")
    followers_queued.set()
    for thread in [leader, *followers]:
        thread.join(10)
    assert results == {"leader": "stopped", "b": "stored b", "c": "stored c"}
    assert not group._leading


def test_a_hot_path_statement_that_needs_python_defaults_says_which() -> None:
    """Run as the driver's own SQL, a statement gets no column defaults
    worked out by SQLAlchemy: building it says so instead of storing NULL."""
    table = sa.Table(
        "t",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("body", sa.Text),
        sa.Column("kind", sa.String(16), default="text"),
    )
    dialect = sa.create_engine("sqlite://").dialect
    with pytest.raises(NeedsDefaults, match="kind"):
        Prepared(sa.insert(table).values(body=sa.bindparam("body")), dialect)
    given = sa.insert(table).values(body=sa.bindparam("body"), kind="note")
    assert Prepared(given, dialect).sql == "INSERT INTO t (body, kind) VALUES (?, ?)"


def test_a_message_posted_after_the_database_dropped_our_connection_is_stored(
    app: Flask, database_kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL restarted, or a proxy cut the pool's idle connection: the
    group's statements fail on it, the dead connection is thrown away (not
    given back to the pool, to fail again), and the message is stored on a
    new one."""
    if database_kind != "postgresql":
        pytest.skip("PostgreSQL only (the --db postgresql pass runs it)")
    [(visitor_id, chat_id)] = open_chats(app, 1)
    with app.app_context():
        state = get_state()
        state.conversations.post_by_visitor(
            visitor_id, chat_id, client_id="before", body="Hej"
        )
        state.db.session.remove()
        # Several in the pool: all of them die with the database's restart.
        pooled = [state.db.engine.connect() for _ in range(3)]
        for connection in pooled:
            connection.close()
        admin = sa.create_engine(state.db.engine.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            ended = connection.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar()
        admin.dispose()
        assert ended
        message, created = state.conversations.post_by_visitor(
            visitor_id, chat_id, client_id="after", body="Er I der?"
        )
        assert (message.seq, created) == (3, True)
    assert stored(app, chat_id) == [(1, "q0"), (2, "before"), (3, "after")]
    assert not [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("sqlalchemy.pool") and record.levelno >= logging.ERROR
    ]


@pytest.fixture
def notes(tmp_path: t.Any) -> c.Iterator[tuple[sa.Engine, Prepared]]:
    """An engine of one pooled connection, and a statement adding a note."""
    engine = sa.create_engine(f"sqlite:///{tmp_path}/notes.db", pool_size=1)
    table = sa.Table(
        "note",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(8), unique=True),
    )
    table.metadata.create_all(engine)
    add = Prepared(
        sa.insert(table).values(key=sa.bindparam("key")).returning(table.c.id),
        engine.dialect,
    )
    yield engine, add
    engine.dispose()


def noted(engine: sa.Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(sa.text("SELECT key FROM note")).scalars())


def test_a_statement_the_database_refuses_rolls_back_its_whole_transaction(
    notes: tuple[sa.Engine, Prepared],
) -> None:
    """On the driver, an error still comes out as SQLAlchemy's (a resend is
    told by its ``IntegrityError``), nothing of the transaction is kept, and
    the connection goes back to the pool fit for the next one."""
    engine, add = notes
    with pytest.raises(sa.exc.IntegrityError, match="UNIQUE"):
        with driver_transaction(engine) as run:
            assert run(add, {"key": "a"}) == [(1,)]
            run(add, {"key": "a"})
    with driver_transaction(engine) as run:
        assert run(add, {"key": "b"}) == [(1,)]
    assert noted(engine) == ["b"]


def test_a_connection_lent_for_one_statement_comes_back_with_transactions(
    notes: tuple[sa.Engine, Prepared],
) -> None:
    """A statement stored as a transaction of its own leaves the pool's
    connection as it found it: what the next user writes is rolled back
    when it rolls back, not kept."""
    engine, add = notes
    with driver_transaction(engine, autocommit=True) as run:
        run(add, {"key": "alone"})
    with engine.connect() as connection:
        connection.execute(sa.text("INSERT INTO note (key) VALUES ('undone')"))
        connection.rollback()
    assert noted(engine) == ["alone"]


def test_a_fresh_process_compiles_for_larger_batches_beside_the_posters(
    app: Flask, monkeypatch: pytest.MonkeyPatch, database_kind: str
) -> None:
    """Compiling a batch's statements takes milliseconds, tens for a large
    batch; on a poster's thread under gevent that stalls every chat of the
    worker, and each stall made the next batch larger, a size new again. A
    fresh process's first burst is stored a few at a time while statements
    for larger batches are compiled in a thread of their own; no poster
    compiles more than the smallest batch's. Every message is stored once,
    in order."""
    chats = open_chats(app, 24)
    compiled = compiles(monkeypatch)
    inserts = second_messages_posted_together(app, chats, monkeypatch)
    # The batch of one: the claim and the insert, or both in one (PostgreSQL).
    per_batch = 1 if database_kind == "postgresql" else 2
    by_posters = [name for name, _ in compiled if name != "livehelp-statements"]
    assert len(by_posters) == per_batch
    assert 1 < inserts < len(chats)
    wait_until(lambda: len(compiled) > per_batch, 10, "a larger batch's statements")


test_a_fresh_process_compiles_for_larger_batches_beside_the_posters.cold = True  # type: ignore[attr-defined]


def test_batches_of_many_sizes_share_a_few_compiled_statements(
    app: Flask, monkeypatch: pytest.MonkeyPatch, database_kind: str
) -> None:
    """A statement is compiled for a few sizes of batch, not for every size
    a worker meets, and the rows that round a batch up store nothing."""
    chats = open_chats(app, 35)
    compiled = compiles(monkeypatch)
    with app.app_context():
        state = get_state()
        kept_before = state.db.session.query(state.models.message).count()
    start = 0
    for size in (3, 4, 5, 7, 8, 1, 2, 5):  # rounded up: 4, 4, 8, 8, 8, 1, 2, 8
        batch = chats[start : start + size]
        start += size
        answers = post_together(app, [(v, c, f"m{c}") for v, c in batch])
        assert answers == [((2, f"m{c}"), True) for _, c in batch]
    with app.app_context():
        state = get_state()
        kept = state.db.session.query(state.models.message).count()
    assert kept == kept_before + start
    # Compiled before for 2 to 32 (statements_for_batches): only a batch of
    # one compiles its own, once.
    assert len(compiled) == (1 if database_kind == "postgresql" else 2)


def test_text_of_any_kind_is_stored_as_it_was_sent(app: Flask) -> None:
    """A group's rows go to the driver as the compiled statement's
    parameters, rounded up with NULLs: quotes, newlines,
    backslashes, every script and emoji come back as they went in."""
    bodies = ['"Hej", sagde hun.\n\\ \\n {"a": 1}', "Ærø 😀 مرحبا 你好", "'; --"]
    chats = open_chats(app, len(bodies))
    answers = post_together(app, [(v, c, f"m{c}") for v, c in chats], bodies)
    assert answers == [((2, f"m{c}"), True) for _, c in chats]
    with app.app_context():
        kept = [
            get_state().conversations.messages_after(c, 1)[0].body for _, c in chats
        ]
    assert kept == bodies


def test_a_transaction_stopped_midway_keeps_nothing_and_drops_its_connection(
    notes: tuple[sa.Engine, Prepared],
) -> None:
    """A greenlet killed inside the block may leave its statement running:
    the connection is thrown away, not given to the next user."""
    engine, add = notes
    thrown_away: list[object] = []
    sa.event.listen(engine, "invalidate", lambda *args: thrown_away.append(args[0]))
    with pytest.raises(Stopped):
        with driver_transaction(engine) as run:
            run(add, {"key": "half"})
            raise Stopped
    assert len(thrown_away) == 1
    with driver_transaction(engine) as run:
        run(add, {"key": "whole"})
    assert noted(engine) == ["whole"]


def test_a_connection_the_database_ends_mid_batch_is_thrown_away_quietly(
    database_uri: str, database_kind: str
) -> None:
    """PostgreSQL ends our backend between a batch's statements (a restart,
    an admin): the error comes out as SQLAlchemy's, saying the connection
    was thrown away, and nothing warns of throwing it away twice (warnings
    are errors here); the next batch runs on a new connection."""
    if database_kind != "postgresql":
        pytest.skip("PostgreSQL only (the --db postgresql pass runs it)")
    probe = {"application_name": "livehelp-ended-mid-batch"}
    engine = sa.create_engine(database_uri, connect_args=probe)
    admin = sa.create_engine(database_uri, isolation_level="AUTOCOMMIT")
    table = sa.Table(
        "ended_note",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(8)),
    )
    table.metadata.create_all(admin)
    add = Prepared(
        sa.insert(table).values(key=sa.bindparam("key")).returning(table.c.id),
        engine.dialect,
    )
    try:
        with pytest.raises(sa.exc.OperationalError) as raised:
            with driver_transaction(engine) as run:
                run(add, {"key": "first"})
                with admin.connect() as connection:
                    connection.execute(
                        sa.text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                            " WHERE application_name = :name"
                        ),
                        {"name": probe["application_name"]},
                    )
                run(add, {"key": "second"})
        assert raised.value.connection_invalidated
        with driver_transaction(engine) as run:
            run(add, {"key": "after"})
        with admin.connect() as connection:
            kept = connection.execute(sa.select(table.c.key)).scalars().all()
        assert kept == ["after"]
    finally:
        engine.dispose()
        table.metadata.drop_all(admin)
        admin.dispose()


def test_columns_named_with_spaces_dots_or_percents_are_stored(
    database_uri: str,
) -> None:
    """Columns whose names the SQL cannot take as a parameter's (SQLAlchemy
    escapes them there) get the value the statement holds and the one
    given when it runs, whatever the driver's placeholders."""
    engine = sa.create_engine(database_uri)
    table = sa.Table(
        "odd_note",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("shop's key.1", sa.String(8)),
        sa.Column("50% off", sa.String(8)),
    )
    table.metadata.create_all(engine)
    add = Prepared(
        sa.insert(table)
        .values({"shop's key.1": sa.bindparam("the key%"), "50% off": "yes"})
        .returning(table.c.id),
        engine.dialect,
    )
    try:
        with driver_transaction(engine) as run:
            [(added,)] = run(add, {"the key%": "k1"})
        with engine.connect() as connection:
            row = connection.execute(sa.select(table)).one()
        assert tuple(row) == (added, "k1", "yes")
    finally:
        table.metadata.drop_all(engine)
        engine.dispose()


def test_what_watches_the_engine_or_the_session_is_seen(tmp_path: t.Any) -> None:
    """SQL logging and any listener of statements, errors or the session's
    transactions send the batch through the session, where they see it;
    with the listener gone, batches go to the driver again."""

    def listen(*args: t.Any) -> None:
        pass

    events = [
        *(("engine", name) for name in STATEMENT_EVENTS),
        *(("dialect", name) for name in DIALECT_EVENTS),
        ("engine", "handle_error"),  # the dialect's, listened to on the engine
        *(("session", name) for name in SESSION_EVENTS),
    ]
    for which, name in events:
        # A new engine and session each: the first listener of an engine
        # is what SQLAlchemy marks it by, and the mark is what is read first.
        engine = sa.create_engine(f"sqlite:///{tmp_path}/watched.db")
        session = sa_orm.Session(engine)
        target = {"engine": engine, "dialect": engine.dialect, "session": session}
        assert not watched(engine, session), name
        sa.event.listen(target[which], name, listen)
        assert watched(engine, session), name
        sa.event.remove(target[which], name, listen)
        assert not watched(engine, session), name
        engine.dispose()
    engine.echo = True
    assert watched(engine, session)


def test_a_batch_makes_no_session_but_its_listeners_see_it(
    app: Flask,
) -> None:
    """Storing a batch looks at the listeners a session of the app would
    have without making one for the poster (it used to make and throw away a
    session a message); a listener added to the app's sessions later still
    sees the next batch."""
    ((visitor_id, chat_id),) = open_chats(app, 1)

    def post(client_id: str) -> bool:
        """Post in a context of its own; whether that made a session."""
        with app.app_context():
            state = get_state()
            state.conversations.post_by_visitor(
                visitor_id, chat_id, client_id=client_id, body=client_id
            )
            made = state.db.session.registry.has()
            state.db.session.remove()
            return made

    post("warm")  # the first post in a process looks up the engine
    assert post("plain") is False
    began: list[object] = []

    def note(session: sa_orm.Session, *args: t.Any) -> None:
        began.append(session)

    with app.app_context():
        sessions = get_state().db.session
    sa.event.listen(sessions, "after_begin", note)
    try:
        post("seen")
    finally:
        sa.event.remove(sessions, "after_begin", note)
    assert began, "the batch did not go through a session its listener sees"
    assert [client_id for _, client_id in stored(app, chat_id)] == [
        "q0", "warm", "plain", "seen"
    ]  # fmt: skip


test_a_batch_makes_no_session_but_its_listeners_see_it.watches_the_engine = True  # type: ignore[attr-defined]


def test_named_placeholders_become_postgresqls_numbered_ones() -> None:
    assert numbered_placeholders("SELECT %(a)s, %(b)s::INTEGER, %(a)s, 5 %% 2") == (
        "SELECT $1, $2::INTEGER, $1, 5 % 2",
        ("a", "b"),
    )


def test_psycopg_is_handed_a_batch_in_postgresqls_own_placeholders(
    app: Flask, database_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """psycopg's usual cursor parses the SQL for ``%(name)s`` each time a
    statement too long for its cache runs, as a batch's is from four messages
    on: a batch goes to its raw cursor, in ``$1`` placeholders, instead."""
    if database_kind != "postgresql":
        pytest.skip("PostgreSQL only (the --db postgresql pass runs it)")
    import psycopg

    chats = open_chats(app, 4)
    with app.app_context():
        dialect = get_state().db.engine.dialect
    handed: list[tuple[type, str]] = []
    execute = dialect.do_execute

    def note(cursor: t.Any, statement: str, *args: t.Any) -> None:
        handed.append((type(cursor), statement))
        execute(cursor, statement, *args)

    monkeypatch.setattr(dialect, "do_execute", note)
    try:
        answers = post_together(app, [(v, c, f"m{c}") for v, c in chats])
    finally:
        monkeypatch.undo()
    assert answers == [((2, f"m{c}"), True) for _, c in chats]
    batches = [(kind, sql) for kind, sql in handed if "livehelp_message" in sql]
    assert batches, handed
    for kind, sql in batches:
        assert issubclass(kind, psycopg.RawCursor), kind
        assert "$1" in sql and "%(" not in sql, sql


test_psycopg_is_handed_a_batch_in_postgresqls_own_placeholders.watches_the_engine = True  # type: ignore[attr-defined]


def test_a_kind_of_cursor_the_host_chose_is_kept(
    app: Flask, database_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host that has psycopg bind on the client (``cursor_factory``, for
    PgBouncer, say) gets that cursor for batches too, not the raw one."""
    if database_kind != "postgresql":
        pytest.skip("PostgreSQL only (the --db postgresql pass runs it)")
    import psycopg

    with app.app_context():
        url = get_state().db.engine.url
    client_side = {"cursor_factory": psycopg.ClientCursor}
    engine = sa.create_engine(url, connect_args=client_side)
    metadata = sa.MetaData()
    note = sa.Table(
        "cursor_note",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(8)),
    )
    metadata.create_all(engine)
    kinds: list[type] = []
    execute = engine.dialect.do_execute

    def noted(cursor: t.Any, *args: t.Any) -> None:
        kinds.append(type(cursor))
        execute(cursor, *args)

    try:
        add = Prepared(
            sa.insert(note).values(key=sa.bindparam("key")).returning(note.c.id),
            engine.dialect,
        )
        monkeypatch.setattr(engine.dialect, "do_execute", noted)
        with driver_transaction(engine) as run:
            assert run(add, {"key": "a"}) == [(1,)]
        monkeypatch.undo()
        assert kinds == [psycopg.ClientCursor]
    finally:
        metadata.drop_all(engine)
        engine.dispose()
