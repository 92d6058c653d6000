"""SQLite tuned for a chat server: the write-ahead log, and its checkpoints
away from the requests.

In WAL mode a commit appends to the log, and every 1,000 pages (SQLite's
default) the committing connection copies the log into the database file and
syncs the disk: a checkpoint. That is a C call, and it holds a whole gevent
worker, every chat in it, for milliseconds: at 500 messages a second it came
every half second and made the 99th percentile of delivery. The connections
that serve requests now checkpoint only as a backstop, past
:data:`BACKSTOP_PAGES`; the background loop checkpoints every
:data:`CHECKPOINT_SECONDS` (:func:`checkpoint_job`), under gevent in its pool
of system threads, where the copying and the disk sync hold up nobody.

A commit writes the log afresh from its start only when it finds every page
of it copied. Under steady commits some always land while a checkpoint
copies, so :func:`checkpoint` copies again until a pass finds none landed
during the one before; otherwise the log only grew, until a commit crossed
the backstop and checkpointed in a request after all.
"""

from __future__ import annotations

import os
import sqlite3
import typing as t
import urllib.parse

import sqlalchemy as sa
from sqlalchemy.engine.interfaces import DBAPIConnection

from .threads import off_the_event_loop

if t.TYPE_CHECKING:
    from .state import LiveHelpState

#: How often the background loop checkpoints.
CHECKPOINT_SECONDS = 1.0
#: Pages of log past which a committing connection checkpoints all the same,
#: should the background loop not run (off, or in no process) or fall behind:
#: about 40 MB with SQLite's 4 KB pages.
BACKSTOP_PAGES = 10_000
#: Passes a checkpoint makes at most to catch up with the commits that
#: landed while it copied; each after the first copies a few pages.
CATCH_UP_PASSES = 8


def tune_sqlite(engine: sa.Engine) -> None:
    """Tune each new connection of ``engine``, a SQLite engine's (once)."""
    if engine.dialect.name == "sqlite" and not sa.event.contains(
        engine, "connect", tune_connection
    ):
        sa.event.listen(engine, "connect", tune_connection)


def tune_connection(connection: DBAPIConnection, record: object) -> None:
    # Write-ahead logging lets readers go on while one writer commits, and the
    # busy timeout makes writers wait for each other instead of failing.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # With WAL, NORMAL syncs the disk at checkpoints, not at every commit: an
    # app crash loses nothing, a power cut at most the last commits, and a
    # commit no longer waits for the disk. SQLite's calls block a whole gevent
    # worker, so a commit that waits for fsync stalls every chat in it.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
    cursor.close()


def checkpoint_job(state: LiveHelpState) -> None:
    """Checkpoint the SQLite database our tables are in, if they are in one
    whose connections are tuned, where it holds up no request."""
    engine = state.db.engines[state.extension.bind_key]
    target = database_file(engine)
    if target is not None and sa.event.contains(engine, "connect", tune_connection):
        off_the_event_loop(checkpoint, *target)


def database_file(engine: sa.Engine) -> tuple[str, bool] | None:
    """Where ``engine``'s SQLite database is, as ``sqlite3.connect`` takes it
    (name, and whether it is a URI); ``None`` for one in memory, or none."""
    if engine.dialect.name != "sqlite":
        return None
    # As the dialect connects: a URI's parameters are in the URL's query.
    args, options = engine.dialect.create_connect_args(engine.url)
    name = str(args[0]) if args else ":memory:"
    if name in ("", ":memory:") or "mode=memory" in name:
        return None
    if options.get("uri"):
        return name, True
    # mode=rw: a database that is gone is not made anew, empty.
    return f"file:{urllib.parse.quote(os.path.abspath(name))}?mode=rw", True


def checkpoint(name: str, uri: bool) -> tuple[int, int, int]:
    """Copy what the log holds into the database, waiting for nobody
    (PASSIVE), until a pass finds no commit landed during the one before:
    (1 if another checkpoint was running, pages in the log, pages copied),
    as the last pass found them."""
    connection = sqlite3.connect(name, uri=uri, timeout=0, check_same_thread=False)
    try:
        found = _copy_log(connection)
        for _ in range(CATCH_UP_PASSES - 1):
            if found[0] == 1:
                break  # another process's checkpoint is at it
            again = _copy_log(connection)
            if again[1] <= found[1]:
                # The log the pass before saw (or one begun afresh since):
                # all of it is copied, and the next commit restarts it.
                return again
            found = again
        return found
    except sqlite3.OperationalError as error:
        if "locked" not in str(error) and "busy" not in str(error):
            raise
        # Another connection holds what a checkpoint needs (recovering the
        # log after a crash, say): the next round checkpoints.
        return 1, -1, -1
    finally:
        connection.close()


def _copy_log(connection: sqlite3.Connection) -> tuple[int, int, int]:
    row = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return t.cast(tuple[int, int, int], tuple(row))
