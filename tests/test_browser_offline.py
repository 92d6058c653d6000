"""An offline message end to end in Chromium, with a real SMTP server.

Nobody is online: the customer leaves a message from the red button and sees
it was received; the shop and the customer get it by mail; an operator
answers it from the panel, and the answer reaches the SMTP server.
"""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask
from playwright.sync_api import Browser
from playwright.sync_api import BrowserContext
from playwright.sync_api import expect
from playwright.sync_api import Page

from flask_livehelp import get_state
from mailservers import SMTPServer
from mailservers import text_of
from test_browser_chat import chat
from test_browser_chat import launcher
from test_browser_chat import sign_in

QUESTION = "Hej! Kan I sende regnjakken til Ærøskøbing inden fredag?"
ANSWER = "Hej Søren, ja - den går med posten i dag. Venlig hilsen Mette"
MAILBOX = "kundeservice@nordlys.example"


@pytest.fixture
def shop_mail(shop: Flask, smtp_server: SMTPServer) -> t.Iterator[SMTPServer]:
    """The shop mails through the test's SMTP server, to its own mailbox."""
    smtp_server.serve(shop)
    shop.config["LIVEHELP_OFFLINE_MAILBOX"] = MAILBOX
    yield smtp_server
    get_state(shop).mail.wait_idle()


@pytest.fixture
def pages(browser: Browser) -> t.Iterator[t.Callable[[], Page]]:
    contexts: list[BrowserContext] = []

    def new_page() -> Page:
        context = browser.new_context()
        contexts.append(context)
        return context.new_page()

    yield new_page
    for context in contexts:
        context.close()


def test_an_offline_message_from_the_red_button_answered_from_the_panel(
    shop: Flask,
    shop_server: t.Any,
    shop_mail: SMTPServer,
    pages: t.Callable[[], Page],
) -> None:
    base = shop_server.url
    customer = pages()
    customer.goto(base + "/product/regnjakke-blaa")
    expect(launcher(customer)).to_have_class("offline")
    launcher(customer).click()

    window = chat(customer)
    expect(window.locator("#lh-offline")).to_be_visible()
    window.locator("#lh-offline-body").fill(QUESTION)
    window.locator("#lh-offline-name").fill("Søren Ærø")
    window.locator("#lh-offline-email").fill("soren@example.dk")
    window.locator("#lh-offline button[type=submit]").click()
    expect(window.locator("#lh-offline-done")).to_be_visible()
    expect(window.locator("#lh-offline-done-text")).to_contain_text(
        "We have your message"
    )

    # The shop's mailbox has it, and the customer has a copy.
    shop_mail.wait_for(2)
    [staff] = shop_mail.to(MAILBOX)
    assert QUESTION in text_of(staff.message)
    assert staff.message["Reply-To"] == "soren@example.dk"
    [copy] = shop_mail.to("soren@example.dk")
    assert QUESTION in text_of(copy.message)

    operator = pages()
    sign_in(operator, base)
    operator.get_by_role("link", name="Offline messages").click()
    operator.get_by_role("link", name="Søren Ærø").click()
    expect(operator.locator(".lh-transcript")).to_contain_text(QUESTION)
    operator.locator("#lh-answer-body").fill(ANSWER)
    operator.get_by_role("button", name="Send answer").click()
    expect(operator.locator(".lh-flash")).to_contain_text("on its way by mail")
    expect(operator.locator(".lh-transcript")).to_contain_text(ANSWER)

    [*_, answer] = shop_mail.wait_for(3)
    assert answer.recipients == ["soren@example.dk"]
    assert ANSWER in text_of(answer.message)
    assert answer.message["Subject"] == "Answer to your message"


@pytest.mark.parametrize(
    ("email", "sender", "said"),
    [
        (
            "soren@example.dk",
            True,
            "We have your message and will answer by e-mail."
            " A copy is on its way to soren@example.dk.",
        ),
        (
            "",
            True,
            "Without an e-mail address we cannot answer you by mail",
        ),
        ("soren@example.dk", False, "Thank you! We have your message."),
    ],
    ids=["with-address", "without-address", "mail-not-set-up"],
)
def test_the_customer_is_told_what_will_really_happen(
    shop: Flask,
    shop_server: t.Any,
    shop_mail: SMTPServer,
    pages: t.Callable[[], Page],
    email: str,
    sender: bool,
    said: str,
) -> None:
    if not sender:
        shop.extensions["mail"].default_sender = None
    customer = pages()
    customer.goto(shop_server.url + "/")
    expect(launcher(customer)).to_have_class("offline")
    launcher(customer).click()
    window = chat(customer)
    window.locator("#lh-offline-body").fill(QUESTION)
    window.locator("#lh-offline-email").fill(email)
    window.locator("#lh-offline button[type=submit]").click()
    done = window.locator("#lh-offline-done-text")
    expect(done).to_contain_text(said)
    if not sender:
        expect(done).not_to_contain_text("e-mail")
