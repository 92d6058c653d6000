"""Mailing a conversation's transcript."""

from __future__ import annotations

import typing as t

from ...errors import Refused
from ...i18n import N_
from ...models import MailMixin
from ...models import OperatorMixin
from .composing import MailComposing
from .fields import clean_email
from .fields import new_token


class Transcripts(MailComposing):
    """A transcript for the customer, in their language, or a staff copy."""

    def queue_transcript(
        self,
        conversation_id: int,
        recipient: str,
        *,
        requested_by: OperatorMixin | t.Literal["visitor"],
    ) -> MailMixin:
        """Mail the transcript to ``recipient``, which the caller has checked.

        :param recipient: The customer's address on file, or the operator's own.
            The customer's copy is in their language and leaves out staff-only
            notes; any other is a staff copy, in the staff language.
        :param requested_by: ``"visitor"``, or the operator who asked.
        :raises Refused: Too many transcripts of this conversation (or this
            visitor's) this hour.
        """
        conversation = self.conversations.get(conversation_id)
        recipient = clean_email(recipient) or ""
        if not recipient:
            raise Refused("no-email", N_("There is no e-mail address to send it to."))
        self._check_transcript_rate(conversation, requested_by)
        staff = recipient.lower() != (conversation.visitor_email or "").lower()
        if not staff:
            self._within_mail_budget(conversation, refuse=True)
        if staff:
            lang = self.mail.locale(getattr(requested_by, "locale", None), staff=True)
            reply_to = None
            headers = {"Auto-Submitted": "auto-generated"}
        else:
            lang = self.mail.locale(conversation.locale, staff=False)
            if conversation.reply_token is None:
                conversation.reply_token = new_token()
            reply_to = self._customer_reply_to(conversation)
            headers = self._thread_headers(conversation, automatic=True)
        messages = self.conversations.messages_after(
            conversation.id, 0, None, staff=staff
        )
        context = self._context(conversation, messages, customer=not staff)
        # A staff copy's replies would go nowhere useful: no reply line.
        context["replies_thread"] = context["replies_thread"] and not staff
        rendered = self.mail.render("transcript", lang, **context)
        mail = self.mail.queue(
            "transcript",
            [recipient],
            rendered.subject,
            rendered.text,
            rendered.html,
            reply_to=reply_to,
            headers=headers,
            conversation_id=conversation.id,
        )
        self.session.commit()
        self.mail.send_soon([mail])
        return mail
