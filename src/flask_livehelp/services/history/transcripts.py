"""Reading one chat, and its transcript as text."""

from __future__ import annotations

import sqlalchemy as sa

from ...errors import NotAllowed
from ...errors import NotFound
from ...i18n import _lh
from ...i18n import N_
from ...models import ConversationMixin
from ...models import MessageMixin
from ...models import OperatorMixin
from .. import access
from .base import HistoryBase
from .wording import author_name
from .wording import customer_name
from .wording import event_text
from .wording import moments_in
from .wording import name_of


class HistoryTranscripts(HistoryBase):
    """One chat, for a viewer who may read it (or handed it over)."""

    def get(self, viewer: OperatorMixin, conversation_id: int) -> ConversationMixin:
        """A chat the viewer may read; a deleted one does not exist.

        :raises NotFound: No such chat, or it was deleted.
        :raises NotAllowed: The viewer may not read it.
        """
        conversation = self.session.get(self.models.conversation, conversation_id)
        if conversation is None or conversation.deleted_at is not None:
            raise NotFound("no-conversation", N_("This chat does not exist."))
        if not (
            access.can_view(viewer, conversation)
            or self._handed_over(viewer, conversation.id)
        ):
            raise NotAllowed("not-allowed", N_("You may not open this chat."))
        return conversation

    def _handed_over(self, viewer: OperatorMixin, conversation_id: int) -> bool:
        transfer = self.models.transfer
        found = self.session.execute(
            sa.select(transfer.id)
            .where(
                transfer.conversation_id == conversation_id,
                transfer.from_operator_id == viewer.id,
                transfer.status == "accepted",
            )
            .limit(1)
        ).first()
        return found is not None

    def transcript(
        self, viewer: OperatorMixin, conversation_id: int
    ) -> tuple[ConversationMixin, list[MessageMixin]]:
        """The chat and every message and event of it, staff notes included."""
        conversation = self.get(viewer, conversation_id)
        message = self.models.message
        messages = self.session.execute(
            sa.select(message)
            .where(message.conversation_id == conversation.id)
            .order_by(message.seq)
        ).scalars()
        return conversation, list(messages)

    def transcript_text(
        self,
        viewer: OperatorMixin,
        conversation_id: int,
        *,
        timezone: str | None = None,
    ) -> str:
        """The transcript as plain text, in the viewer's language and time zone."""
        conversation, messages = self.transcript(viewer, conversation_id)
        moment = moments_in(timezone)
        lines = [
            _lh("Chat %(id)d", id=conversation.id),
            f"{_lh('Customer')}: {customer_name(conversation)}",
            f"{_lh('E-mail')}: {conversation.visitor_email or _lh('no e-mail')}",
            f"{_lh('Department')}: {name_of(conversation.department)}",
            f"{_lh('Operator')}: {name_of(conversation.operator)}",
            f"{_lh('Started')}: {moment(conversation.created_at)}",
            f"{_lh('Ended')}: {moment(conversation.ended_at)}",
            f"{_lh('Tags')}: {', '.join(tag.name for tag in conversation.tags)}",
            "",
        ]
        for message in messages:
            when = moment(message.created_at, "short")
            if message.kind == "event":
                lines.append(f"[{when}] * {event_text(message)}")
            else:
                lines.append(f"[{when}] {author_name(message)}: {message.body}")
        return "\n".join(lines) + "\n"
