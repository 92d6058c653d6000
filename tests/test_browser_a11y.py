"""axe-core in Chromium: the chat window, the button, the panel and its sign-in,
and the staff pages."""

from __future__ import annotations

import typing as t

import pytest
from axe_playwright_python.sync_playwright import Axe
from flask import Flask
from playwright.sync_api import expect

from browser import accept_first
from browser import chat
from browser import customer_asking
from browser import held_requests
from browser import launcher
from browser import online_operator
from browser import reply
from browser import sign_in
from browser import STAFF_PAGES
from browser import staffed_chat

AXE = Axe()
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


def accessible(target: t.Any, context: str | None = None) -> None:
    """axe-core finds nothing wrong in a page or frame (or its ``context``)."""
    found = AXE.run(target, context=context).response["violations"]
    problems = [
        f"{v['id']} ({v['impact']}): {[node['target'] for node in v['nodes']]}"
        for v in found
    ]
    assert not problems, "\n".join(problems)


def chat_frame(page: t.Any) -> t.Any:
    """The chat window's frame itself, to run axe-core inside it."""
    expect(page.locator("livehelp-widget iframe")).to_be_visible()
    frame = page.locator("livehelp-widget iframe").element_handle().content_frame()
    assert frame is not None
    return frame


def test_the_open_chat_window_and_its_button(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    customer, operator = staffed_chat(new_page, shop_server.url)
    reply(operator, "Ja, i alle størrelser.")
    expect(chat(customer).locator("#lh-log")).to_contain_text("i alle størrelser")
    accessible(chat_frame(customer))
    accessible(customer, "livehelp-widget")
    # The panel too, signed in, online, with the chat open.
    accessible(operator)


def test_the_chat_window_before_a_chat_and_offline(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    customer = new_page()
    customer.goto(shop_server.url + "/")
    launcher(customer).click()
    window = chat(customer)
    expect(window.locator("#lh-offline")).to_be_visible()
    accessible(chat_frame(customer))
    accessible(customer, "livehelp-widget")


def test_the_button_has_its_state_and_words_before_the_status_answers(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    """The state came only with the first status answer: until then the
    button was an empty pill without a name for screen readers, which then
    grew and moved (for seconds on a slow line)."""
    customer = new_page()
    held = held_requests(customer, "**/livehelp/widget/status*")
    customer.goto(shop_server.url + "/")
    button = launcher(customer)
    expect(button).to_have_class("offline")
    expect(button).to_have_accessible_name("Offline - send a message")
    accessible(customer, "livehelp-widget")
    assert held, "the status request was not held"
    # An operator comes online: the next page has it from its first paint.
    online_operator(new_page, shop_server.url)
    customer.goto(shop_server.url + "/cart")
    expect(button).to_have_class("online")
    expect(button).to_have_accessible_name("We are online - chat with us")


def test_the_chat_window_has_its_name_when_opened_before_the_shops_state(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    """Its name was the button's words, which come with the status answer: a
    customer quicker than that answer (a loaded server) opened a window
    without a name for screen readers."""
    customer = new_page()
    held = held_requests(customer, "**/livehelp/widget/status*")
    customer.goto(shop_server.url + "/")
    launcher(customer).click()
    frame = customer.locator("livehelp-widget iframe")
    expect(frame).to_have_attribute("title", "Chat with us")
    expect(chat(customer).locator("#lh-title")).to_have_text("Chat with us")
    assert held, "the status request was not held"


def test_the_panel_sign_in_page(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    page = new_page()
    page.goto(shop_server.url + "/livehelp/panel/")
    expect(page.locator("input[name=email]")).to_be_visible()
    accessible(page)
    sign_in(page, shop_server.url)


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_the_staff_pages(
    viewport: dict[str, int], shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    """Every staff page, with a finished chat in the history and the
    outbox, on a laptop and on a phone."""
    base = shop_server.url
    operator = online_operator(new_page, base)
    operator.set_viewport_size(viewport)
    customer = customer_asking(new_page, base, "en")
    accept_first(operator)
    operator.click("#lh-end")
    expect(chat(customer).locator("#lh-new")).to_be_visible()
    operator.goto(f"{base}/livehelp/history/")
    operator.locator(".lh-history-table tbody a").first.click()
    expect(operator.locator(".lh-transcript")).to_be_visible()
    accessible(operator)
    for path in STAFF_PAGES:
        operator.goto(f"{base}/livehelp/{path}")
        accessible(operator)
