"""Handing a chat to a colleague or a department: offered, then accepted."""

from __future__ import annotations

import sqlalchemy as sa

from ..errors import NotAllowed
from ..errors import NotFound
from ..errors import Refused
from ..hub import operator_channel
from ..hub import STAFF_CHANNEL
from ..i18n import N_
from ..models import ConversationMixin
from ..models import OperatorMixin
from ..models import TransferMixin
from ..models import utcnow
from . import access
from . import Basics
from . import load
from . import Service
from .conversations import ConversationService

MAX_NOTE = 1000


class TransferService(Service):
    def __init__(self, *args: *Basics, conversations: ConversationService) -> None:
        super().__init__(*args)
        self.conversations = conversations

    def offer(
        self,
        operator: OperatorMixin,
        conversation_id: int,
        *,
        to_operator_id: int | None = None,
        to_department_id: int | None = None,
        note: str | None = None,
    ) -> TransferMixin:
        """Offer a chat the operator has to a colleague or to a department.

        The chat stays with the operator until someone accepts it; the note is
        written into the transcript for staff only.
        """
        conversation = self.conversations.for_operator(operator, conversation_id)
        if not access.can_transfer(operator, conversation):
            raise NotAllowed("not-yours", N_("You can only transfer a chat you have."))
        if (to_operator_id is None) == (to_department_id is None):
            raise Refused("bad-target", N_("Choose one colleague or one department."))
        note = (note or "").strip()[:MAX_NOTE] or None
        self._check_target(operator, to_operator_id, to_department_id)
        self._withdraw_open(conversation.id)
        transfer = self.models.transfer(
            conversation_id=conversation.id,
            from_operator_id=operator.id,
            to_operator_id=to_operator_id,
            to_department_id=to_department_id,
            note=note,
        )
        self.session.add(transfer)
        event = self.conversations.add_event(
            conversation,
            "transfer-offered",
            staff_only=True,
            operator=operator,
            to=self._target_name(to_operator_id, to_department_id),
            note=note,
        )
        self.session.commit()
        self.conversations.publish(event)
        frame = self.frame(transfer)
        if to_operator_id is not None:
            self.hub.publish(operator_channel(to_operator_id), frame)
        else:
            self.hub.publish(STAFF_CHANNEL, frame)
        return transfer

    def _check_target(
        self,
        operator: OperatorMixin,
        to_operator_id: int | None,
        to_department_id: int | None,
    ) -> None:
        if to_operator_id is not None:
            if to_operator_id == operator.id:
                raise Refused("bad-target", N_("The chat is already yours."))
            online = {
                o.id
                for o in self.conversations.presence.operators()
                if o.status == "online"
            }
            if to_operator_id not in online:
                raise Refused(
                    "not-online",
                    N_("You can only transfer to a colleague who is online."),
                )
        elif self.session.get(self.models.department, to_department_id) is None:
            raise NotFound("no-department", N_("No such department."))

    def _target_name(
        self, to_operator_id: int | None, to_department_id: int | None
    ) -> str:
        if to_operator_id is not None:
            return self.row(self.models.operator, to_operator_id).name
        return self.row(self.models.department, to_department_id).name

    def _withdraw_open(self, conversation_id: int) -> None:
        """A new offer replaces one still open for the same chat."""
        model = self.models.transfer
        self.session.execute(
            sa.update(model)
            .where(model.conversation_id == conversation_id, model.status == "offered")
            .values(status="withdrawn", answered_at=utcnow())
        )

    def accept(self, operator: OperatorMixin, transfer_id: int) -> ConversationMixin:
        """Take the chat of an offer made to this operator or their department.

        :raises Refused: ``taken``: the offer is no longer open; ``full``: the
            operator has no room for another chat (the offer stays open).
        """
        transfer = self._offer_for(operator, transfer_id)
        previous_id = self.conversations.get(transfer.conversation_id).operator_id
        model, chats = self.models.transfer, self.models.conversation
        room, limit = load.room_clause(self.session, self.models, operator.id)
        moved = self.changed(
            sa.update(chats)
            .where(chats.id == transfer.conversation_id, chats.status == "active")
            .where(room)
            .values(operator_id=operator.id)
        )
        taken = self.changed(
            sa.update(model)
            .where(model.id == transfer.id, model.status == "offered")
            .values(status="accepted", answered_at=utcnow())
        )
        if taken != 1 or moved != 1:
            self.session.rollback()
            still_open = self._offer_for(operator, transfer_id)
            if self.conversations.get(still_open.conversation_id).status == "active":
                raise load.full(limit)
            raise Refused("taken", N_("This transfer is no longer open."))
        conversation = self.conversations.get(transfer.conversation_id)
        self.session.refresh(conversation)
        previous = (
            self.session.get(self.models.operator, previous_id) if previous_id else None
        )
        event = self.conversations.add_event(
            conversation,
            "transferred",
            operator=operator,
            from_operator=previous.name if previous else None,
        )
        self.session.commit()
        self.conversations.announce_change(conversation, "transferred", event)
        self.hub.publish(
            operator_channel(operator.id),
            self.conversations.staff_frame(conversation, "assigned"),
        )
        if previous is not None:
            self.hub.publish(
                operator_channel(previous.id),
                self.conversations.staff_frame(conversation, "unassigned"),
            )
            self.conversations.presence.announce(previous.id)
        self.conversations.presence.announce(operator.id)
        # The previous operator has room for a chat that waited for some.
        self.conversations.route_waiting()
        return conversation

    def decline(self, operator: OperatorMixin, transfer_id: int) -> None:
        transfer = self._offer_for(operator, transfer_id)
        if transfer.to_department_id is not None:
            # Someone else in the department may still take it.
            return
        model = self.models.transfer
        self.session.execute(
            sa.update(model)
            .where(model.id == transfer.id, model.status == "offered")
            .values(status="declined", answered_at=utcnow())
        )
        self.session.commit()
        if transfer.from_operator_id is not None:
            self.hub.publish(
                operator_channel(transfer.from_operator_id),
                self.frame(transfer)
                | {"type": "transfer-declined", "by": operator.name},
            )

    def _offer_for(self, operator: OperatorMixin, transfer_id: int) -> TransferMixin:
        transfer = self.session.get(self.models.transfer, transfer_id)
        if transfer is None or transfer.status != "offered":
            raise Refused("taken", N_("This transfer is no longer open."))
        if not access.may_take(operator, transfer):
            raise NotAllowed("not-allowed", N_("This transfer is not for you."))
        return transfer

    def open_for(self, operator: OperatorMixin) -> list[TransferMixin]:
        """Offers waiting for this operator's answer."""
        model = self.models.transfer
        offers = self.session.execute(
            sa.select(model).where(model.status == "offered").order_by(model.id)
        ).scalars()
        return [offer for offer in offers if access.may_take(operator, offer)]

    def departments(self) -> list[dict[str, object]]:
        """The departments a chat can be transferred to."""
        model = self.models.department
        rows = self.session.execute(
            sa.select(model).where(model.is_active).order_by(model.name)
        ).scalars()
        return [{"id": d.id, "name": d.name} for d in rows]

    def frame(self, transfer: TransferMixin) -> dict[str, object]:
        conversation = self.conversations.get(transfer.conversation_id)
        sender = self.session.get(self.models.operator, transfer.from_operator_id)
        return {
            "type": "transfer",
            "id": transfer.id,
            "conversation": transfer.conversation_id,
            "from": sender.name if sender else None,
            "to_operator_id": transfer.to_operator_id,
            "department_id": transfer.to_department_id,
            "note": transfer.note,
            "visitor_name": conversation.visitor_name,
        }
