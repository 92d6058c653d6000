"""A chat nobody took in time, mailed as an offline message."""

from __future__ import annotations

from ... import signals
from ...hub import STAFF_CHANNEL
from ...models import ConversationMixin
from ...models import MailMixin
from ...models import MessageMixin
from .composing import MailComposing
from .fields import clean_email
from .fields import clean_name
from .fields import new_token


class TimedOutChats(MailComposing):
    """Mailing a missed chat, and the customer's address given after it."""

    def mail_timed_out(self, conversation_id: int) -> list[MailMixin]:
        """Mail a chat that timed out in the queue as an offline message, once.

        The caller has already marked it missed. Returns the mails queued.
        """
        conversation = self.conversations.get(conversation_id)
        if self._mails_of(conversation.id, "offline"):
            return []
        if conversation.reply_token is None:
            conversation.reply_token = new_token()
        messages = [
            m
            for m in self.conversations.messages_after(conversation.id, 0, None)
            if m.kind == "text" and m.author == "visitor"
        ]
        mails = self._queue_offline(conversation, messages, timed_out=True)
        self.session.commit()
        self.hub.publish(
            STAFF_CHANNEL, self.conversations.staff_frame(conversation, "offline")
        )
        signals.send(
            signals.offline_message_received,
            conversation=conversation,
            message=messages[0] if messages else None,
        )
        self.mail.send_soon(mails)
        return mails

    def add_contact(
        self, conversation_id: int, *, email: str, name: str | None = None
    ) -> ConversationMixin:
        """The customer of a missed chat says where to answer; they get their copy.

        The copy goes once per conversation, however often this is called.
        """
        conversation = self.conversations.get(conversation_id)
        conversation.visitor_email = clean_email(email)
        cleaned = clean_name(name, self.setting("MAX_NAME_LENGTH"))
        conversation.visitor_name = cleaned or conversation.visitor_name
        if conversation.reply_token is None:
            conversation.reply_token = new_token()
        mails = []
        if not self._mails_of(conversation.id, "copy"):
            self._within_mail_budget(conversation, refuse=True)
            messages = self._visitor_texts(conversation.id)
            mails = self._queue_customer(
                conversation, "offline_copy", "copy", messages, timed_out=True
            )
        self.session.commit()
        self.mail.send_soon(mails)
        return conversation

    def _visitor_texts(self, conversation_id: int) -> list[MessageMixin]:
        return [
            m
            for m in self.conversations.messages_after(conversation_id, 0, None)
            if m.kind == "text" and m.author == "visitor"
        ]

    def _mails_of(self, conversation_id: int, kind: str) -> list[MailMixin]:
        return [
            mail
            for mail in self.mail.for_conversation(conversation_id)
            if mail.kind == kind
        ]
