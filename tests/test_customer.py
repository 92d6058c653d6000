"""What a customer is told and sent, checked without a browser."""

from __future__ import annotations

import datetime as dt
import typing as t

import pytest
import sqlalchemy as sa
from babel.dates import format_datetime
from babel.dates import get_timezone
from babel.dates import get_timezone_name
from flask import Flask

from flask_livehelp import get_state
from flask_livehelp.models import utcnow
from flask_livehelp.services import timeouts
from mailservers import html_of
from mailservers import SMTPServer
from mailservers import text_of
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


# Mails to customers: their own time, the shop's look, text kept in its place.

OFFLINE_URL = "/livehelp/offline/message"
RTL_NAME = "سارة"
RTL_TEXT = "مرحبا، هل لديكم المعطف باللون الأزرق؟"


def offline_message(client: t.Any, **fields: t.Any) -> t.Any:
    body = {
        "id": "m1",
        "body": "Har I regnjakken i blå?",
        "name": "Søren",
        "email": "soren@example.dk",
        "page": "https://shop.example/product/regnjakke-blaa",
        "website": "",
        **fields,
    }
    answer = client.post(OFFLINE_URL, json=body)
    assert answer.status_code == 201, answer.text
    return answer


def in_zone(moment: dt.datetime, zone: str, lang: str = "en") -> str:
    """A time as a reader in ``zone`` reads it, the zone named."""
    tz = get_timezone(zone)
    when = format_datetime(moment, "medium", tzinfo=tz, locale=lang)
    return f"{when} ({get_timezone_name(moment.astimezone(tz), 'long', locale=lang)})"


def first_message(app: Flask) -> t.Any:
    with app.app_context():
        state = get_state()
        conversation = state.db.session.execute(
            sa.select(state.models.conversation)
        ).scalar_one()
        return state.conversations.messages_after(conversation.id, 0)[0]


@pytest.mark.livehelp(offline_mailbox="butik@shop.example", timezone="America/New_York")
def test_the_customer_reads_their_own_time_the_staff_the_shop_s(
    app: Flask, smtp: SMTPServer
) -> None:
    offline_message(app.test_client(), timezone="Europe/Copenhagen")
    smtp.wait_for(2)
    [copy] = smtp.to("soren@example.dk")
    [staff] = smtp.to("butik@shop.example")
    said = first_message(app).created_at
    assert in_zone(said, "Europe/Copenhagen") in text_of(copy.message)
    assert in_zone(said, "Europe/Copenhagen") in html_of(copy.message)
    assert in_zone(said, "America/New_York") in text_of(staff.message)


@pytest.mark.livehelp(offline_mailbox="butik@shop.example")
def test_without_a_zone_we_know_the_customer_reads_the_shop_s_named(
    app: Flask, smtp: SMTPServer
) -> None:
    offline_message(app.test_client(), timezone="Mars/Olympus_Mons")
    smtp.wait_for(2)
    [copy] = smtp.to("soren@example.dk")
    said = first_message(app).created_at
    assert in_zone(said, "UTC") in text_of(copy.message)
    assert "(Coordinated Universal Time)" in text_of(copy.message)


@pytest.mark.livehelp(
    offline_mailbox="butik@shop.example",
    shop_name="Nordlys Butik",
    mail_logo_url="https://shop.example/logo.png",
    widget_color="#f5c518",
)
def test_customer_mails_carry_the_shop_s_name_logo_and_colour(
    app: Flask, smtp: SMTPServer
) -> None:
    offline_message(app.test_client())
    smtp.wait_for(2)
    [copy] = smtp.to("soren@example.dk")
    [staff] = smtp.to("butik@shop.example")
    html = html_of(copy.message)
    assert "Nordlys Butik" in html
    assert '<img src="https://shop.example/logo.png"' in html
    # The widget's colour, with words readable on it.
    assert "background:#f5c518" in html and "color:#1b1f23" in html
    assert text_of(copy.message).lstrip().startswith("Nordlys Butik")
    assert 'class="brand"' not in html_of(staff.message)


@pytest.mark.livehelp(offline_mailbox="butik@shop.example")
def test_what_customers_write_keeps_its_place_in_every_mail(
    app: Flask, smtp: SMTPServer
) -> None:
    offline_message(
        app.test_client(), name=RTL_NAME, body=f"{RTL_TEXT}\nSize M, please."
    )
    smtp.wait_for(2)
    [copy] = smtp.to("soren@example.dk")
    [staff] = smtp.to("butik@shop.example")
    for delivery in (copy, staff):
        text = text_of(delivery.message).replace("\r\n", "\n")
        # Each line set apart in plain text, the whole in HTML.
        assert f"\u2068{RTL_TEXT}\u2069\n\u2068Size M, please.\u2069" in text
        assert '<div dir="auto"' in html_of(delivery.message)
    assert f"\u2068{RTL_NAME}\u2069" in text_of(staff.message)
    staff_html = html_of(staff.message)
    assert f"<bdi>{RTL_NAME}</bdi>" in staff_html
    assert (
        '<a href="https://shop.example/product/regnjakke-blaa"'
        ' rel="noopener noreferrer">'
    ) in staff_html


def test_the_transcript_gives_times_in_the_zone_the_widget_told(
    app: Flask, smtp: SMTPServer, visitor_socket: t.Any
) -> None:
    visitor = visitor_socket()
    visitor.send(type="hello", page="http://127.0.0.1/", timezone="Asia/Tokyo")
    visitor.expect("welcome")
    visitor.send(type="start", id="q1", body=RTL_TEXT, email="soren@example.dk")
    visitor.expect("ack", id="q1")
    visitor.send(type="transcript")
    visitor.expect("transcript")
    [delivery] = smtp.wait_for(1)
    said = first_message(app).created_at
    assert in_zone(said, "Asia/Tokyo") in text_of(delivery.message)
    assert "(Japan Standard Time)" in text_of(delivery.message)
    assert f"\u2068{RTL_TEXT}\u2069" in text_of(delivery.message)
