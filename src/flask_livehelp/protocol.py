"""The JSON frames of the visitor and operator sockets.

Every inbound frame is checked against a spec here before any handler sees
it; a frame that does not fit raises :class:`FrameError`, which the socket
turns into an ``error`` frame while the connection stays open.
"""

from __future__ import annotations

import collections.abc as c
import dataclasses
import datetime as dt
import json
import re
import typing as t

from .errors import Refused
from .i18n import N_
from .models import ConversationMixin
from .text import has_surrogates
from .text import is_blank
from .text import without_controls

NOT_TEXT = N_("The field %(field)s holds characters that are not text.")

CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class FrameError(Refused):
    """A frame that cannot be accepted, with a message for the sender."""


@dataclasses.dataclass(frozen=True)
class Field:
    kind: type
    required: bool = False
    #: A setting (without ``LIVEHELP_``) that caps a string's length, or a
    #: number; for a list, the length of each of its strings.
    max_length: str | int | None = None
    choices: tuple[str, ...] | None = None
    #: For a list of strings: how many at most.
    max_items: int = 0


def _text(max_length: str | int, required: bool = True) -> Field:
    return Field(str, required=required, max_length=max_length)


CLIENT_ID_FIELD = _text(64)
BODY = _text("MAX_MESSAGE_LENGTH")
CONVERSATION = Field(int, required=True)

VISITOR_FRAMES: dict[str, dict[str, Field]] = {
    "hello": {
        "token": _text(100, required=False),
        "conversation": Field(int),
        "after": Field(int),
        "page": _text(2000, required=False),
        # The loader's id for this browser tab, to join up the visitor list.
        "pid": _text(32, required=False),
        # Who the shop says the visitor is, signed by the shop.
        "identity": _text(4000, required=False),
        # The browser's time zone (an IANA name), for the times in mails.
        "timezone": _text(64, required=False),
    },
    "start": {
        "id": CLIENT_ID_FIELD,
        "body": BODY,
        "name": _text("MAX_NAME_LENGTH", required=False),
        "email": _text(254, required=False),
        "consent": Field(bool),
        "department": Field(int),
        # Answering an operator's invitation: the chat goes to them.
        "invited": Field(bool),
    },
    "message": {"id": CLIENT_ID_FIELD, "body": BODY},
    # Send again what followed message number ``after``.
    "sync": {"after": Field(int, required=True)},
    "typing": {"state": Field(bool, required=True)},
    "end": {},
    # Mail me the transcript, to the address I gave.
    "transcript": {},
    # After a time-out: how the shop can answer by mail.
    "contact": {
        "email": _text(254),
        "name": _text("MAX_NAME_LENGTH", required=False),
    },
    "ping": {},
}

OPERATOR_FRAMES: dict[str, dict[str, Field]] = {
    "hello": {},
    "status": {
        "state": Field(str, required=True, choices=("online", "away", "offline"))
    },
    "accept": {"conversation": CONVERSATION},
    "message": {"conversation": CONVERSATION, "id": CLIENT_ID_FIELD, "body": BODY},
    "typing": {"conversation": CONVERSATION, "state": Field(bool, required=True)},
    "end": {"conversation": CONVERSATION},
    "sync": {"conversation": CONVERSATION, "after": Field(int, required=True)},
    # The whole list (``names``), or changes to the stored one (``add``,
    # ``remove``), which keep what another frame added a moment before.
    "tags": {
        "conversation": CONVERSATION,
        "names": Field(list, max_length=64, max_items=20),
        "add": Field(list, max_length=64, max_items=20),
        "remove": Field(list, max_length=64, max_items=20),
    },
    "transfer": {
        "conversation": CONVERSATION,
        "operator": Field(int),
        "department": Field(int),
        "note": _text(1000, required=False),
    },
    "transfer-answer": {
        "transfer": Field(int, required=True),
        "accept": Field(bool, required=True),
    },
    "push": {"conversation": CONVERSATION, "url": _text(2000)},
    "transcript": {
        "conversation": CONVERSATION,
        "to": Field(str, required=True, choices=("customer", "me")),
    },
    "visitors": {},
    "invite": {"visitor": Field(int, required=True), "message": _text(500)},
    # A customer's message into the operator's language (``seq``), or the
    # operator's draft into the customer's (``text``).
    "translate": {
        "conversation": CONVERSATION,
        "seq": Field(int),
        "text": _text("MAX_MESSAGE_LENGTH", required=False),
    },
    "ping": {},
}

# Who among the staff gets a frame the server sends to panels.

#: Every panel: nothing of any customer in it.
EVERYONE = "everyone"
#: About one chat, on the staff channel: only the panels that hear of that
#: chat (:func:`~flask_livehelp.services.access.hears_of`), so the frame must
#: carry its ``department_id`` and ``operator_id``.
DEPARTMENT = "department"
#: On one operator's own channel, for their panels alone.
OWN = "own"
#: On a chat's channels, which a panel follows only while it may see the chat.
FOLLOWERS = "followers"
#: The answer to the panel's own frame, sent on its socket alone.
REPLY = "reply"

#: Every frame type the server sends to operator panels, and its audience.
#: The operator socket drops a frame from the staff or an operator channel
#: that this does not allow (a new type not listed here included), and
#: tests/test_roles.py checks each type against the departments.
STAFF_FRAMES: dict[str, str] = {
    "presence": EVERYONE,
    "hub": EVERYONE,
    # What an admin just changed that open panels go by (idle time...).
    "settings": EVERYONE,
    "queued": DEPARTMENT,
    "accepted": DEPARTMENT,
    "ended": DEPARTMENT,
    "transferred": DEPARTMENT,
    "offline": DEPARTMENT,
    "answered": DEPARTMENT,
    "reply": DEPARTMENT,
    # An offer to a department (``department_id`` is where it goes), or on
    # the channel of the colleague it is offered to.
    "transfer": DEPARTMENT,
    "assigned": OWN,
    "unassigned": OWN,
    "routed": OWN,
    "status": OWN,
    "signed-out": OWN,
    "transfer-declined": OWN,
    "invitation-declined": OWN,
    "message": FOLLOWERS,
    "typing": FOLLOWERS,
    "conversation": FOLLOWERS,
    "queue": FOLLOWERS,
    "hello": REPLY,
    "ack": REPLY,
    "synced": REPLY,
    "notice": REPLY,
    "error": REPLY,
    "pong": REPLY,
    "visitors": REPLY,
    "translation": REPLY,
}


# The frames the server builds for a stored message, as both sides read them.


class MessageFrame(t.TypedDict):
    type: t.Literal["message"]
    conversation: int
    seq: int
    #: The id the sending client made.
    id: str | None
    author: str
    name: str | None
    kind: str
    body: str
    data: c.Mapping[str, object] | None
    via: str
    at: str | None


class HiddenFrame(t.TypedDict):
    type: t.Literal["hidden"]
    conversation: int
    seq: int


class TypingFrame(t.TypedDict):
    type: t.Literal["typing"]
    conversation: int
    author: str
    state: bool


class AckFrame(t.TypedDict):
    type: t.Literal["ack"]
    id: str | None
    conversation: int
    seq: int


@dataclasses.dataclass(frozen=True)
class Frame:
    type: str
    #: Each value as its spec checked it (text, number, flag or list).
    fields: dict[str, t.Any]

    # Loosely typed: the spec, not the type, says what a field holds.
    def __getitem__(self, name: str) -> t.Any:
        return self.fields.get(name)


def parse_frame(
    text: str | bytes,
    specs: dict[str, dict[str, Field]],
    limits: t.Callable[[str], int],
) -> Frame:
    """Check one inbound frame against ``specs``.

    :param limits: Returns the value of a length setting, e.g.
        ``MAX_MESSAGE_LENGTH``.
    :raises FrameError: The frame is not valid JSON, of an unknown type, or a
        field is missing, of the wrong type or too long.
    """
    if isinstance(text, bytes):
        raise FrameError("bad-frame", N_("Frames must be JSON text."))
    try:
        data = json.loads(text)
    except ValueError:
        raise FrameError("bad-frame", N_("Frames must be JSON text.")) from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise FrameError("bad-frame", N_("A frame must be an object with a type."))
    kind = data["type"]
    if kind not in specs:
        raise FrameError("unknown-type", N_("Unknown frame type."), ref=kind[:32])
    ref = data.get("id") if isinstance(data.get("id"), str) else kind
    fields = {
        name: _check_field(name, field, data.get(name), limits, ref)
        for name, field in specs[kind].items()
    }
    if (
        "id" in fields
        and fields["id"] is not None
        and not CLIENT_ID.fullmatch(fields["id"])
    ):
        raise FrameError("bad-field", N_("The message id is not valid."), ref=kind)
    return Frame(kind, fields)


# The value is JSON from the wire, not yet checked against the spec.
def _check_field(
    name: str,
    field: Field,
    value: t.Any,
    limits: t.Callable[[str], int],
    ref: str | None,
) -> t.Any:
    if value is None:
        if field.required:
            raise FrameError(
                "bad-field", N_("The field %(field)s is missing."), ref, field=name
            )
        return None
    # bool is a subclass of int in Python, but not a number in our frames.
    wrong_type = not isinstance(value, field.kind) or (
        field.kind is int and isinstance(value, bool)
    )
    if wrong_type:
        raise FrameError(
            "bad-field", N_("The field %(field)s has the wrong type."), ref, field=name
        )
    if field.kind is str:
        if has_surrogates(value):
            raise FrameError("bad-field", NOT_TEXT, ref, field=name)
        value = without_controls(value)
        if field.required and is_blank(value):
            raise FrameError(
                "bad-field", N_("The field %(field)s is empty."), ref, field=name
            )
        limit = field.max_length
        maximum = limits(limit) if isinstance(limit, str) else limit
        if maximum is not None and len(value) > maximum:
            raise FrameError(
                "too-long",
                N_("The field %(field)s is longer than %(max)d characters."),
                ref,
                field=name,
                max=maximum,
            )
    if field.kind is list:
        value = _check_list(name, field, value, ref)
    if field.kind is int and value < 0:
        raise FrameError(
            "bad-field", N_("The field %(field)s has the wrong type."), ref, field=name
        )
    if field.choices is not None and value not in field.choices:
        raise FrameError(
            "bad-field",
            N_("The field %(field)s has an unknown value."),
            ref,
            field=name,
        )
    return value


# Wire JSON too: its items are checked here.
def _check_list(
    name: str, field: Field, value: list[t.Any], ref: str | None
) -> list[str]:
    if len(value) > field.max_items or not all(isinstance(v, str) for v in value):
        raise FrameError(
            "bad-field", N_("The field %(field)s has the wrong type."), ref, field=name
        )
    limit = t.cast(int, field.max_length)
    if any(len(v) > limit for v in value):
        raise FrameError(
            "too-long",
            N_("The field %(field)s is longer than %(max)d characters."),
            ref,
            field=name,
            max=limit,
        )
    if any(has_surrogates(v) for v in value):
        raise FrameError("bad-field", NOT_TEXT, ref, field=name)
    return [without_controls(v) for v in value]


class Said(t.Protocol):
    """A stored message: its row, or what storing it just returned."""

    @property
    def conversation_id(self) -> int: ...
    @property
    def seq(self) -> int: ...
    @property
    def client_id(self) -> str | None: ...
    @property
    def author(self) -> str: ...
    @property
    def author_name(self) -> str | None: ...
    @property
    def kind(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def data(self) -> c.Mapping[str, object] | None: ...
    @property
    def via(self) -> str: ...
    @property
    def staff_only(self) -> bool: ...
    @property
    def created_at(self) -> dt.datetime: ...


def isoformat(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def message_frame(message: Said) -> MessageFrame:
    """The frame that carries one stored message or event."""
    return {
        "type": "message",
        "conversation": message.conversation_id,
        "seq": message.seq,
        "id": message.client_id,
        "author": message.author,
        "name": message.author_name,
        "kind": message.kind,
        "body": message.body,
        "data": message.data,
        "via": message.via,
        "at": isoformat(message.created_at),
    }


def hidden_frame(message: Said) -> HiddenFrame:
    """A message only staff may read, as the visitor gets it: its number alone.

    So the visitor's numbers have no holes, and a hole always means a frame
    that went missing.
    """
    return {
        "type": "hidden",
        "conversation": message.conversation_id,
        "seq": message.seq,
    }


def numbered_frame(message: Said, *, staff: bool) -> MessageFrame | HiddenFrame:
    """A stored message as staff, or as the visitor, may get it."""
    if message.staff_only and not staff:
        return hidden_frame(message)
    return message_frame(message)


def conversation_frame(
    conversation: ConversationMixin, *, staff: bool
) -> dict[str, object]:
    """A conversation's state, as the visitor or as staff may see it."""
    operator = conversation.operator
    frame: dict[str, object] = {
        "type": "conversation",
        "id": conversation.id,
        "status": conversation.status,
        "operator": operator.name if operator is not None else None,
        "last_seq": conversation.last_seq,
        "created_at": isoformat(conversation.created_at),
        "accepted_at": isoformat(conversation.accepted_at),
        "ended_at": isoformat(conversation.ended_at),
    }
    if staff:
        frame.update(
            operator_id=conversation.operator_id,
            department_id=conversation.department_id,
            origin=conversation.origin,
            locale=conversation.locale,
            visitor_name=conversation.visitor_name,
            visitor_email=conversation.visitor_email,
            email_consent=conversation.email_consent,
            page_url=conversation.page_url,
            last_visitor_message_at=isoformat(conversation.last_visitor_message_at),
            last_operator_message_at=isoformat(conversation.last_operator_message_at),
        )
    return frame


def typing_frame(conversation_id: int, author: str, state: bool) -> TypingFrame:
    return {
        "type": "typing",
        "conversation": conversation_id,
        "author": author,
        "state": state,
    }


def ack_frame(message: Said) -> AckFrame:
    return {
        "type": "ack",
        "id": message.client_id,
        "conversation": message.conversation_id,
        "seq": message.seq,
    }
