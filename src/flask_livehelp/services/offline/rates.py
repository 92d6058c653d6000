"""How many offline messages, transcripts and copies may go out, an hour."""

from __future__ import annotations

import datetime as dt
import logging
import typing as t

import sqlalchemy as sa

from ...errors import Refused
from ...i18n import N_
from ...models import ConversationMixin
from ...models import OperatorMixin
from ...models import utcnow
from ...models import VisitorMixin
from .base import OfflineBase

log = logging.getLogger(__name__)

HOUR = dt.timedelta(hours=1)


#: Too many offline messages, or mails to customers, in an hour.
TOO_MANY = N_(
    "You have sent many messages in a short time. Please wait an hour and try again."
)


class RateChecks(OfflineBase):
    """Limits per visitor, IP address and e-mail address, refused with ``too-many``."""

    def _check_rate(
        self, visitor: VisitorMixin | None, ip_address: str | None, email: str | None
    ) -> None:
        c, v = self.models.conversation, self.models.visitor
        checks = []
        if visitor is not None:
            checks.append(c.visitor_id == visitor.id)
        if ip_address:
            checks.append(v.ip_address == ip_address)
        if email:
            # One inbox cannot be flooded with copies from many visitors.
            checks.append(sa.func.lower(c.visitor_email) == email.lower())
        limit = self.setting("OFFLINE_PER_HOUR")
        for check in checks:
            count = self.session.execute(
                sa.select(sa.func.count())
                .select_from(c)
                .join(v, v.id == c.visitor_id)
                .where(c.origin == "offline", c.created_at >= utcnow() - HOUR, check)
            ).scalar_one()
            if count >= limit:
                raise Refused("too-many", TOO_MANY, status=429)

    def _check_transcript_rate(
        self,
        conversation: ConversationMixin,
        requested_by: OperatorMixin | t.Literal["visitor"],
    ) -> None:
        mail, c, v = self.models.mail, self.models.conversation, self.models.visitor
        checks = [mail.conversation_id == conversation.id]
        if requested_by == "visitor":
            checks.append(c.visitor_id == conversation.visitor_id)
            ip_address = conversation.visitor.ip_address
            if ip_address:
                checks.append(v.ip_address == ip_address)
        limit = self.setting("TRANSCRIPTS_PER_HOUR")
        for check in checks:
            count = self.session.execute(
                sa.select(sa.func.count())
                .select_from(mail)
                .join(c, c.id == mail.conversation_id)
                .join(v, v.id == c.visitor_id)
                .where(mail.kind == "transcript", mail.created_at >= utcnow() - HOUR)
                .where(check)
            ).scalar_one()
            if count >= limit:
                raise Refused(
                    "too-many",
                    N_("The transcript was sent recently. Try again later."),
                    status=429,
                )

    def _within_mail_budget(
        self, conversation: ConversationMixin, *, refuse: bool
    ) -> bool:
        """Whether the customer's address may get one more mail we send unasked
        by staff (a copy, a transcript they asked for).

        Anybody can type anybody's address: every such mail counts against
        one budget per address and per the visitor's IP address, an hour, in
        every process, however it was asked for (the offline form, a chat
        start that timed out, a contact after a time-out, a transcript).

        :raises Refused: Past the budget, with ``refuse``.
        """
        if not conversation.visitor_email:
            return True
        limit = self.setting("OFFLINE_PER_HOUR")
        visitor = conversation.visitor
        senders = (
            conversation.visitor_email.lower(),
            visitor.ip_address if visitor is not None else None,
        )
        if all(
            self.limits.allow("mail-to-customer", who, limit, 3600) for who in senders
        ):
            return True
        if refuse:
            raise Refused("too-many", TOO_MANY, status=429)
        log.warning(
            "No copy of conversation %s to the address given: past its mail budget.",
            conversation.id,
        )
        return False
