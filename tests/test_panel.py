"""The operator panel over HTTP: signing in, CSRF, and the completed chats."""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask
from flask import session

from conftest import login
from conftest import PASSWORD
from flask_livehelp import get_state
from staff import csrf_in
from staff import csrf_of


def test_the_panel_is_closed_to_anonymous_visitors(app: Flask) -> None:
    client = app.test_client()
    for path in ("/livehelp/panel/", "/livehelp/history/", "/livehelp/history/1"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.location.startswith("/livehelp/panel/login")


def test_login_and_logout(app: Flask, operator: t.Any) -> None:
    client = app.test_client()
    assert login(client, operator.email).status_code == 302
    page = client.get("/livehelp/panel/")
    assert page.status_code == 200
    assert "Mette" in page.text and "lh-queue" in page.text
    cookie = client.get_cookie("livehelp_panel", path="/livehelp")
    assert cookie is not None
    assert cookie.http_only and cookie.same_site == "Lax"
    # The host's own session is not where the panel keeps its sign-in.
    assert client.get_cookie("session") is None
    csrf = csrf_of(client, "/livehelp/panel/")
    assert (
        client.post("/livehelp/panel/logout", data={"_lh_csrf": csrf}).status_code
        == 302
    )
    assert client.get("/livehelp/panel/").status_code == 302
    # A copy of the cookie from before signing out opens nothing either.
    replay = app.test_client()
    replay.set_cookie("livehelp_panel", cookie.value, path="/livehelp")
    assert replay.get("/livehelp/panel/").status_code == 302


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(
    app: Flask, operator: t.Any
) -> None:
    client = app.test_client()
    wrong_password = login(client, operator.email, "not it")
    unknown_email = login(client, "nobody@example.com", PASSWORD)
    for response in (wrong_password, unknown_email):
        assert response.status_code == 401
        assert "Wrong e-mail or password." in response.text
    assert client.get("/livehelp/panel/").status_code == 302


def test_a_deactivated_operator_cannot_sign_in(app: Flask, operator: t.Any) -> None:
    with app.app_context():
        get_state().operators.get(operator.id).is_active = False
        get_state().db.session.commit()
    assert login(app.test_client(), operator.email).status_code == 401


def test_posts_without_our_csrf_token_are_refused(app: Flask, operator: t.Any) -> None:
    client = app.test_client()
    response = client.post(
        "/livehelp/panel/login", data={"email": operator.email, "password": PASSWORD}
    )
    assert response.status_code == 400
    assert "expired" in response.text
    login(client, operator.email)
    assert client.post("/livehelp/panel/logout").status_code == 400
    assert client.get("/livehelp/panel/").status_code == 200  # still signed in


def test_signing_in_leaves_the_hosts_session_alone(app: Flask, operator: t.Any) -> None:
    @app.get("/shop/login")
    def shop_login() -> str:
        session["_user_id"] = "customer-7"
        session["cart"] = {"1": 2}
        return "ok"

    client = app.test_client()
    client.get("/shop/login")
    login(client, operator.email)
    with client.session_transaction() as saved:
        assert dict(saved) == {"_user_id": "customer-7", "cart": {"1": 2}}
    csrf = csrf_of(client, "/livehelp/panel/")
    client.post("/livehelp/panel/logout", data={"_lh_csrf": csrf})
    with client.session_transaction() as saved:
        assert dict(saved) == {"_user_id": "customer-7", "cart": {"1": 2}}


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/livehelp/history/", "/livehelp/history/"),
        ("https://evil.example/", "/livehelp/panel/"),
        ("//evil.example/", "/livehelp/panel/"),
        ("/\\evil.example/", "/livehelp/panel/"),
        # Browsers drop a tab or newline in a URL: this would be //evil.example.
        ("/%09/evil.example/path", "/livehelp/panel/"),
        ("/%0a/evil.example/", "/livehelp/panel/"),
        # A line break must not reach the Location header (it was a 500).
        ("/livehelp/panel/%0d%0aSet-Cookie:%20x=1", "/livehelp/panel/"),
        ("/%c2%85/evil.example/", "/livehelp/panel/"),
        ("/livehelp/history/?q=bl%C3%A5", "/livehelp/history/?q=bl%C3%A5"),
    ],
)
def test_after_login_only_pages_of_this_site(
    app: Flask, operator: t.Any, target: str, expected: str
) -> None:
    client = app.test_client()
    page = client.get("/livehelp/panel/login")
    token = csrf_in(page.text)
    response = client.post(
        f"/livehelp/panel/login?next={target}",
        data={"email": operator.email, "password": PASSWORD, "_lh_csrf": token},
    )
    assert response.location == expected


def finished_chat(app: Flask, operator: t.Any, name: str = "Karen") -> int:
    with app.app_context():
        state = get_state()
        visitor, _ = state.visitors.create(
            ip_address=None, user_agent=None, locale=None
        )
        chat, _ = state.conversations.start(
            visitor.id, client_id="q", body="Hej, har I den i blå?", name=name
        )
        owner = state.operators.get(operator.id)
        state.conversations.accept(owner, chat.id)
        state.conversations.post_by_operator(
            owner, chat.id, client_id="a", body="<b>Ja</b>"
        )
        state.conversations.end(chat.id, by="operator", operator=owner)
        return t.cast(int, chat.id)


def test_completed_chats_and_their_transcripts(app: Flask, operator: t.Any) -> None:
    chat_id = finished_chat(app, operator, name="<script>alert(1)</script>")
    client = app.test_client()
    login(client, operator.email)
    listing = client.get("/livehelp/history/")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in listing.text
    assert "<script>alert(1)" not in listing.text
    assert "no e-mail" in listing.text
    transcript = client.get(f"/livehelp/history/{chat_id}")
    assert transcript.status_code == 200
    assert "Hej, har I den i blå?" in transcript.text
    assert "&lt;b&gt;Ja&lt;/b&gt;" in transcript.text
    assert "Mette accepted the chat." in transcript.text


def test_another_operators_transcript_is_refused(
    app: Flask, operator: t.Any, make_operator: t.Any
) -> None:
    chat_id = finished_chat(app, operator)
    colleague = make_operator(name="Bo")
    client = app.test_client()
    login(client, colleague.email)
    response = client.get(f"/livehelp/history/{chat_id}")
    assert response.status_code == 403
    assert "You may not open this chat." in response.text
    assert client.get("/livehelp/history/999999").status_code == 404


def test_a_host_template_overrides_ours(app: Flask, operator: t.Any) -> None:
    """tests/templates is the host's folder; its livehelp/error.html wins."""
    client = app.test_client()
    login(client, operator.email)
    page = client.get("/livehelp/history/424242")
    assert page.status_code == 404
    override = '<p id="host-override">The shop\'s own error page: '
    assert override + "This chat does not exist.</p>" in page.text
