"""What a person does in the widget and the panel, for the browser tests."""

from __future__ import annotations

import typing as t

from flask import Flask
from playwright.sync_api import expect
from playwright.sync_api import FrameLocator
from playwright.sync_api import Locator
from playwright.sync_api import Page

from flask_livehelp import get_state

SHOP_OPERATOR = {"email": "operator@example.com", "password": "operator"}
QUESTION = "Hej, har I den i blå?"


def launcher(page: Page) -> Locator:
    return page.locator("livehelp-widget button")


def chat(page: Page) -> FrameLocator:
    return page.frame_locator("livehelp-widget iframe")


def sign_in(
    page: Page,
    base: str,
    email: str = SHOP_OPERATOR["email"],
    password: str = SHOP_OPERATOR["password"],
) -> None:
    page.goto(base + "/livehelp/panel/")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    expect(page.locator("#lh-panel")).to_be_visible()


def set_status(page: Page, status: str) -> None:
    page.click(f"[data-status={status}]")
    expect(page.locator(f"[data-status={status}]")).to_have_attribute(
        "aria-checked", "true"
    )


def go_online(page: Page) -> None:
    set_status(page, "online")


def ask(customer: Page, question: str = QUESTION, **fields: str) -> None:
    """Open the widget and start a chat; ``name=`` and ``email=`` fill those in."""
    if not customer.locator("livehelp-widget iframe").is_visible():
        launcher(customer).click()
    window = chat(customer)
    window.locator("#lh-question").fill(question)
    for field, value in fields.items():
        window.locator(f"#lh-{field}").fill(value)
    window.locator("#lh-prechat button[type=submit]").click()


def write(customer: Page, text: str) -> None:
    box = chat(customer).locator("#lh-input")
    box.fill(text)
    box.press("Enter")


def held_requests(page: Page, pattern: str) -> list[t.Any]:
    """Hold every request of ``page`` to ``pattern``, as a slow line would;
    the test lets each go on (``continue_``, ``fulfill``) when it wants."""
    held: list[t.Any] = []

    def hold(route: t.Any) -> None:
        held.append(route)

    page.route(pattern, hold)
    return held


def accept_first(operator: Page) -> None:
    operator.locator("#lh-queue .lh-item").first.click()
    operator.click("#lh-accept")
    expect(operator.locator("#lh-composer")).to_be_visible()


def reply(operator: Page, text: str) -> None:
    operator.fill("#lh-reply", text)
    operator.press("#lh-reply", "Enter")


def shop_state(customer: Page, state: str, timeout: float = 10_000) -> None:
    """Wait until the launcher shows ``state`` (it polls every second in tests)."""
    expect(launcher(customer)).to_have_class(state, timeout=timeout)


def online_operator(new_page: t.Any, base: str, **login: str) -> Page:
    """An operator signed in to the panel and online."""
    operator = new_page()
    sign_in(operator, base, **login)
    go_online(operator)
    return t.cast(Page, operator)


def customer_on_site(new_page: t.Any, base: str, path: str = "/") -> Page:
    """A customer on a page of the shop, seeing the operators online."""
    customer = new_page()
    customer.goto(base + path)
    shop_state(customer, "online")
    return t.cast(Page, customer)


def staffed_chat(
    new_page: t.Any, base: str, question: str = QUESTION, **fields: str
) -> tuple[Page, Page]:
    """A customer asks, and an online operator accepts: (customer, operator)."""
    operator = online_operator(new_page, base)
    customer = customer_on_site(new_page, base)
    ask(customer, question, **fields)
    accept_first(operator)
    return customer, operator


# Every message log of the widget and the panel, watched from its first line:
# a message put above one already shown is a message shown out of order.
WATCH_ORDER = """
(() => {
  window.__lhReordered = [];
  // The changes come in batches, in order: replay them to know what was
  // already on screen when each message appeared.
  const watch = (log) => {
    const onScreen = new Set();
    new MutationObserver((changes) => {
      for (const change of changes) {
        for (const node of change.removedNodes) if (node.dataset) onScreen.delete(node);
        for (const node of change.addedNodes) {
          if (!node.dataset || !node.dataset.seq) continue;
          const seq = Number(node.dataset.seq);
          const later = [...onScreen].find((other) => Number(other.dataset.seq) > seq);
          if (later) window.__lhReordered.push([seq, Number(later.dataset.seq)]);
          onScreen.add(node);
        }
      }
    }).observe(log, { childList: true });
  };
  const find = () => {
    const log = document.getElementById("lh-log");
    if (log) watch(log); else setTimeout(find, 20);
  };
  document.addEventListener("DOMContentLoaded", find);
})();
"""


def watched_page(new_page: t.Callable[..., Page]) -> Page:
    """A page whose message logs are watched for a message shown out of order."""
    page = new_page()
    page.context.add_init_script(WATCH_ORDER)
    return t.cast(Page, page)


def reordered(page: Page) -> list[t.Any]:
    return [
        found
        for frame in page.frames
        for found in (frame.evaluate("window.__lhReordered || []") or [])
    ]


#: With an address pasted in, one "word" longer than any column is wide.
PASTED_QUESTION = (
    "Har I den blå regnjakke i størrelse M? Som denne: https://shop.example"
    "/produkter/regnjakker/regnjakke-blaa-med-haette-og-reflekser-str-m"
    "?farve=blaa&utm_source=nyhedsbrev&utm_medium=email&utm_campaign=efteraar"
)
#: The staff pages beside the panel, under /livehelp/.
STAFF_PAGES = (
    "history/",
    "offline/",
    "offline/outbox",
    "report",
    "admin/",
    "admin/operators",
    "admin/departments",
    "admin/widget",
    "admin/settings",
    "admin/canned",
    "admin/articles",
    "admin/audit",
    "admin/erase",
)


def customer_asking(new_page: t.Any, base: str, lang: str) -> Page:
    """The shop's demo customer, signed in, a jacket in the cart, asking on
    a page whose address is long, and agreeing to be e-mailed."""
    customer = t.cast(Page, new_page())
    customer.goto(f"{base}/login?lang={lang}")
    customer.fill("input[name=email]", "kunde@example.com")
    customer.fill("input[name=password]", "kunde")
    customer.click("form.stacked-form [type=submit]")
    customer.goto(f"{base}/product/regnjakke-blaa")
    customer.click("form.add-to-cart button[type=submit]")
    customer.wait_for_url(f"{base}/cart")
    customer.goto(f"{base}/product/regnjakke-blaa?lang={lang}&utm_source=newsletter")
    shop_state(customer, "online")
    launcher(customer).click()
    window = chat(customer)
    window.locator("#lh-question").fill(PASTED_QUESTION)
    window.locator("#lh-consent").check()
    window.locator("#lh-prechat button[type=submit]").click()
    return customer


def operator_speaks(shop: Flask, lang: str) -> None:
    """The shop's demo operator works in ``lang``."""
    with shop.app_context():
        state = get_state()
        state.operators.find_by_email(SHOP_OPERATOR["email"]).locale = lang
        state.db.session.commit()
