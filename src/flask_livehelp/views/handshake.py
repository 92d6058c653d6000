"""The opening of every socket of ours: its checks, then accepting it.

Our sockets are accepted here rather than by flask-sock's ``Sock.route``,
which takes its options from the app's ``SOCK_SERVER_OPTIONS``: ours need
their own reader (:mod:`..sockets.reader`), and the host's config is the
host's, so the options are given per socket. Every socket but one the
server itself speaks TLS on has its writes queued (:mod:`..sockets.outbox`).
"""

from __future__ import annotations

import collections.abc as c
import functools
import sys
import typing as t

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIEnvironment

from flask import Blueprint
from flask import current_app
from flask import request
from flask import Response
from simple_websocket import ConnectionClosed
from simple_websocket import Server

from ..auth import check_origin
from ..sockets.outbox import FLUSH_WAIT
from ..sockets.outbox import outbox_of
from ..sockets.outbox import queue_writes
from ..sockets.reader import encrypted
from ..sockets.reader import reader_thread


def check_handshake() -> None:
    """Refuse a foreign origin; accept the socket without compression.

    Browsers ask for permessage-deflate, and simple-websocket grants it with
    full 32 KB windows: a zlib compressor and decompressor that cost each open
    chat over 100 KB of memory, to shrink frames of a few hundred bytes by
    little. Without the header, the socket is accepted plain.
    """
    check_origin()
    request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)


def server_options() -> dict[str, object]:
    """How our sockets are accepted: the host's ``SOCK_SERVER_OPTIONS``, with
    our reader unless the host chose a ``thread_class`` (then ours read as
    every socket of the app does)."""
    return {
        "thread_class": reader_thread,
        **current_app.config.get("SOCK_SERVER_OPTIONS", {}),
    }


def socket_route(bp: Blueprint, path: str, view: c.Callable[[Server], None]) -> None:
    """Serve ``view(ws)`` as the socket at ``path`` of ``bp``, as
    ``Sock.route`` would, accepted with :func:`server_options`."""

    @functools.wraps(view)
    def accept() -> Response:
        ws = Server(request.environ, **server_options())
        if not encrypted(ws.sock):
            # Written by the process's pump, never by whoever sends to it,
            # also where the host's reader thread reads it.
            queue_writes(ws)
        try:
            view(ws)
        except ConnectionClosed:
            pass
        try:
            ws.close()
        except Exception:  # gone already: nothing left to close
            pass
        outbox = outbox_of(ws)
        if outbox is not None:
            # What is queued (our close, or the answer to the client's) goes
            # out before the server has the connection back: Werkzeug's
            # writes its own response into it.
            outbox.wait_flushed(FLUSH_WAIT)
        return SocketDone(ws.mode)

    bp.add_url_rule(path, view_func=accept, websocket=True)


class SocketDone(Response):
    """The answer to a socket's request once the socket is closed.

    The socket took the connection over, so no HTTP response may follow;
    each server is told so in its own way (as flask-sock does).
    """

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> c.Iterable[bytes]:
        if self.mode == "werkzeug":
            return super().__call__(environ, start_response)
        if self.mode == "gunicorn":
            raise StopIteration()
        if self.mode == "eventlet":
            # eventlet's server runs this request, so its module is loaded.
            return _eventlet_handled(sys.modules["eventlet.wsgi"])
        return []


def _eventlet_handled(wsgi: object) -> c.Iterable[bytes]:
    local = getattr(wsgi, "WSGI_LOCAL", None)
    if local is not None and hasattr(local, "already_handled"):
        local.already_handled = True
    return t.cast(c.Iterable[bytes], getattr(wsgi, "ALREADY_HANDLED", []))
