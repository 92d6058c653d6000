"""SQLite's checkpoints: in the background loop, never in a request.

A checkpoint copies the write-ahead log into the database file and syncs the
disk, a C call that held a whole gevent worker, every chat in it, for
milliseconds whenever a commit crossed SQLite's 1,000 pages.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
import time

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_livehelp import get_state
from flask_livehelp import LiveHelp
from flask_livehelp.sqlite_tuning import checkpoint
from flask_livehelp.sqlite_tuning import database_file

#: Commits of about ten pages each: past SQLite's own 1,000 pages of log.
COMMITS = 200


def shop_on_sqlite(directory: os.PathLike[str], **config: object) -> Flask:
    db = SQLAlchemy()
    app = Flask("shop")
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{directory}/shop.db"
    app.config.update(config)
    db.init_app(app)
    LiveHelp(app, db=db)
    return app


def commit_many_pages(app: Flask) -> None:
    """What a busy shop's requests commit, through the app's engine."""
    with app.app_context():
        engine = get_state().db.engine
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE basket (contents BLOB)")
        for _ in range(COMMITS):
            with engine.begin() as connection:
                connection.exec_driver_sql(
                    "INSERT INTO basket VALUES (zeroblob(40000))"
                )


def baskets_in_the_file_alone(directory: os.PathLike[str]) -> int:
    """Baskets in the database file, leaving out what is still in the log."""
    copy = os.path.join(directory, "copy.db")
    shutil.copyfile(os.path.join(directory, "shop.db"), copy)
    connection = sqlite3.connect(copy)
    try:
        return int(connection.execute("SELECT count(*) FROM basket").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # not even the table
    finally:
        connection.close()
        os.remove(copy)


def test_requests_leave_the_checkpoints_to_the_background_loop(
    tmp_path: os.PathLike[str],
) -> None:
    app = shop_on_sqlite(tmp_path)
    commit_many_pages(app)
    # Past SQLite's own threshold, and no commit copied anything over.
    assert baskets_in_the_file_alone(tmp_path) == 0
    get_state(app).jobs.run(app, "sqlite-checkpoint")
    assert baskets_in_the_file_alone(tmp_path) == COMMITS


def test_an_untuned_database_is_left_to_checkpoint_as_it_did(
    tmp_path: os.PathLike[str],
) -> None:
    app = shop_on_sqlite(tmp_path, LIVEHELP_TUNE_SQLITE=False)
    with app.app_context():
        engine = get_state().db.engine
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")
    commit_many_pages(app)
    # SQLite's own checkpoints, at its own 1,000 pages.
    assert baskets_in_the_file_alone(tmp_path) > 0


def log_begun_afresh(directory: os.PathLike[str]) -> int:
    """How many times the shop's log was begun afresh: the checkpoint
    sequence number in its header (SQLite's file format)."""
    with open(os.path.join(directory, "shop.db-wal"), "rb") as log:
        return int.from_bytes(log.read(16)[12:16], "big")


def test_under_steady_commits_each_checkpoint_lets_the_log_begin_afresh(
    tmp_path: os.PathLike[str],
) -> None:
    # Commits landing while a checkpoint copied left the log's end uncopied,
    # so no commit began it afresh: it grew until a request's commit crossed
    # the backstop and checkpointed, every 4-5 s at 500 messages a second.
    app = shop_on_sqlite(tmp_path)
    commit_many_pages(app)
    stop = threading.Event()

    def commit_steadily() -> None:
        with app.app_context():
            engine = get_state().db.engine
            while not stop.wait(0.004):
                with engine.begin() as connection:
                    connection.exec_driver_sql(
                        "INSERT INTO basket VALUES (zeroblob(40000))"
                    )

    shop = threading.Thread(target=commit_steadily)
    shop.start()
    begun_afresh = []
    try:
        for _ in range(10):
            time.sleep(0.1)
            before = log_begun_afresh(tmp_path)
            get_state(app).jobs.run(app, "sqlite-checkpoint")
            time.sleep(0.03)  # the shop's next commits
            begun_afresh.append(log_begun_afresh(tmp_path) > before)
    finally:
        stop.set()
        shop.join()
    assert sum(begun_afresh) >= 8, begun_afresh


def test_a_database_held_by_another_connection_is_checkpointed_next_round(
    tmp_path: os.PathLike[str],
) -> None:
    # Locked, as while another connection recovers the log after a crash:
    # no error in the log every second, the backstop still holds.
    path = os.path.join(tmp_path, "held.db")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("CREATE TABLE basket (contents BLOB)")
    try:
        assert checkpoint(f"file:{path}?mode=rw", True) == (1, -1, -1)
    finally:
        holder.close()
    assert checkpoint(f"file:{path}?mode=rw", True)[0] == 0


@pytest.mark.parametrize(
    ("uri", "found"),
    [
        ("sqlite:////srv/shop.db", ("file:/srv/shop.db?mode=rw", True)),
        ("sqlite:////srv/my shop.db", ("file:/srv/my%20shop.db?mode=rw", True)),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("sqlite:///file:shop?mode=memory&cache=shared&uri=true", None),
        ("sqlite:///file:/srv/shop.db?uri=true", ("file:/srv/shop.db", True)),
        ("postgresql+psycopg://db/shop", None),
    ],
)
def test_the_checkpoint_finds_the_database_file(
    uri: str, found: tuple[str, bool] | None
) -> None:
    # The pool, named so SQLAlchemy need not pick one for a memory database.
    engine = sa.create_engine(uri, poolclass=sa.pool.NullPool)
    assert database_file(engine) == found
    engine.dispose()
