"""The staff answering an offline message by mail, and replies passed on."""

from __future__ import annotations

from ...errors import NotAllowed
from ...errors import Refused
from ...i18n import N_
from ...models import ConversationMixin
from ...models import MailMixin
from ...models import MessageMixin
from ...models import OperatorMixin
from ...models import utcnow
from .. import access
from .composing import MailComposing
from .fields import new_token


class MailAnswers(MailComposing):
    """Answers from the panel, and mailed replies passed on to the other side."""

    def answer(
        self,
        operator: OperatorMixin,
        conversation_id: int,
        body: str,
        *,
        client_id: str | None = None,
    ) -> MessageMixin:
        """An operator answers by mail from the panel; it joins the transcript.

        :param client_id: The form's id, so a double click mails once.
        :raises Refused: The customer gave no e-mail address, or the text is bad.
        """
        conversation = self.conversations.get(conversation_id)
        if not access.can_answer(operator, conversation):
            raise NotAllowed("not-allowed", N_("You may not answer this message."))
        if client_id is not None:
            earlier = self.conversations.by_client_id(conversation.id, client_id)
            if earlier is not None:
                return earlier
        if not conversation.visitor_email:
            raise Refused(
                "no-email",
                N_("The customer left no e-mail address, so no answer can be mailed."),
            )
        body = self.clean_body(body)
        if conversation.reply_token is None:
            conversation.reply_token = new_token()
        message = self.conversations.append_by_mail(
            conversation, "operator", body, client_id=client_id, operator=operator
        )
        conversation.answered_at = utcnow()
        mails = self.queue_answer(conversation, message)
        self.session.commit()
        self.conversations.announce_by_mail(conversation, message, "answered")
        self.mail.send_soon(mails)
        return message

    def queue_answer(
        self, conversation: ConversationMixin, message: MessageMixin
    ) -> list[MailMixin]:
        """Mail the staff's ``message`` to the customer, in the caller's transaction."""
        earlier = [
            m
            for m in self.conversations.messages_after(conversation.id, 0, None)
            if m.kind == "text" and m.seq < (message.seq or 0)
        ]
        return self._queue_customer(
            conversation, "answer", "answer", earlier, answer=message
        )

    def queue_reply_to_staff(
        self, conversation: ConversationMixin, message: MessageMixin
    ) -> list[MailMixin]:
        """Pass the customer's mailed reply on to the staff (caller commits)."""
        return self._queue_staff(conversation, "reply", "reply", [message])
