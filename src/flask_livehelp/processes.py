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
import typing as t

import sqlalchemy as sa

from .models import utcnow

log = logging.getLogger(__name__)

#: Seconds between a process's heartbeats; one silent for three is gone.
HEARTBEAT_SECONDS = 10.0
PREFIX = "process:"


def lease_name(holder: str) -> str:
    """The lease row of the process ``holder`` (a host name may be long)."""
    return PREFIX + hashlib.sha256(holder.encode()).hexdigest()[:32]


def beat(state: t.Any, now: dt.datetime | None = None) -> None:
    """Say that this process is alive, and forget the processes that are not."""
    now = now or utcnow()
    model, session = state.models.lease, state.db.session
    name = lease_name(state.jobs.holder)
    until = now + dt.timedelta(seconds=3 * HEARTBEAT_SECONDS)
    session.execute(
        sa.delete(model).where(model.name.startswith(PREFIX), model.expires_at < now)
    )
    renewed = session.execute(
        sa.update(model).where(model.name == name).values(expires_at=until)
    )
    if not renewed.rowcount:
        session.add(model(name=name, holder=state.jobs.holder[:64], expires_at=until))
    session.commit()


def unreached(state: t.Any, now: dt.datetime | None = None) -> int:
    """How many other live processes this one's events never reach.

    Nought when the hub carries events between processes.
    """
    if state.hub.reaches_other_processes:
        return 0
    model = state.models.lease
    return t.cast(
        int,
        state.db.session.execute(
            sa.select(sa.func.count()).where(
                model.name.startswith(PREFIX),
                model.name != lease_name(state.jobs.holder),
                model.expires_at >= (now or utcnow()),
            )
        ).scalar_one(),
    )


class Heartbeat:
    """The background job: alive, and loud when not alone without a hub."""

    def __init__(self) -> None:
        #: How many unreached processes were last logged.
        self._told = 0

    def __call__(self, state: t.Any) -> None:
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
