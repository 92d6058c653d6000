"""Making chats and staff for the history, admin, report and role tests.

Everything goes through the services, as the panel and the sockets do; only
the moments of a chat are set by hand afterwards, where a test needs a chat
from another day.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import typing as t

import sqlalchemy as sa
from flask import Flask

from flask_livehelp import get_state

_client_ids = itertools.count(1)


def department(app: Flask, name: str, email: str | None = None) -> int:
    with app.app_context():
        return t.cast(
            int,
            get_state()
            .operators.save_department(None, name=name, email=email, by=None)
            .id,
        )


def chat(
    app: Flask,
    *,
    operator: t.Any | None = None,
    department_id: int | None = None,
    name: str | None = "Karen",
    email: str | None = None,
    question: str = "Hej, har I den i blå?",
    answers: t.Sequence[str] = (),
    visitor_says: t.Sequence[str] = (),
    end: bool = True,
    tags: t.Sequence[str] = (),
    started: dt.datetime | None = None,
    visitor_id: int | None = None,
    ip_address: str | None = "192.0.2.7",
) -> int:
    """A chat from the question to its end, as customer and operator make it.

    :param operator: Accepts and answers it; without one it stays queued or,
        with ``end``, ends as missed.
    :param started: Moves the whole chat to this moment afterwards.
    """
    with app.app_context():
        state = get_state()
        if visitor_id is None:
            visitor, _ = state.visitors.create(
                ip_address=ip_address, user_agent="Mozilla/5.0 (test)", locale="da"
            )
            visitor_id = visitor.id
        conversation, _ = state.conversations.start(
            visitor_id,
            client_id=f"q{next(_client_ids)}",
            body=question,
            name=name,
            email=email,
            department_id=department_id,
        )
        chat_id = t.cast(int, conversation.id)
        owner = None
        if operator is not None:
            owner = state.operators.get(operator.id)
            state.conversations.accept(owner, chat_id)
            for answer in answers:
                state.conversations.post_by_operator(
                    owner, chat_id, client_id=f"a{next(_client_ids)}", body=answer
                )
            for said in visitor_says:
                state.conversations.post_by_visitor(
                    visitor_id, chat_id, client_id=f"v{next(_client_ids)}", body=said
                )
            if tags:
                state.conversations.set_tags(owner, chat_id, list(tags))
        if end:
            state.conversations.end(
                chat_id, by="operator" if owner else "visitor", operator=owner
            )
        if started is not None:
            move(app, chat_id, started)
        return chat_id


def move(app: Flask, chat_id: int, started: dt.datetime) -> None:
    """Shift a chat and its messages so that it started at ``started``."""
    with app.app_context():
        state = get_state()
        model, message = state.models.conversation, state.models.message
        conversation = state.db.session.get(model, chat_id)
        shift = started - conversation.created_at
        for column in (
            "created_at",
            "accepted_at",
            "ended_at",
            "first_response_at",
            "last_visitor_message_at",
            "last_operator_message_at",
        ):
            value = getattr(conversation, column)
            if value is not None:
                setattr(conversation, column, value + shift)
        for row in state.db.session.execute(
            sa.select(message).where(message.conversation_id == chat_id)
        ).scalars():
            row.created_at = row.created_at + shift
        state.db.session.commit()


def set_times(app: Flask, chat_id: int, **moments: dt.datetime | None) -> None:
    """Set some moments of a chat by hand (``accepted_at=...``)."""
    with app.app_context():
        state = get_state()
        conversation = state.db.session.get(state.models.conversation, chat_id)
        for column, value in moments.items():
            setattr(conversation, column, value)
        state.db.session.commit()


def csrf_of(client: t.Any, path: str = "/livehelp/history/") -> str:
    """Our CSRF token, as a page of the panel carries it."""
    page = client.get(path)
    return csrf_in(page.text, f"{path} ({page.status_code})")


def csrf_in(page: str, where: str = "the page") -> str:
    """The CSRF token of a form on ``page`` (its HTML)."""
    found = re.search(r'name="_lh_csrf" value="([^"]+)"', page)
    assert found, f"no CSRF token on {where}"
    return found.group(1)


def listed(page_text: str) -> list[int]:
    """The chat ids of a history list page, in order."""
    return [int(i) for i in re.findall(r'<tr data-id="(\d+)"', page_text)]


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=dt.UTC)  # type: ignore[misc]
