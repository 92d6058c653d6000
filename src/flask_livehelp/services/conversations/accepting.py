"""An operator taking a waiting chat."""

from __future__ import annotations

import collections.abc as c

import sqlalchemy as sa

from ... import signals
from ...errors import NotAllowed
from ...errors import Refused
from ...hub import operator_channel
from ...i18n import N_
from ...models import ConversationMixin
from ...models import OperatorMixin
from ...models import utcnow
from .. import access
from .. import load
from .transcript import TranscriptWriter


class Accepting(TranscriptWriter):
    """Accepting a chat: of two operators at once, exactly one wins."""

    def accept(
        self,
        operator: OperatorMixin,
        conversation_id: int,
        *,
        ready: c.Callable[[], None] | None = None,
    ) -> ConversationMixin:
        """Make ``operator`` the owner; of two at once, exactly one wins.

        :param ready: Called once the operator may take the chat, before it is
            theirs: their socket follows it then, so that nothing the customer
            says after hearing of the accept passes it by.
        :raises Refused: ``taken`` by someone else, or ``full``: the operator
            has ``max_chats`` chats already.
        """
        conversation = self.get(conversation_id)
        if not access.can_accept(operator, conversation):
            raise NotAllowed("not-allowed", N_("You may not take this chat."))
        if ready is not None:
            ready()
        model = self.models.conversation
        now = utcnow()
        room, limit = load.room_clause(self.session, self.models, operator.id)
        taken = self.changed(
            sa.update(model)
            .where(model.id == conversation_id, model.status == "queued", room)
            .values(status="active", operator_id=operator.id, accepted_at=now)
        )
        if taken != 1:
            self.session.rollback()
            if self.get(conversation_id).status == "queued":
                raise load.full(limit)
            raise Refused("taken", N_("Another operator has already taken this chat."))
        self.session.refresh(conversation)
        event = self.add_event(conversation, "accepted", operator=operator)
        self.session.commit()
        # The operator's other tabs follow the chat on this, before the
        # customer hears of it and answers.
        self.hub.publish(
            operator_channel(operator.id),
            self.staff_frame(conversation, "assigned"),
        )
        self.announce_change(conversation, "accepted", event)
        self.presence.announce(operator.id)
        self.announce_queue()
        signals.send(
            signals.conversation_accepted, conversation=conversation, operator=operator
        )
        return conversation
