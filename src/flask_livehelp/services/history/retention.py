"""The retention: finished chats deleted for good after so many days."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from ...errors import Refused
from ...i18n import N_
from ...models import utcnow
from .. import access
from .base import HistoryBase

#: How many chats one purge deletes per transaction.
PURGE_CHUNK = 500


class Retention(HistoryBase):
    """The purge, a chunk of chats per transaction."""

    def purge(self, days: int | None = None, *, now: dt.datetime | None = None) -> int:
        """Delete finished chats older than ``days`` for good, with their messages.

        :param days: Defaults to the ``HISTORY_RETENTION_DAYS`` setting; if
            that is ``None`` too, nothing is deleted.
        :returns: How many chats were deleted.
        """
        if days is None:
            days = self.settings.get("HISTORY_RETENTION_DAYS")
        if days is None:
            return 0
        if days < 1:
            raise Refused("bad-days", N_("Keep chats for at least one day."))
        cutoff = (now or utcnow()) - dt.timedelta(days=days)
        model = self.models.conversation
        old = (
            sa.select(model.id)
            .where(
                model.status.not_in(access.OPEN),
                sa.func.coalesce(model.ended_at, model.created_at) < cutoff,
            )
            .limit(PURGE_CHUNK)
        )
        deleted = 0
        while ids := list(self.session.execute(old).scalars()):
            self._delete_for_good(ids)
            deleted += len(ids)
        self._forget_visitors(cutoff)
        return deleted

    def _delete_for_good(self, ids: list[int]) -> None:
        # Explicit deletes: SQLite enforces no foreign keys unless told to.
        models = self.models
        links = models.conversation_tags
        self.session.execute(
            sa.update(models.mail)
            .where(models.mail.conversation_id.in_(ids))
            .values(conversation_id=None)
        )
        for table, column in (
            (models.message, models.message.conversation_id),
            (models.transfer, models.transfer.conversation_id),
        ):
            self.session.execute(sa.delete(table).where(column.in_(ids)))
        self.session.execute(sa.delete(links).where(links.c.conversation_id.in_(ids)))
        model = models.conversation
        self.session.execute(sa.delete(model).where(model.id.in_(ids)))
        self.session.commit()

    def _forget_visitors(self, cutoff: dt.datetime) -> None:
        """Visitors not seen since ``cutoff`` who have no chats left."""
        visitor, model = self.models.visitor, self.models.conversation
        self.session.execute(
            sa.delete(visitor).where(
                visitor.last_seen_at < cutoff,
                ~sa.exists(sa.select(1).where(model.visitor_id == visitor.id)),
            )
        )
        self.session.commit()
