"""Ending chats, and handing an operator's chats back to the queue."""

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
from ..access import OPEN
from .starting import Starting


class Ending(Starting):
    """Ending a chat and releasing an operator's chats route the waiting ones."""

    def end(
        self, conversation_id: int, *, by: str, operator: OperatorMixin | None = None
    ) -> ConversationMixin:
        """End a chat; one no operator took counts as missed.

        :param by: ``visitor``, ``operator``, ``timeout`` (nobody accepted it
            in time) or ``inactive`` (closed after a long silence).
        """
        return self.finish(conversation_id, by=by, operator=operator)[0]

    def finish(
        self,
        conversation_id: int,
        *,
        by: str,
        operator: OperatorMixin | None = None,
        only: str | None = None,
    ) -> tuple[ConversationMixin, bool]:
        """End a chat, and say whether this call ended it (not another process).

        :param only: End it only while it has this status (``queued``).
        """
        conversation = self.get(conversation_id)
        if operator is not None and not access.can_end(operator, conversation):
            raise NotAllowed("not-allowed", N_("You may not end this chat."))
        if self._needs_tag(conversation, by):
            raise Refused("tag-required", N_("Add a tag before you end the chat."))
        current = conversation.status
        if current not in OPEN or (only is not None and current != only):
            return conversation, False
        model = self.models.conversation
        done = self.changed(
            sa.update(model)
            .where(model.id == conversation_id, model.status == current)
            .values(
                status="ended" if current == "active" else "missed",
                ended_at=utcnow(),
                ended_by=by,
            )
        )
        if done != 1:
            self.session.rollback()
            return self.get(conversation_id), False
        self.session.refresh(conversation)
        event = self.add_event(conversation, "ended", operator=operator, by=by)
        self.session.commit()
        self.announce_change(conversation, "ended", event)
        if conversation.operator_id is not None:
            self.presence.announce(conversation.operator_id)
        if current == "queued":
            self.announce_queue()
        signals.send(signals.conversation_ended, conversation=conversation, reason=by)
        if current == "active":
            self.route_waiting()
        return conversation, True

    def release_chats(
        self,
        operator_id: int,
        *,
        keep: c.Callable[[ConversationMixin], bool] | None = None,
    ) -> list[int]:
        """Put an operator's active chats back in the queue, the customers told.

        For an operator who can no longer answer them (deactivated, gone, or
        moved to other departments): the customers wait for the next
        operator instead.

        :param keep: Leave the chats it says yes to with the operator.
        """
        model = self.models.conversation
        active = self.session.execute(
            sa.select(model).where(
                model.status == "active", model.operator_id == operator_id
            )
        ).scalars()
        leaving = [c.id for c in active if keep is None or not keep(c)]
        released = []
        for conversation_id in leaving:
            back = self.changed(
                sa.update(model)
                .where(model.id == conversation_id, model.status == "active")
                .values(status="queued", operator_id=None, requested_operator_id=None)
            )
            if back != 1:
                self.session.rollback()
                continue
            conversation = self.get(conversation_id)
            self.session.refresh(conversation)
            event = self.add_event(conversation, "returned")
            self.session.commit()
            self.announce_change(conversation, "queued", event)
            self.hub.publish(
                operator_channel(operator_id),
                self.staff_frame(conversation, "unassigned"),
            )
            released.append(conversation_id)
        if released:
            self.presence.announce(operator_id)
            self.announce_queue()
            self.route_waiting()
        return released

    def _needs_tag(self, conversation: ConversationMixin, by: str) -> bool:
        return (
            by == "operator"
            and conversation.status == "active"
            and not conversation.tags
            and bool(self.settings.get("REQUIRE_TAG"))
        )
