"""Nothing spills out of its pane, at the screen sizes people work on.

A label once grew (whether the customer may be e-mailed) and squeezed every
value of the customer's details into a column a letter wide, past the pane's
edge; the tests that read the text still passed, as the text was all there.
These look at the boxes instead: at each size, in English and in Danish (the
longer words), neither the page nor any pane in it scrolls sideways, and no
value is squeezed narrower than a word; and a pane that scrolls sideways
can be reached with the keyboard.
"""

from __future__ import annotations

import typing as t

import pytest
from axe_playwright_python.sync_playwright import Axe
from flask import Flask
from playwright.sync_api import expect
from playwright.sync_api import Frame
from playwright.sync_api import Page

from browser import accept_first
from browser import chat
from browser import customer_asking
from browser import online_operator
from browser import operator_speaks
from browser import reply
from browser import STAFF_PAGES

pytestmark = pytest.mark.browser

#: Screens: a wide monitor, laptops, a tablet upright, a phone.
SIZES = {
    "wide": {"width": 1920, "height": 1080},
    "laptop": {"width": 1366, "height": 768},
    "small laptop": {"width": 1024, "height": 768},
    "tablet": {"width": 800, "height": 1024},
    "phone": {"width": 390, "height": 844},
}

#: What spills, measured in the page: the page wider than the window, a
#: pane (anything that scrolls) wider than its box, and text squeezed into
#: a box narrower than the widest word it holds.
SPILLS = """() => {
  const name = (el) => el.id ? "#" + el.id
    : el.tagName.toLowerCase() + [...el.classList].map((c) => "." + c).join("");
  const shown = (el) => el.getClientRects().length > 0
    && getComputedStyle(el).visibility !== "hidden";
  const spilled = [];
  if (document.scrollingElement.scrollWidth > innerWidth + 1) {
    // What sticks out: the outermost elements past the window's right edge.
    const right = (el) => Math.round(el.getBoundingClientRect().right);
    const past = (el) => right(el) > innerWidth + 1;
    for (const el of document.body.querySelectorAll("*")) {
      if (shown(el) && past(el) && !past(el.parentElement))
        spilled.push([name(el), "past the window", right(el)]);
    }
  }
  for (const el of document.body.querySelectorAll("*")) {
    if (!shown(el) || el.closest("table, textarea, pre")) continue;
    // Made to: a table of many columns scrolls sideways by itself.
    if (el.classList.contains("lh-table-scroll")) continue;
    const scrolls = ["auto", "scroll"].includes(getComputedStyle(el).overflowX);
    if (scrolls && el.scrollWidth > el.clientWidth + 1)
      spilled.push([name(el), el.scrollWidth, el.clientWidth]);
  }
  // Each text by itself (one font): words broken into pieces of a few
  // letters a line are a column too narrow to read.
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let text = walker.nextNode(); text; text = walker.nextNode()) {
    const words = text.textContent.trim();
    if (words.length < 6 || !shown(text.parentElement)) continue;
    const range = document.createRange();
    range.selectNodeContents(text);
    const tops = [...range.getClientRects()].map((r) => Math.round(r.top));
    const lines = new Set(tops).size;
    const broken = lines > words.split(" ").length;
    if (lines > 2 && broken && words.length / lines < 12)
      spilled.push([name(text.parentElement), "squeezed", words.slice(0, 40)]);
  }
  return spilled;
}"""

LANGUAGES = ("en", "da")
AXE = Axe()
#: axe-core's rule for a pane that scrolls but that no key can reach.
KEYBOARD_SCROLLING = {"runOnly": ["scrollable-region-focusable"]}


def spills(where: Page | Frame) -> list[list[t.Any]]:
    """What spills (:data:`SPILLS`), and any pane that scrolls but that a
    keyboard cannot reach, as axe-core finds it."""
    # After the next frame is drawn, at the size just set.
    where.evaluate("() => new Promise((done) => requestAnimationFrame(() => done()))")
    found = t.cast(list[list[t.Any]], where.evaluate(SPILLS))
    unreachable = AXE.run(where, options=KEYBOARD_SCROLLING).response["violations"]
    found += [[v["id"], [node["target"] for node in v["nodes"]]] for v in unreachable]
    return found


def at_every_size(page: Page, look: t.Callable[[], list[list[t.Any]]]) -> None:
    found = {}
    for size, viewport in SIZES.items():
        page.set_viewport_size(viewport)
        spilled = look()
        if spilled:
            found[size] = spilled
    assert not found, (page.url, found)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_panel_and_staff_pages_spill_nowhere(
    lang: str, shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    base = shop_server.url
    operator_speaks(shop, lang)
    operator = online_operator(new_page, base)
    customer = customer_asking(new_page, base, lang)
    accept_first(operator)
    expect(operator.locator("#lh-cart")).to_contain_text("1")
    at_every_size(operator, lambda: spills(operator))
    for opens, dialog in (
        ("#lh-transfer", "#lh-transfer-dialog"),
        ("#lh-push", "#lh-push-dialog"),
    ):
        operator.click(opens)
        expect(operator.locator(dialog)).to_be_visible()
        at_every_size(operator, lambda: spills(operator))
        operator.click(f"{dialog} button[value=cancel]")
        expect(operator.locator(dialog)).to_be_hidden()

    operator.click("#lh-show-visitors")
    expect(operator.locator("#lh-visitor-rows tr")).not_to_have_count(0)
    at_every_size(operator, lambda: spills(operator))

    operator.locator("#lh-active .lh-item").first.click()  # back to the chat
    operator.click("#lh-end")
    expect(chat(customer).locator("#lh-new")).to_be_visible()
    for path in STAFF_PAGES:
        opened = operator.goto(f"{base}/livehelp/{path}")
        assert opened is not None and opened.ok, path
        at_every_size(operator, lambda: spills(operator))
    operator.goto(f"{base}/livehelp/history/")
    operator.locator(".lh-history-table tbody a").first.click()
    expect(operator.locator(".lh-transcript")).to_be_visible()
    at_every_size(operator, lambda: spills(operator))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_chat_window_spills_nowhere(
    lang: str, shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    base = shop_server.url
    operator = online_operator(new_page, base)
    customer = customer_asking(new_page, base, lang)
    accept_first(operator)
    reply(operator, "Hej Karen, ja: vi har den i størrelse M. " * 3)
    window = customer.locator("livehelp-widget iframe")
    expect(chat(customer).locator(".lh-from-operator")).to_have_count(1)
    frame = window.element_handle().content_frame()
    assert frame is not None
    at_every_size(customer, lambda: spills(customer) + spills(frame))
