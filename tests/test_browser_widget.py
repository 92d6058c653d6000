"""The customer widget in Chromium: every state, the forms, and living in a shop."""

from __future__ import annotations

import re
import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask
from flask import g
from flask import render_template_string
from playwright.sync_api import expect
from playwright.sync_api import Page

from browser import accept_first
from browser import ask
from browser import chat
from browser import customer_on_site
from browser import go_online
from browser import held_requests
from browser import launcher
from browser import online_operator
from browser import QUESTION
from browser import reply
from browser import set_status
from browser import shop_state
from browser import sign_in
from browser import staffed_chat
from browser import write
from flask_livehelp import get_state
from flask_livehelp.services.limits import MemoryCounts


def latest(app: Flask) -> t.Any:
    """The newest conversation, read fresh."""
    with app.app_context():
        model = get_state().models.conversation
        return get_state().db.session.query(model).order_by(model.id.desc()).first()


# The four states.


@pytest.mark.livehelp(default_max_chats=1)
def test_the_four_states_change_live(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    base = shop_server.url
    customer, operator, other = new_page(), new_page(), new_page()
    customer.goto(base + "/")
    shop_state(customer, "offline")
    expect(launcher(customer)).to_have_text("Offline - send a message")

    sign_in(operator, base)
    go_online(operator)
    shop_state(customer, "online")

    # "Back in five minutes": still reachable, nothing goes to the mailbox.
    set_status(operator, "away")
    shop_state(customer, "away")
    expect(launcher(customer)).to_have_text("Back in a few minutes - write to us")
    ask(customer, "Er I der?")
    window = chat(customer)
    expect(window.locator("#lh-notice")).to_contain_text(
        "We will be back in a few minutes"
    )
    expect(operator.locator("#lh-queue .lh-item")).to_contain_text("Er I der?")

    # Busy: the only operator is at her one chat; the next customer waits in line.
    go_online(operator)
    accept_first(operator)
    other.goto(base + "/cart")
    shop_state(other, "busy")
    expect(launcher(other)).to_have_text("All operators are busy - you can still write")
    ask(other, "Hvornår kan I levere?")
    notice = chat(other).locator("#lh-notice")
    expect(notice).to_contain_text("All operators are busy right now.")
    expect(notice).to_contain_text("You are number 1 in the queue.")

    set_status(operator, "offline")
    shop_state(customer, "offline")


def test_offline_opens_the_offline_form(
    shop: Flask, shop_server: t.Any, page: Page
) -> None:
    page.goto(shop_server.url + "/")
    shop_state(page, "offline")
    launcher(page).click()
    window = chat(page)
    expect(window.locator("#lh-offline")).to_be_visible()
    expect(window.locator("#lh-prechat")).to_be_hidden()
    expect(window.locator("#lh-offline-body")).to_be_focused()


# Before the chat.


def test_nothing_personal_is_needed_to_start(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    operator = online_operator(new_page, shop_server.url)
    customer = customer_on_site(new_page, shop_server.url)
    ask(customer)
    expect(operator.locator("#lh-queue .lh-item")).to_contain_text("Anonymous visitor")
    conversation = latest(shop)
    assert (conversation.visitor_name, conversation.visitor_email) == (None, None)
    assert conversation.email_consent is False


def test_the_question_waits_for_the_chat_window_s_script_not_the_other_way(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    operator = online_operator(new_page, shop_server.url)
    customer = customer_on_site(new_page, shop_server.url)
    # A slow line: the window shows before its script has come.
    held = held_requests(customer, "**/livehelp/static/livehelp/chat.js*")
    launcher(customer).click()
    window = chat(customer)
    window.locator("#lh-question").fill(QUESTION)
    send = window.locator("#lh-prechat button[type=submit]")
    # Sending now would post the form nowhere and leave the customer waiting;
    # closing would do nothing at all.
    expect(send).to_be_disabled()
    expect(window.locator("#lh-close")).to_be_disabled()
    assert len(held) == 1
    held[0].continue_()
    send.click()
    expect(operator.locator("#lh-queue .lh-item")).to_contain_text(QUESTION)


def test_name_email_and_consent_when_given(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    operator = online_operator(new_page, shop_server.url)
    customer = customer_on_site(new_page, shop_server.url)
    launcher(customer).click()
    window = chat(customer)
    consent = window.locator("#lh-consent")
    expect(consent).not_to_be_checked()  # never ticked for them
    consent.check()
    ask(customer, name="Karen", email="karen@example.com")
    expect(operator.locator("#lh-queue .lh-item")).to_contain_text("Karen")
    conversation = latest(shop)
    assert (conversation.visitor_name, conversation.visitor_email) == (
        "Karen",
        "karen@example.com",
    )
    assert conversation.email_consent is True


@pytest.mark.livehelp(widget_ask_email="required", widget_ask_name="hidden")
def test_the_shop_can_require_an_email_and_hide_the_name(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    operator = online_operator(new_page, shop_server.url)
    customer = customer_on_site(new_page, shop_server.url)
    launcher(customer).click()
    window = chat(customer)
    expect(window.locator("#lh-name")).to_have_count(0)
    expect(window.locator("label[for=lh-email]")).to_have_text("Your e-mail")
    ask(customer)
    expect(window.locator("#lh-prechat-error")).to_be_visible()
    expect(window.locator("#lh-prechat")).to_be_visible()
    assert latest(shop) is None
    ask(customer, email="karen@example.com")
    expect(window.locator("#lh-talk")).to_be_visible()
    expect(operator.locator("#lh-queue .lh-item")).to_have_count(1)


def test_help_articles_are_suggested_while_typing(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    with shop.app_context():
        get_state().knowledge.save_article(
            None,
            title="Størrelsesguide til regnjakker",
            body="Mål brystvidden og vælg den størrelse, der passer.",
            url="/sizes",
            lang="",
            keywords="størrelse regnjakke størrelser",
            by=None,
        )
    online_operator(new_page, shop_server.url)
    customer = customer_on_site(new_page, shop_server.url)
    launcher(customer).click()
    window = chat(customer)
    window.locator("#lh-question").fill("Hvilken størrelse regnjakke skal jeg vælge?")
    suggestion = window.locator("#lh-suggestion-list a")
    expect(suggestion).to_have_text("Størrelsesguide til regnjakker")
    expect(suggestion).to_have_attribute("href", "/sizes")
    window.locator("#lh-answered").click()
    expect(customer.locator("livehelp-widget iframe")).to_be_hidden()
    assert latest(shop) is None  # answered without a chat


# In the chat.


def test_typing_shows_on_both_sides(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    customer, operator = staffed_chat(new_page, shop_server.url)
    chat(customer).locator("#lh-input").type("Jeg skriver", delay=30)
    expect(operator.locator("#lh-typing")).to_have_text("The visitor is writing...")
    operator.locator("#lh-reply").type("Øjeblik", delay=30)
    expect(chat(customer).locator("#lh-typing")).to_have_text("Mette is writing...")


def test_the_chat_survives_a_page_change_and_a_reload(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    customer, operator = staffed_chat(new_page, shop_server.url)
    reply(operator, "Ja, i alle størrelser")
    expect(chat(customer).locator("#lh-log")).to_contain_text("Ja, i alle størrelser")

    customer.goto(shop_server.url + "/product/regnjakke-blaa")
    window = chat(customer)
    expect(window.locator(".lh-msg p")).to_have_text(
        [QUESTION, "Ja, i alle størrelser"]
    )
    write(customer, "Tak, jeg køber den")
    expect(operator.locator("#lh-log")).to_contain_text("Tak, jeg køber den")

    customer.reload()
    window = chat(customer)
    expect(window.locator(".lh-msg p")).to_have_text(
        [QUESTION, "Ja, i alle størrelser", "Tak, jeg køber den"]
    )
    expect(operator.locator("#lh-log .lh-said p")).to_have_text(
        [QUESTION, "Ja, i alle størrelser", "Tak, jeg køber den"]
    )


def test_a_minimised_chat_counts_unread_replies(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    customer, operator = staffed_chat(new_page, shop_server.url)
    chat(customer).locator("#lh-close").click()
    expect(customer.locator("livehelp-widget iframe")).to_be_hidden()
    reply(operator, "Er du der stadig?")
    reply(operator, "Hallo?")
    expect(launcher(customer).locator("b")).to_have_text("2")
    launcher(customer).click()
    expect(launcher(customer).locator("b")).to_have_text("")


@pytest.mark.livehelp(visitor_messages_per_minute=3)
def test_lines_refused_as_too_fast_go_out_after_the_wait_in_their_order(
    shop: Flask,
    shop_server: t.Any,
    new_page: t.Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = get_state(shop)
    # The server asks for a wait of a second instead of the rest of the minute.
    monkeypatch.setattr(type(state.limits), "retry_after", staticmethod(lambda w: 1))
    customer, operator = staffed_chat(new_page, shop_server.url)
    lines = [f"Linje {n}" for n in range(1, 6)]
    for line in lines:
        write(customer, line)
    # Past the limit: the customer is told, and the lines stay in the window.
    expect(chat(customer).locator("#lh-log")).to_contain_text(
        "You are sending too fast"
    )
    # The minute is over (as far as the limit knows), and the wait too.
    state.limits.counts = MemoryCounts()
    said = [QUESTION, *lines]
    expect(operator.locator("#lh-log .lh-said p")).to_have_text(said)
    expect(chat(customer).locator(".lh-msg p")).to_have_text(said)
    with shop.app_context():
        conversation = latest(shop)
        stored = [
            m.body for m in state.conversations.messages_after(conversation.id, 0)
        ]
    assert [body for body in stored if body in said] == said


def test_the_customer_may_end_the_chat(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    customer, operator = staffed_chat(new_page, shop_server.url)
    chat(customer).locator("#lh-end").click()
    expect(chat(customer).locator("#lh-log")).to_contain_text("The chat has ended.")
    expect(chat(customer).locator("#lh-new")).to_be_visible()
    expect(operator.locator("#lh-log")).to_contain_text("The chat has ended.")


# Push page.


def test_a_pushed_page_of_the_shop_takes_the_customer_there(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    customer, operator = staffed_chat(new_page, shop_server.url)
    operator.click("#lh-push")
    operator.fill("#lh-push-url", shop_server.url + "/product/regnjakke-blaa")
    operator.click("#lh-push-dialog button[value=send]")
    expect(customer).to_have_url(shop_server.url + "/product/regnjakke-blaa")
    # The chat came along, with the pushed link in it.
    expect(chat(customer).locator(".lh-event a")).to_have_text(
        shop_server.url + "/product/regnjakke-blaa"
    )
    # A reload does not push again.
    customer.goto(shop_server.url + "/cart")
    expect(chat(customer).locator("#lh-log")).to_contain_text("Mette sent you a page")
    expect(customer).to_have_url(shop_server.url + "/cart")


def test_a_shop_path_pushed_from_the_panel_is_a_page_of_the_shop(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    customer, operator = staffed_chat(new_page, shop_server.url)
    operator.click("#lh-push")
    operator.fill("#lh-push-url", "/cart")
    operator.click("#lh-push-dialog button[value=send]")
    expect(customer).to_have_url(shop_server.url + "/cart")
    expect(chat(customer).locator(".lh-event a")).to_have_text(
        shop_server.url + "/cart"
    )


def test_a_pushed_address_that_is_no_web_page_is_shown_as_text(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    customer, _ = staffed_chat(new_page, shop_server.url)
    # Stored by an older version, or written by the host's own code.
    with shop.app_context():
        state = get_state()
        conversation = state.conversations.get(
            state.db.session.execute(
                sa.select(sa.func.max(state.models.conversation.id))
            ).scalar_one()
        )
        mette = state.operators.find_by_email("operator@example.com")
        event = state.conversations.add_event(
            conversation, "pushed", operator=mette, url="javascript:alert(1)"
        )
        state.db.session.commit()
        state.conversations.publish(event)
    pushed = chat(customer).locator(".lh-event", has_text="Mette sent you a page")
    expect(pushed).to_contain_text("javascript:alert(1)")
    expect(pushed.locator("a")).to_have_count(0)
    expect(customer).to_have_url(shop_server.url + "/")


def test_a_page_on_another_site_is_refused(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    customer, operator = staffed_chat(new_page, shop_server.url)
    operator.click("#lh-push")
    operator.fill("#lh-push-url", "https://evil.example/login")
    operator.click("#lh-push-dialog button[value=send]")
    expect(operator.locator("#lh-connection")).to_have_text(
        "Only http and https pages of the shop can be pushed."
    )
    expect(customer).to_have_url(shop_server.url + "/")
    expect(chat(customer).locator(".lh-event a")).to_have_count(0)


# Living in a shop page.

HOSTILE_PAGE = """<!doctype html>
<html><head><title>Hostile shop</title>
<style>
  * { all: unset !important; }
  div, iframe, button, span { display: none !important; }
  body * { visibility: hidden !important; opacity: 0 !important; }
  livehelp-widget { display: none !important; position: static !important; }
</style></head>
<body><p>Our shop</p><button id="host-button">Buy</button>
{{ livehelp_widget() }}</body></html>"""

PLAIN_PAGE = """<!doctype html><html><head><title>Shop</title></head>
<body><p>Our shop</p><button id="host-button">Buy</button>
{% if widget %}{{ livehelp_widget() }}{% endif %}</body></html>"""

CSP_PAGE = """<!doctype html><html><head><title>Strict shop</title></head>
<body><p>Our shop</p>{{ livehelp_widget() }}</body></html>"""


@pytest.fixture
def host_pages(app: Flask, livehelp: t.Any) -> Flask:
    """Pages of a host shop: one with hostile CSS, one under a strict CSP."""

    @app.get("/hostile")
    def hostile() -> str:
        return render_template_string(HOSTILE_PAGE)

    @app.get("/plain")
    def plain() -> str:
        from flask import request

        return render_template_string(PLAIN_PAGE, widget="bare" not in request.args)

    @app.get("/strict")
    def strict() -> t.Any:
        g.csp_nonce = "n0nce4tests"
        response = app.make_response(render_template_string(CSP_PAGE))
        # No 'unsafe-inline' anywhere, and scripts only with the page's nonce.
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; script-src 'nonce-n0nce4tests'; style-src 'self';"
            " connect-src 'self'; frame-src 'self'"
        )
        return response

    livehelp.csp_nonce_generator = lambda: g.get("csp_nonce", "")
    return app


def operator_is_online(app: Flask, operator: t.Any) -> None:
    """An operator online without a browser: a panel connection on record."""
    with app.app_context():
        state = get_state()
        state.presence.open_connection(operator.id)
        state.presence.set_status(operator.id, "online")


def test_hostile_shop_css_cannot_break_the_widget(
    host_pages: Flask, live_server: t.Any, operator: t.Any, page: Page
) -> None:
    operator_is_online(host_pages, operator)
    page.goto(live_server.url + "/hostile")
    button = launcher(page)
    expect(button).to_be_visible()
    expect(button).to_have_class("online")
    box = button.bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 30
    button.click()
    frame = page.locator("livehelp-widget iframe")
    expect(frame).to_be_visible()
    assert frame.bounding_box()["height"] > 300
    ask(page)
    expect(chat(page).locator("#lh-talk")).to_be_visible()


#: How the shop's own button looks, property by property.
STYLE_OF = "b => Array.from(getComputedStyle(b)).map(p => p + getComputedStyle(b)[p])"


def test_the_widget_css_does_not_touch_the_shop(
    host_pages: Flask, live_server: t.Any, page: Page
) -> None:
    page.goto(live_server.url + "/plain?bare=1")
    before = page.locator("#host-button").evaluate(STYLE_OF)
    globals_before = set(page.evaluate("Object.keys(window)"))
    page.goto(live_server.url + "/plain")
    expect(launcher(page)).to_be_visible()
    assert page.locator("#host-button").evaluate(STYLE_OF) == before
    # One global name, and no cookie before the customer touches the chat.
    assert set(page.evaluate("Object.keys(window)")) - globals_before == {"LiveHelp"}
    page.wait_for_timeout(1500)  # a poll or two
    assert page.context.cookies() == []


def test_a_strict_content_security_policy_is_enough(
    host_pages: Flask, live_server: t.Any, operator: t.Any, page: Page
) -> None:
    operator_is_online(host_pages, operator)
    violations: list[str] = []
    page.on(
        "console",
        lambda m: (
            violations.append(m.text) if "Content Security Policy" in m.text else None
        ),
    )
    page.goto(live_server.url + "/strict")
    # Chrome hides nonce attributes in the DOM; the property keeps the value.
    nonce = page.evaluate("document.querySelector('script[data-livehelp]').nonce")
    assert nonce == "n0nce4tests"
    expect(launcher(page)).to_have_class("online")
    launcher(page).click()
    ask(page)
    expect(chat(page).locator(".lh-msg")).to_have_count(1)
    expect(chat(page).locator(".lh-msg small")).to_have_text("Delivered")
    assert violations == []


def test_on_a_phone_the_chat_fills_the_screen(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    phone = new_page(
        viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True
    )
    operator = new_page()
    sign_in(operator, shop_server.url)
    go_online(operator)
    phone.goto(shop_server.url + "/")
    shop_state(phone, "online")
    launcher(phone).click()
    box = phone.locator("livehelp-widget iframe").bounding_box()
    assert box is not None
    assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, 375, 667)
    question = chat(phone).locator("#lh-question")
    # 16px or more, or iOS zooms in when the field gets focus.
    size = question.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
    assert size >= 16
    ask(phone)
    expect(chat(phone).locator("#lh-input")).to_be_in_viewport()


def covering(page: t.Any, locator: t.Any) -> list[str]:
    """What sits on top of the middle and the corners of ``locator``'s box."""
    box = locator.bounding_box()
    assert box is not None
    points = [
        (box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
        for fx, fy in (
            (0.5, 0.5),
            (0.05, 0.05),
            (0.95, 0.05),
            (0.05, 0.95),
            (0.95, 0.95),
        )
    ]
    # The shadow root's own hit test: the button, or the window's iframe.
    return [
        page.evaluate(
            """([x, y]) => {
              const host = document.elementFromPoint(x, y);
              const root = host && host.shadowRoot;
              return ((root && root.elementFromPoint(x, y)) || host).tagName;
            }""",
            [x, y],
        )
        for x, y in points
    ]


def test_on_a_phone_the_open_chat_has_nothing_on_top_and_the_button_is_round(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    phone = new_page(
        viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True
    )
    phone.goto(shop_server.url + "/")
    button = launcher(phone)
    box = button.bounding_box()
    assert box is not None and box["width"] == box["height"] == 56
    # Its words are there for a screen reader, once the shop's state came.
    expect(button).to_have_text(re.compile(r"\S"))
    button.click()
    frame = phone.locator("livehelp-widget iframe")
    expect(frame).to_be_visible()
    # Every corner of the window is the window: the button is not over it.
    assert set(covering(phone, frame)) == {"IFRAME"}
    expect(button).to_be_hidden()
    chat(phone).locator("#lh-close").click()
    expect(button).to_be_visible()


def test_a_shop_moves_hides_and_opens_the_chat_from_its_own_page(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    page = new_page()
    page.goto(shop_server.url + "/")
    button = launcher(page)
    # Measured once the shop's state gave it its words: before, it is
    # smaller and sits lower.
    shop_state(page, "offline")
    before = button.bounding_box()
    # The shop's own CSS moves it up, over its bar at the bottom.
    page.add_style_tag(content="livehelp-widget { --livehelp-bottom: 120px }")
    after = button.bounding_box()
    assert before is not None and after is not None
    assert before["y"] - after["y"] == 104
    page.evaluate("LiveHelp.hide()")
    expect(button).to_be_hidden()
    page.evaluate("LiveHelp.open()")
    expect(page.locator("livehelp-widget iframe")).to_be_visible()
    page.evaluate("LiveHelp.close(); LiveHelp.show()")
    expect(page.locator("livehelp-widget iframe")).to_be_hidden()
    expect(button).to_be_visible()


def test_usable_with_the_keyboard_alone(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    operator = online_operator(new_page, shop_server.url)
    customer = customer_on_site(new_page, shop_server.url)
    launcher(customer).focus()
    customer.keyboard.press("Enter")
    window = chat(customer)
    expect(window.locator("#lh-question")).to_be_focused()
    customer.keyboard.type("Kan I hjælpe mig?")
    for _ in range(4):  # name, e-mail, consent, start
        customer.keyboard.press("Tab")
    expect(window.locator("#lh-prechat button[type=submit]")).to_be_focused()
    customer.keyboard.press("Enter")
    expect(window.locator("#lh-input")).to_be_focused()
    customer.keyboard.type("Og en til")
    customer.keyboard.press("Enter")
    expect(operator.locator("#lh-queue .lh-item")).to_have_count(1)
    customer.keyboard.press("Escape")
    expect(customer.locator("livehelp-widget iframe")).to_be_hidden()
    expect(launcher(customer)).to_be_focused()
    # New messages are announced to screen readers.
    expect(window.locator("#lh-log")).to_have_attribute("aria-live", "polite")


def contrast(foreground: str, background: str) -> float:
    """WCAG contrast ratio of two CSS rgb() colours."""

    def luminance(color: str) -> float:
        channels = [
            int(v) / 255 for v in color[color.index("(") + 1 : -1].split(",")[:3]
        ]
        linear = [
            c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
            for c in channels
        ]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_default_colours_meet_wcag_aa(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    customer, operator = new_page(), new_page()
    customer.goto(shop_server.url + "/")
    colours = "b => [getComputedStyle(b).color, getComputedStyle(b).backgroundColor]"
    for status in ("offline", "online", "away"):
        if status != "offline":
            if operator.url == "about:blank":
                sign_in(operator, shop_server.url)
            set_status(operator, status)
        shop_state(customer, status)
        text, background = launcher(customer).evaluate(colours)
        assert contrast(text, background) >= 4.5, status
    launcher(customer).click()
    header = chat(customer).locator(".lh-head")
    text, background = header.evaluate(colours)
    assert contrast(text, background) >= 4.5


def test_the_customer_can_mail_themselves_the_transcript(
    shop: Flask, shop_server: t.Any, new_page: t.Any, smtp_server: t.Any
) -> None:
    smtp_server.serve(shop)
    customer, operator = staffed_chat(
        new_page, shop_server.url, name="Søren", email="soren@example.com"
    )
    reply(operator, "Den kommer i morgen.")
    window = chat(customer)
    expect(window.locator("#lh-log")).to_contain_text("Den kommer i morgen.")
    window.locator("#lh-transcript").click()
    expect(window.locator("#lh-notice")).to_have_text(
        "The transcript is on its way to soren@example.com."
    )
    (delivery,) = smtp_server.wait_for(1)
    assert delivery.recipients == ["soren@example.com"]
    assert "Den kommer i morgen." in delivery.message.get_body(("plain",)).get_content()


def test_no_transcript_button_without_an_address(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    customer, _ = staffed_chat(new_page, shop_server.url)
    expect(chat(customer).locator("#lh-transcript")).to_be_hidden()
