"""A whole shift in the panel (issue 20): ended chats go, a full operator is
refused, settings and tags arrive live, and the keyboard does the work."""

from __future__ import annotations

import datetime as dt
import re
import time
import typing as t

import pytest
from flask import Flask
from playwright.sync_api import expect
from playwright.sync_api import Page

from browser import accept_first
from browser import ask
from browser import chat
from browser import customer_on_site
from browser import go_online
from browser import reply
from browser import shop_state
from browser import sign_in
from browser import write
from flask_livehelp import get_state
from flask_livehelp.models import utcnow
from flask_livehelp.services import timeouts


@pytest.fixture
def bo(shop: Flask) -> dict[str, t.Any]:
    """An admin of the shop besides Mette."""
    person = {"email": "bo@example.com", "password": "bo-password"}
    with shop.app_context():
        get_state().operators.create_operator(name="Bo", role="admin", **person)
    return person


# Keeps the panel's sockets within reach, so a test can cut its line.
KEEP_SOCKETS = """
window.sockets = [];
window.WebSocket = class extends WebSocket {
  constructor(...args) { super(...args); window.sockets.push(this); }
};
"""


def panel(new_page: t.Any, base: str, script: str | None = None) -> Page:
    """Mette's panel, online; ``script`` runs in it before the panel's own."""
    operator = new_page()
    if script:
        operator.add_init_script(script)
    sign_in(operator, base)
    go_online(operator)
    return t.cast(Page, operator)


def chats_with(new_page: t.Any, base: str, operator: Page, *names: str) -> list[Page]:
    """A customer per name asks, and the operator accepts each in turn."""
    customers = []
    for name in names:
        customer = customer_on_site(new_page, base)
        ask(customer, f"Spørgsmål fra {name}", name=name)
        expect(operator.locator("#lh-queue .lh-item")).to_have_count(1)
        accept_first(operator)
        customers.append(customer)
    expect(operator.locator("#lh-active .lh-item")).to_have_count(len(names))
    return customers


def active_item(operator: Page, name: str) -> t.Any:
    return operator.locator("#lh-active li").filter(has_text=name)


def test_an_ended_chat_leaves_the_list_when_dismissed(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    operator = panel(new_page, shop_server.url, KEEP_SOCKETS)
    anna, bent, carl = chats_with(
        new_page, shop_server.url, operator, "Anna", "Bent", "Carl"
    )

    # Ended by the operator: "Dismiss" in the chat's header, by keyboard.
    active_item(operator, "Anna").locator(".lh-item").click()
    operator.click("#lh-end")
    expect(active_item(operator, "Anna")).to_contain_text("The chat has ended.")
    expect(operator.locator("#lh-active-count")).to_have_text("2")
    operator.locator("#lh-dismiss").focus()
    operator.keyboard.press("Enter")
    expect(active_item(operator, "Anna")).to_have_count(0)
    expect(operator.locator("#lh-empty")).to_be_visible()

    # Ended by the customer: the ended item's own button, reached with Tab.
    chat(bent).locator("#lh-end").click()
    expect(active_item(operator, "Bent")).to_contain_text("The chat has ended.")
    active_item(operator, "Bent").locator(".lh-item").focus()
    operator.keyboard.press("Tab")
    dismiss = operator.get_by_role("button", name="Dismiss the chat with Bent")
    expect(dismiss).to_be_focused()
    operator.keyboard.press("Enter")
    expect(active_item(operator, "Bent")).to_have_count(0)
    expect(active_item(operator, "Carl")).to_have_count(1)

    # An active chat has nothing to dismiss.
    expect(active_item(operator, "Carl").locator(".lh-dismiss")).to_have_count(0)
    # What ended while nobody dismissed it is gone after the next hello.
    chat(carl).locator("#lh-end").click()
    expect(active_item(operator, "Carl")).to_contain_text("The chat has ended.")
    operator.evaluate("window.sockets.at(-1).close()")
    expect(operator.locator("#lh-active")).to_have_text("No active chats.")
    expect(chat(anna).locator("#lh-log")).to_contain_text("The chat has ended.")


# Page views reach the visitors' list through the jobs.
@pytest.mark.livehelp(jobs="thread", jobs_tick_seconds=0.2)
def test_what_the_keyboard_reached_keeps_focus_while_the_lists_change(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    """The lists are drawn anew on each message and each visitors' poll; an
    operator tabbing through them was thrown back to the top of the page."""
    operator = panel(new_page, shop_server.url)
    anna, bent = chats_with(new_page, shop_server.url, operator, "Anna", "Bent")
    # Reading Anna's chat, so Bent's next lines count as unread.
    active_item(operator, "Anna").locator(".lh-item").click()

    bents_item = active_item(operator, "Bent").locator(".lh-item")
    bents_item.focus()
    write(bent, "Er der nogen?")
    expect(bents_item.locator(".lh-unread")).to_have_text("1")
    expect(bents_item).to_be_focused()
    # The open chat's header is drawn anew with the lists.
    page_link = operator.locator("#lh-facts a")
    page_link.focus()
    write(bent, "Stadig her")
    expect(bents_item.locator(".lh-unread")).to_have_text("2")
    expect(page_link).to_be_focused()

    chat(anna).locator("#lh-end").click()
    expect(active_item(operator, "Anna")).to_contain_text("The chat has ended.")
    dismiss = operator.get_by_role("button", name="Dismiss the chat with Anna")
    dismiss.focus()
    write(bent, "Hallo?")
    expect(bents_item.locator(".lh-unread")).to_have_text("3")
    expect(dismiss).to_be_focused()

    # The visitors' list comes again every 5 s; Anna, her chat over, may be
    # invited again.
    operator.click("#lh-show-visitors")
    rows = operator.locator("#lh-visitor-rows tr")
    expect(rows).to_have_count(2, timeout=10_000)
    invite_anna = rows.filter(has_text="Anna").get_by_role("button", name="Invite")
    invite_anna.focus()
    customer_on_site(new_page, shop_server.url)
    expect(rows).to_have_count(3, timeout=10_000)
    expect(invite_anna).to_be_focused()
    operator.keyboard.press("Enter")
    expect(operator.locator("#lh-invite-dialog")).to_be_visible()


@pytest.mark.livehelp(default_max_chats=1)
def test_a_full_operator_is_told_and_the_customer_keeps_waiting(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    operator = panel(new_page, shop_server.url)
    second = customer_on_site(new_page, shop_server.url)
    chats_with(new_page, shop_server.url, operator, "Anna")
    ask(second, "Må jeg også spørge?", name="Bent")
    waiting = operator.locator("#lh-queue .lh-item")
    expect(waiting).to_contain_text("Bent")
    waiting.click()
    operator.click("#lh-accept")
    expect(operator.locator("#lh-connection")).to_have_text(
        "You have as many chats as you may have at once (1). End one first."
    )
    expect(waiting).to_contain_text("Bent")
    expect(operator.locator("#lh-accept")).to_be_visible()
    expect(operator.locator("#lh-composer")).to_be_hidden()
    expect(operator.locator("#lh-active .lh-item")).to_have_count(1)
    expect(chat(second).locator("#lh-log")).not_to_contain_text("joined the chat")


def test_an_open_panel_goes_by_the_settings_an_admin_just_changed(
    shop: Flask, shop_server: t.Any, new_page: t.Any, bo: dict[str, t.Any]
) -> None:
    operator = panel(new_page, shop_server.url)
    chats_with(new_page, shop_server.url, operator, "Anna")
    reply(operator, "Et øjeblik, jeg kigger")
    anna = active_item(operator, "Anna").locator(".lh-item")
    expect(operator.locator("#lh-tag-required")).to_be_hidden()
    # Bo, an admin, makes a customer idle after 1 s, and tags a must.
    admin = new_page()
    sign_in(admin, shop_server.url, bo["email"], bo["password"])
    admin.goto(shop_server.url + "/livehelp/admin/settings")
    admin.fill("input[name=IDLE_SECONDS]", "1")
    admin.check("input[name=REQUIRE_TAG]")
    admin.click("form.lh-form button[type=submit]")
    expect(admin.locator(".lh-flash")).to_be_visible()
    # Mette's panel, never reloaded, shows both.
    expect(anna).to_have_class(re.compile(r"\blh-idle\b"))
    expect(anna).to_contain_text("idle")
    expect(operator.locator("#lh-tag-required")).to_be_visible()


def stored_tags(shop: Flask) -> list[str]:
    """The tags of Mette's one active chat, as the database has them."""
    with shop.app_context():
        state = get_state()
        mette = state.operators.find_by_email("operator@example.com")
        (conversation,) = state.conversations.active_for(mette)
        names = [tag.name for tag in conversation.tags]
        state.db.session.remove()
        return names


# Two tags entered in one go: the second before the first's answer is back.
TWO_TAGS_AT_ONCE = """() => {
  const input = document.getElementById("lh-tag-input");
  const form = document.getElementById("lh-tags");
  input.value = "levering";
  form.requestSubmit();
  input.value = "retur";
  form.requestSubmit();
}"""


def test_two_tags_entered_at_once_are_both_kept(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    operator = panel(new_page, shop_server.url)
    chats_with(new_page, shop_server.url, operator, "Anna")
    operator.evaluate(TWO_TAGS_AT_ONCE)
    chips = operator.locator("#lh-tag-list .lh-chip")
    expect(chips).to_have_text(["levering×", "retur×"])
    # Stored, both of them (the frames are on their way a moment longer).
    deadline = time.monotonic() + 10
    while stored_tags(shop) != ["levering", "retur"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stored_tags(shop) == ["levering", "retur"]
    # As stored: the same after a reload.
    operator.reload()
    active_item(operator, "Anna").locator(".lh-item").click()
    expect(chips).to_have_text(["levering×", "retur×"])


def test_a_chat_closed_after_a_long_silence_says_so_in_the_panel(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    operator = panel(new_page, shop_server.url)
    (anna,) = chats_with(new_page, shop_server.url, operator, "Anna")
    with shop.app_context():
        state = get_state()
        later = utcnow() + dt.timedelta(hours=1)
        assert len(timeouts.close_inactive(state, now=later)) == 1
        state.db.session.remove()
    expect(operator.locator("#lh-log")).to_contain_text(
        "The chat was closed after a long silence."
    )
    expect(chat(anna).locator("#lh-log")).to_contain_text("The chat has ended.")


def test_accept_transfer_and_end_by_keyboard_also_while_typing(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    operator = panel(new_page, shop_server.url)
    for button, keys in (
        ("#lh-accept", "Alt+A"),
        ("#lh-transfer", "Alt+T"),
        ("#lh-end", "Alt+E"),
    ):
        expect(operator.locator(button)).to_have_attribute("aria-keyshortcuts", keys)
        expect(operator.locator(button)).to_have_attribute("title", keys)
    expect(operator.locator("#lh-panel")).to_contain_text(
        "In a chat, Alt+A accepts it, Alt+T transfers it and Alt+E ends it"
    )
    customer = customer_on_site(new_page, shop_server.url)
    ask(customer, "Har I gummistøvler?", name="Anna")
    operator.locator("#lh-queue .lh-item").first.click()
    operator.keyboard.press("Alt+A")
    expect(operator.locator("#lh-reply")).to_be_focused()
    # Letters typed are the answer, never a shortcut.
    operator.keyboard.type("Ja, et øjeblik - jeg ser efter")
    expect(operator.locator("#lh-reply")).to_have_value(
        "Ja, et øjeblik - jeg ser efter"
    )
    expect(operator.locator("#lh-transfer-dialog")).not_to_be_visible()
    # From the reply field, with Alt.
    operator.keyboard.press("Alt+T")
    expect(operator.locator("#lh-transfer-dialog")).to_be_visible()
    # An open dialog keeps the chat's shortcuts to itself.
    operator.keyboard.press("Alt+E")
    operator.keyboard.press("Escape")
    expect(operator.locator("#lh-transfer-dialog")).not_to_be_visible()
    expect(chat(customer).locator("#lh-log")).not_to_contain_text("has ended")
    operator.locator("#lh-reply").focus()
    operator.keyboard.press("Alt+E")
    expect(chat(customer).locator("#lh-log")).to_contain_text("The chat has ended.")
    expect(operator.locator("#lh-reply")).to_have_value(
        "Ja, et øjeblik - jeg ser efter"
    )


# How many lines the text of the Invite button in the visitors' table
# takes. Found and measured in one go: the table's rows are drawn anew every
# 5 s, and a button found first may be gone by the time it is measured.
INVITE_LINES = """(rows) => {
  const range = document.createRange();
  range.selectNodeContents(rows.querySelector("button"));
  const tops = [...range.getClientRects()].map((r) => Math.round(r.top));
  return new Set(tops).size;
}"""
# Laptop screen size: the visitors table fills the room beside the sidebar.
LAPTOP = {"width": 1366, "height": 768}
LONG_REFERRER = (
    "https://www.google.com/search?q=regnjakke+bl%C3%A5+str+m+med+h%C3%A6tte"
    "&client=firefox-b-d&sca_esv=1234567890abcdef&source=hp&ei=abcdefghijkl"
)


@pytest.mark.livehelp(jobs="thread", jobs_tick_seconds=0.2)
def test_invite_stays_on_one_line_on_a_laptop_screen(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    operator = new_page(viewport=LAPTOP)
    sign_in(operator, shop_server.url)
    go_online(operator)
    visitor = new_page()
    visitor.goto(
        shop_server.url + "/product/regnjakke-blaa?lang=da", referer=LONG_REFERRER
    )
    shop_state(visitor, "online")
    operator.click("#lh-show-visitors")
    invite = operator.locator("#lh-visitor-rows").get_by_role("button", name="Invite")
    expect(invite).to_be_visible()
    assert operator.locator("#lh-visitor-rows").evaluate(INVITE_LINES) == 1
