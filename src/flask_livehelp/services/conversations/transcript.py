"""Writing into a conversation's transcript.

Every stored message gets the next sequence number of its conversation, and
a message's client-made id is unique within the conversation, so a resend
finds the stored message instead of writing a second one.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ...errors import Refused
from ...i18n import N_
from ...models import ConversationMixin
from ...models import MessageMixin
from ...models import OperatorMixin
from ...models import utcnow
from .announcing import Announcer


class TranscriptWriter(Announcer):
    """Messages and events added to a transcript; the caller commits."""

    def add_event(
        self,
        conversation: ConversationMixin,
        name: str,
        *,
        staff_only: bool = False,
        operator: OperatorMixin | None = None,
        **data: object,
    ) -> MessageMixin:
        """Write an event (``accepted``, ``pushed``...) into the transcript.

        The caller commits, then publishes it with :meth:`publish`.
        """
        if operator is not None:
            data["operator"] = operator.name
        return self._append(
            conversation, "system", name, kind="event", data=data, staff_only=staff_only
        )

    def _open_with(
        self, conversation: ConversationMixin, body: str, client_id: str
    ) -> MessageMixin:
        """Store a new conversation with the visitor's first words as message 1.

        :raises Refused: The visitor has an open chat already (one open chat
            per visitor is a unique index).
        """
        self.session.add(conversation)
        try:
            self.session.flush()
        except IntegrityError:
            # Another tab of the visitor started one a moment ago.
            self.session.rollback()
            raise Refused(
                "already-open", N_("You already have a chat going on.")
            ) from None
        visitor = conversation.visitor
        # What they tell us here is also who they are in the visitor list.
        visitor.name = conversation.visitor_name or visitor.name
        visitor.email = conversation.visitor_email or visitor.email
        return self._append(conversation, "visitor", body, client_id=client_id)

    def _append(
        self,
        conversation: ConversationMixin,
        author: str,
        body: str,
        *,
        kind: str = "text",
        client_id: str | None = None,
        operator: OperatorMixin | None = None,
        data: dict[str, object] | None = None,
        staff_only: bool = False,
    ) -> MessageMixin:
        now = utcnow()
        message = self.models.message(
            conversation_id=conversation.id,
            seq=self._next_seq(conversation),
            client_id=client_id,
            author=author,
            author_name=self._author_name(conversation, author, operator),
            operator_id=operator.id if operator is not None else None,
            kind=kind,
            body=body,
            data=data or None,
            staff_only=staff_only,
            created_at=now,
        )
        self.session.add(message)
        if kind == "text":
            self._note_activity(conversation, author, now)
        return message

    @staticmethod
    def _author_name(
        conversation: ConversationMixin, author: str, operator: OperatorMixin | None
    ) -> str | None:
        if operator is not None:
            return operator.name
        if author == "visitor":
            return conversation.visitor_name
        return None

    @staticmethod
    def _note_activity(
        conversation: ConversationMixin, author: str, now: dt.datetime
    ) -> None:
        if author == "visitor":
            conversation.last_visitor_message_at = now
        elif author == "operator":
            conversation.last_operator_message_at = now
            if conversation.first_response_at is None:
                conversation.first_response_at = now

    def _next_seq(self, conversation: ConversationMixin) -> int:
        # An UPDATE takes the row's write lock until commit, so concurrent
        # writers to one conversation get consecutive numbers on SQLite and
        # PostgreSQL alike.
        model = self.models.conversation
        seq = self.session.execute(
            sa.update(model)
            .where(model.id == conversation.id)
            .values(last_seq=model.last_seq + 1)
            .returning(model.last_seq)
            .execution_options(synchronize_session=False)
        ).scalar_one()
        self.session.expire(conversation, ["last_seq"])
        return seq
