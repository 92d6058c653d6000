"""Statements of the hot path, compiled once and handed to the driver as SQL.

Running even a cached Core statement costs about a hundred microseconds of
Python each time (its cache key, building and processing the parameters,
setting up the result), more than SQLite takes to run it. Storing messages
runs two statements a batch, so they are compiled here once for the
database's dialect, and each run passes the SQL and the processed values
to the driver.

Where they run: :func:`driver_transaction`, on a connection of the engine's
pool given straight to the driver (as the pool's own events, errors and lost
connections are handled), unless the host listens to its engine's
statements (:func:`watched`: query logging, tracing), where they go through
``Connection.exec_driver_sql`` for its listeners to see.
"""

from __future__ import annotations

import collections
import collections.abc as c
import contextlib
import threading
import typing as t

import sqlalchemy as sa
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.engine.interfaces import DBAPICursor
from sqlalchemy.pool import PoolProxiedConnection

Processor = t.Callable[[t.Any], t.Any]
#: What the hot path runs.
Statement = sa.Insert | sa.Update


class NeedsDefaults(Exception):
    """The statement takes a value only its execution works out: a column
    default or ``onupdate`` in Python. Give every such column a value."""


class Prepared:
    """``statement`` compiled for ``dialect``, run with the values it lacks.

    The values the statement holds itself (its constants) are taken and
    processed once; the rest are given to :meth:`run` by name, as to
    ``Connection.execute``.
    """

    def __init__(self, statement: Statement, dialect: sa.Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        self._constants: dict[str, t.Any] = {}
        self._processors: list[tuple[str, Processor]] = []
        for bind, name in compiled.bind_names.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if bind.value is not None or bind.callable is not None:
                value = bind.effective_value
                self._constants[name] = value if process is None else process(value)
            elif not bind.required:
                raise NeedsDefaults(f"{name} in {self.sql}")
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

    def parameters(self, values: dict[str, t.Any]) -> t.Any:
        """What the driver is given with :attr:`sql` for ``values``."""
        parameters = {**values, **self._constants}
        for name, process in self._processors:
            parameters[name] = process(parameters[name])
        if self._order is None:
            return parameters
        return tuple(parameters[name] for name in self._order)

    def rows(self, fetched: c.Sequence[t.Any]) -> list[tuple[t.Any, ...]]:
        """The returned rows the driver ``fetched``, as Python values."""
        if not any(self._results):
            return [tuple(row) for row in fetched]
        return [
            tuple(
                value if process is None else process(value)
                for process, value in zip(self._results, row, strict=True)
            )
            for row in fetched
        ]


class PreparedCache:
    """Prepared statements by key (a batch's sizes), the most recently used
    ``size`` of them: batches of every size are compiled as they come."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._prepared: collections.OrderedDict[t.Hashable, Prepared] = (
            collections.OrderedDict()
        )

    def get(self, key: t.Hashable, build: c.Callable[[], Prepared]) -> Prepared:
        with self._lock:
            found = self._prepared.get(key)
            if found is not None:
                self._prepared.move_to_end(key)
                return found
        found = build()  # outside the lock: compiling takes milliseconds
        with self._lock:
            self._prepared[key] = found
            if len(self._prepared) > self.size:
                self._prepared.popitem(last=False)
        return found


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


def watched(engine: sa.Engine) -> bool:
    """Whether anything listens to ``engine``'s statements, transactions or
    errors: then the hot path's go through a connection too, for it to see
    them."""
    return bool(engine.dialect.dispatch.handle_error) or any(
        getattr(engine.dispatch, name) for name in STATEMENT_EVENTS
    )


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
    of one statement, which then needs no BEGIN and COMMIT). The driver's
    errors come out as SQLAlchemy's (``IntegrityError`` and the rest), and a
    connection the database dropped is thrown away, not given back to the
    pool: as ``Connection`` does, without its work for every statement.
    """
    dialect = engine.dialect
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        if autocommit:
            # Just checked out, so the pool's proxy holds a driver's connection.
            driver = t.cast(DBAPIConnection, connection.dbapi_connection)
            dialect.set_isolation_level(driver, "AUTOCOMMIT")
    except BaseException:
        connection.close()
        raise
    statement = None

    def run(prepared: Prepared, values: dict[str, t.Any]) -> list[tuple[t.Any, ...]]:
        nonlocal statement
        statement = prepared.sql
        dialect.do_execute(cursor, prepared.sql, prepared.parameters(values), None)
        return prepared.rows(cursor.fetchall())

    try:
        yield run
        if not autocommit:
            statement = "COMMIT"
            dialect.do_commit(connection)
    except BaseException as error:
        raised = _failed(dialect, connection, cursor, statement, error)
        if raised is error:
            raise
        raise raised from error
    finally:
        with contextlib.suppress(Exception):  # gone with a lost connection
            cursor.close()
        if autocommit and connection.dbapi_connection is not None:
            _reset_isolation(dialect, connection)
        connection.close()


def _reset_isolation(dialect: sa.Dialect, connection: PoolProxiedConnection) -> None:
    """Back to the pool's isolation level; a connection that cannot be is
    thrown away, as the next user would commit nothing it wrote."""
    try:
        dialect.reset_isolation_level(
            t.cast(DBAPIConnection, connection.dbapi_connection)
        )
    except Exception as error:
        connection.invalidate(error)


def _failed(
    dialect: sa.Dialect,
    connection: PoolProxiedConnection,
    cursor: DBAPICursor,
    statement: str | None,
    error: BaseException,
) -> BaseException:
    """Roll back after ``error``, or drop the connection if it is lost; the
    error to raise."""
    driver_error = dialect.loaded_dbapi.Error
    lost = isinstance(error, driver_error) and dialect.is_disconnect(
        error, connection.dbapi_connection, cursor
    )
    if lost:
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
