"""Conversations and messages that come and go by mail."""

from __future__ import annotations

from ... import signals
from ...hub import conversation_channel
from ...hub import STAFF_CHANNEL
from ...models import ConversationMixin
from ...models import MessageMixin
from ...models import OperatorMixin
from ...protocol import message_frame
from .transcript import TranscriptWriter


class MailTranscript(TranscriptWriter):
    """Offline messages, and messages that came or went by mail."""

    # Mail: offline messages, and what comes and goes by mail (services/offline/
    # and services/inbound.py). These do not commit: the caller commits the
    # message together with the mails it causes.

    def add_offline(
        self,
        visitor_id: int,
        *,
        client_id: str,
        body: str,
        name: str | None,
        email: str | None,
        consent: bool,
        page: str | None,
        locale: str | None,
        department_id: int | None,
        reply_token: str,
    ) -> tuple[ConversationMixin, MessageMixin]:
        """A conversation no operator took, with the visitor's text as message 1."""
        conversation = self.models.conversation(
            visitor_id=visitor_id,
            status="missed",
            origin="offline",
            visitor_name=name,
            visitor_email=email,
            email_consent=bool(email) and consent,
            page_url=page,
            locale=locale,
            department_id=department_id,
            reply_token=reply_token,
            last_seq=0,
        )
        message = self._open_with(conversation, body, client_id)
        return conversation, message

    def append_by_mail(
        self,
        conversation: ConversationMixin,
        author: str,
        body: str,
        *,
        client_id: str | None = None,
        operator: OperatorMixin | None = None,
        author_name: str | None = None,
        data: dict[str, object] | None = None,
    ) -> MessageMixin:
        """Add a message that came or went by mail, whatever the chat's status."""
        message = self._append(
            conversation,
            author,
            body,
            client_id=client_id,
            operator=operator,
            data=data,
        )
        message.via = "email"
        if author_name:
            message.author_name = author_name[:120]
        return message

    def announce_by_mail(
        self, conversation: ConversationMixin, message: MessageMixin, change: str
    ) -> None:
        """After the commit: show a message that came or went by mail everywhere."""
        frame = message_frame(message)
        frame["via"] = message.via
        self.hub.publish(conversation_channel(conversation.id), frame)
        self.hub.publish(STAFF_CHANNEL, self.staff_frame(conversation, change))
        signals.send(signals.message_posted, conversation=conversation, message=message)
