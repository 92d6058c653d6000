"""The offline form: a message stored, mailed, and never twice."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import secrets

import sqlalchemy as sa

from ... import signals
from ...errors import Refused
from ...formatting import valid_timezone
from ...hub import STAFF_CHANNEL
from ...i18n import N_
from ...models import ConversationMixin
from ...models import MessageMixin
from ...models import utcnow
from ...models import VisitorMixin
from ...protocol import CLIENT_ID
from .composing import MailComposing
from .fields import clean_email
from .fields import clean_name
from .fields import new_token

log = logging.getLogger(__name__)

MAX_PAGE_LENGTH = 2000
#: How long a resend of the same message is recognised without a visitor token.
RESEND_WINDOW = dt.timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class Submission:
    """What the offline form gets back."""

    #: ``None`` for a message dropped as spam (told apart from a real one to
    #: nobody: a bot would learn to leave the field empty).
    conversation_id: int | None
    #: False when this was a resend of a message already stored.
    created: bool
    #: The new visitor's token, when the form came without one.
    token: str | None = None
    #: The customer's address, when mail can go out to it: the shop answers
    #: there, and a copy is on its way.
    answered_at: str | None = None


class OfflineSubmission(MailComposing):
    """Submitting the offline form."""

    def submit(
        self,
        *,
        # None when the form left them out: refused here, with the reason.
        client_id: str | None,
        body: str | None,
        name: str | None = None,
        email: str | None = None,
        consent: bool = False,
        page: str | None = None,
        department_id: int | None = None,
        honeypot: str | None = None,
        visitor_token: str | None = None,
        ip_address: str | None = None,
        user_agent: str | None = None,
        locale: str | None = None,
        timezone: str | None = None,
    ) -> Submission:
        """Store an offline message and mail it; a resend stores and mails nothing.

        :param honeypot: The form's hidden field; people leave it empty, and a
            message with it filled is dropped as if it were stored.
        :param timezone: The browser's time zone, for the times in their mails;
            checked here, and left out if we do not know it.
        :raises Refused: A field is not valid (``bad-field``, ``bad-email``,
            ``too-long``), or too many messages came from this visitor,
            address or IP (``too-many``).
        """
        if honeypot:
            log.info("An offline message with the hidden field filled was dropped.")
            # A number and a token as a new visitor gets them; they open nothing.
            fake = None if visitor_token else secrets.token_urlsafe(32)
            return Submission(
                secrets.randbelow(10**6) + 1,
                created=False,
                token=fake,
                answered_at=email if email and self.mail.problem() is None else None,
            )
        if not isinstance(client_id, str) or not CLIENT_ID.fullmatch(client_id):
            raise Refused("bad-field", N_("The message id is not valid."))
        body = self.clean_body(body)
        name = clean_name(name, self.setting("MAX_NAME_LENGTH"))
        email = clean_email(email)
        self._check_department(department_id)
        visitor = self.visitors.from_token(visitor_token)
        earlier = self._resent(visitor, client_id, ip_address)
        if earlier is not None:
            mailed = earlier.visitor_email if self.mail.problem() is None else None
            return Submission(earlier.id, created=False, answered_at=mailed)
        self._check_rate(visitor, ip_address, email)
        token = None
        if visitor is None:
            visitor, token = self.visitors.create(
                ip_address=ip_address,
                user_agent=user_agent,
                locale=locale,
                page=page,
            )
        elif ip_address:
            # The latest address, so the limit per IP also counts this visitor.
            visitor.ip_address = ip_address
        visitor.timezone = valid_timezone(timezone) or visitor.timezone
        conversation, message = self.conversations.add_offline(
            visitor.id,
            client_id=client_id,
            body=body,
            name=name,
            email=email,
            consent=consent,
            page=(page or "")[:MAX_PAGE_LENGTH] or None,
            locale=locale,
            department_id=department_id,
            reply_token=new_token(),
        )
        mails = self._queue_offline(conversation, [message], timed_out=False)
        self.session.commit()
        self._announce(conversation, message)
        self.mail.send_soon(mails)
        mailed = email if email and self.mail.problem() is None else None
        return Submission(
            conversation.id, created=True, token=token, answered_at=mailed
        )

    def _check_department(self, department_id: int | None) -> None:
        if department_id is None:
            return
        department = self.session.get(self.models.department, department_id)
        if department is None or not department.is_active:
            raise Refused("bad-field", N_("There is no such department."))

    def _resent(
        self, visitor: VisitorMixin | None, client_id: str, ip_address: str | None
    ) -> ConversationMixin | None:
        """The conversation an earlier send of this very message made, if any."""
        if visitor is not None:
            message = self.conversations.by_visitor_client_id(visitor.id, client_id)
            if message is not None:
                return self.conversations.get(message.conversation_id)
        if not ip_address:
            return None
        # Without a token (the answer to the first send got lost), the same
        # random id from the same address is the same message.
        c, m, v = self.models.conversation, self.models.message, self.models.visitor
        query = (
            sa.select(c)
            .join(m, m.conversation_id == c.id)
            .join(v, v.id == c.visitor_id)
            .where(m.client_id == client_id, m.seq == 1, c.origin == "offline")
            .where(v.ip_address == ip_address)
            .where(c.created_at >= utcnow() - RESEND_WINDOW)
            .limit(1)
        )
        return self.session.execute(query).scalar_one_or_none()

    def _announce(self, conversation: ConversationMixin, message: MessageMixin) -> None:
        self.hub.publish(
            STAFF_CHANNEL, self.conversations.staff_frame(conversation, "offline")
        )
        signals.send(
            signals.offline_message_received, conversation=conversation, message=message
        )
