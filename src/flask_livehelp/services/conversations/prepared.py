"""Statements of the hot path, compiled once and handed to the driver as SQL.

Running even a cached Core statement costs about a hundred microseconds of
Python each time (its cache key, building and processing the parameters,
setting up the result), more than SQLite takes to run it. Storing messages
runs two statements a batch, so they are compiled here once for the
database's dialect, and each run passes the SQL and the processed values
to the driver.

Where they run: :func:`driver_transaction`, on a connection of the engine's
pool given straight to the driver (the pool's own events still apply, and
errors and lost connections are handled as ``Connection`` handles them),
unless something watches the engine or the session (:func:`watched`: SQL
logging, tracing, the session's transaction events), where they go through
the session's ``Connection.exec_driver_sql`` for it to see them.
"""

from __future__ import annotations

import collections.abc as c
import contextlib
import logging
import operator
import re
import typing as t

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.engine.interfaces import DBAPICursor
from sqlalchemy.pool import PoolProxiedConnection

Processor = t.Callable[[t.Any], t.Any]
#: Where SQLAlchemy logs every statement (``echo``, or logging set to INFO).
_SQL_LOG = logging.getLogger("sqlalchemy.engine.Engine")
#: What the hot path runs.
Statement = sa.Insert | sa.Update


class NeedsDefaults(Exception):
    """The statement takes a value only its execution works out: a column
    default or ``onupdate`` in Python. Give every such column a value."""


class Prepared:
    """``statement`` compiled for ``dialect``, run with the values it lacks.

    The values the statement holds itself (its constants) are taken and
    processed once; the rest are given by name each time it runs, as to
    ``Connection.execute``.
    """

    def __init__(self, statement: Statement, dialect: sa.Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        self._constants: dict[str, t.Any] = {}
        self._processors: list[tuple[str, Processor]] = []
        # A name the SQL cannot hold (a space, a dot, a percent sign) is
        # escaped in named placeholders; numbered ones go by the name itself.
        escaped = {} if compiled.positional else compiled.escaped_bind_names
        #: The names of values given when it runs that the SQL escaped, and how.
        self._renamed = dict(escaped)
        for bind, unescaped in compiled.bind_names.items():
            name = escaped.get(unescaped, unescaped)
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if bind.value is not None or bind.callable is not None:
                value = bind.effective_value
                self._constants[name] = value if process is None else process(value)
                self._renamed.pop(unescaped, None)
            elif not bind.required:
                raise NeedsDefaults(f"{unescaped} in {self.sql}")
            elif process is not None:
                self._processors.append((name, process))
        #: The names in the order of the placeholders, for a driver that
        #: numbers its parameters (SQLite's ``?``); ``None``: it names them.
        self._order = compiled.positiontup if compiled.positional else None
        #: What turns each returned column into Python, where the driver's
        #: value is not that already.
        self._results = [
            column["type"].dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.returning_column_descriptions
        ]
        self._converts = any(self._results)
        #: For psycopg: :attr:`sql` with PostgreSQL's own numbered
        #: placeholders, and the names they stand for, in their order.
        self.numbered = numbered_placeholders(self.sql) if raw_cursor(dialect) else None

    def parameters(self, values: dict[str, t.Any]) -> t.Any:
        """What the driver is given with :attr:`sql` for ``values``."""
        parameters = self._processed(values)
        if self._order is None:
            return parameters
        return tuple(map(parameters.__getitem__, self._order))

    def numbered_parameters(self, values: dict[str, t.Any]) -> tuple[t.Any, ...]:
        """What psycopg's raw cursor is given with the :attr:`numbered` SQL."""
        names = self.numbered[1] if self.numbered else ()
        return tuple(map(self._processed(values).__getitem__, names))

    def _processed(self, values: dict[str, t.Any]) -> dict[str, t.Any]:
        if self._renamed:
            values = {self._renamed.get(name, name): v for name, v in values.items()}
        parameters = {**values, **self._constants}
        for name, process in self._processors:
            parameters[name] = process(parameters[name])
        return parameters

    def rows(self, fetched: c.Sequence[t.Any]) -> list[tuple[t.Any, ...]]:
        """The returned rows the driver ``fetched``, as Python values."""
        if not self._converts:
            return [tuple(row) for row in fetched]
        return [
            tuple(
                value if process is None else process(value)
                for process, value in zip(self._results, row, strict=True)
            )
            for row in fetched
        ]


#: A named placeholder of the ``pyformat`` style, or an escaped percent sign.
_NAMED = re.compile(r"%\((?P<name>[^)]+)\)s|%%")


def numbered_placeholders(sql: str) -> tuple[str, tuple[str, ...]]:
    """``sql`` with ``$1``, ``$2``... for its ``%(name)s`` (a name used twice
    keeps its number), and the names in the order of their numbers."""
    names: dict[str, int] = {}

    def number(placeholder: re.Match[str]) -> str:
        name = placeholder["name"]
        if name is None:
            return "%"
        return f"${names.setdefault(name, len(names) + 1)}"

    return _NAMED.sub(number, sql), tuple(names)


def raw_cursor(
    dialect: sa.Dialect,
) -> c.Callable[[DBAPIConnection], DBAPICursor] | None:
    """psycopg's cursor for SQL in PostgreSQL's numbered placeholders, or
    ``None`` (another driver, or a psycopg before 3.2).

    Its usual cursor looks for ``%(name)s`` placeholders in the SQL each time
    a statement runs, unless the statement is short enough for its cache: a
    batch's statement from four messages on is not, and parsing it cost more
    than 100 µs a batch. The raw cursor hands the SQL over as it is.
    """
    if dialect.driver != "psycopg":
        return None
    return getattr(dialect.dbapi, "RawCursor", None)


def _cursor(
    dialect: sa.Dialect, connection: PoolProxiedConnection
) -> tuple[DBAPICursor, bool]:
    """A cursor of ``connection``, and whether it takes numbered placeholders:
    psycopg's raw cursor, unless the host made the connection's cursors
    another kind (``cursor_factory``: a client-side one for PgBouncer, say)."""
    raw = raw_cursor(dialect)
    driver = _driver(connection)
    usual = getattr(dialect.dbapi, "Cursor", None)
    if raw is not None and getattr(driver, "cursor_factory", None) is usual:
        return raw(driver), True
    return connection.cursor(), False


class PreparedCache:
    """Prepared statements by key (which statement, for which driver and
    size), each compiled the first time it is asked for."""

    def __init__(self) -> None:
        self._prepared: dict[t.Hashable, Prepared] = {}

    def get(self, key: t.Hashable, build: c.Callable[[], Prepared]) -> Prepared:
        found = self._prepared.get(key)
        if found is None:
            # No lock: two posters may both compile a statement, once; a
            # poster must never wait for a compile in the background.
            found = self._prepared.setdefault(key, build())
        return found


def batch_size(count: int) -> int:
    """How many rows the statement for ``count`` rows takes: ``count``
    rounded up to a power of two.

    Compiling a statement takes milliseconds (tens for a batch of a
    hundred), more than running it many times: rounded up, a worker compiles
    each statement for at most eight sizes in its life (up to 128 rows). The
    rows beyond ``count`` are NULLs that match nothing (:func:`bound_values`).
    """
    return 1 << (count - 1).bit_length()


def bound_rows(
    name: str, size: int, **columns: sa.types.TypeEngine[t.Any]
) -> sa.Subquery:
    """``size`` rows of values given when the statement runs, as a subquery
    called ``name``: the value of ``column`` in row ``n`` is the parameter
    ``{name}_{column}_{n}`` (see :func:`bound_values`).

    Placeholders, not one parameter holding every row (a JSON array, say):
    then the database plans without knowing how many rows there are, and
    PostgreSQL reads every open chat to find the few a batch claims.

    Each is cast to its type: a driver that binds on the client (psycopg2)
    sends a NULL without one, and to PostgreSQL a column of NULLs is text.
    """
    return sa.union_all(
        *(
            sa.select(
                *(
                    sa.cast(
                        sa.bindparam(f"{name}_{column}_{n}", type_=type_), type_
                    ).label(column)
                    for column, type_ in columns.items()
                )
            )
            for n in range(size)
        )
    ).subquery(name)


def bound_values(
    name: str, rows: c.Sequence[c.Mapping[str, object]], size: int
) -> dict[str, object]:
    """The parameters of :func:`bound_rows` ``name`` of ``size`` for
    ``rows``; the rows beyond them all NULL, which the statement is to
    match with nothing (a NULL id joins no row)."""
    padding = [dict.fromkeys(rows[0])] * (size - len(rows)) if rows else []
    return {
        f"{name}_{column}_{n}": value
        for n, row in enumerate([*rows, *padding])
        for column, value in row.items()
    }


#: Runs a prepared statement in the transaction; the rows it returned.
Run = c.Callable[[Prepared, dict[str, t.Any]], list[tuple[t.Any, ...]]]

#: The engine's events that see a statement run through a connection.
STATEMENT_EVENTS = (
    "engine_connect",
    "begin",
    "before_execute",
    "before_cursor_execute",
    "after_cursor_execute",
    "after_execute",
    "commit",
    "rollback",
)
#: The dialect's: what the driver is handed, and its errors.
DIALECT_EVENTS = ("do_execute", "do_setinputsizes", "handle_error")
#: The session's, which fired while a batch ran in the ORM session.
SESSION_EVENTS = (
    "after_transaction_create",
    "after_begin",
    "before_commit",
    "after_commit",
    "after_rollback",
    "after_soft_rollback",
    "after_transaction_end",
)


def watched(engine: sa.Engine, session: sa_orm.Session) -> bool:
    """Whether anything watches ``engine``'s statements, errors or
    transactions, or ``session``'s (listeners, or SQL logging): then the hot
    path goes through the session too, for them to see it."""
    dialect = engine.dialect
    return (
        bool(engine.echo)
        or _SQL_LOG.isEnabledFor(logging.INFO)
        or (_ever_listened(engine) and any(_statement_listeners(engine.dispatch)))
        or (_ever_listened(dialect) and any(_dialect_listeners(dialect.dispatch)))
        or any(_session_listeners(session.dispatch))
    )


def _ever_listened(target: sa.Engine | sa.Dialect) -> bool:
    """Whether a listener was ever added to ``target`` or its class.

    SQLAlchemy sets the flag when one is (``Connection`` reads it before each
    event it fires), so where it is unset the eleven lists of listeners need
    no look each batch. A release without it is looked at every time.
    """
    return bool(getattr(target, "_has_events", True))


# Each batch looks: fetched in one call each, not attribute by attribute.
_statement_listeners = operator.attrgetter(*STATEMENT_EVENTS)
_dialect_listeners = operator.attrgetter(*DIALECT_EVENTS)
_session_listeners = operator.attrgetter(*SESSION_EVENTS)


def through_connection(connection: sa.Connection) -> Run:
    """Runs on ``connection``: its events see every statement."""

    def run(prepared: Prepared, values: dict[str, t.Any]) -> list[tuple[t.Any, ...]]:
        result = connection.exec_driver_sql(prepared.sql, prepared.parameters(values))
        return [tuple(row) for row in result.all()]

    return run


@contextlib.contextmanager
def driver_transaction(
    engine: sa.Engine, *, autocommit: bool = False
) -> c.Iterator[Run]:
    """One transaction on a connection of ``engine``'s pool, run by the driver.

    Committed when the block ends, rolled back if it raises; with
    ``autocommit``, each statement is a transaction of its own (for a block
    of one statement, which then needs no BEGIN and COMMIT). As
    ``Connection`` does, without its work for every statement: the driver's
    errors come out as SQLAlchemy's (``IntegrityError`` and the rest), and a
    connection the database dropped, or one left mid-statement by a killed
    greenlet, is thrown away, not given back to the pool.
    """
    dialect = engine.dialect
    connection = engine.raw_connection()
    cursor: DBAPICursor | None = None
    numbered = False
    statement = None

    def run(prepared: Prepared, values: dict[str, t.Any]) -> list[tuple[t.Any, ...]]:
        nonlocal statement
        opened = t.cast(DBAPICursor, cursor)  # opened before the block runs
        if numbered and prepared.numbered is not None:
            statement = prepared.numbered[0]
            parameters = prepared.numbered_parameters(values)
        else:
            statement = prepared.sql
            parameters = prepared.parameters(values)
        dialect.do_execute(opened, statement, parameters, None)
        return prepared.rows(opened.fetchall())

    try:
        cursor, numbered = _cursor(dialect, connection)
        if autocommit:
            dialect.set_isolation_level(_driver(connection), "AUTOCOMMIT")
        yield run
        if not autocommit:
            statement = "COMMIT"
            dialect.do_commit(connection)
    except BaseException as error:
        raised = _failed(engine, connection, cursor, statement, error)
        if raised is error:
            raise
        raise raised from error
    finally:
        _give_back(dialect, connection, cursor, autocommit)


def _driver(connection: PoolProxiedConnection) -> DBAPIConnection:
    # Checked out and not thrown away, so the pool's proxy holds one.
    return t.cast(DBAPIConnection, connection.dbapi_connection)


def _give_back(
    dialect: sa.Dialect,
    connection: PoolProxiedConnection,
    cursor: DBAPICursor | None,
    autocommit: bool,
) -> None:
    """Return ``connection`` to the pool as its other users expect it: at
    the pool's isolation level, or thrown away if it cannot be (the next
    user would commit nothing it wrote)."""
    if cursor is not None:
        with contextlib.suppress(Exception):  # gone with a lost connection
            cursor.close()
    if autocommit and connection.dbapi_connection is not None:
        try:
            dialect.reset_isolation_level(_driver(connection))
        except Exception as error:
            connection.invalidate(error)
    connection.close()


def _failed(
    engine: sa.Engine,
    connection: PoolProxiedConnection,
    cursor: DBAPICursor | None,
    statement: str | None,
    error: BaseException,
) -> BaseException:
    """Roll back after ``error``, or throw the connection away; the error to
    raise."""
    dialect = engine.dialect
    driver_error = dialect.loaded_dbapi.Error
    lost = isinstance(error, driver_error) and dialect.is_disconnect(
        error, connection.dbapi_connection, cursor
    )
    if lost:
        # The database restarted, or a proxy cut us off: the pool's other
        # connections of that time are as dead, as Connection assumes too,
        # and this one is thrown away with them (invalidated once: a second
        # time warns). What Connection calls; not public, in every 2.x.
        engine.pool._invalidate(connection, error)
    elif not isinstance(error, Exception):
        # Stopped mid-statement (a greenlet killed): its answer may still
        # come, so nobody may use the connection after us.
        connection.invalidate(error)
    else:
        with contextlib.suppress(Exception):
            dialect.do_rollback(connection)
    if not isinstance(error, driver_error):
        return error
    return sa.exc.DBAPIError.instance(
        statement,
        None,  # a message's text stays out of logs
        t.cast(Exception, error),
        driver_error,
        connection_invalidated=lost,
        dialect=dialect,
    )
