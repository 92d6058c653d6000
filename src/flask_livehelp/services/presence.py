"""Who is there: operators' chosen status, their open panels, and the widget state.

What a visitor sees of an operator is the *effective* status: the one the
operator chose while a panel of theirs is connected; ``away`` for a grace time
after their last panel went quiet; ``offline`` after that.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import threading
import time
import typing as t

import sqlalchemy as sa

from .. import signals
from ..hub import operator_channel
from ..hub import STAFF_CHANNEL
from ..models import OperatorMixin
from ..models import utcnow
from . import access
from . import Basics
from . import Service

#: How long a computed widget state is reused within one process.
STATE_CACHE_SECONDS = 1.0


#: Whatever :meth:`PresenceService.remember` keeps.
Built = t.TypeVar("Built")


@dataclasses.dataclass(frozen=True)
class WidgetState:
    """What the widget shows: ``online``, ``busy``, ``away`` or ``offline``."""

    state: str
    #: Conversations waiting in the queue.
    queued: int


@dataclasses.dataclass(frozen=True)
class OperatorPresence:
    id: int
    name: str
    status: str
    active_chats: int
    max_chats: int
    department_ids: tuple[int, ...]
    #: What :func:`~flask_livehelp.services.access.scope` says of them.
    department_scope: frozenset[int] | None
    #: The status they chose (``status`` is what visitors see of it now).
    chosen: str = "offline"

    @property
    def busy(self) -> bool:
        return self.status == "online" and self.active_chats >= self.max_chats

    def public(self) -> dict[str, object]:
        """As the panels' presence list shows them."""
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "active_chats": self.active_chats,
            "max_chats": self.max_chats,
            "department_ids": list(self.department_ids),
        }


class Staff(t.NamedTuple):
    """Every active operator's row, when each one's panels were last heard
    from, and how many chats each has active: one look at the tables."""

    rows: list[OperatorMixin]
    live: dict[int, dt.datetime]
    load: dict[int | None, int]


class PresenceService(Service):
    def __init__(self, *args: *Basics) -> None:
        super().__init__(*args)
        self._cache: dict[t.Hashable, tuple[float, object]] = {}
        self._cache_lock = threading.Lock()
        #: The effective statuses this process last told the panels about.
        self._told: dict[int, str] = {}

    def open_connection(self, operator_id: int) -> str:
        """Record a newly connected panel; returns the connection's id."""
        connection_id = secrets.token_hex(16)
        now = utcnow()
        self.session.add(
            self.models.connection(
                id=connection_id, operator_id=operator_id, opened_at=now, seen_at=now
            )
        )
        self._seen(operator_id, now)
        self.session.commit()
        self.announce(operator_id)
        return connection_id

    def touch_connection(
        self, connection_id: str, operator_id: int, heard_at: dt.datetime | None = None
    ) -> None:
        """The panel is still there, also after its row was taken for stale.

        It was last heard at ``heard_at`` (by default now): the grace time of
        a panel that went silent counts from then, not from the tick that
        noted it.
        """
        seen = heard_at or utcnow()
        model = self.models.connection
        touched = self.changed(
            sa.update(model).where(model.id == connection_id).values(seen_at=seen)
        )
        if not touched:
            self.session.add(
                model(
                    id=connection_id,
                    operator_id=operator_id,
                    opened_at=seen,
                    seen_at=seen,
                )
            )
        self._seen(operator_id, seen)
        self.session.commit()
        if not touched:
            self.announce(operator_id)

    def close_connection(
        self,
        connection_id: str,
        operator_id: int,
        last_heard: dt.datetime | None = None,
    ) -> None:
        """The panel is gone; its operator was last there at ``last_heard``.

        A panel that went silent is closed a while after it was last heard,
        and the grace time counts from then.
        """
        model = self.models.connection
        self.session.execute(sa.delete(model).where(model.id == connection_id))
        self._seen(operator_id, last_heard or utcnow())
        self.session.commit()
        self.announce(operator_id)

    def _seen(self, operator_id: int, now: dt.datetime) -> None:
        model = self.models.operator
        # Never back: another panel of theirs may have been heard since.
        self.session.execute(
            sa.update(model)
            .where(model.id == operator_id)
            .where(sa.or_(model.last_seen_at.is_(None), model.last_seen_at < now))
            .values(last_seen_at=now)
        )

    def expire(self, now: dt.datetime | None = None) -> list[int]:
        """Presence that changed by time alone (a background job).

        Connections of a process that died are dropped; an operator whose
        panels have been gone longer than the grace time is set offline, so a
        later reconnect does not bring them back online unasked; and the
        panels hear of every effective status that changed since last time.
        Every few seconds on a worker that serves chats: a few queries
        whatever the number of operators.

        :returns: The operators gone that long who still have active chats,
            for the caller to hand those on.
        """
        now = now or utcnow()
        stale = now - dt.timedelta(seconds=3 * self.setting("HEARTBEAT_SECONDS"))
        connection = self.models.connection
        self.session.execute(sa.delete(connection).where(connection.seen_at < stale))
        self.session.commit()
        staff = self._staff()
        presences = self._presences(staff, now)
        gone = {
            p.id for p in presences if p.status == "offline" and p.chosen != "offline"
        }
        if gone:
            self._persist_offline(gone)
            presences = [
                dataclasses.replace(p, chosen="offline") if p.id in gone else p
                for p in presences
            ]
        changed = [p.id for p in presences if self._told.get(p.id) != p.status]
        if changed:
            self._tell(presences, changed)
        return self._gone_with_chats(staff, now)

    def _gone_with_chats(self, staff: Staff, now: dt.datetime) -> list[int]:
        model = self.models.operator
        rows, live, load = staff
        loaded = {row.id for row in rows}
        # An operator made inactive with chats still open is not among rows.
        others = [id_ for id_ in load if id_ is not None and id_ not in loaded]
        if others:
            rows = [
                *rows,
                *self.session.execute(sa.select(model).where(model.id.in_(others)))
                .scalars()
                .all(),
            ]
        return [
            row.id
            for row in rows
            if load.get(row.id) and self._gone(row, live.get(row.id), now)
        ]

    def _persist_offline(self, operator_ids: t.Collection[int]) -> None:
        model = self.models.operator
        self.session.execute(
            sa.update(model)
            .where(model.id.in_(operator_ids), model.status != "offline")
            .values(status="offline", status_changed_at=utcnow())
        )
        self.session.commit()

    def set_status(self, operator_id: int, status: str) -> None:
        """Change what the operator chose: ``online``, ``away`` or ``offline``."""
        operator = self.row(self.models.operator, operator_id)
        if operator.status == status:
            return
        operator.status = status
        operator.status_changed_at = utcnow()
        self.session.commit()
        self.announce(operator_id)
        signals.send(signals.operator_status_changed, operator=operator, status=status)

    def announce(self, operator_id: int) -> None:
        """Tell every panel, and this operator's own tabs, who is there now."""
        self._tell(self.operators(), [operator_id])

    def _tell(
        self, operators: list[OperatorPresence], operator_ids: t.Iterable[int]
    ) -> None:
        """Tell every panel who is there (``operators``, just found), and
        each of ``operator_ids``'s tabs their own status."""
        self.forget_state()
        self._told = {o.id: o.status for o in operators}
        self.hub.publish(
            STAFF_CHANNEL,
            {
                "type": "presence",
                "operators": [o.public() for o in operators],
            },
        )
        by_id = {o.id: o for o in operators}
        for operator_id in operator_ids:
            mine = by_id.get(operator_id)
            chosen = (
                mine.chosen
                if mine is not None
                else self.row(self.models.operator, operator_id).status
            )
            self.hub.publish(
                operator_channel(operator_id),
                {
                    "type": "status",
                    "chosen": chosen,
                    "effective": mine.status if mine else "offline",
                },
            )

    def operators(self, now: dt.datetime | None = None) -> list[OperatorPresence]:
        """Every active operator with their effective status and load."""
        return self._presences(self._staff(), now or utcnow())

    def _staff(self) -> Staff:
        live = self._live_connections()
        load = self._active_chats()
        operator = self.models.operator
        rows = (
            self.session.execute(
                sa.select(operator).where(operator.is_active).order_by(operator.name)
            )
            .scalars()
            .all()
        )
        return Staff(list(rows), live, load)

    def _presences(self, staff: Staff, now: dt.datetime) -> list[OperatorPresence]:
        rows, live, load = staff
        return [
            OperatorPresence(
                id=row.id,
                name=row.name,
                status=self._effective(row, live.get(row.id), now),
                active_chats=load.get(row.id, 0),
                max_chats=row.max_chats,
                department_ids=tuple(d.id for d in row.departments),
                department_scope=access.scope(row),
                chosen=row.status,
            )
            for row in rows
        ]

    def _effective(
        self, operator: OperatorMixin, live_seen: dt.datetime | None, now: dt.datetime
    ) -> str:
        if operator.status == "offline":
            return "offline"
        if self._connected(live_seen, now):
            return operator.status
        return "offline" if self._gone(operator, live_seen, now) else "away"

    def _connected(self, live_seen: dt.datetime | None, now: dt.datetime) -> bool:
        """Whether a panel of the operator answers now."""
        stale = dt.timedelta(seconds=3 * self.setting("HEARTBEAT_SECONDS"))
        return live_seen is not None and live_seen >= now - stale

    def _gone(
        self, operator: OperatorMixin, live_seen: dt.datetime | None, now: dt.datetime
    ) -> bool:
        """Whether the operator's panels have been gone past the grace time."""
        if self._connected(live_seen, now):
            return False
        grace = dt.timedelta(seconds=self.setting("PRESENCE_GRACE_SECONDS"))
        last = max(filter(None, (operator.last_seen_at, live_seen)), default=None)
        return last is None or last < now - grace

    def _live_connections(self) -> dict[int, dt.datetime]:
        model = self.models.connection
        query = sa.select(model.operator_id, sa.func.max(model.seen_at)).group_by(
            model.operator_id
        )
        return {
            operator_id: self._aware(seen)
            for operator_id, seen in self.session.execute(query)
        }

    @staticmethod
    def _aware(moment: dt.datetime) -> dt.datetime:
        # An aggregate bypasses the column type, so SQLite hands back naive UTC.
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)

    def _active_chats(self) -> dict[int | None, int]:
        model = self.models.conversation
        query = (
            sa.select(model.operator_id, sa.func.count())
            .where(model.status == "active")
            .group_by(model.operator_id)
        )
        # Not dict(result): a Result has keys() and would be read as a mapping.
        return {
            operator_id: count for operator_id, count in self.session.execute(query)
        }

    def widget_state(self, department_id: int | None = None) -> WidgetState:
        """What the widget should show, reused for a second within a process."""
        return self.remember(
            ("state", department_id), lambda: self._compute_state(department_id)
        )

    def remember(self, key: t.Hashable, build: t.Callable[[], Built]) -> Built:
        """Something made from the widget state, kept as long as the state is.

        Every presence change in this process forgets it at once; changes in
        other processes show within :data:`STATE_CACHE_SECONDS`.
        """
        with self._cache_lock:
            cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            # Each key is built by one caller, so it holds what it built.
            return t.cast(Built, cached[1])
        value = build()
        with self._cache_lock:
            self._cache[key] = (time.monotonic() + STATE_CACHE_SECONDS, value)
        return value

    def forget_state(self) -> None:
        with self._cache_lock:
            self._cache.clear()

    def _compute_state(self, department_id: int | None) -> WidgetState:
        serving = [o for o in self.operators() if access.serves(o, department_id)]
        online = [o for o in serving if o.status == "online"]
        if any(not o.busy for o in online):
            state = "online"
        elif online:
            state = "busy"
        elif any(o.status == "away" for o in serving):
            state = "away"
        else:
            state = "offline"
        model = self.models.conversation
        queued = self.session.execute(
            sa.select(sa.func.count()).where(model.status == "queued")
        ).scalar_one()
        return WidgetState(state=state, queued=queued)
