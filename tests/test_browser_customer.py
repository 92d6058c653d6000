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
from browser import customer_on_site
from browser import go_online
from browser import launcher
from browser import online_operator
from browser import reply
from browser import set_status
from browser import shop_state
from browser import sign_in
from browser import staffed_chat
from browser import write
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


# Indicators that clear.


def test_the_operator_stops_reading_writing_once_the_customer_sent(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    customer, operator = staffed_chat(new_page, shop_server.url)
    box = chat(customer).locator("#lh-input")
    box.press_sequentially("Jeg vil gerne bytte", delay=30)
    expect(operator.locator("#lh-typing")).to_have_text("The visitor is writing...")
    box.press("Enter")
    expect(operator.locator("#lh-log")).to_contain_text("Jeg vil gerne bytte")
    # Not after a quiet spell: the line is sent, so the writing is over.
    expect(operator.locator("#lh-typing")).to_have_text("", timeout=3000)


def test_the_offline_banner_goes_when_the_network_is_back(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    customer, operator = staffed_chat(new_page, shop_server.url)
    window = chat(customer)
    expect(window.locator("#lh-log .lh-msg small")).to_have_text("Delivered")
    customer.context.set_offline(True)
    banner = window.locator("#lh-net")
    expect(banner).to_have_text(
        "You are offline. We will send your messages when you are back."
    )
    customer.context.set_offline(False)
    expect(banner).to_be_hidden()
    write(customer, "Er du der stadig?")
    expect(operator.locator("#lh-log")).to_contain_text("Er du der stadig?")
    expect(banner).to_be_hidden()


def test_without_a_chat_the_offline_banner_goes_too(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    online_operator(new_page, shop_server.url)
    customer = customer_on_site(new_page, shop_server.url)
    launcher(customer).click()
    banner = chat(customer).locator("#lh-net")
    expect(chat(customer).locator("#lh-question")).to_be_visible()
    customer.context.set_offline(True)
    expect(banner).to_be_visible()
    customer.context.set_offline(False)
    expect(banner).to_be_hidden()
