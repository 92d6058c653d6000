"""Our sockets' writes: queued per socket, written by one pump per process.

Sending a frame puts its bytes in the socket's :class:`Outbox` and returns
at once, so whoever delivers the hub's events (with Redis, a whole process's
listener) never waits for a client. The :class:`Pump` writes each outbox
with writes that never wait either; what was queued for one socket before
the pump got to it goes out in one write (a customer's own message and its
acknowledgement, say), and what a socket did not take stays queued, its
first frame half written, so frames never interleave.

A client that stops reading is let go as too slow (close code 1008) when
its outbox passes :data:`MAX_FRAMES` or :data:`MAX_BYTES`, or when its
socket takes nothing for :data:`SEND_WAIT` seconds; the others are not
held up meanwhile.

Every socket of ours has an outbox, but one the server itself speaks TLS
on (:func:`.reader.encrypted`), whose bytes only the TLS layer may write:
:func:`queue_writes` gives it one when it is accepted, and every write after
that, simple-websocket's own pings, pongs and close frames too, goes through
it (:class:`QueuedSocket`), whichever thread reads the socket.
"""

from __future__ import annotations

import _socket
import collections
import collections.abc as c
import enum
import itertools
import logging
import os
import select
import socket
import struct
import threading
import time
import typing as t

from simple_websocket import Server
from wsproto.connection import ConnectionState

from ..threads import unpatched

log = logging.getLogger(__name__)

#: Seconds a socket may take nothing before its client is let go as too slow.
SEND_WAIT = 5.0
#: Frames a socket may have waiting. Far more than a person's chat brings in
#: :data:`SEND_WAIT` seconds (a busy panel gets a few events a second): only
#: a client that stopped reading gets near it.
MAX_FRAMES = 1024
#: Bytes a socket may have waiting, so a stalled client cannot hold much
#: memory meanwhile: room for a few hundred of the largest messages.
MAX_BYTES = 4 * 1024 * 1024
#: Seconds between looks at the sockets that took less than they were given.
#: They are looked at, not waited on: a socket may be closed by its own
#: thread at any time, and the pump must never wait on a closed descriptor.
RECHECK_SECONDS = 0.02
#: Seconds shutting a socket waits for what is queued (our close frame last).
FLUSH_WAIT = 2.0
#: Buffers one write takes at most (the system's IOV_MAX).
MAX_BUFFERS = 1024

_TEXT = 0x81  # FIN and the text opcode
_CLOSE = 0x88  # FIN and the close opcode
#: The last text encoded, and its frame (see :func:`text_frame`).
_last_frame: tuple[object, bytes] = (object(), b"")


def text_frame(text: str) -> bytes:
    """``text`` as one WebSocket text frame from a server.

    Unmasked and uncompressed (RFC 6455), as our sockets are accepted without
    permessage-deflate. The hub hands every subscriber the same text object,
    so the last frame is kept and one event is encoded once, not once for
    each socket it goes to.
    """
    global _last_frame
    last = _last_frame
    if last[0] is text:
        return last[1]
    payload = text.encode()
    frame = _header(_TEXT, len(payload)) + payload
    _last_frame = (text, frame)
    return frame


def close_frame(code: int, reason: str) -> bytes:
    payload = struct.pack("!H", code) + reason.encode()
    return _header(_CLOSE, len(payload)) + payload


def _header(first: int, length: int) -> bytes:
    if length < 126:
        return bytes((first, length))
    if length < 1 << 16:
        return struct.pack("!BBH", first, 126, length)
    return struct.pack("!BBQ", first, 127, length)


class State(enum.Enum):
    OPEN = "open"
    #: Given up on: only the close frame may still be queued.
    STUCK = "stuck"
    #: The close frame is queued; nothing may follow it.
    CLOSING = "closing"
    #: Closed, or broken: nothing more is written.
    GONE = "gone"


class Outbox:
    """What is to be written to one socket, oldest first, and how far it got.

    :param sock: The socket, written only by the pump.
    """

    def __init__(self, sock: socket.socket, pump: Pump) -> None:
        self._sock = _system_socket(sock)
        self.fileno = sock.fileno()
        self._pump = pump
        self._lock = threading.Lock()
        self._progress = threading.Condition(self._lock)
        self._frames: collections.deque[bytes] = collections.deque()
        #: Bytes of the first frame written already.
        self._written = 0
        #: Bytes of the frames queued.
        self._size = 0
        self.state = State.OPEN
        #: Since when the socket has taken nothing (time.monotonic()).
        self.stalled_since: float | None = None
        #: Called when the outbox gives up on its client, to close the
        #: socket as too slow (with :meth:`close_with`).
        self.on_stuck: c.Callable[[], None] | None = None

    def put(self, data: bytes) -> None:
        """Queue ``data`` (whole frames); never waits."""
        with self._lock:
            if self.state is not State.OPEN:
                return
            idle = not self._frames
            self._frames.append(data)
            self._size += len(data)
            overflowing = len(self._frames) > MAX_FRAMES or self._size > MAX_BYTES
        if overflowing:
            self.give_up()
        elif idle:
            self._pump.due(self)

    def close_with(self, data: bytes) -> None:
        """Queue ``data``, ending in a close frame: nothing follows it."""
        with self._lock:
            if self.state in (State.CLOSING, State.GONE):
                return
            idle = not self._frames
            self._frames.append(data)
            self._size += len(data)
            self.state = State.CLOSING
        if idle:
            self._pump.due(self)

    def give_up(self) -> None:
        """The client stopped reading: drop what it has not begun to get,
        and have it closed."""
        with self._lock:
            if self.state is not State.OPEN:
                return
            self.state = State.STUCK
            # A frame half written is finished, or the stream breaks.
            while len(self._frames) > (1 if self._written else 0):
                self._size -= len(self._frames.pop())
            self._progress.notify_all()
        # Read once: the connection lets go of it as it ends, on its thread.
        on_stuck = self.on_stuck
        if on_stuck is None:
            return
        try:
            on_stuck()
        except Exception:
            # Called on the pump's thread too, which must go on.
            log.exception("Closing a socket given up on failed.")

    def write(self) -> bool:
        """Write what the socket takes now (the pump's part); whether some
        is left."""
        with self._lock:
            if self.state is State.GONE or not self._frames:
                return False
            first = memoryview(self._frames[0])[self._written :]
            rest = itertools.islice(self._frames, 1, MAX_BUFFERS)
            try:
                sent = _send_now(self._sock, [first, *rest])
            except OSError:
                # The connection broke; its reader finds out by itself.
                self._drop()
                return False
            self._advance(sent)
            self._progress.notify_all()
            if not self._frames:
                self.stalled_since = None
                return False
            if sent or self.stalled_since is None:
                self.stalled_since = time.monotonic()
            return True

    def overdue(self, now: float) -> bool:
        """Whether a client still served has taken nothing for too long."""
        since = self.stalled_since
        return (
            self.state is State.OPEN and since is not None and now - since >= SEND_WAIT
        )

    def wait_for_room(self) -> None:
        """Wait until the outbox is at most half full, or given up on.

        For a socket's own thread that sends much at once (a long chat's
        backlog): it goes at the client's pace instead of overflowing.
        """
        with self._progress:
            self._progress.wait_for(self._has_room, SEND_WAIT)

    def _has_room(self) -> bool:
        return self.state is not State.OPEN or (
            len(self._frames) <= MAX_FRAMES // 2 and self._size <= MAX_BYTES // 2
        )

    def wait_flushed(self, timeout: float) -> bool:
        """Wait until everything queued is written; whether it was."""
        with self._progress:
            return self._progress.wait_for(
                lambda: not self._frames or self.state is State.GONE, timeout
            )

    def discard(self) -> None:
        """Write nothing more: the socket is being closed."""
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        self.state = State.GONE
        self._frames.clear()
        self._size = 0
        self._progress.notify_all()

    def _advance(self, sent: int) -> None:
        """Forget the frames ``sent`` more bytes finished."""
        sent += self._written
        while self._frames and sent >= len(self._frames[0]):
            done = self._frames.popleft()
            sent -= len(done)
            self._size -= len(done)
        self._written = sent


def _system_socket(sock: socket.socket) -> _socket.socket:
    """The socket the system writes to: gevent's wraps one, and would wait
    for room itself. (``_socket``: gevent patches ``socket.SocketType``.)"""
    inner = getattr(sock, "_sock", None)
    return inner if isinstance(inner, _socket.socket) else sock


def _send_now(sock: _socket.socket, buffers: list[memoryview | bytes]) -> int:
    """Write what ``sock`` takes without waiting; how many bytes it took."""
    # A socket with a time-out would wait for room before it writes.
    if sock.gettimeout() and not takes_data_now(sock):
        return 0
    try:
        return sock.sendmsg(buffers, (), socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        return 0


def unpatched_poll() -> t.Callable[[], select.poll]:
    """``select.poll`` as the system has it, also where gevent patched it.

    Asking whether a socket takes data right now needs no waiting, and the
    patched poll costs a timer and a watcher per call even for that.
    """
    return t.cast("t.Callable[[], select.poll]", unpatched("select", "poll"))


def takes_data_now(sock: _socket.socket) -> bool:
    ready = unpatched_poll()()
    ready.register(sock, select.POLLOUT)
    return bool(ready.poll(0))


class Pump:
    """Writes every outbox of the process to its socket, waiting on none.

    A thread, which under gevent's monkey patching is a greenlet.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # An event, not a condition: the pump wakes about once a frame, and
        # under gevent an event's wake-up costs half as much.
        self._wake = threading.Event()
        #: Outboxes given frames while empty, in order (a dict as an ordered set).
        self._due: dict[Outbox, None] = {}
        #: Outboxes whose socket took less than they hold (the pump's own).
        self._behind: dict[Outbox, None] = {}
        thread = threading.Thread(
            target=self._run, name="livehelp-outbox-pump", daemon=True
        )
        thread.start()

    def due(self, outbox: Outbox) -> None:
        with self._lock:
            self._due[outbox] = None
        self._wake.set()

    def _run(self) -> None:
        while True:
            for outbox in self._next():
                try:
                    behind = outbox.write()
                except Exception:
                    log.exception("Writing to a socket failed.")
                    outbox.discard()
                    behind = False
                if behind:
                    self._behind[outbox] = None
                else:
                    self._behind.pop(outbox, None)

    def _next(self) -> list[Outbox]:
        """The outboxes to write now: those given frames, and those behind
        whose socket takes data again or whose client is given up on."""
        self._wake.wait(RECHECK_SECONDS if self._behind else None)
        # Cleared before the outboxes are taken: one given meanwhile sets it
        # again, and is taken on the next round.
        self._wake.clear()
        with self._lock:
            due, self._due = self._due, {}
        due.update(dict.fromkeys(self._ready_behind()))
        return list(due)

    def _ready_behind(self) -> list[Outbox]:
        if not self._behind:
            return []
        now = time.monotonic()
        ready = []
        waiting = unpatched_poll()()
        by_fileno = {}
        for outbox in list(self._behind):
            if outbox.state is State.GONE:
                del self._behind[outbox]
            elif outbox.overdue(now):
                outbox.give_up()
                ready.append(outbox)
            else:
                by_fileno[outbox.fileno] = outbox
                waiting.register(outbox.fileno, select.POLLOUT)
        # A descriptor closed meanwhile answers POLLNVAL; its outbox is gone
        # by then (QueuedSocket.close), so it is not written.
        ready.extend(by_fileno[fileno] for fileno, _ in waiting.poll(0))
        return ready


_pump: tuple[int, Pump] | None = None


def process_pump() -> Pump:
    """This process's pump, started on first use (after a fork, anew)."""
    global _pump
    if _pump is None or _pump[0] != os.getpid():
        _pump = (os.getpid(), Pump())
    return _pump[1]


#: wsproto's states once a close frame is sent.
_CLOSED_STATES = frozenset({ConnectionState.LOCAL_CLOSING, ConnectionState.CLOSED})


class QueuedSocket:
    """Stands in for the socket of a WebSocket of ours.

    What simple-websocket writes itself (pongs, the answer to a close, our
    close) joins the outbox behind our frames; reading and shutting go to the
    socket itself.
    """

    def __init__(self, ws: Server, outbox: Outbox) -> None:
        self.sock: socket.socket = ws.sock
        self._protocol = ws.ws
        self.outbox = outbox

    def send(self, data: bytes) -> int:
        if self._protocol.state in _CLOSED_STATES:
            self.outbox.close_with(data)
        else:
            self.outbox.put(data)
        return len(data)

    def sendall(self, data: bytes) -> None:
        self.send(data)

    def recv(self, size: int) -> bytes:
        return self.sock.recv(size)

    def fileno(self) -> int:
        return self.sock.fileno()

    def settimeout(self, timeout: float | None) -> None:
        self.sock.settimeout(timeout)

    def shutdown(self, how: int) -> None:
        if how != socket.SHUT_RD:
            # As the system does: what is queued goes out before the end.
            self.outbox.wait_flushed(FLUSH_WAIT)
            self.outbox.discard()
        self.sock.shutdown(how)

    def close(self) -> None:
        # A host's reader thread closes the socket as soon as the client
        # answers our close, or closes first: what is queued (the answer to
        # its close) goes out first, as the system would send it.
        self.outbox.wait_flushed(FLUSH_WAIT)
        # Then: the pump must never write to a descriptor number that a new
        # connection may be given next.
        self.outbox.discard()
        self.sock.close()


def queue_writes(ws: Server) -> Outbox:
    """From now on, every write to ``ws`` goes through its own outbox."""
    outbox = Outbox(ws.sock, process_pump())
    ws.sock = QueuedSocket(ws, outbox)
    return outbox


def outbox_of(ws: Server) -> Outbox | None:
    sock = getattr(ws, "sock", None)
    return sock.outbox if isinstance(sock, QueuedSocket) else None
