"""The sort orders of the history lists."""

from __future__ import annotations

import datetime as dt
import typing as t

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm

from ...models import ConversationMixin
from .base import HistoryBase

#: A history list's query: the conversations, and their total when counted.
Listing: t.TypeAlias = sa.Select[ConversationMixin, int | None]
#: A value computed in the database: text, a number or a time, by sort key.
Computed: t.TypeAlias = sa.ColumnElement[t.Any] | sa_orm.InstrumentedAttribute[t.Any]


class HistorySorting(HistoryBase):
    """Sort keys computed in the database, portable between dialects."""

    def _sort_key(
        self, select: Listing, sort: str, now: dt.datetime
    ) -> tuple[Listing, Computed]:
        model = self.models.conversation
        if sort == "customer":
            return select, sa.func.lower(model.visitor_name)
        if sort == "email":
            return select, sa.func.lower(model.visitor_email)
        if sort == "operator":
            operator = sa_orm.aliased(self.models.operator)
            select = select.outerjoin(operator, operator.id == model.operator_id)
            return select, sa.func.lower(operator.name)
        if sort == "department":
            department = sa_orm.aliased(self.models.department)
            select = select.outerjoin(department, department.id == model.department_id)
            return select, sa.func.lower(department.name)
        if sort == "duration":
            end = sa.func.coalesce(model.ended_at, sa.literal(now, model.ended_at.type))
            return select, self._seconds_between(model.created_at, end)
        if sort == "idle":
            # Most idle = longest since the last activity.
            return select, self._idle(now)
        if sort == "tags":
            tag, links = self.models.tag, self.models.conversation_tags
            first = (
                sa.select(sa.func.min(sa.func.lower(tag.name)))
                .select_from(links.join(tag, tag.id == links.c.tag_id))
                .where(links.c.conversation_id == model.id)
                .scalar_subquery()
            )
            return select, first
        if sort == "status":
            return select, model.status
        return select, model.created_at

    def _last_activity(self) -> Computed:
        """When something last happened in a chat (said, accepted or started)."""
        model = self.models.conversation
        moments = [
            sa.func.coalesce(column, model.created_at)
            for column in (
                model.last_visitor_message_at,
                model.last_operator_message_at,
                model.accepted_at,
            )
        ]
        if self._dialect() == "postgresql":
            return sa.func.greatest(model.created_at, *moments)
        # SQLite's max() with several arguments is the largest of them.
        return sa.func.max(model.created_at, *moments)

    def _idle(self, now: dt.datetime) -> Computed:
        model = self.models.conversation
        return self._seconds_between(
            self._last_activity(), sa.literal(now, model.created_at.type)
        )

    def _seconds_between(self, earlier: Computed, later: Computed) -> Computed:
        if self._dialect() == "postgresql":
            return sa.extract("epoch", later - earlier)
        return (sa.func.julianday(later) - sa.func.julianday(earlier)) * 86400
