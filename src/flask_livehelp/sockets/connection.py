"""What both sockets share: the receive loop, validation, errors and sending."""

from __future__ import annotations

import collections.abc as c
import datetime as dt
import json
import logging
import random
import select
import socket
import threading
import time
import typing as t

from simple_websocket import ConnectionClosed
from simple_websocket import Server
from wsproto.events import Ping
from wsproto.utilities import LocalProtocolError

from ..config import config_value
from ..errors import Refused
from ..hub import HEALTH_CHANNEL
from ..i18n import _lh
from ..i18n import N_
from ..models import utcnow
from ..protocol import Field
from ..protocol import Frame
from ..protocol import numbered_frame
from ..protocol import parse_frame
from ..state import LiveHelpState
from . import outbox
from .ordering import numbered
from .ordering import Sequencer
from .outbox import outbox_of
from .outbox import text_frame
from .outbox import unpatched_poll
from .reader import reads_inline
from .reader import receive_inline
from .reader import stop_reading_later

log = logging.getLogger(__name__)


class Connection:
    """One WebSocket: reads frames, checks them, and hands them to ``on_<type>``.

    Events from the hub arrive on other threads and only ever send; every
    database access happens on the connection's own thread, and the database
    session is removed after each frame so an idle socket holds neither a
    database connection nor a session.
    """

    #: The frames this socket accepts.
    specs: dict[str, dict[str, Field]] = {}

    def __init__(self, ws: Server, state: LiveHelpState) -> None:
        self.ws = ws
        self.state = state
        self.closed = False
        #: When the client last sent a frame (time.monotonic()).
        self.heard = time.monotonic()
        self._pinged = False
        #: Where frames wait for the pump; ``None`` for a socket the server
        #: itself speaks TLS on (see :meth:`_write_directly`).
        self.outbox = outbox_of(ws)
        if self.outbox is not None:
            self.outbox.on_stuck = self._too_slow
        self._send_lock = threading.Lock()
        #: Channels are added once the connection is whole (:meth:`run`): a
        #: hub that is down says so to a new subscriber at once.
        self.subscription = state.hub.subscribe(self.on_event)
        self.sequencer = Sequencer(self.send_text)
        # A frame larger than this ends the connection before it is read.
        ws.max_message_size = config_value("MAX_FRAME_BYTES")
        # poll, not select: select fails on descriptors past 1024, which a
        # server with thousands of chats has.
        self._sock = getattr(ws, "sock", None)
        self._inline = reads_inline(ws)
        self._ready = None
        if self._sock is not None and self.outbox is None:
            self._ready = unpatched_poll()()
            self._ready.register(self._sock, select.POLLOUT)

    # Sending.

    def send(self, frame: c.Mapping[str, object]) -> None:
        self.send_text(json.dumps(frame, separators=(",", ":")))

    def send_text(self, text: str) -> None:
        self._write(text_frame(text))

    def _write(self, data: bytes) -> None:
        """Send ``data``, whole frames, after everything sent before."""
        if self.closed or not self.ws.connected:
            return
        if self.outbox is not None:
            self.outbox.put(data)
        else:
            self._write_directly(data)

    def _write_directly(self, data: bytes) -> None:
        """Write on the caller's thread: for a socket the server itself
        speaks TLS on, whose bytes only the TLS layer may write. The caller
        waits up to ``SEND_WAIT`` for a slow client.
        """
        with self._send_lock:
            if self.closed:
                return
            if not self._writable():
                # A client that stops reading would block whoever delivers
                # the hub's events (with Redis, a whole process): let it go.
                self._too_slow()
                return
            try:
                self.ws.sock.sendall(data)
            except OSError:
                # The socket was closed or timed out under us.
                self.closed = True

    def _too_slow(self) -> None:
        log.info("Closing a socket whose client stopped reading.")
        self.close(1008, "too slow")

    def _writable(self) -> bool:
        """Whether the socket takes data within ``SEND_WAIT`` seconds."""
        if self._ready is None or self._ready.poll(0):
            return True
        # Its buffer is full: wait, letting other greenlets run meanwhile.
        waiting = select.poll()
        waiting.register(t.cast(socket.socket, self._sock), select.POLLOUT)
        return bool(waiting.poll(outbox.SEND_WAIT * 1000))

    def on_event(self, channel: str, text: str) -> None:
        """An event from the hub; messages in their order, the rest as they come."""
        number = numbered(text)
        if number is None:
            self.send_text(text)
        else:
            self.sequencer.live(*number, text)

    def send_backlog(self, conversation_id: int, after: int, *, staff: bool) -> None:
        """Every message after ``after`` in order, then ``synced`` with the last.

        Live messages of the conversation wait meanwhile, and those the
        backlog held already are not sent twice.
        """
        with self.sequencer.catch_up(conversation_id, after) as progress:
            for page in self.state.conversations.backlog(conversation_id, after):
                frames = [(m.seq, numbered_frame(m, staff=staff)) for m in page]
                # The client reads a long backlog at its own pace: no
                # database connection waits with it, or a few slow tabs take
                # the pool from every chat of the process.
                self.state.db.session.commit()
                for seq, frame in frames:
                    self.send(frame)
                    progress.sent(seq)
                    if self.outbox is not None:
                        self.outbox.wait_for_room()
            self.send(
                {
                    "type": "synced",
                    "conversation": conversation_id,
                    "last": progress.last,
                }
            )

    def refuse(self, refusal: Refused) -> None:
        frame: dict[str, object] = {
            "type": "error",
            "code": refusal.code,
            "message": _lh(refusal.message, **refusal.variables),
            "ref": refusal.ref,
        }
        if refusal.retry_after is not None:
            frame["retry"] = refusal.retry_after
        self.send(frame)

    @staticmethod
    def turn_away(ws: Server, code: str, message: str, reason: int = 4429) -> None:
        """Say why in an error frame, then close a socket we do not serve."""
        frame = {"type": "error", "code": code, "message": _lh(message)}
        try:
            ws.send(json.dumps(frame, separators=(",", ":")))
            ws.close(reason=reason, message=code)
        except (ConnectionClosed, OSError):
            pass

    def close(self, reason: int = 1000, message: str = "") -> None:
        self.closed = True
        try:
            self.ws.close(reason=reason, message=message)
        except Exception:
            # Closing an already broken socket fails; it is closed either way.
            return
        if self._inline:
            stop_reading_later(self.ws)

    # Receiving.

    #: :meth:`on_tick` runs this often, whatever the client sends meanwhile;
    #: a client quiet for as long is pinged (a WebSocket ping, which the
    #: browser answers itself, in a hidden tab too).
    tick_seconds: float | None = None
    #: A client not heard from for this long (its pongs included) is gone.
    silence_seconds: float | None = None
    #: Whether the first tick comes at a random point of its period rather
    #: than a whole period after the socket opened. Sockets opened together
    #: (every panel reconnecting after a deploy) would otherwise tick
    #: together for good, and their ticks' work would run back to back while
    #: every chat of the worker waited.
    spread_ticks = False

    def run(self) -> None:
        try:
            # Every socket hears when the hub goes down and comes back up, so
            # the client can say so and ask for what it missed.
            self.subscription.add(HEALTH_CHANNEL)
            self.guarded(self.on_open)
            # Silence counts from the hello: a loaded server slow to say it
            # has asked the client nothing yet.
            self.heard = ticked = time.monotonic()
            if self.spread_ticks and self.tick_seconds:
                ticked -= random.uniform(0, self.tick_seconds)
            while not self.closed:
                # Read each time: a hook may change how often it ticks.
                next_tick = None
                if self.tick_seconds is not None:
                    next_tick = ticked + self.tick_seconds
                text = self._receive(self._wait(next_tick))
                now = time.monotonic()
                if text is not None or self._answered():
                    self.heard = now
                if text is not None:
                    self.guarded(self.handle, text)
                if self.silence_seconds and now - self.heard >= self.silence_seconds:
                    log.info("Closing a socket whose client went silent.")
                    self.close(4408, "silent")
                elif next_tick is not None and now >= next_tick:
                    if now - self.heard >= t.cast(float, self.tick_seconds):
                        self._ping()
                    self.guarded(self.on_tick)
                    ticked = time.monotonic()
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            self.subscription.close()
            self.sequencer.close()
            if self.outbox is not None:
                # As the subscription and the sequencer let go of us: the
                # connection is freed as it ends, not by a full collection.
                self.outbox.on_stuck = None
            self.guarded(self.on_close)

    def _ping(self) -> None:
        if self.closed or self._sock is None:
            return
        # simple-websocket notes each pong in pong_received, whichever
        # thread reads the socket.
        self.ws.pong_received = False
        self._pinged = True
        try:
            self._write(self.ws.ws.send(Ping()))
        except LocalProtocolError:
            self.closed = True

    def _answered(self) -> bool:
        """Whether the client answered our last ping."""
        if self._pinged and self.ws.pong_received:
            self._pinged = False
            return True
        return False

    def heard_at(self) -> dt.datetime:
        """When the client was last heard from, as a time of day."""
        return utcnow() - dt.timedelta(seconds=time.monotonic() - self.heard)

    def _wait(self, next_tick: float | None) -> float | None:
        """How long to wait for a frame: until the next tick or the silence."""
        deadlines = [next_tick] if next_tick is not None else []
        if self.silence_seconds:
            deadlines.append(self.heard + self.silence_seconds)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def _receive(self, timeout: float | None) -> str | bytes | None:
        if self._inline:
            return receive_inline(self.ws, timeout)
        return t.cast("str | bytes | None", self.ws.receive(timeout=timeout))

    def guarded(self, work: t.Callable[..., None], *args: object) -> None:
        """Run ``work``, turn a refusal into an error frame, release the database."""
        session = self.state.db.session
        try:
            work(*args)
        except Refused as refusal:
            session.rollback()
            log.debug("Refused a frame: %s (%s)", refusal.code, refusal.message)
            self.refuse(refusal)
        except ConnectionClosed:
            raise
        except Exception:
            session.rollback()
            log.exception("A socket frame failed.")
            self.refuse(Refused("server-error", N_("Something went wrong. Try again.")))
        finally:
            # Not only closed: an idle socket keeps no session object either
            # (a few KB each, with thousands of sockets open).
            session.remove()

    def handle(self, text: str) -> None:
        self.dispatch(parse_frame(text, self.specs, self._limit))

    def dispatch(self, frame: Frame) -> None:
        getattr(self, "on_" + frame.type.replace("-", "_"))(frame)

    @staticmethod
    def _limit(key: str) -> int:
        return t.cast(int, config_value(key))

    def on_ping(self, frame: Frame) -> None:
        self.send({"type": "pong"})

    # Hooks.

    def on_open(self) -> None:
        pass

    def on_tick(self) -> None:
        pass

    def on_close(self) -> None:
        pass
