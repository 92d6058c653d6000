"""The background loop: time-outs, the mail outbox, presence and clean-up.

One loop runs per process. Every job claims its rows with one atomic UPDATE
(or holds a lease, for jobs that are not about rows), so several processes
running the same loop never do a piece of work twice.
"""

from __future__ import annotations

import collections.abc as c
import dataclasses
import datetime as dt
import logging
import os
import secrets
import socket
import threading
import time

import sqlalchemy as sa
from flask import current_app
from flask import Flask

from .config import config_value
from .models import rows_changed
from .models import utcnow
from .state import get_state
from .state import LiveHelpState
from .threads import let_requests_run

log = logging.getLogger(__name__)

#: A job gets the app's state and runs inside an app context.
JobFunction = c.Callable[[LiveHelpState], object]


@dataclasses.dataclass
class Job:
    name: str
    every: float
    function: JobFunction
    due: float = 0.0


class Jobs:
    """The jobs of one app, and the thread that runs them."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        #: Who holds leases in this process.
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"

    def add(self, name: str, every: float, function: JobFunction) -> None:
        """Run ``function(state)`` about every ``every`` seconds."""
        self._jobs[name] = Job(name, every, function)

    def names(self) -> list[str]:
        return sorted(self._jobs)

    def run_due(self, app: Flask, now: float | None = None) -> list[str]:
        """Run the jobs that are due; returns their names."""
        now = time.monotonic() if now is None else now
        ran: list[str] = []
        for job in list(self._jobs.values()):
            if job.due <= now:
                if ran:
                    # On SQLite a job's queries hold a gevent worker's every
                    # chat; the jobs due together held them for 4-10 ms.
                    let_requests_run()
                job.due = now + job.every
                self.run(app, job.name)
                ran.append(job.name)
        return ran

    def run(self, app: Flask, name: str) -> None:
        """Run one job now, whatever its schedule."""
        job = self._jobs[name]
        with app.app_context():
            state = get_state(app)
            try:
                job.function(state)
            except Exception:
                state.db.session.rollback()
                log.exception("The background job %s failed.", name)
            finally:
                state.db.session.remove()

    def run_all(self, app: Flask) -> None:
        for name in self.names():
            self.run(app, name)

    def start(self, app: Flask) -> None:
        """Start this process's loop, once."""
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._loop, args=(app,), name="livehelp-jobs", daemon=True
            )
            self._thread.start()

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self, app: Flask) -> None:
        tick = config_value("JOBS_TICK_SECONDS", app)
        while not self._stop.wait(tick):
            self.run_due(app)


def start_jobs() -> None:
    """Start this process's background loop with its first request of ours
    (a ``before_request`` of our blueprints: the host's own requests pay
    nothing for it; the widget's status request comes from every shop page).

    Not at init_app: a server that forks workers after loading the app
    (gunicorn --preload) would leave the thread behind in the parent.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    mode = config_value("JOBS", app)
    if mode == "thread" or (mode == "auto" and not app.testing):
        get_state(app).jobs.start(app)


def hold_lease(state: LiveHelpState, name: str, seconds: float, holder: str) -> bool:
    """Take the lease ``name`` for ``seconds``, unless another process holds it.

    The lease is taken by one atomic UPDATE, so exactly one process wins.
    """
    model = state.models.lease
    session = state.db.session
    now = utcnow()
    until = now + dt.timedelta(seconds=seconds)
    if session.get(model, name) is None:
        session.add(model(name=name, holder=None, expires_at=now))
        try:
            session.commit()
        except sa.exc.IntegrityError:
            session.rollback()
    taken = rows_changed(
        session,
        sa.update(model)
        .where(model.name == name)
        .where(sa.or_(model.expires_at <= now, model.holder == holder))
        .values(holder=holder, expires_at=until),
    )
    session.commit()
    return taken == 1
