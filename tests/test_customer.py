"""What a customer is told and sent, checked without a browser."""

from __future__ import annotations

import datetime as dt
import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_livehelp import get_state
from flask_livehelp.models import utcnow
from flask_livehelp.services import timeouts
from staff import chat

# "Back in five minutes" keeps the chat waiting.


def _present(app: Flask, operator: t.Any, status: str, since: dt.datetime) -> None:
    """The operator's panel is open, with ``status`` chosen at ``since``."""
    with app.app_context():
        state = get_state()
        state.presence.open_connection(operator.id)
        state.presence.set_status(operator.id, status)
        model = state.models.operator
        state.db.session.execute(
            sa.update(model)
            .where(model.id == operator.id)
            .values(status_changed_at=since)
        )
        state.db.session.commit()
        state.presence.forget_state()


def _timed_out(app: Flask) -> tuple[list[int], int]:
    """Run the queue time-out job; what timed out and how many mails it wrote."""
    with app.app_context():
        state = get_state()
        timed_out = timeouts.time_out_queue(state)
        mails = state.db.session.execute(
            sa.select(sa.func.count()).select_from(state.models.mail)
        ).scalar_one()
        return timed_out, mails


@pytest.mark.livehelp(queue_timeout_seconds=240, offline_mailbox="shop@example.com")
def test_a_chat_waits_for_away_operators_however_long(
    app: Flask, operator: t.Any
) -> None:
    ten_minutes_ago = utcnow() - dt.timedelta(minutes=10)
    _present(app, operator, "away", ten_minutes_ago)
    conversation_id = chat(app, end=False, started=ten_minutes_ago)
    assert _timed_out(app) == ([], 0)
    with app.app_context():
        assert get_state().conversations.get(conversation_id).status == "queued"


@pytest.mark.livehelp(queue_timeout_seconds=240, offline_mailbox="shop@example.com")
def test_the_queue_time_counts_again_from_the_operators_return(
    app: Flask, operator: t.Any
) -> None:
    ten_minutes_ago = utcnow() - dt.timedelta(minutes=10)
    conversation_id = chat(app, end=False, started=ten_minutes_ago)
    # Back a minute ago: they have had a minute of the four, not ten.
    _present(app, operator, "online", utcnow() - dt.timedelta(minutes=1))
    assert _timed_out(app) == ([], 0)
    # Back five minutes ago, and still nobody took it: now it is mailed.
    _present(app, operator, "online", utcnow() - dt.timedelta(minutes=5))
    timed_out, mails = _timed_out(app)
    assert timed_out == [conversation_id] and mails == 1
