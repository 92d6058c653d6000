"""The processes that serve the chat from one database: do they hear each other?

Each process's background loop says it is alive, in the lease table. With the
in-process hub, an event stays in the process that published it: a second
live process (two gunicorn workers, two machines) means that customers and
operators on different processes never hear each other. That is said in the
log and on the admin pages until ``LIVEHELP_HUB_URL`` joins them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os

import sqlalchemy as sa

from .models import rows_changed
from .models import utcnow
from .state import LiveHelpState

log = logging.getLogger(__name__)

#: Seconds between a process's heartbeats; one silent for three is gone.
HEARTBEAT_SECONDS = 10.0
ALIVE = dt.timedelta(seconds=3 * HEARTBEAT_SECONDS)
PREFIX = "process:"


def _name(state: LiveHelpState) -> str:
    """This process's row. By process id too: workers forked from one app
    (``--preload``) share the app's state."""
    me = f"{state.jobs.holder}:{os.getpid()}"
    return PREFIX + hashlib.sha256(me.encode()).hexdigest()[:32]


def beat(state: LiveHelpState, now: dt.datetime | None = None) -> None:
    """Say that this process is alive, and forget the processes that are not.

    A row holds when its process stopped being heard from (``expires_at``)
    and, as ``holder``, when it started.
    """
    now = now or utcnow()
    model, session = state.models.lease, state.db.session
    name = _name(state)
    session.execute(
        sa.delete(model).where(model.name.startswith(PREFIX), model.expires_at < now)
    )
    renewed = rows_changed(
        session,
        sa.update(model).where(model.name == name).values(expires_at=now + ALIVE),
    )
    if not renewed:
        session.add(model(name=name, holder=now.isoformat(), expires_at=now + ALIVE))
    session.commit()


def unreached(state: LiveHelpState, now: dt.datetime | None = None) -> int:
    """How many other processes alive with this one its events never reach.

    Nought when the hub carries events between processes. A process that
    stopped before this one started (a worker restarted) does not count,
    although its row lasts a little longer.
    """
    if state.hub.reaches_other_processes:
        return 0
    model, session = state.models.lease, state.db.session
    now = now or utcnow()
    others = sa.select(sa.func.count()).where(
        model.name.startswith(PREFIX),
        model.name != _name(state),
        model.expires_at >= now,
    )
    started = session.execute(
        sa.select(model.holder).where(model.name == _name(state))
    ).scalar_one_or_none()
    if started is not None:
        # Heard from after this process started: both alive at once.
        others = others.where(
            model.expires_at > dt.datetime.fromisoformat(started) + ALIVE
        )
    return session.execute(others).scalar_one()


class Heartbeat:
    """The background job: alive, and loud when not alone without a hub."""

    def __init__(self) -> None:
        #: How many unreached processes were last logged.
        self._told = 0

    def __call__(self, state: LiveHelpState) -> None:
        beat(state)
        others = unreached(state)
        if others and others != self._told:
            log.error(
                "%d other process(es) serve this shop's chat from the same"
                " database, but events do not travel between processes:"
                " customers and operators on different processes do not hear"
                " each other. Set LIVEHELP_HUB_URL to a Redis server, or run"
                " one process.",
                others,
            )
        self._told = others
