"""Who is there, and what the widget shows because of it."""

from __future__ import annotations

import datetime as dt
import typing as t

import pytest
from flask import Flask

from flask_livehelp.models import utcnow


def status_of(state: t.Any) -> str:
    state.presence.forget_state()
    return t.cast(str, state.presence.widget_state().state)


def test_offline_when_nobody_is_online(state: t.Any, operator: t.Any) -> None:
    assert status_of(state) == "offline"


def test_online_needs_the_chosen_status_and_an_open_panel(
    state: t.Any, operator: t.Any
) -> None:
    state.presence.set_status(operator.id, "online")
    # Chosen online long ago, but no panel was ever connected: not there.
    assert status_of(state) in ("away", "offline")
    connection = state.presence.open_connection(operator.id)
    assert status_of(state) == "online"
    state.presence.close_connection(connection, operator.id)
    # The panel went away a moment ago: shown as away for the grace time.
    assert status_of(state) == "away"


@pytest.mark.livehelp(presence_grace_seconds=60)
def test_away_then_offline_after_the_grace_time(state: t.Any, operator: t.Any) -> None:
    state.presence.set_status(operator.id, "online")
    connection = state.presence.open_connection(operator.id)
    state.presence.close_connection(connection, operator.id)
    later = utcnow() + dt.timedelta(seconds=61)
    assert state.presence.operators(now=later)[0].status == "offline"
    assert (
        state.presence.operators(now=utcnow() + dt.timedelta(seconds=30))[0].status
        == "away"
    )


def test_back_in_five_minutes_shows_away(state: t.Any, operator: t.Any) -> None:
    state.presence.open_connection(operator.id)
    state.presence.set_status(operator.id, "away")
    assert status_of(state) == "away"


def test_busy_when_every_online_operator_is_at_max_chats(
    state: t.Any, make_operator: t.Any
) -> None:
    solo = make_operator(max_chats=1)
    state.presence.open_connection(solo.id)
    state.presence.set_status(solo.id, "online")
    visitor, _ = state.visitors.create(ip_address=None, user_agent=None, locale=None)
    chat, _ = state.conversations.start(visitor.id, client_id="a", body="Hej")
    assert status_of(state) == "online"
    state.conversations.accept(solo, chat.id)
    assert status_of(state) == "busy"
    state.conversations.end(chat.id, by="operator", operator=solo)
    assert status_of(state) == "online"


def test_status_request_is_small_cacheable_and_translated(
    app: Flask, make_operator: t.Any
) -> None:
    response = app.test_client().get("/livehelp/widget/status?lang=en")
    assert response.status_code == 200
    assert response.json["state"] == "offline"
    assert response.json["label"] == "Offline - send a message"
    assert "max-age=2" in response.headers["Cache-Control"]
    assert "Set-Cookie" not in response.headers


@pytest.mark.livehelp(widget_texts={"da": {"offline": "Skriv til os"}})
def test_widget_texts_from_config_per_language(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/livehelp/widget/status?lang=da").json["label"] == "Skriv til os"
    english = client.get("/livehelp/widget/status?lang=en").json["label"]
    assert english == "Offline - send a message"
