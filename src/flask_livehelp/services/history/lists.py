"""Finding chats again: the history lists, their filters and their scope."""

from __future__ import annotations

import collections.abc as c
import datetime as dt
import typing as t

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm

from ...errors import NotAllowed
from ...errors import Refused
from ...formatting import time_zone
from ...i18n import N_
from ...models import CONVERSATION_STATUSES
from ...models import ConversationMixin
from ...models import OperatorMixin
from ...models import utcnow
from .. import access
from .filters import HistoryFilter
from .filters import HistoryPage
from .filters import HistoryRow
from .filters import SORTS
from .filters import VIEWS
from .full_text import FullTextSearch
from .sorting import HistorySorting
from .sorting import Listing


class HistoryLists(FullTextSearch, HistorySorting):
    """Pages of the chats a filter finds, within what the viewer may see."""

    def check(self, viewer: OperatorMixin, query: HistoryFilter) -> None:
        """Refuse a filter the viewer may not use, rather than show less.

        :raises NotAllowed: ``all`` for an operator, or a department or
            colleague outside the viewer's view.
        :raises Refused: An unknown view, status or sort.
        """
        if query.view not in VIEWS:
            raise Refused("bad-view", N_("Unknown list."))
        if query.sort not in SORTS:
            raise Refused("bad-sort", N_("Unknown sort order."))
        if query.status is not None and query.status not in CONVERSATION_STATUSES:
            raise Refused("bad-status", N_("Unknown status."))
        if query.view == "all" and not access.has_role(viewer, "manager"):
            raise NotAllowed(
                "not-allowed", N_("Only managers and admins see all chats.")
            )
        if query.department_id is not None and not access.oversees(
            viewer, query.department_id
        ):
            raise NotAllowed(
                "not-allowed", N_("You may not see the chats of this department.")
            )
        if (
            query.operator_id is not None
            and query.operator_id != viewer.id
            and not access.has_role(viewer, "manager")
        ):
            raise NotAllowed(
                "not-allowed", N_("You may not see the chats of other operators.")
            )
        if query.date_from and query.date_to and query.date_from > query.date_to:
            raise Refused("bad-dates", N_("The first day is after the last day."))

    def search(
        self,
        viewer: OperatorMixin,
        query: HistoryFilter,
        *,
        page: int = 1,
        per_page: int = 50,
        timezone: str | None = None,
        now: dt.datetime | None = None,
    ) -> HistoryPage:
        """One page of the chats ``query`` finds for ``viewer``.

        :param timezone: The viewer's, for the days of the date range.
        """
        self.check(viewer, query)
        now = now or utcnow()
        page = max(page, 1)
        select, counted = self._select(viewer, query, timezone, now)
        select = select.offset((page - 1) * per_page).limit(per_page)
        results = self.session.execute(select).all()
        if counted and (results or page == 1):
            total = (results[0][1] or 0) if results else 0
        else:
            total = self._count(viewer, query, timezone)
        rows = [self._row(result[0], now) for result in results]
        return HistoryPage(rows=rows, total=total, page=page, per_page=per_page)

    def each(
        self,
        viewer: OperatorMixin,
        query: HistoryFilter,
        *,
        timezone: str | None = None,
        now: dt.datetime | None = None,
        chunk: int = 1000,
    ) -> c.Iterator[HistoryRow]:
        """Every chat ``query`` finds, in its order, read a chunk at a time."""
        self.check(viewer, query)
        select, _ = self._select(viewer, query, timezone, now or utcnow())
        return self._chunks(select, now or utcnow(), chunk)

    def _chunks(
        self, select: Listing, now: dt.datetime, chunk: int
    ) -> c.Iterator[HistoryRow]:
        offset = 0
        while True:
            results = self.session.execute(select.offset(offset).limit(chunk)).all()
            for result in results:
                yield self._row(result[0], now)
                # Rows already written need not stay in memory.
                self.session.expunge(result[0])
            if len(results) < chunk:
                return
            offset += chunk

    def _count(
        self, viewer: OperatorMixin, query: HistoryFilter, timezone: str | None
    ) -> int:
        model = self.models.conversation
        where = self._where(viewer, query, timezone)
        select = sa.select(sa.func.count()).select_from(model).where(*where)
        if query.words():
            hits = self._hits(query.words())
            select = select.join(hits, hits.c.conversation_id == model.id)
        return int(self.session.execute(select).scalar_one())

    def _select(
        self,
        viewer: OperatorMixin,
        query: HistoryFilter,
        timezone: str | None,
        now: dt.datetime,
    ) -> tuple[Listing, bool]:
        """The ordered query, and whether it carries the total in column 2.

        A search counts its hits in the same statement (a window), so the
        messages are scanned once, not twice.
        """
        model = self.models.conversation
        counted = bool(query.words())
        total = sa.func.count().over() if counted else sa.literal(None)
        select = (
            sa.select(model, total)
            .where(*self._where(viewer, query, timezone))
            .options(
                sa_orm.selectinload(model.operator),
                sa_orm.selectinload(model.department),
            )
        )
        if counted:
            hits = self._hits(query.words())
            select = select.join(hits, hits.c.conversation_id == model.id)
        select, key = self._sort_key(select, query.sort, now)
        tie = self._last_activity()
        if query.descending:
            order = [key.desc().nulls_last(), tie.asc(), model.id.desc()]
        else:
            # Ties go from least to most idle, as the sorted column goes.
            order = [key.asc().nulls_last(), tie.desc(), model.id.asc()]
        return select.order_by(*order), counted

    def _where(
        self, viewer: OperatorMixin, query: HistoryFilter, timezone: str | None
    ) -> list[sa.ColumnElement[bool]]:
        model = self.models.conversation
        where = [self._scope(viewer, query.view)]
        if query.status is not None:
            where.append(model.status == query.status)
        if query.operator_id is not None:
            where.append(model.operator_id == query.operator_id)
        if query.department_id is not None:
            where.append(model.department_id == query.department_id)
        if query.tag:
            where.append(self._tagged(query.tag))
        zone = time_zone(timezone)
        if query.date_from is not None:
            where.append(model.created_at >= start_of_day(query.date_from, zone))
        if query.date_to is not None:
            next_day = query.date_to + dt.timedelta(days=1)
            where.append(model.created_at < start_of_day(next_day, zone))
        return where

    def _scope(self, viewer: OperatorMixin, view: str) -> sa.ColumnElement[bool]:
        model = self.models.conversation
        alive = model.deleted_at.is_(None)
        if view == "active":
            return sa.and_(
                alive, model.status == "active", model.operator_id == viewer.id
            )
        if view == "completed":
            return sa.and_(
                alive,
                model.status.in_(("ended", "missed")),
                self._took_part(viewer),
            )
        visible = access.visible_clause(viewer, model)
        if viewer.role == "admin":
            return visible
        return sa.or_(visible, sa.and_(alive, self._took_part(viewer)))

    def _took_part(self, viewer: OperatorMixin) -> sa.ColumnElement[bool]:
        """Chats the viewer has, or handed to a colleague."""
        model, transfer = self.models.conversation, self.models.transfer
        handed_over = sa.select(transfer.conversation_id).where(
            transfer.from_operator_id == viewer.id, transfer.status == "accepted"
        )
        return sa.or_(model.operator_id == viewer.id, model.id.in_(handed_over))

    def _tagged(self, name: str) -> sa.ColumnElement[bool]:
        model, tag = self.models.conversation, self.models.tag
        links = self.models.conversation_tags
        return sa.exists(
            sa.select(1)
            .select_from(links.join(tag, tag.id == links.c.tag_id))
            .where(links.c.conversation_id == model.id, tag.name == name)
        )

    @staticmethod
    def _row(conversation: ConversationMixin, now: dt.datetime) -> HistoryRow:
        end = conversation.ended_at or now
        idle = None
        if conversation.status == "active":
            moments = (
                conversation.created_at,
                conversation.accepted_at,
                conversation.last_visitor_message_at,
                conversation.last_operator_message_at,
            )
            idle = now - max(m for m in moments if m is not None)
        return HistoryRow(conversation, end - conversation.created_at, idle)


def start_of_day(day: dt.date, zone: dt.tzinfo) -> dt.datetime:
    """Midnight of ``day`` in ``zone``, as an aware datetime."""
    naive = dt.datetime.combine(day, dt.time())
    localize = getattr(zone, "localize", None)
    if localize is not None:
        return t.cast(dt.datetime, localize(naive))
    return naive.replace(tzinfo=zone)
