"""The chat history in Chromium: the list, a search, a transcript, and deleting."""

from __future__ import annotations

import typing as t

from flask import Flask
from playwright.sync_api import expect
from playwright.sync_api import Page

from browser import SHOP_OPERATOR
from browser import sign_in
from flask_livehelp import get_state
from staff import chat


def demo_operator(shop: Flask) -> t.Any:
    with shop.app_context():
        operator = get_state().operators.find_by_email(SHOP_OPERATOR["email"])
        get_state().db.session.expunge(operator)
        return operator


def test_the_history_list_a_search_and_a_transcript(
    shop: Flask, shop_server: t.Any, page: Page
) -> None:
    mette = demo_operator(shop)
    chat(
        shop,
        operator=mette,
        name="Karen",
        email="karen@example.com",
        question="Har I regnjakken i blå?",
        answers=["Ja, i alle størrelser."],
        tags=["lager"],
    )
    chat(shop, operator=mette, name="Ole", question="Hvornår kommer min pakke?")
    sign_in(page, shop_server.url)
    page.click("text=Chat history")
    rows = page.locator("table.lh-history-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Ole")
    expect(rows.first).to_contain_text("no e-mail")
    expect(rows.last).to_contain_text("karen@example.com")
    expect(rows.last).to_contain_text("lager")

    page.fill("input[name=q]", "regnjakken")
    page.click("form.lh-filters button[type=submit]")
    expect(rows).to_have_count(1)
    expect(page.locator(".lh-found")).to_have_text("1 chat found.")

    page.get_by_role("link", name="Karen").click()
    transcript = page.locator(".lh-transcript")
    expect(transcript).to_contain_text("Har I regnjakken i blå?")
    expect(transcript).to_contain_text("Ja, i alle størrelser.")
    expect(transcript.locator(".lh-event").first).to_contain_text(
        "Mette accepted the chat."
    )
    expect(page.get_by_role("link", name="Download as text")).to_be_visible()


def test_deleting_chats_from_the_list_leaves_an_audit_entry(
    shop: Flask, shop_server: t.Any, page: Page
) -> None:
    mette = demo_operator(shop)
    chat(shop, operator=mette, name="Karen", question="Slet denne samtale")
    kept = chat(shop, operator=mette, name="Ole", question="Behold denne")
    sign_in(page, shop_server.url)
    page.goto(shop_server.url + "/livehelp/history/?view=all")
    rows = page.locator("table.lh-history-table tbody tr")
    expect(rows).to_have_count(2)
    page.check("#lh-select-all")
    expect(page.locator("input[name=ids]:checked")).to_have_count(2)
    page.uncheck(f"tr[data-id='{kept}'] input[name=ids]")
    page.click("button[value=delete]")
    expect(page.locator(".lh-flash")).to_have_text("Deleted 1 chat.")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Ole")

    page.fill("input[name=q]", "slet")
    page.click("form.lh-filters button[type=submit]")
    expect(page.locator(".lh-found")).to_have_text("0 chats found.")

    page.click("text=Administration")
    page.click(".lh-subnav >> text=Audit log")
    entry = page.locator("table.lh-audit tbody tr").first
    expect(entry).to_contain_text("conversation-deleted")
    expect(entry).to_contain_text("Mette")
