"""How our sockets read: in the socket's own greenlet, not in a second one.

simple-websocket starts a reader thread for every socket, which hands each
frame over to the request's thread. Under gevent that is a second greenlet
per open chat, about 8 KB of stack and frames each, and a switch to the
other greenlet for every frame. Our sockets read in the request's greenlet
instead: they are accepted with :func:`reader_thread` as simple-websocket's
``thread_class`` (``views/handshake.py``; never in the host's
``SOCK_SERVER_OPTIONS``), which starts no thread for a socket that reads for
itself.

This uses simple-websocket's frame handling (``_handle_events``), so the
package's minor version is pinned.
"""

from __future__ import annotations

import functools
import select
import socket
import threading
import time
import typing as t

from simple_websocket import ConnectionClosed
from simple_websocket import Server
from wsproto.utilities import LocalProtocolError

#: Seconds a closing socket waits for its client to close too.
CLOSE_WAIT = 2.0


class InlineReader:
    """Stands in for the reader thread of a socket that reads for itself."""

    name = "livehelp-inline-reader"

    def start(self) -> None:
        pass


def reader_thread(target: t.Callable[[], None]) -> threading.Thread | InlineReader:
    """The ``thread_class`` our sockets are accepted with: no thread, unless
    the host asks for protocol pings, which the reader thread sends, or the
    server itself speaks TLS on the socket.

    Reading inline waits for the system socket to be readable, and the
    outbox writes to the system socket: under TLS, bytes already decrypted
    would wait unread, and frames would go out unencrypted.

    ``threading.Thread`` is looked up on each call, as simple-websocket does,
    so gevent's patching still turns it into a greenlet.
    """
    server = getattr(target, "__self__", None)
    if server is not None and not server.ping_interval and not encrypted(server.sock):
        return InlineReader()
    return threading.Thread(target=target)


def encrypted(sock: object) -> bool:
    """Whether ``sock`` is a TLS socket: the standard library's and gevent's
    (not a subclass of it) both have ``getpeercert``."""
    return callable(getattr(sock, "getpeercert", None))


def reads_inline(ws: Server) -> bool:
    """Whether ``ws`` is one of ours, read by :func:`receive_inline`."""
    return isinstance(getattr(ws, "thread", None), InlineReader)


def receive_inline(ws: Server, timeout: float | None) -> str | bytes | None:
    """The next message, as ``ws.receive(timeout)`` gives it, read right here.

    ``None`` when nothing complete arrives within ``timeout`` seconds; pings
    and pieces of a message do not put that moment off.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while ws.connected and not ws.input_buffer:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and (left <= 0 or not _readable(ws.sock, left)):
            return None
        try:
            data = ws.sock.recv(ws.receive_bytes)
        except OSError:
            data = b""
        if not data:
            ws.connected = False
            break
        try:
            ws.ws.receive_data(data)
            # Answers pings and close frames, and queues whole messages.
            ws.connected = ws._handle_events()
        except (OSError, LocalProtocolError):
            ws.connected = False
    if ws.input_buffer:
        return t.cast("str | bytes", ws.input_buffer.pop(0))
    raise ConnectionClosed(ws.close_reason, ws.close_message)


def _readable(sock: socket.socket, timeout: float) -> bool:
    """Whether ``sock`` has something to read within ``timeout`` seconds.

    Waited for with poll, not with the socket's own time-out, which would
    hold for the other threads' sends too: a close frame for a client that
    stopped reading would then give up before the client reads again.
    """
    waiting = select.poll()
    waiting.register(sock, select.POLLIN)
    return bool(waiting.poll(timeout * 1000))


def stop_reading_later(ws: Server) -> None:
    """After our close frame: stop waiting for the client's answer in time.

    A client that never answers (gone, or not reading) would otherwise keep
    the request waiting in ``recv`` for good.
    """
    timer = threading.Timer(CLOSE_WAIT, _shut_reading, args=(ws.sock,))
    timer.daemon = True
    timer.start()


def _shut_reading(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass  # closed already


def releasing(view: t.Callable[..., None]) -> t.Callable[..., None]:
    """Close the network socket when ``view`` is done with it (see
    :func:`release`), as the reader thread would have."""

    @functools.wraps(view)
    def socket_view(ws: Server, *args: object, **kwargs: object) -> None:
        try:
            view(ws, *args, **kwargs)
        finally:
            if reads_inline(ws):
                release(ws)

    return socket_view


def release(ws: Server) -> None:
    """Close the network socket once the client has closed its side too.

    Closing with the client's last bytes unread would reset the connection,
    and a reset may make the browser drop the frames we sent last, such as
    the error that says why the socket closes. What the client still sends
    is read and dropped, for :data:`CLOSE_WAIT` seconds and 64 KB at most.
    """
    sock = ws.sock
    deadline = time.monotonic() + CLOSE_WAIT
    drained = 0
    try:
        sock.shutdown(socket.SHUT_WR)
        while drained < 65536 and (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            data = sock.recv(4096)
            if not data:
                break
            drained += len(data)
    except OSError:
        pass
    finally:
        sock.close()
