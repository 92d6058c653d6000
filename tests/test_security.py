"""What an anonymous attacker tries: headers, sessions, input and limits."""

from __future__ import annotations

import datetime as dt
import json
import time
import typing as t

import pytest
from flask import Flask
from simple_websocket import ConnectionClosed

from conftest import login
from conftest import panel_cookie
from conftest import PASSWORD
from conftest import Socket
from flask_livehelp import get_state
from flask_livehelp.services import timeouts
from flask_livehelp.views.responses import PUBLIC
from mailservers import SMTPServer
from staff import csrf_of

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


# Limits that follow the person, not the socket.


def new_chat(visitor_socket: t.Any, token: str | None = None) -> t.Any:
    socket = visitor_socket()
    socket.send(type="hello", token=token)
    socket.token = token or socket.expect("welcome")["token"]
    return socket


@pytest.mark.livehelp(visitor_messages_per_minute=3)
def test_a_new_socket_does_not_reset_a_visitors_message_limit(
    visitor_socket: t.Any,
) -> None:
    first = new_chat(visitor_socket)
    first.send(type="start", id="q1", body="Hej")
    first.expect("ack", id="q1")
    first.send(type="message", id="m2", body="To")
    first.expect("ack", id="m2")
    first.close()
    second = new_chat(visitor_socket, first.token)
    second.expect("welcome")
    second.send(type="message", id="m3", body="Tre")
    second.expect("ack", id="m3")
    second.send(type="message", id="m4", body="Fire")
    refused = second.expect("error")
    assert (refused["code"], refused["ref"]) == ("too-fast", "m4")


@pytest.mark.livehelp(chats_per_hour_per_ip=2)
def test_one_address_starts_only_so_many_chats(visitor_socket: t.Any) -> None:
    for number in range(3):
        socket = new_chat(visitor_socket)
        socket.send(type="start", id="q1", body=f"Chat {number}")
        answer = socket.expect("ack" if number < 2 else "error")
    assert (answer["code"], answer["ref"]) == ("too-fast", "q1")


@pytest.mark.livehelp(chats_per_hour=2, chats_per_hour_per_ip=100)
def test_one_visitor_starts_only_so_many_chats(visitor_socket: t.Any) -> None:
    token = None
    for number in range(3):
        socket = new_chat(visitor_socket, token)
        token = socket.token
        socket.send(type="start", id=f"q{number}", body=f"Chat {number}")
        answer = socket.expect_any("ack", "error")
        if answer["type"] == "ack":
            socket.send(type="end")
            # Ended before anybody took it: missed.
            socket.expect("conversation", status="missed")
    assert (answer["code"], answer["ref"]) == ("too-fast", "q2")


@pytest.mark.livehelp(messages_per_minute_per_ip=3, visitor_messages_per_minute=100)
def test_one_address_sends_only_so_many_messages_whoever_sends_them(
    visitor_socket: t.Any,
) -> None:
    answers = []
    for _ in range(2):
        # Two visitors of one address: two chats, two lines each.
        socket = new_chat(visitor_socket)
        socket.send(type="start", id="q1", body="Hej")
        answers.append(socket.expect_any("ack", "error"))
        socket.send(type="message", id="m2", body="Hallo?")
        answers.append(socket.expect_any("ack", "error"))
    assert [a["type"] for a in answers] == ["ack", "ack", "ack", "error"]
    assert answers[-1]["code"] == "too-fast"


@pytest.mark.livehelp(new_visitors_per_minute_per_ip=2)
def test_one_address_makes_only_so_many_new_visitors(visitor_socket: t.Any) -> None:
    for _ in range(2):
        new_chat(visitor_socket)
    socket = visitor_socket()
    socket.send(type="hello")
    assert socket.expect("error")["code"] == "too-fast"


@pytest.mark.livehelp(sockets_per_ip=2)
def test_one_address_holds_only_so_many_sockets_open(visitor_socket: t.Any) -> None:
    held = [new_chat(visitor_socket) for _ in range(2)]
    turned_away = visitor_socket()
    assert turned_away.receive()["code"] == "too-many"
    held[0].close()
    time.sleep(0.3)
    new_chat(visitor_socket)


@pytest.mark.livehelp(hello_within_seconds=1)
def test_a_socket_that_never_says_hello_is_let_go(visitor_socket: t.Any) -> None:
    silent = visitor_socket()
    assert silent.receive(timeout=5)["code"] == "hello-first"
    with pytest.raises(Exception):  # noqa: B017 - closed, whichever way it shows
        for _ in range(3):
            silent.send(type="ping")
            silent.receive(timeout=2)


@pytest.mark.livehelp(hello_within_seconds=1)
def test_pings_do_not_keep_a_socket_open_without_a_hello(
    visitor_socket: t.Any,
) -> None:
    pinging = visitor_socket()
    started = time.monotonic()
    frames: list[dict[str, t.Any]] = []
    # Pings (answered) more often than the time-out: no hello, all the same.
    with pytest.raises(ConnectionClosed):
        while time.monotonic() - started < 5:
            pinging.send(type="ping")
            while (text := pinging.ws.receive(timeout=0.3)) is not None:
                frames.append(json.loads(text))
    closed = time.monotonic() - started
    assert {"type": "pong"} in frames
    assert frames[-1]["code"] == "hello-first"
    assert closed < 2.5


@pytest.mark.livehelp(offline_per_hour=2, chats_per_hour_per_ip=10)
def test_chats_left_to_time_out_mail_only_so_many_addresses(
    app: Flask, visitor_socket: t.Any, smtp: SMTPServer
) -> None:
    # Chats started with somebody else's address, that nobody takes: each
    # becomes an offline message with a copy to that address.
    for number in range(4):
        socket = new_chat(visitor_socket)
        socket.send(
            type="start", id="q1", body="Hej", email=f"victim{number}@example.com"
        )
        socket.expect("ack", id="q1")
    state = get_state(app)
    with app.app_context():
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        assert len(timeouts.time_out_queue(state, now=later)) == 4
    state.mail.wait_idle()
    victims = {r for d in smtp.deliveries for r in d.recipients if "victim" in r}
    assert victims == {"victim0@example.com", "victim1@example.com"}


@pytest.mark.livehelp(offline_per_hour=2)
def test_the_contact_frame_mails_only_so_many_addresses(
    app: Flask, visitor_socket: t.Any
) -> None:
    answers = []
    for number in range(3):
        socket = new_chat(visitor_socket)
        socket.send(type="start", id="q1", body="Hej")
        socket.expect("ack", id="q1")
        socket.send(type="contact", email=f"victim{number}@example.com")
        answers.append(socket.expect("contact" if number < 2 else "error"))
    assert answers[-1]["code"] == "too-many"


def end_session(client: t.Any, how: str) -> None:
    """Sign out, or change the password in another browser."""
    if how == "sign-out":
        csrf = csrf_of(client, "/livehelp/panel/")
        answer = client.post("/livehelp/panel/logout", data={"_lh_csrf": csrf})
    else:
        token = csrf_of(client, "/livehelp/account/password")
        new = {"new": "a new secret", "again": "a new secret"}
        answer = client.post(
            "/livehelp/account/password",
            data={"_lh_csrf": token, "current": PASSWORD, **new},
        )
    assert answer.status_code == 302


@pytest.mark.parametrize("how", ["sign-out", "password-change"])
def test_ending_a_session_closes_the_operators_open_panel(
    app: Flask, operator: t.Any, live_server: t.Any, sockets: list[t.Any], how: str
) -> None:
    client = app.test_client()
    assert login(client, operator.email).status_code == 302
    panel = Socket(
        live_server.ws_url("/livehelp/panel/ws"), {"Cookie": panel_cookie(client)}
    )
    sockets.append(panel)
    panel.expect("hello")
    if how == "sign-out":
        end_session(client, how)
    else:
        elsewhere = app.test_client()
        assert login(elsewhere, operator.email).status_code == 302
        end_session(elsewhere, how)
    assert panel.expect("signed-out")
    with pytest.raises(Exception):  # noqa: B017 - closed, whichever way it shows
        panel.send(type="visitors")
        panel.expect("visitors", timeout=2)


def test_the_panel_cookie_is_secure_over_https(app: Flask, operator: t.Any) -> None:
    client = app.test_client()
    https = "https://shop.example"
    assert login(client, operator.email, base_url=https).status_code == 302
    cookie = client.get_cookie(
        "livehelp_panel", domain="shop.example", path="/livehelp"
    )
    assert cookie is not None and cookie.secure and cookie.http_only
    assert cookie.same_site == "Lax"
