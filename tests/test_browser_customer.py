"""What a customer sees is true: checked in Chromium, as a customer uses the shop."""

from __future__ import annotations

import datetime as dt
import re
import typing as t

import pytest
import sqlalchemy as sa
from example_shop.seed import DEMO_CUSTOMER
from flask import Flask
from playwright.sync_api import expect

from browser import accept_first
from browser import ask
from browser import chat
from browser import customer_on_site
from browser import go_online
from browser import held_requests
from browser import launcher
from browser import online_operator
from browser import reply
from browser import set_status
from browser import SHOP_OPERATOR
from browser import shop_state
from browser import sign_in
from browser import staffed_chat
from browser import write
from flask_livehelp import get_state
from flask_livehelp.models import utcnow
from flask_livehelp.services import timeouts
from mailservers import SMTPServer
from test_browser_widget import contrast


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


def test_a_window_whose_script_comes_as_the_line_goes_says_it_is_offline(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    online_operator(new_page, shop_server.url)
    customer = customer_on_site(new_page, shop_server.url)
    held = held_requests(customer, "**/livehelp/static/livehelp/chat.js*")
    launcher(customer).click()
    expect(chat(customer).locator("#lh-question")).to_be_visible()
    # The window's HTML may show before its parser has asked for the script.
    for _ in range(100):
        if held:
            break
        customer.wait_for_timeout(50)
    assert len(held) == 1
    # The script was on its way when the line went: no "offline" event for it.
    script = held[0].fetch()
    customer.context.set_offline(True)
    held[0].fulfill(response=script)
    expect(chat(customer).locator("#lh-net")).to_have_text(
        "You are offline. We will send your messages when you are back."
    )


def test_the_unread_count_stays_on_the_button_from_page_to_page(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    customer, operator = staffed_chat(new_page, shop_server.url)
    chat(customer).locator("#lh-close").click()
    expect(customer.locator("livehelp-widget iframe")).to_be_hidden()
    for line in ("Er du der?", "Den findes i blå.", "Og i gul."):
        reply(operator, line)
    badge = launcher(customer).locator("b")
    expect(badge).to_have_text("3")
    customer.goto(shop_server.url + "/product/regnjakke-blaa")
    # Said while the next page loads: counted all the same.
    reply(operator, "Skal jeg lægge en til side?")
    expect(badge).to_have_text("4")
    launcher(customer).click()
    expect(badge).to_have_text("")
    customer.goto(shop_server.url + "/cart")
    expect(chat(customer).locator("#lh-log")).to_contain_text("lægge en til side")
    expect(badge).to_have_text("")


# The button, the shop's page and the shop's own links.


def test_open_the_button_is_the_chat_s_close_control(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    customer = new_page()
    customer.goto(shop_server.url + "/")
    button = launcher(customer)
    expect(button).to_have_attribute("aria-expanded", "false")
    button.click()
    expect(customer.locator("livehelp-widget iframe")).to_be_visible()
    expect(button).to_have_attribute("aria-expanded", "true")
    expect(button).to_have_accessible_name("Close chat")
    button.click()
    expect(customer.locator("livehelp-widget iframe")).to_be_hidden()
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(button).to_have_accessible_name("Offline - send a message")
    expect(button).to_be_focused()


@pytest.mark.livehelp(widget_bottom=100)
def test_the_bottom_setting_places_the_button(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    customer = new_page(viewport={"width": 1280, "height": 720})
    customer.goto(shop_server.url + "/")
    box = launcher(customer).bounding_box()
    assert box is not None and box["y"] + box["height"] == 720 - 100
    launcher(customer).click()
    window = customer.locator("livehelp-widget iframe").bounding_box()
    # The window sits above the button, not over it.
    assert window is not None and window["y"] + window["height"] <= box["y"]


HIT = """([x, y]) => {
  const hit = document.elementFromPoint(x, y);
  if (!hit) return "";
  const widget = hit.closest("livehelp-widget");
  return widget ? "livehelp-widget" : hit.outerHTML.slice(0, 80);
}"""


def uncovered(page: t.Any, locator: t.Any) -> None:
    """The middle and the corners of ``locator`` are the shop's, not the widget's."""
    box = locator.bounding_box()
    assert box is not None
    for fx, fy in ((0.5, 0.5), (0.05, 0.1), (0.95, 0.1), (0.05, 0.9), (0.95, 0.9)):
        point = [box["x"] + box["width"] * fx, box["y"] + box["height"] * fy]
        assert page.evaluate(HIT, point) != "livehelp-widget", (locator, point)


def test_on_a_phone_the_closed_button_leaves_the_cart_controls_free(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    phone = new_page(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    phone.goto(shop_server.url + "/product/regnjakke-blaa")
    expect(launcher(phone)).to_be_visible()
    quantity = phone.locator("input[name=quantity]")
    add = phone.get_by_role("button", name="Add to cart")
    # Wherever the customer scrolls them to: at the bottom edge, in the middle.
    for block in ("end", "center", "start"):
        add.evaluate(f"e => e.scrollIntoView({{block: '{block}'}})")
        uncovered(phone, quantity)
        uncovered(phone, add)
    quantity.fill("2")
    add.click()
    expect(phone.locator("[data-cart-count]")).to_have_text("2")


STUB = (
    "<script>window.LiveHelp=window.LiveHelp||{q:[],"
    'open(){this.q.push("open")},close(){this.q.push("close")},'
    'hide(){this.q.push("hide")},show(){this.q.push("show")}}</script>'
)


@pytest.fixture
def early_page(app: Flask) -> Flask:
    """A shop page whose own link opens the chat, with the documented stub."""
    from flask import render_template_string

    @app.get("/early")
    def early() -> str:
        return render_template_string(
            "<!doctype html><html><head><title>Shop</title>"
            + STUB
            + "</head><body><main><button id=chat-link"
            ' onclick="LiveHelp.open()">Chat with us</button></main>'
            "{{ livehelp_widget() }}</body></html>"
        )

    return app


def test_the_shop_s_own_link_works_before_the_loader_ran(
    early_page: Flask, live_server: t.Any, new_page: t.Any
) -> None:
    page = new_page()
    held = held_requests(page, "**/livehelp/static/livehelp/loader.js*")
    page.goto(live_server.url + "/early", wait_until="domcontentloaded")
    page.click("#chat-link")  # the loader has not run: the stub keeps the call
    assert page.evaluate("window.LiveHelp.q") == ["open"]
    assert held, "the loader was requested"
    held[0].continue_()
    expect(page.locator("livehelp-widget iframe")).to_be_visible()
    expect(chat(page).locator("#lh-offline-body")).to_be_focused()


def test_the_form_shown_has_the_focus_when_the_state_changes_after_opening(
    early_page: Flask, live_server: t.Any, new_page: t.Any
) -> None:
    """Opened on a page made while an operator was online, who has left
    before the status answers (a slow line): the chat starts on the question
    form, and when "offline" comes, the offline form takes its place and the
    typing cursor goes with it."""
    with early_page.app_context():
        get_state().operators.create_operator(name="Mette", **SHOP_OPERATOR)
    operator = online_operator(new_page, live_server.url)
    page = new_page()
    held = held_requests(page, "**/livehelp/widget/status*")
    page.goto(live_server.url + "/early")
    page.click("#chat-link")
    expect(chat(page).locator("#lh-question")).to_be_focused()
    set_status(operator, "offline")
    assert held, "the state was asked for"
    for request in held:
        request.continue_()
    expect(chat(page).locator("#lh-offline")).to_be_visible()
    expect(chat(page).locator("#lh-offline-body")).to_be_focused()


def test_hiding_the_button_leaves_the_chat_as_it_was(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    customer, operator = staffed_chat(new_page, shop_server.url)
    frame = customer.locator("livehelp-widget iframe")
    customer.evaluate("LiveHelp.hide()")
    expect(launcher(customer)).to_be_hidden()
    expect(frame).to_be_visible()
    expect(chat(customer).locator("#lh-input")).to_be_focused()
    # The next page finds the chat as it was: open.
    customer.goto(shop_server.url + "/cart")
    expect(frame).to_be_visible()
    # Minimised, hidden, and minimised again on the next page.
    chat(customer).locator("#lh-close").click()
    expect(frame).to_be_hidden()
    customer.evaluate("LiveHelp.hide()")
    customer.goto(shop_server.url + "/")
    expect(launcher(customer)).to_be_visible()
    reply(operator, "Stadig her?")
    expect(launcher(customer).locator("b")).to_have_text("1")


class SlowSocket:
    """The widget's socket on a slow network: open, but nothing heard yet."""

    def __init__(self) -> None:
        self.slow = True

    def route(self, ws: t.Any) -> None:
        if not self.slow:
            ws.connect_to_server()


def test_a_chat_closed_before_the_page_heard_of_it_comes_back_minimised(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    customer, operator = staffed_chat(new_page, shop_server.url)
    network = SlowSocket()
    customer.context.route_web_socket(
        re.compile(r"/livehelp/widget/ws(\?|$)"), network.route
    )
    # On the next page the customer closes the chat before its window has
    # heard from the server whether the chat goes on.
    customer.goto(shop_server.url + "/cart")
    frame = customer.locator("livehelp-widget iframe")
    expect(frame).to_be_visible()
    expect(chat(customer).locator("#lh-talk")).to_be_visible()
    chat(customer).locator("#lh-close").click()
    expect(frame).to_be_hidden()
    # It goes on, so the page after brings it back minimised, and the
    # operator's answer is counted on the button.
    network.slow = False
    customer.goto(shop_server.url + "/")
    reply(operator, "Stadig her?")
    expect(launcher(customer).locator("b")).to_have_text("1")


# Colour and position: per language, in every state, followed live.

COLOURS = "b => [getComputedStyle(b).color, getComputedStyle(b).backgroundColor]"
YELLOW = "rgb(245, 197, 24)"


def test_colour_and_position_are_per_language_in_every_state_and_live(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    with shop.app_context():
        settings = get_state().settings
        # Light enough that white words would not be readable on it.
        settings.set("WIDGET_COLOR", "#f5c518", lang="da")
        settings.set("WIDGET_POSITION", "left", lang="da")
    english, danish = new_page(), new_page()
    english.goto(shop_server.url + "/?lang=en")
    danish.goto(shop_server.url + "/?lang=da")
    expect(launcher(english)).to_have_css("background-color", "rgb(29, 107, 58)")
    assert launcher(english).bounding_box()["x"] > 640
    assert launcher(danish).bounding_box()["x"] < 640

    operator = new_page()
    for status in ("offline", "online", "away"):
        if status != "offline":
            if operator.url == "about:blank":
                sign_in(operator, shop_server.url)
            set_status(operator, status)
        shop_state(danish, status)
        expect(launcher(danish)).to_have_css("background-color", YELLOW)
        text, background = launcher(danish).evaluate(COLOURS)
        assert contrast(text, background) >= 4.5, status

    # The admin moves the Danish button while the page is open: it follows.
    with shop.app_context():
        get_state().settings.set("WIDGET_POSITION", "right", lang="da")
    danish.wait_for_function(
        "() => document.querySelector('livehelp-widget')"
        ".shadowRoot.querySelector('button').getBoundingClientRect().x > 640"
    )
    launcher(danish).click()
    header = chat(danish).locator(".lh-head")
    # chat.js colours the window as it starts, a moment after it is drawn.
    expect(header).to_have_css("background-color", YELLOW)
    text, background = header.evaluate(COLOURS)
    assert contrast(text, background) >= 4.5


# A signed-in customer.


def sign_in_customer(page: t.Any, base: str) -> None:
    page.goto(base + "/login")
    page.fill("input[name=email]", DEMO_CUSTOMER["email"])
    page.fill("input[name=password]", DEMO_CUSTOMER["password"])
    page.click("form.stacked-form [type=submit]")
    expect(page.locator(".flash")).to_contain_text("Welcome back")


def test_a_signed_in_customer_is_not_asked_who_they_are_and_gets_the_transcript(
    shop: Flask, shop_server: t.Any, new_page: t.Any, smtp_server: SMTPServer
) -> None:
    smtp_server.serve(shop)
    operator = online_operator(new_page, shop_server.url)
    customer = new_page()
    sign_in_customer(customer, shop_server.url)
    shop_state(customer, "online")
    launcher(customer).click()
    window = chat(customer)
    expect(window.locator("#lh-name")).to_have_value(DEMO_CUSTOMER["name"])
    expect(window.locator("#lh-email")).to_have_value(DEMO_CUSTOMER["email"])
    ask(customer, "Hvornår kommer min ordre?")
    accept_first(operator)
    reply(operator, "I morgen.")
    expect(window.locator("#lh-log")).to_contain_text("I morgen.")
    window.locator("#lh-transcript").click()
    expect(window.locator("#lh-notice")).to_have_text(
        f"The transcript is on its way to {DEMO_CUSTOMER['email']}."
    )
    (delivery,) = smtp_server.wait_for(1)
    assert delivery.recipients == [DEMO_CUSTOMER["email"]]


@pytest.mark.livehelp(widget_ask_name="hidden", widget_ask_email="hidden")
def test_unasked_the_signed_in_customer_still_gets_the_transcript(
    shop: Flask, shop_server: t.Any, new_page: t.Any, smtp_server: SMTPServer
) -> None:
    smtp_server.serve(shop)
    operator = online_operator(new_page, shop_server.url)
    customer = new_page()
    sign_in_customer(customer, shop_server.url)
    ask(customer, "Hvornår kommer min ordre?")
    accept_first(operator)
    expect(operator.locator("#lh-facts")).to_contain_text(DEMO_CUSTOMER["email"])
    reply(operator, "I morgen.")
    window = chat(customer)
    expect(window.locator("#lh-log")).to_contain_text("I morgen.")
    expect(window.locator("#lh-transcript")).to_be_visible()
    window.locator("#lh-transcript").click()
    (delivery,) = smtp_server.wait_for(1)
    assert delivery.recipients == [DEMO_CUSTOMER["email"]]


def test_a_signed_in_customer_finds_the_offline_form_filled_in(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    customer = new_page()
    sign_in_customer(customer, shop_server.url)
    shop_state(customer, "offline")
    launcher(customer).click()
    window = chat(customer)
    expect(window.locator("#lh-offline-name")).to_have_value(DEMO_CUSTOMER["name"])
    expect(window.locator("#lh-offline-email")).to_have_value(DEMO_CUSTOMER["email"])


# The customer's time zone, for their mails.


def visitor_zones(app: Flask) -> list[str | None]:
    with app.app_context():
        state = get_state()
        return list(
            state.db.session.execute(
                sa.select(state.models.visitor.timezone).where(
                    state.models.visitor.token_hash.is_not(None)
                )
            ).scalars()
        )


def test_the_widget_tells_the_customer_s_time_zone(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    online_operator(new_page, shop_server.url)
    customer = new_page(timezone_id="Europe/Copenhagen")
    customer.goto(shop_server.url + "/")
    shop_state(customer, "online")
    ask(customer)
    expect(chat(customer).locator(".lh-msg small")).to_have_text("Delivered")
    assert visitor_zones(shop) == ["Europe/Copenhagen"]


def test_the_offline_form_tells_the_customer_s_time_zone(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    customer = new_page(timezone_id="Asia/Tokyo")
    customer.goto(shop_server.url + "/")
    shop_state(customer, "offline")
    launcher(customer).click()
    window = chat(customer)
    window.locator("#lh-offline-body").fill("Har I regnjakken i blå?")
    window.locator("#lh-offline button[type=submit]").click()
    expect(window.locator("#lh-offline-done")).to_be_visible()
    assert visitor_zones(shop) == ["Asia/Tokyo"]
