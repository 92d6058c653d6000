"""What a customer sees is true: checked in Chromium, as a customer uses the shop."""

from __future__ import annotations

import datetime as dt
import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask
from playwright.sync_api import expect

from browser import accept_first
from browser import ask
from browser import chat
from browser import go_online
from browser import reply
from browser import set_status
from browser import shop_state
from browser import sign_in
from flask_livehelp import get_state
from flask_livehelp.models import utcnow
from flask_livehelp.services import timeouts
from mailservers import SMTPServer


def mails_written(app: Flask) -> int:
    """The rows of the outbox: every mail ever queued, sent or not."""
    with app.app_context():
        state = get_state()
        return t.cast(
            int,
            state.db.session.execute(
                sa.select(sa.func.count()).select_from(state.models.mail)
            ).scalar_one(),
        )


# Away means away.


@pytest.mark.livehelp(queue_timeout_seconds=2, offline_mailbox="shop@example.com")
def test_away_for_ten_minutes_keeps_the_chat_waiting_and_mails_nothing(
    shop: Flask, shop_server: t.Any, new_page: t.Any, smtp_server: SMTPServer
) -> None:
    smtp_server.serve(shop)
    operator = new_page()
    sign_in(operator, shop_server.url)
    set_status(operator, "away")
    customer = new_page()
    customer.goto(shop_server.url + "/")
    shop_state(customer, "away")
    ask(customer, "Er der nogen?", email="karen@example.com")
    window = chat(customer)
    waiting = "We will be back in a few minutes and answer you here."
    expect(window.locator("#lh-notice")).to_contain_text(waiting)

    # Ten minutes go by, as far as the time-out job can tell.
    with shop.app_context():
        later = utcnow() + dt.timedelta(minutes=10)
        assert timeouts.time_out_queue(get_state(), now=later) == []
    assert mails_written(shop) == 0 and smtp_server.deliveries == []
    expect(window.locator("#lh-notice")).to_contain_text(waiting)
    expect(window.locator("#lh-composer")).to_be_visible()

    # The operator is back, and the chat is there to take.
    go_online(operator)
    accept_first(operator)
    reply(operator, "Ja, her er jeg.")
    expect(window.locator("#lh-log")).to_contain_text("Ja, her er jeg.")
    expect(window.locator("#lh-log")).not_to_contain_text("nobody could answer")
