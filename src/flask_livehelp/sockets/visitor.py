"""The visitor's socket: opened by the widget when a chat starts or resumes."""

from __future__ import annotations

from flask import request
from simple_websocket import Server

from ..addresses import email_address
from ..config import config_value
from ..errors import Refused
from ..formatting import valid_timezone
from ..hub import conversation_channel
from ..i18n import current_language
from ..i18n import N_
from ..identity import context_for_visitor
from ..models import ConversationMixin
from ..protocol import ack_frame
from ..protocol import Frame
from ..protocol import VISITOR_FRAMES
from ..services.limits import Limit
from ..state import get_state
from ..state import LiveHelpState
from ..text import is_blank
from .connection import Connection

REQUIRED = {
    "name": N_("Please give your name."),
    "email": N_("Please give your e-mail address."),
}


class VisitorConnection(Connection):
    """A visitor's chat. The first frame is ``hello``, carrying their token.

    Without a token (a first chat) the visitor gets a new one in ``welcome``;
    with ``conversation`` and ``after`` they get back everything they missed.
    """

    specs = VISITOR_FRAMES

    def __init__(self, ws: Server, state: LiveHelpState) -> None:
        super().__init__(ws, state)
        self.visitor_id: int | None = None
        self.conversation_id: int | None = None
        #: The shop page the widget is on, as the widget reported it.
        self.page: str | None = None
        #: The loader's id for this browser tab.
        self.pid: str | None = None
        #: What the shop says about the visitor (its hook, or a signed claim).
        self.context: dict[str, object] | None = None
        self.ip_address = request.remote_addr
        # A socket that never says hello is let go (an attacker holds
        # sockets open for nothing); after hello, one that goes silent too.
        self.tick_seconds = config_value("HELLO_WITHIN_SECONDS")
        self.silence_seconds = config_value("CLIENT_SILENCE_SECONDS")

    def dispatch(self, frame: Frame) -> None:
        if self.visitor_id is None and frame.type not in ("hello", "ping"):
            raise Refused("hello-first", N_("Say hello first."), frame.type)
        super().dispatch(frame)

    def on_tick(self) -> None:
        if self.visitor_id is None:
            self.refuse(Refused("hello-first", N_("Say hello first.")))
            self.close(4408, "no hello")
            return
        # The sockets this process counts are still open.
        self.state.sockets.beat()

    def on_hello(self, frame: Frame) -> None:
        visitors = self.state.visitors
        self.page, self.pid = frame["page"], frame["pid"]
        self.context = context_for_visitor(frame["identity"])
        visitor = visitors.from_token(frame["token"])
        token = None
        if visitor is None:
            self._within(("NEW_VISITORS_PER_MINUTE_PER_IP", self.ip_address, 60))
            visitor, token = visitors.create(
                ip_address=self.ip_address,
                user_agent=request.user_agent.string,
                locale=current_language(),
                page=self.page,
                presence_id=self.pid,
            )
        # Read before seen() commits: after, the row would be read again.
        self.visitor_id = visitor.id
        visitors.seen(
            visitor.id,
            self.page,
            presence_id=self.pid,
            identity=self.context,
            timezone=valid_timezone(frame["timezone"]),
        )
        self.tick_seconds = config_value("HEARTBEAT_SECONDS")
        conversation = self._resumable(frame["conversation"])
        known = self.context or {}
        self.send(
            {
                "type": "welcome",
                "token": token,
                # The shop already knows these; the form can offer them.
                "name": known.get("name"),
                "email": known.get("email"),
            }
        )
        if conversation is not None:
            # The widget's numbers are of the chat it asked for, not another.
            asked = conversation.id == frame["conversation"]
            self._follow(conversation, after=(frame["after"] or 0) if asked else 0)

    def _resumable(self, conversation_id: int | None) -> ConversationMixin | None:
        conversations = self.state.conversations
        assert self.visitor_id is not None
        if conversation_id is not None:
            try:
                return conversations.for_visitor(self.visitor_id, conversation_id)
            except Refused:
                pass
        return conversations.open_for_visitor(self.visitor_id)

    def _follow(self, conversation: ConversationMixin, after: int) -> None:
        """Subscribe first, then send the backlog: nothing falls in between."""
        if self.conversation_id not in (None, conversation.id):
            self.subscription.discard(conversation_channel(self.conversation_id))
            self.sequencer.forget(self.conversation_id)
        self.conversation_id = conversation.id
        self.subscription.add(conversation_channel(conversation.id))
        self.send(self.state.conversations.visitor_frame(conversation))
        # What follows "synced" is news; what came before was the backlog.
        self.send_backlog(conversation.id, after, staff=False)

    def on_sync(self, frame: Frame) -> None:
        """The widget missed messages (it saw a gap): send them again."""
        conversation = self.state.conversations.for_visitor(
            self._visitor(), self._conversation()
        )
        self._follow(conversation, after=frame["after"])

    def on_start(self, frame: Frame) -> None:
        self._throttle(frame)
        if self._open_conversation() is None:
            # A new chat, not a resend of this one's first message.
            self._within(
                ("CHATS_PER_HOUR", self.visitor_id, 3600),
                ("CHATS_PER_HOUR_PER_IP", self.ip_address, 3600),
                ref=frame["id"],
            )
        name, email = self._contact_fields(frame)
        invited_by = None
        if frame["invited"] and self.pid:
            invited_by = self.state.visitors.answer_invitation(self.pid, accepted=True)
        conversation, message = self.state.conversations.start(
            self._visitor(),
            client_id=frame["id"],
            body=frame["body"],
            name=name,
            email=email,
            consent=bool(frame["consent"]),
            locale=current_language(),
            page=self.page,
            department_id=frame["department"],
            requested_operator_id=invited_by,
            context=self.context,
        )
        self.send(ack_frame(message))
        self._follow(conversation, after=0)

    def _contact_fields(self, frame: Frame) -> tuple[str | None, str | None]:
        """Name and e-mail, as the shop's settings ask for them.

        What the customer does not type, the shop may know (its context hook
        or a signed claim): a signed-in customer need not say who they are.
        """
        settings, lang = self.state.settings, current_language()
        known = self.context or {}
        given: dict[str, str | None] = {}
        for field, key in (("name", "WIDGET_ASK_NAME"), ("email", "WIDGET_ASK_EMAIL")):
            asked = settings.get(key, lang)
            value = "" if asked == "hidden" else (frame[field] or "").strip()
            if is_blank(value):
                value = ""
            value = value or str(known.get(field) or "").strip()
            if asked == "required" and not value:
                raise Refused(f"{field}-required", REQUIRED[field], frame["id"])
            given[field] = value or None
        email = given["email"] and email_address(given["email"])
        if given["email"] and not email:
            raise Refused(
                "bad-email", N_("This is not a valid e-mail address."), frame["id"]
            )
        return given["name"], email or None

    def on_message(self, frame: Frame) -> None:
        self._throttle(frame)
        message, _ = self.state.conversations.post_by_visitor(
            self._visitor(),
            self._conversation(),
            client_id=frame["id"],
            body=frame["body"],
        )
        self.send(ack_frame(message))

    def on_typing(self, frame: Frame) -> None:
        conversation = self.state.conversations.for_visitor(
            self._visitor(), self._conversation()
        )
        if conversation.status in ("queued", "active"):
            self.state.conversations.typing(conversation.id, "visitor", frame["state"])

    def on_end(self, frame: Frame) -> None:
        conversations = self.state.conversations
        conversation = conversations.for_visitor(self._visitor(), self._conversation())
        conversations.end(conversation.id, by="visitor")

    def on_transcript(self, frame: Frame) -> None:
        """Mail the transcript to the address the visitor gave, and only there."""
        conversation = self.state.conversations.for_visitor(
            self._visitor(), self._conversation()
        )
        if not conversation.visitor_email:
            raise Refused("no-email", N_("Give your e-mail address first."))
        self.state.offline.queue_transcript(
            conversation.id, conversation.visitor_email, requested_by="visitor"
        )
        self.send({"type": "transcript", "to": conversation.visitor_email})

    def on_contact(self, frame: Frame) -> None:
        """The visitor tells how the shop can answer by mail (after a time-out)."""
        email = email_address(frame["email"].strip())
        if email is None:
            raise Refused("bad-email", N_("This is not a valid e-mail address."))
        conversation = self.state.conversations.for_visitor(
            self._visitor(), self._conversation()
        )
        self.state.offline.add_contact(
            conversation.id, email=email, name=(frame["name"] or "").strip() or None
        )
        self.send({"type": "contact", "email": email})

    def _visitor(self) -> int:
        assert self.visitor_id is not None
        return self.visitor_id

    def _conversation(self) -> int:
        if self.conversation_id is None:
            raise Refused("no-conversation", N_("Start a chat first."))
        return self.conversation_id

    def _throttle(self, frame: Frame) -> None:
        """At most so many messages a minute, per visitor and per address."""
        ref = frame["id"]
        self._within(
            ("VISITOR_MESSAGES_PER_MINUTE", self.visitor_id, 60),
            ("MESSAGES_PER_MINUTE_PER_IP", self.ip_address, 60),
            ref=ref,
        )

    def _within(self, *checks: tuple[str, object, int], ref: str | None = None) -> None:
        """Refuse (too-fast, with ``ref``) what goes past a limit: each check
        is a setting, who it counts and its window in seconds."""
        limits = self.state.limits
        exceeded = limits.exceeded(
            [Limit(key, who, config_value(key), window) for key, who, window in checks]
        )
        if exceeded is not None:
            raise Refused(
                "too-fast",
                N_("You are sending too fast. Wait a moment."),
                ref,
                status=429,
                retry_after=limits.retry_after(exceeded.window),
            )

    def _open_conversation(self) -> ConversationMixin | None:
        assert self.visitor_id is not None
        return self.state.conversations.open_for_visitor(self.visitor_id)


def visitor_socket(ws: Server) -> None:
    state = get_state()
    address = request.remote_addr
    if not state.sockets.enter(address, config_value("SOCKETS_PER_IP")):
        Connection.turn_away(
            ws, "too-many", N_("Too many chat windows are open. Close one first.")
        )
        return
    try:
        VisitorConnection(ws, state).run()
    finally:
        state.sockets.leave(address)
