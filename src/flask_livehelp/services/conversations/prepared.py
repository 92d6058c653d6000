"""Statements of the hot path, compiled once and handed to the driver as SQL.

Running even a cached Core statement costs about a hundred microseconds of
Python each time (its cache key, building and processing the parameters,
setting up the result), more than SQLite takes to run it. Storing messages
runs two statements a batch, so they are compiled here once for the
database's dialect, and each run passes the SQL and the processed values
straight to ``Connection.exec_driver_sql``. That still goes through the
connection: its events, its errors and its handling of a lost connection
are the same as for any statement.
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa

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

    def run(
        self, connection: sa.Connection, values: dict[str, t.Any]
    ) -> sa.CursorResult[t.Any]:
        parameters = {**values, **self._constants}
        for name, process in self._processors:
            parameters[name] = process(parameters[name])
        if self._order is None:
            return connection.exec_driver_sql(self.sql, parameters)
        return connection.exec_driver_sql(
            self.sql, tuple(parameters[name] for name in self._order)
        )
