"""Administration in Chromium: an admin creates an operator, who then signs in."""

from __future__ import annotations

import typing as t

from playwright.sync_api import Browser
from playwright.sync_api import expect
from playwright.sync_api import Page

from browser import sign_in


def test_an_admin_creates_an_operator_who_then_signs_in(
    shop: t.Any, shop_server: t.Any, page: Page, browser: Browser
) -> None:
    sign_in(page, shop_server.url)
    page.click("text=Administration")
    page.click(".lh-subnav >> text=Operators")
    page.click("text=Add an operator")
    page.fill("input[name=name]", "Sofie")
    page.fill("input[name=email]", "sofie@example.com")
    page.fill("input[name=password]", "sofies secret")
    page.select_option("select[name=role]", "manager")
    page.check("input[name=receives_offline]")
    page.fill("input[name=max_chats]", "5")
    page.fill("input[name=timezone]", "Europe/Copenhagen")
    page.click("form.lh-form button[type=submit]")
    expect(page.locator(".lh-flash")).to_have_text(
        "The operator is created. They can sign in now."
    )
    page.click(".lh-subnav >> text=Operators")
    row = page.locator("table.lh-table tbody tr", has_text="Sofie")
    expect(row).to_contain_text("sofie@example.com")
    expect(row).to_contain_text("Manager")

    context = browser.new_context()
    try:
        sofie = context.new_page()
        sign_in(sofie, shop_server.url, "sofie@example.com", "sofies secret")
        expect(sofie.locator(".lh-me-name")).to_have_text("Sofie")
        # A manager sees all chats and the report, not the operators' page.
        expect(sofie.get_by_role("link", name="Report")).to_be_visible()
        response = sofie.goto(shop_server.url + "/livehelp/admin/operators")
        assert response is not None and response.status == 403
    finally:
        context.close()
