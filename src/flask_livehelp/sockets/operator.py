"""The operator's socket: the panel's live line to the queue and its chats."""

from __future__ import annotations

import collections.abc as c
import dataclasses
import json
import logging
import time
import typing as t

from flask import request
from simple_websocket import Server

from ..auth import current_operator
from ..config import config_value
from ..errors import NotAllowed
from ..errors import Refused
from ..hub import conversation_channel
from ..hub import operator_channel
from ..hub import STAFF_CHANNEL
from ..hub import staff_conversation_channel
from ..i18n import _lh
from ..i18n import current_language
from ..i18n import in_language
from ..i18n import N_
from ..models import OperatorMixin
from ..protocol import ack_frame
from ..protocol import DEPARTMENT
from ..protocol import EVERYONE
from ..protocol import Frame
from ..protocol import OPERATOR_FRAMES
from ..protocol import OWN
from ..protocol import STAFF_FRAMES
from ..services import access
from ..state import get_state
from ..state import LiveHelpState
from .connection import Connection

#: Seconds a busy socket goes on trusting that its operator is still signed in.
RECHECK_SECONDS = 5.0
HIDDEN_PREFIX = '{"type":"hidden"'

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Seat:
    """What the hub threads may know of the operator: no database objects."""

    id: int
    name: str
    role: str
    #: What :func:`~flask_livehelp.services.access.scope` says of them.
    department_scope: frozenset[int] | None

    @classmethod
    def of(cls, operator: OperatorMixin) -> Seat:
        return cls(operator.id, operator.name, operator.role, access.scope(operator))

    # ``event``: a frame decoded from the hub's JSON.
    def may_hear(self, channel: str, event: dict[str, t.Any]) -> bool:
        """Whether a frame of the staff channel, or of our own, is for this panel.

        Denied unless :data:`~flask_livehelp.protocol.STAFF_FRAMES` allows it:
        a frame about a chat reaches only those who hear of that chat.
        """
        audience = STAFF_FRAMES.get(event.get("type", ""))
        about_a_chat = channel == STAFF_CHANNEL and audience == DEPARTMENT
        if channel != STAFF_CHANNEL:
            known = audience in (OWN, DEPARTMENT)
        else:
            known = audience == EVERYONE or (about_a_chat and "department_id" in event)
        if not known:
            log.error(
                "A %r frame on %s is not allowed by protocol.STAFF_FRAMES;"
                " no panel gets it.",
                event.get("type"),
                channel,
            )
            return False
        if about_a_chat:
            return access.hears_of(
                self, event["department_id"], event.get("operator_id")
            )
        return True


class OperatorConnection(Connection):
    specs = OPERATOR_FRAMES
    # A tick writes presence, and panels reconnect together after a deploy.
    spread_ticks = True

    def __init__(
        self, ws: Server, state: LiveHelpState, operator: OperatorMixin
    ) -> None:
        super().__init__(ws, state)
        self.seat = Seat.of(operator)
        self._checked = time.monotonic()
        self.session_key = operator.session_key
        self.connection_id: str | None = None
        # Presence follows the live socket: refreshed on every tick while the
        # panel answers, whatever it sends; a panel gone silent is let go.
        self.tick_seconds = config_value("HEARTBEAT_SECONDS")
        self.silence_seconds = config_value("CLIENT_SILENCE_SECONDS")

    def operator(self) -> OperatorMixin:
        """The operator, read again, so a deactivated one is stopped at once."""
        operator = self.state.operators.session_valid(self.seat.id, self.session_key)
        if operator is None:
            self.close(4401, "signed out")
            raise NotAllowed("signed-out", N_("You are signed out."))
        self._checked = time.monotonic()
        # The shop's first department narrows who a panel hears of at once.
        self.seat = Seat.of(operator)
        return operator

    def still_signed_in(self) -> Seat:
        """The operator, checked again at most every few seconds.

        For the frames of a busy chat: a deactivation or sign-out reaches
        the socket at once through the hub anyway (``signed-out``).
        """
        if time.monotonic() - self._checked > RECHECK_SECONDS:
            self.operator()
        return self.seat

    def on_open(self) -> None:
        self.subscription.add(STAFF_CHANNEL)
        self.subscription.add(operator_channel(self.seat.id))
        self.connection_id = self.state.presence.open_connection(self.seat.id)
        # Back online with this panel: chats that waited for room may be ours.
        self.state.conversations.route_waiting()
        self.send_hello()

    def send_hello(self) -> None:
        """Everything the panel shows, sent on connect; events keep it current."""
        operator = self.operator()
        conversations = self.state.conversations
        active = conversations.active_for(operator)
        for conversation in active:
            self._follow(conversation.id)
        self.send(
            {
                "type": "hello",
                "operator": {
                    "id": operator.id,
                    "name": operator.name,
                    "email": operator.email,
                    "role": operator.role,
                    "status": operator.status,
                    "max_chats": operator.max_chats,
                },
                "queue": conversations.staff_frames(conversations.queue_for(operator)),
                "active": conversations.staff_frames(active),
                "operators": [o.public() for o in self.state.presence.operators()],
                "transfers": [
                    self.state.transfers.frame(offer)
                    for offer in self.state.transfers.open_for(operator)
                ],
                "departments": self.state.transfers.departments(),
                "tags": conversations.all_tags(),
                "canned": self._canned(operator),
                "settings": self.state.settings.for_panel(),
                "translate": self.state.extension.translate is not None,
            }
        )

    def _canned(self, operator: OperatorMixin) -> list[dict[str, str]]:
        """Every canned response; the panel picks each chat's language."""
        return [
            {"name": c.name, "lang": c.lang, "body": c.body}
            for c in self.state.knowledge.canned_responses()
        ]

    def _follow(self, conversation_id: int) -> None:
        self.subscription.add(conversation_channel(conversation_id))
        self.subscription.add(staff_conversation_channel(conversation_id))

    def _unfollow(self, conversation_id: int) -> None:
        self.subscription.discard(conversation_channel(conversation_id))
        self.subscription.discard(staff_conversation_channel(conversation_id))
        self.sequencer.forget(conversation_id)

    def send(self, frame: c.Mapping[str, object]) -> None:
        # What the panel is sent directly is listed with what the hub brings.
        if frame.get("type") not in STAFF_FRAMES:
            log.error("A %r frame is not in protocol.STAFF_FRAMES.", frame.get("type"))
            return
        super().send(frame)

    def on_event(self, channel: str, text: str) -> None:
        if text.startswith(HIDDEN_PREFIX):
            # Staff get the message itself, on the conversation's staff channel.
            return
        if channel == STAFF_CHANNEL or channel == operator_channel(self.seat.id):
            event = json.loads(text)
            if not self.seat.may_hear(channel, event):
                return
            kind = event.get("type")
            if kind == "assigned":
                # Every tab of this operator follows a chat any of them took.
                self._follow(event["id"])
            elif kind in ("unassigned", "ended") or (
                kind == "accepted" and event.get("operator_id") != self.seat.id
            ):
                self._unfollow(event["id"])
            elif kind == "signed-out":
                self.send_text(text)
                self.close(4401, "signed out")
                return
        self.send_text(text)

    def on_tick(self) -> None:
        self.operator()
        assert self.connection_id is not None
        # A quiet panel is pinged every tick, and a live one answers: one
        # not heard for two ticks stopped answering and is no longer
        # refreshed (shown away, then offline) even before its socket closes.
        if time.monotonic() - self.heard < 2 * t.cast(float, self.tick_seconds):
            self.state.presence.touch_connection(
                self.connection_id, self.seat.id, self.heard_at()
            )

    def on_close(self) -> None:
        if self.connection_id is not None:
            self.state.presence.close_connection(
                self.connection_id, self.seat.id, self.heard_at()
            )

    def on_hello(self, frame: Frame) -> None:
        self.send_hello()

    def on_status(self, frame: Frame) -> None:
        self.state.presence.set_status(self.operator().id, frame["state"])
        if frame["state"] == "online":
            self.state.conversations.route_waiting()

    def on_accept(self, frame: Frame) -> None:
        conversation_id = frame["conversation"]
        followed = conversation_channel(conversation_id) in self.subscription.channels
        try:
            self.state.conversations.accept(
                self.operator(),
                conversation_id,
                # With Redis, this process must be listening before the
                # customer hears of the accept and types.
                ready=lambda: self._follow(conversation_id),
            )
        except Refused:
            if not followed:
                self._unfollow(conversation_id)
            raise

    def on_message(self, frame: Frame) -> None:
        message, _ = self.state.conversations.post_by_operator(
            self.still_signed_in(),
            frame["conversation"],
            client_id=frame["id"],
            body=frame["body"],
        )
        self.send(ack_frame(message))

    def on_typing(self, frame: Frame) -> None:
        conversations = self.state.conversations
        conversation = conversations.for_operator(
            self.operator(), frame["conversation"]
        )
        if not access.can_write(self.operator(), conversation):
            raise NotAllowed("not-yours", N_("Accept the chat before you answer it."))
        conversations.typing(conversation.id, "operator", frame["state"])

    def on_end(self, frame: Frame) -> None:
        self.state.conversations.end(
            frame["conversation"], by="operator", operator=self.operator()
        )

    def on_sync(self, frame: Frame) -> None:
        """Send what the panel missed of a chat it may see, and follow it."""
        conversations = self.state.conversations
        conversation = conversations.for_operator(
            self.operator(), frame["conversation"]
        )
        if conversation.status in ("queued", "active"):
            self._follow(conversation.id)
        self.send(conversations.staff_frame(conversation))
        self.send_backlog(conversation.id, frame["after"], staff=True)

    def on_tags(self, frame: Frame) -> None:
        conversations = self.state.conversations
        if frame["names"] is not None:
            conversation = conversations.set_tags(
                self.operator(), frame["conversation"], frame["names"]
            )
        else:
            conversation = conversations.change_tags(
                self.operator(),
                frame["conversation"],
                add=frame["add"] or (),
                remove=frame["remove"] or (),
            )
        # Also to a manager tagging a chat they look at without following it.
        self.send(conversations.staff_frame(conversation))

    def on_transfer(self, frame: Frame) -> None:
        self.state.transfers.offer(
            self.operator(),
            frame["conversation"],
            to_operator_id=frame["operator"],
            to_department_id=frame["department"],
            note=frame["note"],
        )
        self.send({"type": "notice", "message": _lh("The transfer was offered.")})

    def on_transfer_answer(self, frame: Frame) -> None:
        transfers = self.state.transfers
        if frame["accept"]:
            transfers.accept(self.operator(), frame["transfer"])
        else:
            transfers.decline(self.operator(), frame["transfer"])

    def on_push(self, frame: Frame) -> None:
        self.state.conversations.push_page(
            self.operator(),
            frame["conversation"],
            frame["url"],
            shop_origin=request.host_url,
        )

    def on_transcript(self, frame: Frame) -> None:
        """Mail a transcript: to the customer's address on file, or to oneself.

        Never to an address typed in the chat: that would make the shop a
        spam relay for anyone who can open a chat.
        """
        operator = self.operator()
        conversation = self.state.conversations.for_operator(
            operator, frame["conversation"]
        )
        if frame["to"] == "me":
            address = operator.email
        elif conversation.visitor_email:
            address = conversation.visitor_email
        else:
            raise Refused("no-email", N_("The customer gave no e-mail address."))
        self.state.offline.queue_transcript(
            conversation.id, address, requested_by=operator
        )
        self.send(
            {
                "type": "notice",
                "message": _lh(
                    "The transcript is on its way to %(address)s.", address=address
                ),
            }
        )

    def on_visitors(self, frame: Frame) -> None:
        items = self.state.visitors.on_site(self.operator())
        self.send({"type": "visitors", "items": items})

    def on_invite(self, frame: Frame) -> None:
        self.state.visitors.invite(self.operator(), frame["visitor"], frame["message"])
        self.send({"type": "notice", "message": _lh("The invitation was sent.")})

    def on_translate(self, frame: Frame) -> None:
        translate = self.state.extension.translate
        if translate is None:
            raise Refused("no-translator", N_("No translation service is set up."))
        operator = self.operator()
        conversations = self.state.conversations
        conversation = conversations.for_operator(operator, frame["conversation"])
        mine = operator.locale or current_language()
        if frame["text"]:
            # The operator's draft, for the customer.
            text = translate(frame["text"], conversation.locale or mine, mine)
            self.send(
                {"type": "translation", "conversation": conversation.id, "draft": text}
            )
            return
        message = conversations.message_at(conversation.id, frame["seq"], staff=True)
        text = translate(message.body, mine, conversation.locale)
        self.send(
            {
                "type": "translation",
                "conversation": conversation.id,
                "seq": message.seq,
                "text": text,
            }
        )


def operator_socket(ws: Server) -> None:
    state = get_state()
    operator = current_operator()
    if operator is None:
        Connection.turn_away(ws, "signed-out", N_("Sign in first."), reason=4401)
        return
    # Notices and errors in the operator's own language, as the panel page is.
    with in_language(operator.locale):
        OperatorConnection(ws, state, operator).run()
