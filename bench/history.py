"""How fast the chat history answers at 100,000 stored conversations.

    python bench/history.py                       # SQLite, and PostgreSQL if it answers
    python bench/history.py --db sqlite --chats 20000
    python bench/history.py --pg postgresql://postgres@127.0.0.1:5432/test

Fills a fresh database (a temporary SQLite file; a PostgreSQL database made
for the run and dropped after it) with chats like a shop's: about eight
messages each, departments, operators, tags, a few open and missed chats.
Then it times what the history pages ask through the same service they use,
and prints one table per database. The baseline row, a bare ``count(*)`` of
the conversation table, is measured in the same run, so the other rows read
as "this many times the cost of touching the table once".
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time
import typing as t
import uuid

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_livehelp import get_state
from flask_livehelp import LiveHelp
from flask_livehelp.services.history.filters import HistoryFilter

PG_SERVER = os.environ.get(
    "LIVEHELP_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test"
)
WORDS = (
    "hej tak jakke regnjakke blå gul grøn størrelse levering pakke retur bytte"
    " pris rabat kode ordre nummer hvornår kommer min hvad koster hvor lang tid"
    " uldtrøje støvler hue vanter paraply farve lager medium large small"
    " hello thanks jacket size delivery parcel return exchange price order"
).split()
#: A word only about one chat in a thousand holds.
RARE = "ærmelængde"
TAGS = ("retur", "bytte", "levering", "pris", "reklamation", "størrelse")
NAMES = ("Karen", "Ole", "Mette", "Bo", "Anne", None)
STATUSES = (("ended", 90), ("missed", 6), ("active", 2), ("queued", 2))
REPEAT = 5


def make_app(uri: str) -> Flask:
    app = Flask("bench")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=uri,
        TESTING=True,
        SECRET_KEY="bench",
        LIVEHELP_JOBS="off",
    )
    db = SQLAlchemy()
    db.init_app(app)
    LiveHelp(app, db=db)
    with app.app_context():
        db.create_all()
    return app


# Filling the database.


def fill(app: Flask, chats: int, seed: int = 6) -> dict[str, t.Any]:
    """Write ``chats`` conversations with their messages; returns facts for queries."""
    rng = random.Random(seed)
    state = get_state(app)
    models, session = state.models, state.db.session
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    departments = [
        models.department(name=name)
        for name in ("Salg", "Kundeservice", "Retur", "B2B")
    ]
    session.add_all(departments)
    session.flush()
    operators = []
    for n in range(20):
        role = "admin" if n == 0 else "manager" if n == 1 else "operator"
        operator = models.operator(
            name=f"Operator {n:02d}",
            email=f"op{n}@bench.example",
            role=role,
            session_key=uuid.uuid4().hex,
        )
        operator.departments = [departments[n % len(departments)]]
        operators.append(operator)
    session.add_all(operators)
    tags = [models.tag(name=name) for name in TAGS]
    session.add_all(tags)
    session.commit()
    tag_ids = [tag.id for tag in tags]
    # (id, department id) of each operator, read once.
    staff = [(o.id, o.departments[0].id) for o in operators]
    statuses = [status for status, weight in STATUSES for _ in range(weight)]
    tables = _Tables(state)
    message_id = 0
    for first in range(1, chats + 1, 5000):
        batch = _Batch()
        for chat_id in range(first, min(first + 5000, chats + 1)):
            operator = rng.choice(staff)
            status = rng.choice(statuses)
            started = now - dt.timedelta(minutes=chat_id * 5 + rng.randrange(5))
            message_id = batch.chat(
                rng, chat_id, message_id, started, status, operator, tag_ids
            )
        tables.write(batch)
    tables.analyze()
    return {
        "now": now,
        "operators": [operator.id for operator in operators],
        "departments": [department.id for department in departments],
        "middle": max(1, chats // 2),
    }


class _Batch:
    def __init__(self) -> None:
        self.visitors: list[dict[str, t.Any]] = []
        self.chats: list[dict[str, t.Any]] = []
        self.messages: list[dict[str, t.Any]] = []
        self.tags: list[dict[str, t.Any]] = []

    def chat(
        self,
        rng: random.Random,
        chat_id: int,
        message_id: int,
        started: dt.datetime,
        status: str,
        operator: tuple[int, int],
        tag_ids: list[int],
    ) -> int:
        taken = status in ("active", "ended")
        length = rng.randrange(2, 15) if taken else 1
        ended = started + dt.timedelta(minutes=length, seconds=rng.randrange(60))
        self.visitors.append(
            {
                "id": chat_id,
                "ip_address": "192.0.2.1",
                "pages_seen": 1,
                "first_seen_at": started,
                "last_seen_at": ended,
            }
        )
        name = rng.choice(NAMES)
        self.chats.append(
            {
                "id": chat_id,
                "visitor_id": chat_id,
                "status": status,
                "origin": "offline"
                if status == "missed" and rng.random() < 0.3
                else "chat",
                "visitor_name": f"{name} {rng.randrange(5000)}" if name else None,
                "visitor_email": f"kunde{chat_id}@example.com"
                if rng.random() < 0.5
                else None,
                "email_consent": False,
                "operator_id": operator[0] if taken else None,
                "department_id": operator[1],
                "created_at": started,
                "accepted_at": started + dt.timedelta(seconds=20) if taken else None,
                "first_response_at": started + dt.timedelta(seconds=40)
                if taken
                else None,
                "last_visitor_message_at": ended,
                "last_operator_message_at": ended if taken else None,
                "ended_at": ended if status in ("ended", "missed") else None,
                "ended_by": "operator"
                if status == "ended"
                else "timeout"
                if status == "missed"
                else None,
                "last_seq": 0,
            }
        )
        count = rng.randrange(6, 11) if taken else 1
        for seq in range(1, count + 1):
            message_id += 1
            body = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(4, 15)))
            if rng.random() < 0.0002:
                body += f" {RARE}"
            self.messages.append(
                {
                    "id": message_id,
                    "conversation_id": chat_id,
                    "seq": seq,
                    "author": "visitor" if seq % 2 else "operator",
                    "kind": "text",
                    "body": body,
                    "staff_only": False,
                    "via": "chat",
                    "created_at": started + dt.timedelta(seconds=seq * 20),
                }
            )
        self.chats[-1]["last_seq"] = count
        if rng.random() < 0.3:
            self.tags.append(
                {"conversation_id": chat_id, "tag_id": rng.choice(tag_ids)}
            )
        return message_id


class _Tables:
    """Bulk writes: COPY on PostgreSQL, executemany on SQLite."""

    def __init__(self, state: t.Any) -> None:
        self.state = state
        self.engine = state.db.engine
        models = state.models
        self.order = (
            ("visitors", models.visitor.__table__),
            ("chats", models.conversation.__table__),
            ("messages", models.message.__table__),
            ("tags", models.conversation_tags),
        )

    def write(self, batch: _Batch) -> None:
        with self.engine.begin() as connection:
            for name, table in self.order:
                rows = getattr(batch, name)
                if not rows:
                    continue
                if self.engine.dialect.name == "postgresql":
                    self._copy(connection, table, rows)
                else:
                    connection.execute(sa.insert(table), rows)

    @staticmethod
    def _copy(connection: t.Any, table: sa.Table, rows: list[dict[str, t.Any]]) -> None:
        columns = list(rows[0])
        raw = connection.connection.driver_connection
        names = ", ".join(columns)
        with raw.cursor().copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([_naive(row[c]) for c in columns])

    def analyze(self) -> None:
        with self.engine.begin() as connection:
            if self.engine.dialect.name == "postgresql":
                for _, table in self.order:
                    connection.execute(sa.text(f"ANALYZE {table.name}"))
                # Ids were written by hand; the sequences must follow them.
                for _, table in self.order[:3]:
                    name = table.name
                    sequence = f"pg_get_serial_sequence('{name}', 'id')"
                    connection.execute(
                        sa.text(
                            f"SELECT setval({sequence}, (SELECT max(id) FROM {name}))"
                        )
                    )
            else:
                connection.execute(sa.text("ANALYZE"))


def _naive(value: t.Any) -> t.Any:
    # Our columns keep naive UTC; COPY bypasses the column type that does that.
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


# Timing.


def timed(work: t.Callable[[], t.Any]) -> tuple[float, float, t.Any]:
    """The median and best of ``REPEAT`` runs, in milliseconds, and the result."""
    seconds = []
    result = None
    for _ in range(REPEAT):
        start = time.perf_counter()
        result = work()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds) * 1000, min(seconds) * 1000, result


def measure(app: Flask, facts: dict[str, t.Any]) -> list[tuple[str, str, float, float]]:
    rows: list[tuple[str, str, float, float]] = []
    with app.app_context():
        state = get_state(app)
        history, session = state.history, state.db.session
        admin = session.get(state.models.operator, facts["operators"][0])
        manager = session.get(state.models.operator, facts["operators"][1])
        worker = session.get(state.models.operator, facts["operators"][5])
        model = state.models.conversation

        def count_all() -> int:
            return int(
                session.execute(
                    sa.select(sa.func.count()).select_from(model)
                ).scalar_one()
            )

        median, best, total = timed(count_all)
        rows.append(
            ("baseline: count(*) of the conversation table", str(total), median, best)
        )
        week_to = facts["now"].date()
        week_from = week_to - dt.timedelta(days=6)
        cases: list[tuple[str, t.Any, HistoryFilter, int]] = [
            ("list: all chats, newest first", admin, HistoryFilter(view="all"), 1),
            ("list: page 1000", admin, HistoryFilter(view="all"), 1000),
            (
                "list: sorted by customer",
                admin,
                HistoryFilter(view="all", sort="customer", descending=False),
                1,
            ),
            (
                "list: sorted by duration",
                admin,
                HistoryFilter(view="all", sort="duration"),
                1,
            ),
            ("list: a manager's departments", manager, HistoryFilter(view="all"), 1),
            (
                "list: an operator's completed chats",
                worker,
                HistoryFilter(view="completed"),
                1,
            ),
            (
                "filter: one operator",
                admin,
                HistoryFilter(view="all", operator_id=worker.id),
                1,
            ),
            (
                "filter: department + last 7 days",
                admin,
                HistoryFilter(
                    view="all",
                    department_id=facts["departments"][1],
                    date_from=week_from,
                    date_to=week_to,
                ),
                1,
            ),
            ("filter: tag", admin, HistoryFilter(view="all", tag="retur"), 1),
            ("filter: missed", admin, HistoryFilter(view="all", status="missed"), 1),
            ("search: a rare word", admin, HistoryFilter(view="all", search=RARE), 1),
            (
                "search: a common word",
                admin,
                HistoryFilter(view="all", search="regnjakke"),
                1,
            ),
            (
                "search: two words",
                admin,
                HistoryFilter(view="all", search="regnjakke levering"),
                1,
            ),
            (
                "search: a manager, rare word",
                manager,
                HistoryFilter(view="all", search=RARE),
                1,
            ),
            (
                "search + filter: operator, common word",
                admin,
                HistoryFilter(view="all", operator_id=worker.id, search="retur"),
                1,
            ),
        ]
        for label, viewer, query, page in cases:

            def work(
                viewer: t.Any = viewer, query: HistoryFilter = query, page: int = page
            ) -> t.Any:
                found = history.search(viewer, query, page=page, per_page=50)
                session.rollback()  # as a request ends, so nothing is cached
                return found

            median, best, found = timed(work)
            rows.append(
                (label, f"{found.total} ({len(found.rows)} shown)", median, best)
            )

        def transcript() -> t.Any:
            return history.transcript(admin, facts["middle"])

        median, best, (_, messages) = timed(transcript)
        rows.append(("transcript: one chat", f"{len(messages)} messages", median, best))

        def export_week() -> int:
            query = HistoryFilter(view="all", date_from=week_from, date_to=week_to)
            return sum(1 for _ in history.export_csv(admin, query)) - 1

        median, best, lines = timed(export_week)
        rows.append(("export: CSV of the last 7 days", f"{lines} rows", median, best))
    return rows


def print_table(title: str, rows: list[tuple[str, str, float, float]]) -> None:
    baseline = rows[0][2] or 1e-9
    print(f"\n{title}")
    columns = ("query", "found", "median ms", "best ms", "x baseline")
    header = "{:46} {:>22} {:>10} {:>9} {:>11}".format(*columns)
    print(header)
    print("-" * len(header))
    for label, found, median, best in rows:
        ratio = median / baseline
        print(f"{label:46} {found:>22} {median:10.1f} {best:9.1f} {ratio:11.1f}")


# Databases.


@contextlib.contextmanager
def sqlite_database() -> t.Iterator[str]:
    with tempfile.TemporaryDirectory() as folder:
        yield f"sqlite:///{os.path.join(folder, 'history.sqlite3')}"


@contextlib.contextmanager
def postgres_database(server: str) -> t.Iterator[str]:
    name = f"livehelp_bench_{uuid.uuid4().hex[:8]}"
    # psycopg 3, whose COPY writes the rows quickly.
    server = str(sa.engine.make_url(server).set(drivername="postgresql+psycopg"))
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield str(sa.engine.make_url(server).set(database=name))
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def pg_answers(server: str) -> bool:
    try:
        engine = sa.create_engine(server, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except sa.exc.OperationalError:
        return False


def run(kind: str, uri_context: t.ContextManager[str], chats: int) -> None:
    with uri_context as uri:
        app = make_app(uri)
        start = time.perf_counter()
        with app.app_context():
            facts = fill(app, chats)
            messages = (
                get_state(app)
                .db.session.execute(
                    sa.select(sa.func.count()).select_from(
                        get_state(app).models.message
                    )
                )
                .scalar_one()
            )
        filled = time.perf_counter() - start
        rows = measure(app, facts)
        title = (
            f"{kind}: {chats:,} chats, {messages:,} messages"
            f" (written in {filled:.1f} s); {REPEAT} runs each"
        )
        print_table(title, rows)
        with app.app_context():
            get_state(app).db.engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=100_000)
    parser.add_argument(
        "--db", choices=("sqlite", "postgresql", "both"), default="both"
    )
    parser.add_argument("--pg", default=PG_SERVER, help="a PostgreSQL server URL")
    args = parser.parse_args(argv)
    if args.db in ("sqlite", "both"):
        run("SQLite", sqlite_database(), args.chats)
    if args.db in ("postgresql", "both"):
        if pg_answers(args.pg):
            run("PostgreSQL", postgres_database(args.pg), args.chats)
        elif args.db == "postgresql":
            print(f"No PostgreSQL answers at {args.pg}.", file=sys.stderr)
            return 1
        else:
            print(f"\n(PostgreSQL skipped: nothing answers at {args.pg}.)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
