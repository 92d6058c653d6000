"""The outbox as managers and admins see it, and sending a mail again."""

from __future__ import annotations

import sqlalchemy as sa

from ...errors import Refused
from ...i18n import N_
from ...models import MailMixin
from ...models import utcnow
from .. import Service


class MailOutbox(Service):
    """Failed and waiting mails, counted and listed."""

    def problems(
        self, limit: int = 100, visible: sa.ColumnElement[bool] | None = None
    ) -> list[MailMixin]:
        """Failed mails, then every mail not sent yet, the oldest first.

        A mail waiting for its first try is listed too: a send-now is what
        it may need (its sender is stuck, or mail is not set up yet).

        :param visible: Only the mails this condition allows
            (:func:`~flask_livehelp.services.access.mail_clause`).
        """
        model = self.models.mail
        seen = sa.true() if visible is None else visible
        failed = sa.select(model).where(model.status == "failed", seen)
        waiting = sa.select(model).where(model.status.in_(("pending", "sending")), seen)
        rows = [
            *self.session.execute(failed.order_by(model.id.desc()).limit(limit)),
            *self.session.execute(waiting.order_by(model.id).limit(limit)),
        ]
        return [row[0] for row in rows]

    def counts(self, visible: sa.ColumnElement[bool] | None = None) -> dict[str, int]:
        model = self.models.mail
        query = sa.select(model.status, sa.func.count()).group_by(model.status)
        if visible is not None:
            query = query.where(visible)
        rows = self.session.execute(query).all()
        return {status: count for status, count in rows}

    def allows(self, mail_id: int, visible: sa.ColumnElement[bool]) -> bool:
        """Whether the mail exists and the condition lets one see it."""
        model = self.models.mail
        found = self.session.execute(
            sa.select(model.id).where(model.id == mail_id, visible)
        ).scalar_one_or_none()
        return found is not None

    def for_conversation(self, conversation_id: int) -> list[MailMixin]:
        model = self.models.mail
        query = (
            sa.select(model)
            .where(model.conversation_id == conversation_id)
            .order_by(model.id)
        )
        return list(self.session.execute(query).scalars())

    def retry(self, mail_id: int) -> MailMixin:
        """Send a mail now: a failed one from the start (after an admin fixed the
        cause), a waiting one without waiting, a claimed one whatever holds it."""
        mail = self.session.get(self.models.mail, mail_id)
        if mail is None or mail.status == "sent":
            raise Refused("not-failed", N_("Only a failed mail can be sent again."))
        if mail.status == "failed":
            mail.status = "pending"
            mail.attempts = 0
        mail.next_attempt_at = utcnow()
        mail.claimed_until = mail.claimed_by = mail.claimed_at = None
        self.session.commit()
        return mail
