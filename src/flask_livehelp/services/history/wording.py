"""A transcript in words: names, events and moments, in the reader's language."""

from __future__ import annotations

import collections.abc as c
import datetime as dt

from ...formatting import format_moment
from ...formatting import time_zone
from ...i18n import _lh
from ...i18n import N_
from ...models import ConversationMixin
from ...models import DepartmentMixin
from ...models import MessageMixin
from ...models import OperatorMixin


def customer_name(conversation: ConversationMixin) -> str:
    return conversation.visitor_name or _lh("Anonymous visitor")


def author_name(message: MessageMixin) -> str:
    if message.author_name:
        return message.author_name
    return _lh("Visitor") if message.author == "visitor" else _lh("Operator")


#: What an ended chat says, by who or what ended it.
ENDED = {
    "visitor": N_("The customer ended the chat."),
    "operator": N_("%(operator)s ended the chat."),
    "timeout": N_("The chat timed out."),
    "inactive": N_("The chat was closed after a long silence."),
}


def event_text(message: MessageMixin) -> str:
    """An event of a transcript in words, e.g. "Mette accepted the chat."."""
    data = message.data or {}
    operator = data.get("operator") or _lh("An operator")
    name = message.body
    if name == "accepted":
        return _lh("%(name)s accepted the chat.", name=operator)
    if name == "ended":
        by = data.get("by")
        if by == "operator" and not data.get("operator"):
            return _lh("The chat has ended.")
        return _lh(ENDED.get(str(by), N_("The chat has ended.")), operator=operator)
    if name == "transfer-offered":
        text = _lh(
            "%(operator)s offered the chat to %(target)s.",
            operator=operator,
            target=data.get("to") or "?",
        )
        note = data.get("note")
        return f"{text} {_lh('Note')}: {note}" if note else text
    if name == "transferred":
        if data.get("from_operator"):
            return _lh(
                "%(operator)s took over the chat from %(previous)s.",
                operator=operator,
                previous=data["from_operator"],
            )
        return _lh("%(operator)s took over the chat.", operator=operator)
    if name == "pushed":
        return _lh(
            "%(operator)s showed the customer %(url)s.",
            operator=operator,
            url=data.get("url") or "",
        )
    if name == "returned":
        return _lh("The chat went back to the queue.")
    return name


def name_of(thing: OperatorMixin | DepartmentMixin | None) -> str:
    return thing.name if thing is not None else ""


def moments_in(timezone: str | None, *, iso: bool = False) -> c.Callable[..., str]:
    """A formatter of moments in ``timezone``: the reader's words, or ISO 8601."""
    if iso:
        zone = time_zone(timezone)

        def as_iso(moment: dt.datetime | None, format: str = "") -> str:
            return "" if moment is None else moment.astimezone(zone).isoformat()

        return as_iso

    def in_words(moment: dt.datetime | None, format: str = "medium") -> str:
        return format_moment(moment, timezone, format)

    return in_words
