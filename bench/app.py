"""The shop the benchmarks serve: Flask-LiveHelp plus a bare Flask route.

``bench.app:app`` under gunicorn reads ``BENCH_DATABASE_URI`` and, for
several processes, ``BENCH_HUB_URL`` from the environment; with
``BENCH_GC_PAUSES``, the worker's garbage collections go to that file, with
``BENCH_SWITCHES`` its greenlet switches (``bench.switches``), and with
``BENCH_CALLS`` the calls of the measured window (``bench.calls``).
"""

from __future__ import annotations

import gc
import os
import time
import typing as t
from pathlib import Path

from flask import Flask
from flask import jsonify
from flask import Response
from flask_babel import Babel
from flask_sqlalchemy import SQLAlchemy

from bench.calls import count_when_marked
from bench.switches import record_switches
from flask_livehelp import LiveHelp

SECRET_KEY = "bench-only-not-secret"


def create_app(database_uri: str, hub_url: str | None = None, **config: t.Any) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        SQLALCHEMY_DATABASE_URI=database_uri,
        # Enough connections for a busy gevent worker.
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(database_uri),
        LIVEHELP_HUB_URL=hub_url,
        # The load sends each chat a message a second or more.
        LIVEHELP_VISITOR_MESSAGES_PER_MINUTE=100_000,
        # Every customer of the load comes from 127.0.0.1.
        LIVEHELP_SOCKETS_PER_IP=100_000,
        LIVEHELP_MESSAGES_PER_MINUTE_PER_IP=10_000_000,
        # Long-lived chats: the queue time-out must not end them.
        LIVEHELP_QUEUE_TIMEOUT_SECONDS=3600,
        LIVEHELP_INACTIVE_CLOSE_SECONDS=3600,
    )
    app.config.update(config)
    db = SQLAlchemy()
    db.init_app(app)
    Babel(app)
    LiveHelp(app, db=db)
    app.add_url_rule("/bench/bare", view_func=bare)
    return app


def _engine_options(database_uri: str) -> dict[str, t.Any]:
    if database_uri.startswith("sqlite"):
        return {}
    return {"pool_size": 20, "max_overflow": 40}


def bare() -> Response:
    """What a bare Flask route answers: the same JSON as the status request."""
    response = jsonify(
        state="online", label="We are online - chat with us", queued=0, lang="en"
    )
    response.cache_control.max_age = 2
    response.cache_control.public = True
    return response


def from_environment() -> Flask:
    if path := os.environ.get("BENCH_GC_PAUSES"):
        record_collections(Path(path))
    if path := os.environ.get("BENCH_SWITCHES"):
        record_switches(Path(path))
    if path := os.environ.get("BENCH_CALLS"):
        count_when_marked(Path(path))
    return create_app(os.environ["BENCH_DATABASE_URI"], os.environ.get("BENCH_HUB_URL"))


def record_collections(path: Path) -> None:
    """Append each collection older than the youngest generation to ``path``.

    A line each: when it ended (``time.time()``), its generation, and how
    long it held the worker, in seconds.
    """
    began = time.perf_counter()

    def callback(phase: str, info: dict[str, int]) -> None:
        nonlocal began
        if info["generation"] == 0:
            return
        if phase == "start":
            began = time.perf_counter()
            return
        held = time.perf_counter() - began
        with path.open("a") as file:
            file.write(f"{time.time():.6f} {info['generation']} {held:.6f}\n")

    gc.callbacks.append(callback)
