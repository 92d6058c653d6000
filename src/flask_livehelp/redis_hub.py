"""The hub over Redis pub/sub, for several worker processes.

Each process keeps one subscriber connection to Redis, whatever the number of
its sockets: it subscribes to a channel when the first local subscriber
appears and unsubscribes when the last one leaves. An event is handed to this
process's subscribers at once and published to Redis for the others; each
process skips its own events when Redis hands them back.

When Redis goes away the hub says so on :data:`~flask_livehelp.hub.HEALTH_CHANNEL`,
keeps delivering within the process, reconnects with a growing pause, and
says so again when events reach every process once more. Nothing stored is
lost meanwhile: messages are in the database, and a client that hears "up"
asks for what it missed by sequence number.
"""

from __future__ import annotations

import collections.abc as c
import logging
import os
import secrets
import threading
import typing as t

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .hub import encode
from .hub import Hub
from .hub import LOCAL_CHANNELS

log = logging.getLogger(__name__)

#: Seconds of silence after which the subscriber connection is pinged; a
#: connection that stays silent for as long again is given up.
PING_SECONDS = 5.0
#: How long opening a channel waits for Redis to confirm the subscription.
SUBSCRIBE_WAIT_SECONDS = 2.0
#: The pause between reconnection attempts grows up to this.
MAX_RETRY_SECONDS = 2.0


class RedisHub(Hub):
    """Publish/subscribe between processes through Redis.

    :param url: A Redis URL, e.g. ``redis://127.0.0.1:6379/0``.
    :param prefix: Put before every channel name, so several apps can share
        one Redis (pub/sub channels ignore the database number).
    """

    reaches_other_processes = True

    def __init__(self, url: str, prefix: str = "livehelp:") -> None:
        super().__init__()
        self.url = url
        self.prefix = prefix
        self._bytes_prefix = prefix.encode()
        self._pid: int | None = None

    # The public API.

    def publish(self, channel: str, event: c.Mapping[str, object]) -> None:
        self._start()
        text = encode(event)
        self.deliver(channel, text)
        if channel in LOCAL_CHANNELS or not self._healthy:
            # Lost for the other processes; their clients resync on "up".
            return
        try:
            self._client.publish(self.prefix + channel, f"{self._origin} {text}")
        except redis.RedisError as error:
            log.warning("Could not publish to Redis on %s: %s", channel, error)

    def is_healthy(self) -> bool:
        self._start()
        return self._healthy

    def close(self) -> None:
        if self._pid != os.getpid():
            return
        self._stopping.set()
        self._drop_connection()
        self._thread.join(timeout=5)
        self._client.close()
        self._pid = None

    # Starting, once per process.

    def _start(self) -> None:
        """Connect in this process, also in a worker forked after loading the app.

        Whoever comes first starts the listener; everyone waits for its first
        attempt, which decides whether sockets start "up" or "down" (a socket
        opened a moment after the first would otherwise hear "down").
        """
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._setup()
                    self._pid = os.getpid()
                    self._thread.start()
        if threading.current_thread() is not self._thread:
            self._first_attempt.wait(timeout=SUBSCRIBE_WAIT_SECONDS)

    def _setup(self) -> None:
        # Made here, not in __init__: a server may fork after loading the app,
        # and gevent patches threading in the worker.
        self._origin = secrets.token_hex(8)
        self._healthy = False
        self._first_change = True
        self._stopping = threading.Event()
        self._first_attempt = threading.Event()
        #: Serialises writes on the subscriber connection and its bookkeeping.
        self._write_lock = threading.Lock()
        #: redis-py's connection, whose reconnect methods are replaced (_connect).
        self._connection: t.Any = None
        #: Channels Redis was asked to send us on the current connection.
        self._remote: set[str] = set()
        self._confirmed: dict[str, threading.Event] = {}
        pool = redis.ConnectionPool.from_url(
            self.url,
            socket_connect_timeout=2,
            socket_timeout=2,
            retry=Retry(NoBackoff(), 0),
            # RESP2: pub/sub messages come back as replies, not RESP3 pushes.
            protocol=2,
        )
        self._client = redis.Redis(connection_pool=pool)
        self._thread = threading.Thread(
            target=self._listen, name="livehelp-redis-hub", daemon=True
        )

    # Channels come and go.

    def _channel_opened(self, channel: str) -> None:
        if channel in LOCAL_CHANNELS:
            return
        self._start()
        confirmed = self._sync_channel(channel)
        on_listener = threading.current_thread() is self._thread
        if confirmed is not None and not on_listener:
            # Until Redis confirms, another process's event could pass us by,
            # and a socket sends its backlog right after subscribing.
            if not confirmed.wait(SUBSCRIBE_WAIT_SECONDS):
                log.warning("Redis did not confirm the subscription to %s.", channel)

    def _channel_closed(self, channel: str) -> None:
        if channel not in LOCAL_CHANNELS:
            self._sync_channel(channel)

    def _wanted(self, channel: str) -> bool:
        with self._lock:
            return channel in self._subscribers

    def _sync_channel(self, channel: str) -> threading.Event | None:
        """Bring Redis in line with whether this process wants ``channel``.

        Deciding from the current wish, under one lock, keeps a quick
        unsubscribe and subscribe from arriving at Redis in the wrong order.
        Returns an event set on Redis's confirmation, if a subscribe was sent.
        """
        with self._write_lock:
            connection = self._connection
            if connection is None:
                # The listener subscribes to every wanted channel on connect.
                return None
            wanted = self._wanted(channel)
            if wanted == (channel in self._remote):
                return None
            try:
                if wanted:
                    confirmed = self._confirmed.setdefault(channel, threading.Event())
                    connection.send_command("SUBSCRIBE", self.prefix + channel)
                    self._remote.add(channel)
                    return confirmed
                connection.send_command("UNSUBSCRIBE", self.prefix + channel)
                self._remote.discard(channel)
            except redis.RedisError as error:
                # The listener notices the broken connection and starts over.
                log.warning("Redis (un)subscribe of %s failed: %s", channel, error)
            return None

    # The listener thread.

    def _listen(self) -> None:
        pause = 0.1
        while not self._stopping.is_set():
            try:
                self._connect()
                pause = 0.1
                self._set_health(True)
                self._first_attempt.set()
                self._read_until_broken()
            except (redis.RedisError, OSError) as error:
                if not self._stopping.is_set():
                    log.debug("Redis hub connection: %s", error)
            except Exception:
                # Also a socket closed under the reader by close(); the loop
                # must outlive any surprise.
                if not self._stopping.is_set():
                    log.exception("The Redis hub's listener failed.")
            self._drop_connection()
            self._first_attempt.set()
            if self._stopping.is_set():
                break
            self._set_health(False)
            self._stopping.wait(pause)
            pause = min(pause * 2, MAX_RETRY_SECONDS)

    def _connect(self) -> None:
        pool = self._client.connection_pool
        connection = pool.connection_class(**pool.connection_kwargs)
        connection.connect()
        # A dead connection must stay dead: redis-py would quietly reconnect
        # it on the next read, without our subscriptions.
        connection.connect = connection.connect_check_health = _refuse_reconnect
        with self._write_lock:
            self._connection = connection
            self._remote.clear()
            with self._lock:
                wanted = [c for c in self._subscribers if c not in LOCAL_CHANNELS]
            if wanted:
                for channel in wanted:
                    self._confirmed.setdefault(channel, threading.Event())
                connection.send_command("SUBSCRIBE", *(self.prefix + c for c in wanted))
                self._remote.update(wanted)
            else:
                # A subscribed connection answers PING differently; say
                # something either way so silence means a dead server.
                connection.send_command("PING")

    def _read_until_broken(self) -> None:
        connection = self._connection
        pinged = False
        while not self._stopping.is_set():
            if not connection.can_read(timeout=PING_SECONDS):
                if pinged:
                    raise redis.TimeoutError("Redis did not answer a ping.")
                with self._write_lock:
                    connection.send_command("PING")
                pinged = True
                continue
            pinged = False
            self._handle(connection.read_response(disconnect_on_error=False))

    def _handle(self, reply: object) -> None:
        if not isinstance(reply, list) or len(reply) < 2:
            return
        kind = reply[0]
        if kind == b"message":
            self._received(reply[1], reply[2])
        elif kind == b"subscribe":
            channel = reply[1][len(self._bytes_prefix) :].decode()
            with self._write_lock:
                confirmed = self._confirmed.pop(channel, None)
            if confirmed is not None:
                confirmed.set()

    def _received(self, redis_channel: bytes, data: bytes) -> None:
        origin, _, text = data.decode().partition(" ")
        if origin == self._origin:
            return
        self.deliver(redis_channel[len(self._bytes_prefix) :].decode(), text)

    def _drop_connection(self) -> None:
        with self._write_lock:
            connection, self._connection = self._connection, None
            self._remote.clear()
            # Nobody waits for confirmations that will never come.
            for confirmed in self._confirmed.values():
                confirmed.set()
            self._confirmed.clear()
        if connection is not None:
            connection.disconnect()

    def _set_health(self, healthy: bool) -> None:
        first, self._first_change = self._first_change, False
        if healthy == self._healthy:
            return
        self._healthy = healthy
        if healthy and first:
            # Connecting at start is no news to anyone.
            return
        self._health_changed(healthy)


def _refuse_reconnect(*args: object, **kwargs: object) -> None:
    raise redis.ConnectionError("The hub's Redis connection was lost.")
