"""A shop nobody here wrote gets the whole product from the README's lines.

tests/foreign_shop.py is built the way shops out there are (a model base of
its own, CSRFProtect, Flask-Login, Babel with its own selector, Flask-Migrate
with our hook, the debug toolbar on). Its migrations run, its debug toolbar
stays on its own pages, and in Chromium a customer chats with an operator
who goes online, accepts, answers and ends, the chat is in the history, and
an offline message reaches the shop's mailbox.
"""

from __future__ import annotations

import collections.abc as c
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from playwright.sync_api import expect

import foreign_shop
from browser import accept_first
from browser import ask
from browser import chat
from browser import go_online
from browser import launcher
from browser import reply
from browser import set_status
from browser import shop_state
from browser import sign_in
from browser import write
from conftest import _empty
from conftest import CHEAP_HASH
from conftest import LiveServer
from conftest import login
from flask_livehelp import get_state
from mailservers import SMTPServer
from mailservers import text_of

# Flask-Migrate 4.1's env.py template tries the deprecated get_engine() first.
pytestmark = pytest.mark.filterwarnings(
    "ignore:'get_engine' is deprecated:DeprecationWarning"
)

OPERATOR = {"email": "mette@nordic-gear.example", "password": "correct horse"}
TOOLBAR = 'id="flDebug"'


#: The shop's first steps with Flask-Migrate once it adds us: a shop with no
#: revisions yet, and one whose own revisions were there before us.
MIGRATE_STEPS = {
    "new-shop": [["upgrade", "heads"], ["migrate", "-m", "shop"], ["upgrade", "heads"]],
    # Its history (one revision here) goes on after ours came in.
    "shop-with-revisions": [
        ["revision", "-m", "the shop before us"],
        ["upgrade", "heads"],
        ["migrate", "-m", "shop"],
        ["upgrade", "heads"],
    ],
}


@pytest.fixture(params=sorted(MIGRATE_STEPS))
def foreign(
    request: pytest.FixtureRequest,
    empty_database_uri: str,
    tmp_path: Path,
    smtp_server: SMTPServer,
) -> c.Iterator[Flask]:
    database_uri = empty_database_uri
    app = foreign_shop.create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_uri,
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": smtp_server.port,
            "LIVEHELP_STATUS_POLL_SECONDS": 1,
            "LIVEHELP_PASSWORD_HASH": CHEAP_HASH,
            "LIVEHELP_OFFLINE_MAILBOX": "service@nordic-gear.example",
        }
    )
    migrations = str(tmp_path / "migrations")
    runner = app.test_cli_runner()
    # The shop's own first steps with Flask-Migrate, and ours among them.
    steps = [["init"], *MIGRATE_STEPS[request.param]]
    for step in steps:
        command = ["db", step[0], "-d", migrations, *step[1:]]
        result = runner.invoke(args=command)
        assert result.exit_code == 0, result.output
        if command[1] == "init":
            env = Path(migrations) / "env.py"
            # Its logging setup would silence every logger of the test session.
            env.write_text(env.read_text().replace("fileConfig(", "(lambda n: 0)("))
    password = OPERATOR["password"]
    result = runner.invoke(
        args=["livehelp", "create-operator", "--name", "Mette", "--role", "admin"]
        + ["--email", OPERATOR["email"]],
        input=f"{password}\n{password}\n",
    )
    assert result.exit_code == 0, result.output
    yield app
    get_state(app).jobs.stop()
    with app.app_context():
        _empty(foreign_shop.db)
        foreign_shop.db.drop_all()
        with foreign_shop.db.engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))


def test_the_migrations_made_both_and_the_debug_toolbar_stays_on_the_shops_pages(
    foreign: Flask,
) -> None:
    with foreign.app_context():
        names = set(sa.inspect(foreign_shop.db.engine).get_table_names())
    assert {"product", "customer", "livehelp_conversation"} <= names
    client = foreign.test_client()
    shop_page = client.get("/").text
    assert TOOLBAR in shop_page and foreign_shop.DEV_SCRIPT in shop_page
    # Neither the toolbar nor any other tool that rewrites pages reaches ours.
    for path in ("/livehelp/panel/login", "/livehelp/widget/frame"):
        page = client.get(path).text
        assert TOOLBAR not in page and foreign_shop.DEV_SCRIPT not in page, path
    # Signing in redirects (the toolbar would turn a redirect into a page).
    assert login(client, OPERATOR["email"], OPERATOR["password"]).status_code == 302
    assert TOOLBAR not in client.get("/livehelp/panel/").text


def test_in_chromium_the_readme_lines_give_the_whole_product(
    foreign: Flask, new_page: t.Any, smtp_server: SMTPServer
) -> None:
    server = LiveServer(foreign)
    try:
        operator = new_page()
        sign_in(operator, server.url, OPERATOR["email"], OPERATOR["password"])
        expect(operator.locator("#flDebug")).to_have_count(0)
        go_online(operator)
        customer = new_page()
        customer.goto(server.url + "/?lang=da")
        shop_state(customer, "online")
        ask(customer, "Hej, er jakken vandtæt?")
        accept_first(operator)
        reply(operator, "Ja, helt vandtæt.")
        expect(chat(customer).locator("#lh-log")).to_contain_text("Ja, helt vandtæt.")
        write(customer, "Tak!")
        expect(operator.locator("#lh-log")).to_contain_text("Tak!")
        operator.click("#lh-end")
        # Ended (the history lists finished chats), before the page is left.
        expect(operator.locator("#lh-log")).to_contain_text("The chat has ended.")
        operator.goto(server.url + "/livehelp/history/?q=vandtæt")
        rows = operator.locator("table.lh-history-table tbody tr")
        expect(rows).to_have_count(1)
        rows.first.get_by_role("link").first.click()
        expect(operator.locator(".lh-transcript")).to_contain_text("Ja, helt vandtæt.")

        # Nobody online: the red button, and the message reaches the mailbox.
        operator.goto(server.url + "/livehelp/panel/")
        set_status(operator, "offline")
        other = new_page()
        other.goto(server.url + "/")
        shop_state(other, "offline")
        launcher(other).click()
        window = chat(other)
        window.locator("#lh-offline-body").fill("Can you ship to Iceland?")
        window.locator("#lh-offline-email").fill("kari@example.is")
        window.locator("#lh-offline button[type=submit]").click()
        expect(window.locator("#lh-offline-done")).to_be_visible()
        smtp_server.wait_for(2)
        [mailed] = smtp_server.to("service@nordic-gear.example")
        assert "Can you ship to Iceland?" in text_of(mailed.message)
    finally:
        get_state(foreign).mail.wait_idle()
        server.stop()
