"""The operator panel in Chromium: one customer, two operators, a whole shift."""

from __future__ import annotations

import re
import time
import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask
from playwright.sync_api import expect
from playwright.sync_api import Page

from browser import accept_first
from browser import ask
from browser import chat
from browser import customer_on_site
from browser import go_online
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
from mailservers import SMTPServer
from mailservers import text_of

BO = {"name": "Bo", "email": "bo@example.com", "password": "bo-password"}

# Makes the panel believe it is a background tab, and records the desktop
# notifications it shows (headless Chromium shows none).
BACKGROUND_TAB = """
Object.defineProperty(document, "hidden", { get: () => true });
document.hasFocus = () => false;
window.shown = [];
window.Notification = class {
  static permission = "granted";
  static requestPermission() { return Promise.resolve("granted"); }
  constructor(title, options) { window.shown.push([title, options.body]); }
};
"""


@pytest.fixture
def bo(shop: Flask) -> dict[str, t.Any]:
    """A second operator in the shop."""
    with shop.app_context():
        get_state().operators.create_operator(
            name=BO["name"], email=BO["email"], password=BO["password"]
        )
    return BO


METTE = {"email": "operator@example.com", "password": "operator"}


def mette_and_bo(new_page: t.Any, base: str) -> tuple[Page, Page]:
    return (
        online_operator(new_page, base),
        online_operator(new_page, base, email=BO["email"], password=BO["password"]),
    )


def test_a_new_request_rings_notifies_and_blinks_in_a_background_tab(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    operator = new_page()
    operator.add_init_script(BACKGROUND_TAB)
    sign_in(operator, shop_server.url)
    go_online(operator)
    customer = new_page()
    customer.goto(shop_server.url + "/")
    shop_state(customer, "online")
    ask(customer, "Hjælp med min ordre")
    expect(operator.locator("#lh-queue .lh-item")).to_have_count(1)
    shown = operator.evaluate("window.shown")
    assert shown == [["New chat request", "Anonymous visitor: Hjælp med min ordre"]]
    expect(operator).to_have_title("(!) New chat request", timeout=3000)


@pytest.mark.livehelp(jobs="thread", jobs_tick_seconds=0.2)
def test_queued_chats_are_blue_and_routed_ones_green(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    operator = online_operator(new_page, shop_server.url)
    customer = new_page()
    customer.goto(shop_server.url + "/")
    shop_state(customer, "online")
    ask(customer)
    queued = operator.locator("#lh-queue .lh-item")
    expect(queued.locator(".lh-tag")).to_have_text("Queued")
    # Asserted with retries: the lists are drawn anew with every change, so a
    # tag found in one call may be gone by the next.
    expect(queued.locator(".lh-tag")).to_have_css("color", "rgb(11, 92, 173)")

    # An invitation routes the chat to the operator who sent it.
    invited = new_page()
    invited.goto(shop_server.url + "/cart")
    shop_state(invited, "online")
    operator.click("#lh-show-visitors")
    # The customer who chats has no Invite button; the one on the cart page has.
    invite = operator.locator("#lh-visitor-rows").get_by_role("button", name="Invite")
    invite.click()
    operator.click("#lh-invite-dialog button[value=send]")
    window = chat(invited)
    expect(window.locator("#lh-invitation")).to_be_visible(timeout=10_000)
    expect(window.locator("#lh-invitation-title")).to_have_text(
        "Mette would like to help you"
    )
    window.locator("#lh-invitation-accept").click()
    ask(invited, "Ja tak, hvad koster fragten?")
    routed = operator.locator("#lh-queue .lh-is-routed")
    expect(routed.locator(".lh-tag")).to_have_text("For Mette")
    expect(routed.locator(".lh-tag")).to_have_css("color", "rgb(29, 107, 58)")


def test_two_operators_accept_at_once_one_gets_it(
    shop: Flask, shop_server: t.Any, new_page: t.Any, bo: dict[str, t.Any]
) -> None:
    mette, other = mette_and_bo(new_page, shop_server.url)
    customer = new_page()
    customer.goto(shop_server.url + "/")
    shop_state(customer, "online")
    ask(customer)
    for page in (mette, other):
        page.locator("#lh-queue .lh-item").first.click()
        expect(page.locator("#lh-accept")).to_be_visible()
    # Both click; the server decides.
    mette.evaluate("document.getElementById('lh-accept').click()")
    other.evaluate("document.getElementById('lh-accept').click()")
    winners = []
    for page, name in ((mette, "Mette"), (other, "Bo")):
        try:
            expect(page.locator("#lh-composer")).to_be_visible(timeout=3000)
            winners.append(name)
        except AssertionError:
            expect(page.locator("#lh-connection")).to_have_text(
                "Another operator has already taken this chat."
            )
    assert len(winners) == 1


@pytest.mark.livehelp(default_max_chats=1)
def test_the_widget_shows_busy_when_the_only_operator_is_full(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    operator = online_operator(new_page, shop_server.url)
    first, second = new_page(), new_page()
    first.goto(shop_server.url + "/")
    second.goto(shop_server.url + "/")
    shop_state(second, "online")
    ask(first)
    accept_first(operator)
    shop_state(second, "busy")
    expect(operator.locator("#lh-colleagues")).to_contain_text("1/1")


def test_a_canned_response_with_placeholders(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    with shop.app_context():
        get_state().knowledge.save_canned(
            None,
            name="generic_OneMoment",
            lang="",
            body="Et øjeblik, {visitor_name} - {operator_name} kigger på det.",
            by=None,
        )
    customer, operator = staffed_chat(new_page, shop_server.url, name="Karen")
    box = operator.locator("#lh-reply")
    box.type("#generic_One")
    expect(operator.locator("#lh-canned li")).to_have_count(1)
    box.press("Enter")
    expect(box).to_have_value("Et øjeblik, Karen - Mette kigger på det.")
    box.press("Enter")
    expect(chat(customer).locator("#lh-log")).to_contain_text(
        "Et øjeblik, Karen - Mette kigger på det."
    )


def test_a_canned_response_fills_in_once_and_visitor_text_stays_in_its_place(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    """A customer named "{operator_name}" stays so, and an RTL override in a
    name turns nothing around it; their page is a link without a referrer."""
    with shop.app_context():
        get_state().knowledge.save_canned(
            None, name="hi", lang="", body="Hej {visitor_name}!", by=None
        )
    customer, operator = staffed_chat(new_page, shop_server.url, name="{operator_name}")
    box = operator.locator("#lh-reply")
    box.type("#hi")
    expect(operator.locator("#lh-canned li")).to_have_count(1)
    box.press("Enter")
    expect(box).to_have_value("Hej {operator_name}!")
    name = operator.locator("#lh-active .lh-item strong").first
    expect(name).to_have_css("unicode-bidi", "plaintext")
    page_link = operator.locator("#lh-facts a[href^='http']").first
    expect(page_link).to_have_attribute("rel", "noopener noreferrer")


@pytest.mark.livehelp(require_tag=True)
def test_a_tag_is_required_before_ending_when_so_configured(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    customer, operator = staffed_chat(new_page, shop_server.url)
    # The tag prompt is open from the start of the chat (seed 001), beside
    # the reply field that has the focus.
    expect(operator.locator("#lh-tag-input")).to_be_visible()
    expect(operator.locator("#lh-reply")).to_be_focused()
    operator.click("#lh-end")
    expect(operator.locator("#lh-connection")).to_have_text(
        "Add a tag before you end the chat."
    )
    expect(chat(customer).locator("#lh-end")).to_be_visible()
    operator.fill("#lh-tag-input", "levering")
    operator.press("#lh-tag-input", "Enter")
    expect(operator.locator("#lh-tag-list")).to_contain_text("levering")
    operator.click("#lh-end")
    expect(chat(customer).locator("#lh-log")).to_contain_text("The chat has ended.")


def test_the_first_line_typed_after_accept_is_the_reply_not_a_tag(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    operator = online_operator(new_page, shop_server.url)
    customer = customer_on_site(new_page, shop_server.url)
    ask(customer, "Hvor er min pakke?", name="Karen")
    operator.locator("#lh-queue .lh-item").first.click()
    operator.click("#lh-accept")
    # No click in the reply field: the operator just starts typing.
    expect(operator.locator("#lh-reply")).to_be_focused()
    operator.keyboard.type("Hello Karen, let me look it up.")
    operator.keyboard.press("Enter")
    expect(chat(customer).locator("#lh-log")).to_contain_text(
        "Hello Karen, let me look it up."
    )
    expect(operator.locator("#lh-log")).to_contain_text(
        "Hello Karen, let me look it up."
    )
    expect(operator.locator("#lh-tag-list li")).to_have_count(0)


def test_the_visitor_is_writing_goes_when_their_message_arrives(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    customer, operator = staffed_chat(new_page, shop_server.url)
    box = chat(customer).locator("#lh-input")
    box.fill("Den blå i str. M, tak")
    expect(operator.locator("#lh-typing")).to_have_text("The visitor is writing...")
    box.press("Enter")
    expect(operator.locator("#lh-log")).to_contain_text("Den blå i str. M, tak")
    expect(operator.locator("#lh-typing")).to_have_text("")


def test_a_transfer_accepted_by_a_colleague_keeps_the_history(
    shop: Flask, shop_server: t.Any, new_page: t.Any, bo: dict[str, t.Any]
) -> None:
    mette, other = mette_and_bo(new_page, shop_server.url)
    customer = new_page()
    customer.goto(shop_server.url + "/")
    shop_state(customer, "online")
    ask(customer)
    accept_first(mette)
    reply(mette, "Jeg giver dig videre til Bo")
    mette.click("#lh-transfer")
    mette.select_option("#lh-transfer-to", label="Colleague: Bo")
    mette.fill("#lh-transfer-note", "Hun vil bytte en jakke")
    mette.click("#lh-transfer-dialog button[value=send]")
    offer = other.locator("#lh-transfers .lh-offer")
    expect(offer).to_contain_text("Mette offers you the chat with Anonymous visitor.")
    expect(offer).to_contain_text("Note: Hun vil bytte en jakke")
    offer.get_by_role("button", name="Take it").click()
    log = other.locator("#lh-log")
    expect(log).to_contain_text(QUESTION)
    expect(log).to_contain_text("Jeg giver dig videre til Bo")
    expect(log).to_contain_text(
        "Mette offered the chat to Bo. Note: Hun vil bytte en jakke"
    )
    expect(chat(customer).locator("#lh-operator")).to_have_text("Bo")
    expect(chat(customer).locator("#lh-log")).to_contain_text(
        "You are now chatting with Bo."
    )
    expect(chat(customer).locator("#lh-log")).not_to_contain_text("Hun vil bytte")
    reply(other, "Hej, det er Bo")
    expect(chat(customer).locator("#lh-log")).to_contain_text("Hej, det er Bo")
    expect(mette.locator("#lh-active .lh-item")).to_have_count(0)


def test_the_transcript_is_mailed_to_the_customers_address(
    shop: Flask, shop_server: t.Any, new_page: t.Any, smtp_server: SMTPServer
) -> None:
    smtp_server.serve(shop)
    customer, operator = staffed_chat(
        new_page, shop_server.url, name="Søren", email="soren@example.com"
    )
    reply(operator, "Den er på lager i blå og gul.")
    expect(chat(customer).locator("#lh-log")).to_contain_text("Den er på lager")
    operator.click("#lh-mail-customer")
    expect(operator.locator("#lh-connection")).to_have_text(
        "The transcript is on its way to soren@example.com."
    )
    (delivery,) = smtp_server.wait_for(1)
    assert delivery.recipients == ["soren@example.com"]
    text = text_of(delivery.message)
    assert QUESTION in text and "Den er på lager i blå og gul." in text


@pytest.mark.livehelp(queue_timeout_seconds=2, jobs="thread", jobs_tick_seconds=0.2)
def test_a_queued_chat_nobody_takes_becomes_an_offline_message(
    shop: Flask, shop_server: t.Any, new_page: t.Any, smtp_server: SMTPServer
) -> None:
    smtp_server.serve(shop)
    shop.config["LIVEHELP_OFFLINE_MAILBOX"] = "kundeservice@nordlys.example"
    # Online, but nobody takes it (away, it would wait for the operator).
    operator = new_page()
    sign_in(operator, shop_server.url)
    set_status(operator, "online")
    customer = new_page()
    customer.goto(shop_server.url + "/")
    shop_state(customer, "online")
    ask(customer, "Er der nogen?")
    window = chat(customer)
    expect(window.locator("#lh-log")).to_contain_text(
        "nobody could answer in time", timeout=15_000
    )
    window.locator("#lh-contact-email").fill("karen@example.com")
    window.locator("#lh-contact button").click()
    expect(window.locator("#lh-notice")).to_have_text(
        "Thank you. We will answer karen@example.com."
    )
    # To the shop's mailbox (and the operators who get offline messages), and
    # the customer's own copy to the address they left.
    smtp_server.wait_for(2)
    (to_shop,) = smtp_server.to("kundeservice@nordlys.example")
    assert "Er der nogen?" in text_of(to_shop.message)
    assert smtp_server.to("karen@example.com")
    operator.goto(shop_server.url + "/livehelp/offline/")
    expect(operator.locator("main")).to_contain_text("Er der nogen?")


@pytest.mark.livehelp(jobs="thread", jobs_tick_seconds=0.2)
def test_the_visitor_list_shows_the_page_the_customer_is_on(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    operator = online_operator(new_page, shop_server.url)
    customer = new_page()
    customer.goto(shop_server.url + "/")
    customer.goto(shop_server.url + "/product/regnjakke-blaa?lang=da")
    shop_state(customer, "online")
    operator.click("#lh-show-visitors")
    row = operator.locator("#lh-visitor-rows tr").first
    expect(row).to_contain_text("Regnjakke, blå", timeout=10_000)
    expect(row.locator("td").nth(2)).to_have_text("2")
    expect(row.locator("td").nth(5)).to_have_text("da")
    expect(row).to_have_class(re.compile(r"\blh-on-site\b"))


@pytest.mark.livehelp(
    presence_grace_seconds=3, heartbeat_seconds=1, jobs="thread", jobs_tick_seconds=0.2
)
def test_a_lost_panel_turns_the_widget_away_then_offline(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    operator = online_operator(new_page, shop_server.url)
    customer = new_page()
    customer.goto(shop_server.url + "/")
    shop_state(customer, "online")
    operator.context.close()  # the operator's browser is gone
    shop_state(customer, "away")
    expect(launcher(customer)).to_have_text("Back in a few minutes - write to us")
    shop_state(customer, "offline", timeout=15_000)
    # The presence job also records it, so a later reconnect does not bring
    # her back online unasked.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and mette_status(shop) != "offline":
        time.sleep(0.2)
    assert mette_status(shop) == "offline"


# Every 100 ms, what a colleague's panel shows of Mette, and what the shop's
# button shows: a change that lasts a moment is seen too.
COLLEAGUE_STATES = """() => {
  window.seen = new Set();
  setInterval(() => {
    const mette = [...document.querySelectorAll("#lh-colleagues li")]
      .find((li) => li.textContent.includes("Mette"));
    window.seen.add(mette ? mette.className : "missing");
  }, 100);
}"""
LAUNCHER_STATES = """() => {
  window.seen = new Set();
  setInterval(() => {
    const root = document.querySelector("livehelp-widget").shadowRoot;
    window.seen.add(root.querySelector("button").className);
  }, 100);
}"""


@pytest.mark.livehelp(
    heartbeat_seconds=2,
    client_silence_seconds=6,
    presence_grace_seconds=12,
    jobs="thread",
    jobs_tick_seconds=0.2,
)
def test_an_operator_who_keeps_answering_stays_online_throughout(
    shop: Flask, shop_server: t.Any, new_page: t.Any, bo: dict[str, t.Any]
) -> None:
    """Issue 20: a reply every 9 s for 3 minutes, with a heartbeat of 10 s.

    Time runs five times faster here (every setting above is a fifth of its
    default), so a reply goes every 1.8 s for 36 s: still a frame more often
    than the heartbeat, and long past the away (3 beats) and offline (grace)
    marks the operator used to pass.
    """
    mette, colleague = mette_and_bo(new_page, shop_server.url)
    # Bo is away, so the shop's button is online through Mette alone.
    set_status(colleague, "away")
    customer = customer_on_site(new_page, shop_server.url)
    ask(customer, "Hvornår sender I?", name="Karen")
    accept_first(mette)
    shopper = customer_on_site(new_page, shop_server.url, "/cart")
    expect(colleague.locator("#lh-colleagues .lh-is-online")).to_contain_text("Mette")
    colleague.evaluate(COLLEAGUE_STATES)
    shopper.evaluate(LAUNCHER_STATES)
    started = time.monotonic()
    replies = 0
    while time.monotonic() - started < 36:
        replies += 1
        reply(mette, f"Svar nummer {replies}")
        # A person writing, not a speed to check.
        time.sleep(1.8)
    expect(chat(customer).locator("#lh-log")).to_contain_text(f"Svar nummer {replies}")
    assert set(colleague.evaluate("[...window.seen]")) == {"lh-colleague lh-is-online"}
    assert set(shopper.evaluate("[...window.seen]")) == {"online"}
    expect(mette.locator("[data-status=online]")).to_have_attribute(
        "aria-checked", "true"
    )


def mette_status(shop: Flask) -> str:
    with shop.app_context():
        state = get_state()
        status = state.operators.find_by_email(METTE["email"]).status
        state.db.session.remove()
        return t.cast(str, status)


def test_keyboard_moves_between_chats_and_drafts_are_kept(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    operator = online_operator(new_page, shop_server.url)
    first, second = new_page(), new_page()
    for customer, name in ((first, "Anna"), (second, "Bent")):
        customer.goto(shop_server.url + "/")
        shop_state(customer, "online")
        ask(customer, f"Spørgsmål fra {name}", name=name)
        expect(operator.locator("#lh-queue .lh-item")).to_have_count(1)
        accept_first(operator)
    expect(operator.locator("#lh-active .lh-item")).to_have_count(2)
    operator.fill("#lh-reply", "Halvt svar til Bent")
    operator.keyboard.press("Alt+ArrowUp")
    expect(operator.locator("#lh-chat-title")).to_have_text("Anna")
    expect(operator.locator("#lh-reply")).to_have_value("")
    operator.keyboard.press("Alt+ArrowDown")
    expect(operator.locator("#lh-chat-title")).to_have_text("Bent")
    expect(operator.locator("#lh-reply")).to_have_value("Halvt svar til Bent")
    # Anna asked first and still has no answer: she comes first, and her new
    # message counts as unread while Bent's chat is open.
    write(first, "Hallo?")
    anna = operator.locator("#lh-active .lh-item").first
    expect(anna).to_contain_text("Anna")
    expect(anna.locator(".lh-unread")).to_have_text("1")


def test_coming_online_with_customers_already_waiting_rings(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    # A customer asked while the shop showed away, before the operator came.
    with shop.app_context():
        state = get_state()
        visitor, _ = state.visitors.create(
            ip_address=None, user_agent=None, locale="da"
        )
        state.conversations.start(visitor.id, client_id="q1", body="Er der nogen?")
    operator = new_page()
    operator.add_init_script(BACKGROUND_TAB)
    sign_in(operator, shop_server.url)
    expect(operator.locator("#lh-queue .lh-item")).to_have_count(1)
    assert operator.evaluate("window.shown") == []  # offline: nothing for them yet
    go_online(operator)
    expect(operator).to_have_title("(!) New chat request", timeout=3000)
    shown = operator.evaluate("window.shown")
    assert shown == [["New chat request", "Anonymous visitor: Er der nogen?"]]


def readable_within(pane: t.Any, values: t.Any) -> None:
    """Each of ``values`` lies inside ``pane`` and is wide enough to read a
    line of it, not a letter a line (as a long label once left them)."""
    box = pane.bounding_box()
    for index in range(values.count()):
        value = values.nth(index)
        text = value.inner_text()
        found = value.bounding_box()
        assert found["x"] >= box["x"], text
        assert found["x"] + found["width"] <= box["x"] + box["width"], text
        assert found["width"] >= box["width"] / 2, (text, found, box)


def test_the_panel_and_history_mark_what_the_shop_vouches_for(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    base = shop_server.url
    operator = online_operator(new_page, base)
    # Karen is signed in to the shop, which tells the chat who she is.
    customer = new_page()
    customer.goto(base + "/login")
    customer.fill("input[name=email]", "kunde@example.com")
    customer.fill("input[name=password]", "kunde")
    customer.click("input[type=submit], button[type=submit]")
    customer.goto(base + "/")
    shop_state(customer, "online")
    launcher(customer).click()
    window = chat(customer)
    window.locator("#lh-question").fill("Hvor er min ordre?")
    window.locator("#lh-name").fill("Karen Kunde")
    window.locator("#lh-email").fill("karen@privat.example")
    window.locator("#lh-consent").check()
    window.locator("#lh-prechat button[type=submit]").click()
    accept_first(operator)

    facts = operator.locator("#lh-facts")
    name = facts.locator("dd").filter(has_text="Karen Kunde")
    expect(name.locator(".lh-verified")).to_have_text("confirmed by the shop")
    email = facts.locator("dd").filter(has_text="karen@privat.example")
    expect(email.locator(".lh-typed")).to_have_text("typed by the customer")
    consent = facts.locator("dt", has_text="May be e-mailed about the question")
    expect(consent.locator("xpath=following-sibling::dd[1]")).to_have_text("Yes")
    readable_within(operator.locator("#lh-details"), facts.locator("dd"))

    with shop.app_context():
        state = get_state()
        conversation_id = state.db.session.execute(
            sa.select(sa.func.max(state.models.conversation.id))
        ).scalar_one()
    operator.goto(f"{base}/livehelp/history/{conversation_id}")
    expect(operator.locator("h1 + p .lh-verified")).to_have_text(
        "confirmed by the shop"
    )
    details = operator.locator(".lh-facts")
    expect(details.locator("dd .lh-typed")).to_have_text("typed by the customer")
    expect(details).to_contain_text("May be e-mailed about the question")
