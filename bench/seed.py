"""Chats made straight in the database, so thousands are ready in seconds."""

from __future__ import annotations

import dataclasses
import secrets
import typing as t

import sqlalchemy as sa

from bench.app import create_app
from flask_livehelp import get_state
from flask_livehelp.models import utcnow
from flask_livehelp.services.visitors import hash_token

PASSWORD = "bench password"


@dataclasses.dataclass(frozen=True)
class Chat:
    conversation_id: int
    token: str
    operator: int


@dataclasses.dataclass(frozen=True)
class Seeded:
    chats: list[Chat]
    operator_emails: list[str]


def seed(database_uri: str, chats: int, operators: int) -> Seeded:
    """``chats`` active chats, shared round-robin by ``operators`` operators."""
    app = create_app(database_uri, LIVEHELP_JOBS="off")
    with app.app_context():
        state = get_state()
        state.db.create_all()
        emails, operator_ids = _operators(state, operators)
        tokens = [secrets.token_urlsafe(32) for _ in range(chats)]
        now = utcnow()
        session = state.db.session
        visitor_ids = session.scalars(
            sa.insert(state.models.visitor).returning(
                state.models.visitor.id, sort_by_parameter_order=True
            ),
            [{"token_hash": hash_token(token), "locale": "en"} for token in tokens],
        ).all()
        conversation_ids = session.scalars(
            sa.insert(state.models.conversation).returning(
                state.models.conversation.id, sort_by_parameter_order=True
            ),
            [
                {
                    "visitor_id": visitor_id,
                    "operator_id": operator_ids[number % operators],
                    "status": "active",
                    "accepted_at": now,
                }
                for number, visitor_id in enumerate(visitor_ids)
            ],
        ).all()
        session.commit()
        session.remove()
        for engine in state.db.engines.values():
            engine.dispose()
    return Seeded(
        chats=[
            Chat(conversation_id, token, number % operators)
            for number, (conversation_id, token) in enumerate(
                zip(conversation_ids, tokens, strict=True)
            )
        ],
        operator_emails=emails,
    )


def _operators(state: t.Any, count: int) -> tuple[list[str], list[int]]:
    emails, ids = [], []
    for number in range(count):
        operator = state.operators.create_operator(
            name=f"Operator {number}",
            email=f"operator{number}@bench.example",
            password=PASSWORD,
        )
        emails.append(operator.email)
        ids.append(operator.id)
    model = state.models.operator
    # Any number of chats each, and online, so nothing is refused as busy;
    # seen just now, as if their panels had reloaded, or the first presence
    # job would count them gone and send every chat back to the queue.
    state.db.session.execute(
        sa.update(model).values(
            max_chats=100_000, status="online", last_seen_at=utcnow()
        )
    )
    state.db.session.commit()
    return emails, ids
