"""The example shop in Danish, end to end in Chromium, with a real SMTP server.

A Danish customer sees the seed's red "Sælger er offline - send en besked"
and then the green "Sælgeren er online"; the chat window, the chat itself
and the offline form speak Danish; an operator who chose Danish works in a
Danish panel and gets the offline message by mail in Danish.
"""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask
from playwright.sync_api import expect
from playwright.sync_api import Page

from browser import accept_first
from browser import ask
from browser import chat
from browser import launcher
from browser import reply
from browser import set_status
from browser import shop_state
from browser import sign_in
from flask_livehelp import get_state
from mailservers import SMTPServer
from mailservers import text_of

LISE = {"name": "Lise", "email": "lise@nordlys.example", "password": "kanel-snegl"}
PAGE = "/product/regnjakke-blaa?lang=da"
QUESTION = "Har I regnjakken i blå, størrelse M?"


@pytest.fixture
def danish_operator(shop: Flask) -> dict[str, str]:
    """An operator whose panel and staff mails are in Danish."""
    with shop.app_context():
        get_state(shop).operators.create_operator(
            **LISE, locale="da", receives_offline=True
        )
    return LISE


@pytest.fixture
def shop_mail(shop: Flask, smtp_server: SMTPServer) -> t.Iterator[SMTPServer]:
    smtp_server.serve(shop)
    yield smtp_server
    get_state(shop).mail.wait_idle()


def test_the_shop_in_danish_from_red_button_to_green_and_a_danish_chat(
    shop_server: t.Any,
    danish_operator: dict[str, str],
    new_page: t.Callable[..., Page],
) -> None:
    base = shop_server.url
    customer = new_page()
    customer.goto(base + PAGE)
    shop_state(customer, "offline")
    expect(launcher(customer)).to_have_text("Sælger er offline - send en besked")

    operator = new_page()
    sign_in(operator, base, danish_operator["email"], danish_operator["password"])
    expect(operator.locator("html")).to_have_attribute("lang", "da")
    panel = operator.locator("#lh-panel")
    expect(panel).to_contain_text("Tilbage om fem minutter")
    expect(panel).to_contain_text("Aktive chats")
    expect(operator.locator("#lh-queue")).to_have_text("Ingen venter.")
    set_status(operator, "online")

    # No reload: the button turns green, in the seed's words.
    shop_state(customer, "online")
    expect(launcher(customer)).to_have_text("Sælgeren er online")

    launcher(customer).click()
    window = chat(customer)
    expect(window.locator("label[for=lh-question]")).to_have_text(
        "Hvordan kan vi hjælpe dig?"
    )
    expect(window.locator("#lh-prechat button[type=submit]")).to_have_text("Start chat")
    ask(customer, QUESTION)
    expect(window.locator("#lh-notice")).to_contain_text(
        "Tak, vi har modtaget din besked. En sælger er hos dig om lidt."
    )
    expect(window.locator("#lh-input")).to_have_attribute(
        "placeholder", "Skriv en besked"
    )

    queued = operator.locator("#lh-queue .lh-item")
    expect(queued).to_contain_text("Anonym besøgende")
    expect(queued).to_contain_text("venter")
    accept_first(operator)
    expect(operator.locator("#lh-log")).to_contain_text("Lise tog imod chatten.")
    expect(operator.locator("#lh-end")).to_have_text("Afslut chat")
    expect(window.locator("#lh-log")).to_contain_text("Lise er kommet med i chatten.")

    reply(operator, "Ja, den har vi på lager.")
    expect(window.locator("#lh-log")).to_contain_text("Ja, den har vi på lager.")
    operator.click("#lh-end")
    expect(window.locator("#lh-log")).to_contain_text("Chatten er afsluttet.")
    expect(window.locator("#lh-new")).to_have_text("Start en ny chat")


def test_the_offline_form_and_its_mails_in_danish(
    shop: Flask,
    shop_server: t.Any,
    shop_mail: SMTPServer,
    danish_operator: dict[str, str],
    new_page: t.Callable[..., Page],
) -> None:
    base = shop_server.url
    customer = new_page()
    customer.goto(base + PAGE)
    shop_state(customer, "offline")
    launcher(customer).click()

    window = chat(customer)
    form = window.locator("#lh-offline")
    expect(form.locator("h2")).to_have_text("Send en besked")
    expect(form).to_contain_text(
        "Der er ingen online lige nu. Skriv til os, så svarer vi pr. e-mail."
    )
    expect(form.locator("label[for=lh-offline-body]")).to_have_text("Din besked")
    window.locator("#lh-offline-body").fill(QUESTION)
    window.locator("#lh-offline-name").fill("Søren Ærø")
    window.locator("#lh-offline-email").fill("soren@example.dk")
    form.locator("button[type=submit]").click()
    expect(window.locator("#lh-offline-done-text")).to_have_text(
        "Tak! Vi har modtaget din besked og svarer dig pr. e-mail."
        " En kopi er på vej til soren@example.dk."
    )

    # Lise reads Danish; the shop's English demo operator gets English; the
    # customer's copy is in the language the customer wrote in.
    shop_mail.wait_for(3)
    [staff] = shop_mail.to(danish_operator["email"])
    assert staff.message["Subject"] == "Offlinebesked fra Søren Ærø"
    body = text_of(staff.message)
    assert "En kunde efterlod denne besked, mens ingen var online:" in body
    assert QUESTION in body
    assert "Besvar denne mail for at svare kunden." in body
    [english] = shop_mail.to("operator@example.com")
    assert english.message["Subject"] == "Offline message from Søren Ærø"
    [copy] = shop_mail.to("soren@example.dk")
    assert copy.message["Subject"] == "Vi har modtaget din besked"
    assert "Tak for din besked. Vi svarer dig pr. e-mail, så hurtigt vi kan." in (
        text_of(copy.message)
    )
