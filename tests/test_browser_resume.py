"""The panel's own resume, in Chromium: frames lost on the way are asked for.

The server numbers every message of a chat; a panel that hears a number
beyond the next one it expects has lost a frame. It keeps what came early,
asks for what it missed, and shows every message once and in its order,
also when the answer to that question is lost too. The frames are lost here
by a WebSocket route between the panel and the server, as on a line that
breaks while a frame is on its way.
"""

from __future__ import annotations

import json
import threading
import typing as t

from flask import Flask
from playwright.sync_api import expect
from playwright.sync_api import WebSocketRoute

from browser import accept_first
from browser import ask
from browser import chat
from browser import customer_on_site
from browser import go_online
from browser import QUESTION
from browser import reordered
from browser import sign_in
from browser import watched_page
from browser import write


class LossyLine:
    """Between the panel and the server: drops the first ``times`` frames
    from the server that carry ``body``, and counts what the panel asks."""

    def __init__(self, body: str, times: int) -> None:
        self.body = body
        self.left = times
        self.asked: list[dict[str, t.Any]] = []
        self._lock = threading.Lock()

    def route(self, panel: WebSocketRoute) -> None:
        server = panel.connect_to_server()
        server.on_message(lambda text: self._to_panel(panel, text))
        panel.on_message(lambda text: self._to_server(server, text))

    def _to_panel(self, panel: WebSocketRoute, text: str | bytes) -> None:
        frame = json.loads(text)
        with self._lock:
            if frame.get("body") == self.body and self.left:
                self.left -= 1
                return
        panel.send(text)

    def _to_server(self, server: WebSocketRoute, text: str | bytes) -> None:
        frame = json.loads(text)
        if frame.get("type") == "sync":
            with self._lock:
                self.asked.append(frame)
        server.send(text)


def test_a_message_lost_on_the_way_to_the_panel_is_asked_for_and_shown_in_order(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    base = shop_server.url
    # The message itself is lost, and then the backlog that brings it too.
    line = LossyLine("Er den vandtæt?", times=2)
    operator = watched_page(new_page)
    operator.route_web_socket("**/livehelp/panel/ws", line.route)
    sign_in(operator, base)
    go_online(operator)
    customer = customer_on_site(new_page, base)
    ask(customer, QUESTION)
    accept_first(operator)
    write(customer, "Er den vandtæt?")
    write(customer, "Og i størrelse M?")
    said = operator.locator("#lh-log .lh-said p")
    expect(said).to_have_text([QUESTION, "Er den vandtæt?", "Og i størrelse M?"])
    assert line.left == 0, "the test lost fewer frames than it meant to"
    assert len(line.asked) >= 2
    assert reordered(operator) == []


class BreakingLine:
    """Between the panel and the server: the first frame of ``frame_type``
    the panel sends is lost with the line, which breaks under it."""

    def __init__(self, frame_type: str) -> None:
        self.frame_type = frame_type
        self.broken = threading.Event()

    def route(self, panel: WebSocketRoute) -> None:
        server = panel.connect_to_server()
        server.on_message(panel.send)
        panel.on_message(lambda text: self._to_server(panel, server, text))

    def _to_server(
        self, panel: WebSocketRoute, server: WebSocketRoute, text: str | bytes
    ) -> None:
        if json.loads(text).get("type") == self.frame_type and not self.broken.is_set():
            self.broken.set()
            server.close()
            panel.close(code=1001)  # going away, as a proxy that restarts says
            return
        server.send(text)


def test_an_accept_lost_with_the_line_is_asked_again_once_the_panel_is_back(
    shop: Flask, shop_server: t.Any, new_page: t.Any
) -> None:
    base = shop_server.url
    line = BreakingLine("accept")
    operator = watched_page(new_page)
    operator.route_web_socket("**/livehelp/panel/ws", line.route)
    sign_in(operator, base)
    go_online(operator)
    customer = customer_on_site(new_page, base)
    ask(customer, QUESTION)
    operator.locator("#lh-queue .lh-item").first.click()
    operator.click("#lh-accept")
    # The click went out on a line that broke: the panel reconnects and the
    # customer gets their operator all the same.
    expect(operator.locator("#lh-composer")).to_be_visible()
    assert line.broken.is_set(), "the line never broke under the accept"
    expect(chat(customer).locator("#lh-operator")).to_have_text("Mette")
