"""A first real chat, end to end in Chromium: the shop's customer and an operator."""

from __future__ import annotations

import re
import threading
import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask
from playwright.sync_api import expect
from playwright.sync_api import Page
from playwright.sync_api import WebSocketRoute

from browser import accept_first
from browser import ask
from browser import chat
from browser import go_online
from browser import launcher
from browser import QUESTION
from browser import reply
from browser import SHOP_OPERATOR
from browser import shop_state
from browser import sign_in
from browser import staffed_chat
from browser import write
from flask_livehelp import get_state


@pytest.fixture
def customer(new_page: t.Any) -> Page:
    return t.cast(Page, new_page())


@pytest.fixture
def operator(new_page: t.Any) -> Page:
    return t.cast(Page, new_page())


def test_a_first_chat_from_the_shop_to_the_panel_and_back(
    shop: Flask, shop_server: t.Any, customer: Page, operator: Page
) -> None:
    base = shop_server.url
    customer.goto(base + "/product/regnjakke-blaa")
    expect(launcher(customer)).to_have_class("offline")
    expect(launcher(customer)).to_have_text("Offline - send a message")

    sign_in(operator, base)
    go_online(operator)
    # No reload: the button turns green by itself.
    shop_state(customer, "online")
    expect(launcher(customer)).to_have_text("We are online - chat with us")

    ask(customer)
    expect(operator.locator("#lh-queue .lh-item")).to_contain_text(QUESTION)
    accept_first(operator)
    expect(operator.locator("#lh-log")).to_contain_text(QUESTION)
    expect(chat(customer).locator("#lh-operator")).to_have_text("Mette")

    reply(operator, "Ja, den har vi på lager!")
    expect(chat(customer).locator("#lh-log")).to_contain_text(
        "Ja, den har vi på lager!"
    )

    operator.click("#lh-end")
    expect(chat(customer).locator("#lh-log")).to_contain_text("The chat has ended.")

    # The operator's completed chats: this one, with both messages.
    operator.goto(base + "/livehelp/history/")
    expect(operator.locator("main")).to_contain_text("Anonymous visitor")
    with shop.app_context():
        state = get_state()
        mette = state.operators.find_by_email(SHOP_OPERATOR["email"])
        completed, total = state.conversations.completed_for(mette)
    assert total == 1
    operator.goto(base + f"/livehelp/history/{completed[0].id}")
    transcript = operator.locator("main")
    expect(transcript).to_contain_text(QUESTION)
    expect(transcript).to_contain_text("Ja, den har vi på lager!")


class Cable:
    """The customer's chat socket, routed through the test so it can be cut."""

    def __init__(self) -> None:
        self.blocked = False
        self.swallow = False
        self.routes: list[WebSocketRoute] = []
        self.lock = threading.Lock()

    def handle(self, page_side: WebSocketRoute) -> None:
        if self.blocked:
            page_side.close(code=1006, reason="cable cut")
            return
        server_side = page_side.connect_to_server()
        server_side.on_message(self._to_page(page_side))
        self.routes.append(page_side)

    def _to_page(self, page_side: WebSocketRoute) -> t.Callable[[str | bytes], None]:
        def forward(message: str | bytes) -> None:
            if not self.swallow:
                page_side.send(message)

        return forward

    def cut(self) -> None:
        """The line dies: nothing more arrives, the socket closes, no new one opens."""
        self.blocked = True
        for route in self.routes:
            route.close(code=1006, reason="cable cut")
        self.routes.clear()

    def mend(self) -> None:
        self.blocked = False
        self.swallow = False


def test_a_dropped_connection_loses_nothing_and_duplicates_nothing(
    shop: Flask, shop_server: t.Any, customer: Page, operator: Page
) -> None:
    base = shop_server.url
    cable = Cable()
    # The socket's URL carries the page's language: "/livehelp/widget/ws?lang=en".
    customer.context.route_web_socket(
        re.compile(r"/livehelp/widget/ws(\?|$)"), cable.handle
    )
    sign_in(operator, base)
    go_online(operator)
    customer.goto(base + "/")
    expect(launcher(customer)).to_have_class("online", timeout=10_000)
    ask(customer)
    accept_first(operator)
    window = chat(customer)
    expect(window.locator("#lh-operator")).to_have_text("Mette")

    # The server stores this one, but its acknowledgement never arrives.
    cable.swallow = True
    window.locator("#lh-input").fill("Besked 1")
    window.locator("#lh-input").press("Enter")
    expect(operator.locator("#lh-log")).to_contain_text("Besked 1")
    cable.cut()
    expect(window.locator("#lh-net")).to_be_visible()

    # Written while the line is down.
    for text in ("Besked 2", "Besked 3"):
        window.locator("#lh-input").fill(text)
        window.locator("#lh-input").press("Enter")
    reply(operator, "Svar under afbrydelsen")
    expect(window.locator(".lh-pending")).to_have_count(3)

    cable.mend()
    expect(window.locator(".lh-pending")).to_have_count(0, timeout=15_000)
    expect(window.locator("#lh-net")).to_be_hidden()

    said = window.locator(".lh-msg p")
    expect(said).to_have_text(
        [QUESTION, "Besked 1", "Svar under afbrydelsen", "Besked 2", "Besked 3"]
    )
    expect(operator.locator("#lh-log .lh-said p")).to_have_text(
        [QUESTION, "Besked 1", "Svar under afbrydelsen", "Besked 2", "Besked 3"]
    )
    with shop.app_context():
        state = get_state()
        conversation = state.conversations.open_for_visitor(
            1
        ) or state.conversations.get(1)
        bodies = [
            m.body
            for m in state.conversations.messages_after(conversation.id, 0)
            if m.kind == "text"
        ]
    assert bodies == [
        QUESTION,
        "Besked 1",
        "Svar under afbrydelsen",
        "Besked 2",
        "Besked 3",
    ]


@pytest.mark.livehelp(jobs="thread", jobs_tick_seconds=0.2, presence_grace_seconds=1)
def test_a_customer_whose_operator_is_gone_is_told_and_waits_for_the_next(
    shop: Flask, shop_server: t.Any, customer: Page, operator: Page
) -> None:
    base = shop_server.url
    sign_in(operator, base)
    go_online(operator)
    customer.goto(base + "/")
    shop_state(customer, "online")
    ask(customer)
    accept_first(operator)
    window = chat(customer)
    expect(window.locator("#lh-operator")).to_have_text("Mette")
    # The operator's panel is gone, and stays gone past the grace time.
    operator.close()
    expect(window.locator("#lh-log")).to_contain_text(
        "Your chat is back in the queue; the next operator will answer.",
        timeout=20_000,
    )
    expect(window.locator("#lh-input")).to_be_editable()


# Where a message log is scrolled: 0 at its top, 1 at its end.
SCROLLED = "log => log.scrollTop / (log.scrollHeight - log.clientHeight)"


def test_reading_back_is_not_interrupted_by_new_lines(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    """Each new line threw a customer or operator reading back in a long chat
    down to its end; now only those at the end follow, and writing takes
    the writer there."""
    customer, operator = staffed_chat(new_page, shop_server.url)
    panel_log, widget_log = (
        operator.locator("#lh-log"),
        chat(customer).locator("#lh-log"),
    )
    with shop.app_context():
        state = get_state()
        chat_id = state.db.session.scalars(
            sa.select(state.models.conversation.id)
        ).one()
        mette = state.operators.find_by_email(SHOP_OPERATOR["email"])

        def answer(number: int) -> None:
            state.conversations.post_by_operator(
                mette, chat_id, client_id=f"long-{number}", body=f"Svar {number}. " * 20
            )

        for number in range(1, 21):
            answer(number)
        expect(widget_log).to_contain_text("Svar 20.")
        expect(panel_log).to_contain_text("Svar 20.")
        # At the end, each follows the new lines.
        assert widget_log.evaluate(SCROLLED) > 0.99
        assert panel_log.evaluate(SCROLLED) > 0.99

        for log in (widget_log, panel_log):
            log.evaluate("log => { log.scrollTop = 0; }")
        answer(21)
        expect(widget_log).to_contain_text("Svar 21.")
        expect(panel_log).to_contain_text("Svar 21.")
    assert widget_log.evaluate(SCROLLED) == 0
    assert panel_log.evaluate(SCROLLED) == 0

    write(customer, "Tak, jeg læser stadig")
    expect(panel_log).to_contain_text("Tak, jeg læser stadig")
    expect(widget_log.locator(".lh-pending")).to_have_count(0)
    assert widget_log.evaluate(SCROLLED) > 0.99
    assert panel_log.evaluate(SCROLLED) == 0

    reply(operator, "Selvfølgelig")
    expect(widget_log).to_contain_text("Selvfølgelig")
    expect(panel_log).to_contain_text("Selvfølgelig")
    assert panel_log.evaluate(SCROLLED) > 0.99

    # Closed meanwhile, and opened again: the lines that came are in sight.
    launcher(customer).click()
    expect(customer.locator("livehelp-widget iframe")).to_be_hidden()
    for text in ("Og en ting mere", "Og det sidste"):
        reply(operator, text * 10)
        expect(widget_log).to_contain_text(text)
    launcher(customer).click()
    expect(customer.locator("livehelp-widget iframe")).to_be_visible()
    expect(chat(customer).locator("#lh-log")).to_be_visible()
    assert widget_log.evaluate(SCROLLED) > 0.99
