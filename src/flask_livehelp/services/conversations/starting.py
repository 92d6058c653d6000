"""Opening a chat, and routing waiting chats to an operator with room."""

from __future__ import annotations

import collections
import dataclasses

import sqlalchemy as sa

from ... import signals
from ...errors import Refused
from ...hub import operator_channel
from ...hub import STAFF_CHANNEL
from ...i18n import N_
from ...models import ConversationMixin
from ...models import MessageMixin
from .. import access
from .. import load
from ..presence import OperatorPresence
from .transcript import TranscriptWriter


@dataclasses.dataclass
class Room:
    """Who could take another chat, for auto-assignment."""

    #: The operators online.
    operators: list[OperatorPresence]
    #: Waiting chats already asked of each, by operator id.
    routed: collections.Counter[int]

    def load(self, operator: OperatorPresence) -> int:
        return operator.active_chats + self.routed[operator.id]

    def left(self, operator: OperatorPresence) -> bool:
        return self.load(operator) < operator.max_chats


class Starting(TranscriptWriter):
    """A visitor's first message opens a chat; auto-assignment routes it."""

    def start(
        self,
        visitor_id: int,
        *,
        client_id: str,
        body: str,
        name: str | None = None,
        email: str | None = None,
        consent: bool = False,
        page: str | None = None,
        locale: str | None = None,
        department_id: int | None = None,
        requested_operator_id: int | None = None,
        context: dict[str, object] | None = None,
    ) -> tuple[ConversationMixin, MessageMixin]:
        """Open a chat with the visitor's first message; a resend finds it again.

        :param requested_operator_id: Route the chat to this operator (an
            invitation they sent) while they have room for it; else, with
            ``AUTO_ASSIGN`` on, to the least busy online operator of the
            department.
        :param context: What the host's context hook says about the visitor.
        """
        existing = self.by_visitor_client_id(visitor_id, client_id)
        if existing is not None:
            # Sent again: the staff may never have heard of it (see _resent).
            started = self.get(existing.conversation_id)
            if started.status == "queued":
                self.hub.publish(STAFF_CHANNEL, self.staff_frame(started, "queued"))
            return started, existing
        if self.open_for_visitor(visitor_id) is not None:
            raise Refused("already-open", N_("You already have a chat going on."))
        if requested_operator_id is not None and not load.has_room(
            self.session, self.models, requested_operator_id
        ):
            # The inviter filled up meanwhile: the customer is not kept
            # waiting for them, the chat goes its usual way.
            requested_operator_id = None
        conversation = self.models.conversation(
            visitor_id=visitor_id,
            visitor_name=name or None,
            visitor_email=email or None,
            email_consent=bool(email) and consent,
            page_url=page,
            locale=locale,
            department_id=department_id,
            requested_operator_id=requested_operator_id
            or self._least_busy(department_id),
            context=context,
        )
        message = self._open_with(conversation, body, client_id)
        self.session.commit()
        self.hub.publish(STAFF_CHANNEL, self.staff_frame(conversation, "queued"))
        if conversation.requested_operator_id is not None:
            self.hub.publish(
                operator_channel(conversation.requested_operator_id),
                self.staff_frame(conversation, "routed"),
            )
        signals.send(signals.conversation_started, conversation=conversation)
        signals.send(signals.message_posted, conversation=conversation, message=message)
        return conversation, message

    def _least_busy(
        self, department_id: int | None, room: Room | None = None
    ) -> int | None:
        """The online operator with the most room, when auto-assignment is on."""
        if not self.settings.get("AUTO_ASSIGN"):
            return None
        room = room or self._room()
        free = [
            o
            for o in room.operators
            if access.serves(o, department_id) and room.left(o)
        ]
        if not free:
            return None
        chosen = min(free, key=lambda o: (room.load(o) / o.max_chats, room.load(o)))
        return chosen.id

    def _room(self) -> Room:
        """Who is online, and the chats waiting for each of them."""
        model = self.models.conversation
        routed = self.session.execute(
            sa.select(model.requested_operator_id, sa.func.count())
            .where(
                model.status == "queued",
                model.requested_operator_id.is_not(None),
                model.deleted_at.is_(None),
            )
            .group_by(model.requested_operator_id)
        )
        return Room(
            [o for o in self.presence.operators() if o.status == "online"],
            collections.Counter(
                {id_: count for id_, count in routed if id_ is not None}
            ),
        )

    def route_waiting(self) -> list[int]:
        """Give the chats that waited for room to whoever has some now.

        With ``AUTO_ASSIGN`` on, a chat that came while every operator was
        full waits for nobody in particular. Called whenever room may have
        come free (a chat ended or went back to the queue, a transfer moved
        one, an operator came online); oldest chat first. Returns those
        routed.
        """
        if not self.settings.get("AUTO_ASSIGN"):
            return []
        model = self.models.conversation
        waiting = (
            self.session.execute(
                sa.select(model)
                .where(
                    model.status == "queued",
                    model.requested_operator_id.is_(None),
                    model.deleted_at.is_(None),
                )
                .order_by(model.created_at)
            )
            .scalars()
            .all()
        )
        if not waiting:
            return []
        room = self._room()
        routed = []
        for conversation in waiting:
            operator_id = self._least_busy(conversation.department_id, room)
            if operator_id is not None and self._route(conversation, operator_id):
                room.routed[operator_id] += 1
                routed.append(conversation.id)
        return routed

    def _route(self, conversation: ConversationMixin, operator_id: int) -> bool:
        """Ask ``operator_id`` to take a waiting chat, unless another process did."""
        model = self.models.conversation
        done = self.changed(
            sa.update(model)
            .where(
                model.id == conversation.id,
                model.status == "queued",
                model.requested_operator_id.is_(None),
            )
            .values(requested_operator_id=operator_id)
        )
        if done != 1:
            self.session.rollback()
            return False
        self.session.commit()
        self.session.refresh(conversation)
        self.hub.publish(
            operator_channel(operator_id), self.staff_frame(conversation, "routed")
        )
        return True
