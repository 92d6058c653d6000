"""The pictures of docs/operators.md: the example shop and the panel in Chromium.

Every run goes through the same steps in English and in Danish and takes the
same screenshots, so the flows the guide shows stay tested. Only with
``LIVEHELP_SCREENSHOTS=1`` do the pictures replace those in docs/images/;
otherwise they go to a temporary folder and the git tree stays clean::

    LIVEHELP_SCREENSHOTS=1 python -m pytest tests/test_screenshots.py
"""

from __future__ import annotations

import os
import re
import typing as t
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import expect
from playwright.sync_api import Locator
from playwright.sync_api import Page

from browser import ask
from browser import chat
from browser import go_online
from browser import operator_speaks
from browser import reply
from browser import SHOP_OPERATOR
from browser import shop_state
from browser import sign_in
from browser import write
from flask_livehelp import get_state
from staff import chat as finished_chat

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "operators.md"
IMAGES = ROOT / "docs" / "images"
WRITE_TO_DOCS = os.environ.get("LIVEHELP_SCREENSHOTS") == "1"
LANGUAGES = ("en", "da")
WIDE = {"width": 1280, "height": 800}
BROWSER_LOCALE = {"en": "en-GB", "da": "da-DK"}

#: What each test photographs; docs/operators.md shows each, in each language.
CHAT_SHOTS = (
    "panel-waiting",
    "panel-chat",
    "panel-canned",
    "panel-transfer",
    "panel-push",
    "widget-chat",
)
HISTORY_SHOTS = ("history", "history-chat")

#: What the people in the pictures say, in the language of the picture.
WORDS = {
    "en": {
        "question": "Hello, do you have the blue rain jacket in size M?",
        "answer": "Hello Karen, yes: we have it in size M.",
        "follow_up": "Great, does it come with a hood?",
        "second": "When will my parcel arrive?",
        "tag": "size",
        "note": "She asks about exchanging a jacket",
        "canned": [
            ("delivery", "We deliver in 1-3 working days, free from 499 kr."),
            ("returns", "You can return anything within 30 days."),
            ("thanks", "Thank you for your question, {visitor_name}!"),
        ],
        "history": [
            (
                "Karen Kunde",
                "Do you have the rain jacket in blue?",
                "Yes, in all sizes.",
            ),
            ("Ole", "When will my parcel arrive?", "It left our warehouse today."),
            ("Sara", "Can I exchange the wool sweater?", "Yes, within 30 days."),
        ],
    },
    "da": {
        "question": "Hej, har I den blå regnjakke i størrelse M?",
        "answer": "Hej Karen, ja: vi har den i størrelse M.",
        "follow_up": "Dejligt, har den hætte?",
        "second": "Hvornår kommer min pakke?",
        "tag": "størrelse",
        "note": "Hun vil bytte en jakke",
        "canned": [
            ("levering", "Vi leverer på 1-3 hverdage, gratis fra 499 kr."),
            ("retur", "Du kan returnere alt inden for 30 dage."),
            ("tak", "Tak for dit spørgsmål, {visitor_name}!"),
        ],
        "history": [
            ("Karen Kunde", "Har I regnjakken i blå?", "Ja, i alle størrelser."),
            ("Ole", "Hvornår kommer min pakke?", "Den er sendt fra lageret i dag."),
            ("Sara", "Kan jeg bytte uldtrøjen?", "Ja, inden for 30 dage."),
        ],
    },
}
CUSTOMER = {"email": "kunde@example.com", "password": "kunde"}
BO = {"name": "Bo", "email": "bo@example.com", "password": "bo-password"}


class Camera:
    """Takes the screenshots of one language, into docs/images/<lang>/ if asked."""

    def __init__(self, folder: Path, lang: str) -> None:
        self.folder = folder / lang
        self.folder.mkdir(parents=True, exist_ok=True)
        self.taken: list[str] = []

    def take(self, what: Page | Locator, name: str) -> None:
        path = self.folder / f"{name}.png"
        what.screenshot(path=str(path), animations="disabled", caret="hide")
        assert path.stat().st_size > 0
        self.taken.append(name)


@pytest.fixture
def camera(request: pytest.FixtureRequest, tmp_path: Path) -> Camera:
    lang = request.node.callspec.params["lang"]
    return Camera(IMAGES if WRITE_TO_DOCS else tmp_path, lang)


def pictures_in_guide(lang: str) -> set[str]:
    """The names of the ``images/<lang>/<name>.png`` the guide shows."""
    return set(re.findall(rf"\(images/{lang}/([\w-]+)\.png\)", GUIDE.read_text()))


def speak(shop: Flask, lang: str) -> None:
    """The demo operator works in ``lang``; canned responses in that language."""
    operator_speaks(shop, lang)
    with shop.app_context():
        state = get_state()
        for name, body in WORDS[lang]["canned"]:
            state.knowledge.save_canned(None, name=name, lang=lang, body=body, by=None)


def colleague_online(shop: Flask) -> None:
    """Bo, online in a panel of his own (on record; no browser needed)."""
    with shop.app_context():
        state = get_state()
        bo = state.operators.create_operator(**BO)
        state.presence.open_connection(bo.id)
        state.presence.set_status(bo.id, "online")


def customer_with_cart(new_page: t.Any, base: str, lang: str) -> Page:
    """The shop's demo customer, signed in, with a rain jacket in the cart."""
    customer = new_page(viewport=WIDE, locale=BROWSER_LOCALE[lang])
    customer.goto(f"{base}/login?lang={lang}")
    customer.fill("input[name=email]", CUSTOMER["email"])
    customer.fill("input[name=password]", CUSTOMER["password"])
    customer.click("form.stacked-form [type=submit]")
    customer.goto(f"{base}/product/regnjakke-blaa")
    customer.click("form.add-to-cart button[type=submit]")
    customer.wait_for_url(f"{base}/cart")
    return t.cast(Page, customer)


@pytest.mark.browser
@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_chat_from_both_sides(
    lang: str,
    shop: Flask,
    shop_server: t.Any,
    new_page: t.Any,
    camera: Camera,
) -> None:
    words, base = WORDS[lang], shop_server.url
    speak(shop, lang)
    colleague_online(shop)
    operator = new_page(viewport=WIDE, locale=BROWSER_LOCALE[lang])
    sign_in(operator, base)
    go_online(operator)

    # Going online, and a customer who asks.
    customer = customer_with_cart(new_page, base, lang)
    shop_state(customer, "online")
    ask(customer, words["question"], email=CUSTOMER["email"])
    operator.locator("#lh-queue .lh-item").first.click()
    expect(operator.locator("#lh-accept")).to_be_visible()
    expect(operator.locator("#lh-log")).to_contain_text(words["question"])
    camera.take(operator, "panel-waiting")

    # Accepting, answering, a tag; then a second chat at the same time.
    operator.click("#lh-accept")
    reply(operator, words["answer"])
    expect(chat(customer).locator("#lh-log")).to_contain_text(words["answer"])
    write(customer, words["follow_up"])
    expect(operator.locator("#lh-log")).to_contain_text(words["follow_up"])
    operator.fill("#lh-tag-input", words["tag"])
    operator.press("#lh-tag-input", "Enter")
    expect(operator.locator("#lh-tag-list")).to_contain_text(words["tag"])
    other = new_page(locale=BROWSER_LOCALE[lang])
    other.goto(f"{base}/?lang={lang}")
    shop_state(other, "online")
    ask(other, words["second"], name="Ole")
    operator.locator("#lh-queue .lh-item").first.click()
    # Read before accepting: a question not yet shown still counts as unread.
    expect(operator.locator("#lh-log")).to_contain_text(words["second"])
    operator.click("#lh-accept")
    expect(operator.locator("#lh-active .lh-item")).to_have_count(2)
    operator.locator("#lh-active .lh-item", has_text="Karen").click()
    expect(operator.locator("#lh-chat-title")).to_have_text("Karen Kunde")
    write(other, "?")
    expect(operator.locator("#lh-active .lh-unread")).to_have_text("1")
    expect(operator.locator("#lh-cart")).to_contain_text("1")
    camera.take(operator, "panel-chat")

    # A canned response, by its name after "#".
    box = operator.locator("#lh-reply")
    box.type("#")
    expect(operator.locator("#lh-canned li")).to_have_count(3)
    camera.take(operator, "panel-canned")
    box.press("Escape")
    box.fill("")

    # Transfer: the dialog, then cancelled.
    operator.click("#lh-transfer")
    operator.select_option("#lh-transfer-to", index=0)
    operator.fill("#lh-transfer-note", words["note"])
    expect(operator.locator("#lh-transfer-dialog")).to_be_visible()
    camera.take(operator, "panel-transfer")
    operator.click("#lh-transfer-dialog button[value=cancel]")

    # Push a page: the customer gets a link to it in the chat.
    operator.click("#lh-push")
    operator.fill("#lh-push-url", f"{base}/product/regnjakke-gul?lang={lang}")
    camera.take(operator, "panel-push")
    operator.click("#lh-push-dialog button[value=send]")
    # The customer is taken there, and the chat comes along with the link.
    # (A screenshot taken while the page navigates fails in Chromium.)
    pushed = f"{base}/product/regnjakke-gul?lang={lang}"
    expect(customer).to_have_url(pushed)
    expect(chat(customer).locator("#lh-log a")).to_have_attribute("href", pushed)
    camera.take(customer, "widget-chat")

    assert tuple(camera.taken) == CHAT_SHOTS


@pytest.mark.browser
@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_history_and_a_transcript(
    lang: str, shop: Flask, shop_server: t.Any, new_page: t.Any, camera: Camera
) -> None:
    speak(shop, lang)
    with shop.app_context():
        mette = get_state().operators.find_by_email(SHOP_OPERATOR["email"])
        get_state().db.session.expunge(mette)
    for name, question, answer in WORDS[lang]["history"]:
        finished_chat(
            shop,
            operator=mette,
            name=name,
            question=question,
            answers=[answer],
            tags=[WORDS[lang]["tag"]] if name == "Karen Kunde" else [],
        )
    page = new_page(viewport=WIDE, locale=BROWSER_LOCALE[lang])
    sign_in(page, shop_server.url)
    page.goto(shop_server.url + "/livehelp/history/")
    expect(page.locator("table.lh-history-table tbody tr")).to_have_count(3)
    camera.take(page, "history")

    page.get_by_role("link", name="Karen Kunde").click()
    expect(page.locator(".lh-transcript")).to_contain_text(WORDS[lang]["history"][0][2])
    camera.take(page, "history-chat")

    assert tuple(camera.taken) == HISTORY_SHOTS


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_guide_shows_each_screenshot_and_each_is_there(lang: str) -> None:
    assert pictures_in_guide(lang) == {*CHAT_SHOTS, *HISTORY_SHOTS}
    missing = [
        name
        for name in sorted(pictures_in_guide(lang))
        if not (IMAGES / lang / f"{name}.png").is_file()
    ]
    assert not missing, (
        f"docs/images/{lang} lacks {missing}: run"
        " LIVEHELP_SCREENSHOTS=1 python -m pytest tests/test_screenshots.py"
    )
    unused = {p.stem for p in (IMAGES / lang).glob("*.png")} - pictures_in_guide(lang)
    assert not unused, f"docs/operators.md does not show docs/images/{lang}/{unused}"
