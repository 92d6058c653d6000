"""What an anonymous attacker tries: headers, sessions, input and limits."""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask

from conftest import login
from flask_livehelp import get_state
from flask_livehelp.views.responses import PUBLIC

STAFF_HEADERS = {
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def staff_urls(app: Flask) -> list[tuple[str, str, str]]:
    """Every staff route of ours, as (endpoint, method, URL) with made-up ids."""
    found = []
    adapter = app.url_map.bind("localhost")
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("livehelp.") or rule.endpoint in PUBLIC:
            continue
        if getattr(rule, "websocket", False):
            continue
        values = {name: 1 for name in rule.arguments}
        method = "GET" if "GET" in (rule.methods or ()) else "POST"
        found.append((rule.endpoint, method, adapter.build(rule.endpoint, values)))
    return sorted(found)


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "admin"])
def test_every_staff_route_may_not_be_framed_cached_or_inject_scripts(
    app: Flask, make_operator: t.Any, signed_in: bool
) -> None:
    client = app.test_client()
    if signed_in:
        admin = make_operator(role="admin")
        assert login(client, admin.email).status_code == 302
    urls = staff_urls(app)
    assert len(urls) > 30
    for endpoint, method, url in urls:
        response = client.open(url, method=method)
        for name, value in STAFF_HEADERS.items():
            assert response.headers.get(name) == value, (endpoint, name)
        policy = response.headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in policy, endpoint
        assert "'unsafe-inline'" not in policy, endpoint


def test_json_answers_are_not_sniffed(app: Flask) -> None:
    client = app.test_client()
    for path in ("/livehelp/widget/status", "/livehelp/widget/suggest?q=jakke"):
        response = client.get(path)
        assert response.mimetype == "application/json"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


# Input.


def hello_and_start(socket: t.Any, **fields: t.Any) -> dict[str, t.Any]:
    socket.send(type="hello")
    socket.expect("welcome")
    socket.send(type="start", id="q1", body="Hej", **fields)
    return socket.expect("ack", id="q1")


def test_a_lone_surrogate_is_a_clear_error_not_a_server_error(
    app: Flask, visitor_socket: t.Any
) -> None:
    socket = visitor_socket()
    hello_and_start(socket)
    # JSON lets half a UTF-16 pair through; no database can store it.
    socket.send_raw('{"type": "message", "id": "m1", "body": "Hej \\ud83d"}')
    error = socket.expect("error")
    assert (error["code"], error["ref"]) == ("bad-field", "m1")
    assert "not text" in error["message"]
    socket.send(type="message", id="m2", body="Still here")
    socket.expect("ack", id="m2")
    answer = app.test_client().post(
        "/livehelp/offline/message",
        data='{"id": "x1", "body": "Hej \\udc00", "website": ""}',
        content_type="application/json",
    )
    assert answer.status_code == 400 and answer.json["error"] == "bad-field"


def test_invisible_messages_are_refused_and_control_characters_dropped(
    app: Flask, visitor_socket: t.Any
) -> None:
    socket = visitor_socket()
    ack = hello_and_start(socket, name="Eve\u009b31m\u0085")
    socket.send(type="message", id="m1", body="\u200b\ufeff\u2060 \u200d")
    error = socket.expect("error")
    assert (error["code"], error["ref"]) == ("bad-field", "m1")
    with app.app_context():
        chat = get_state().conversations.get(ack["conversation"])
        assert chat.visitor_name == "Eve31m"
        assert [
            m.body for m in get_state().conversations.messages_after(chat.id, 0)
        ] == ["Hej"]
    answer = app.test_client().post(
        "/livehelp/offline/message",
        json={"id": "x1", "body": "\u200b\u200b", "website": ""},
    )
    assert answer.status_code == 400


def test_what_a_visitor_typed_cannot_turn_the_history_around(
    app: Flask, make_operator: t.Any
) -> None:
    from staff import chat

    manager = make_operator(role="admin")
    chat_id = chat(app, name="\u202eevE", question="\u202eHej")
    client = app.test_client()
    login(client, manager.email)
    page = client.get(f"/livehelp/history/{chat_id}").text
    assert '<h1 dir="auto">\u202eevE</h1>' in page
    assert '<p dir="auto">\u202eHej</p>' in page
    listed = client.get("/livehelp/history/?view=all").text
    assert "<bdi>\u202eevE</bdi>" in listed
