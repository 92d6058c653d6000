"""The hub over Redis pub/sub, for several worker processes.

Each process keeps one subscriber connection to Redis, whatever the number of
its sockets: it subscribes to a channel when the first local subscriber
appears and unsubscribes when the last one leaves. An event is handed to this
process's subscribers at once and queued for the others: one publisher thread
writes everything queued at once on a connection of its own, so a publisher
never waits for Redis, and reads Redis's answers only as they come in (not
waiting for them batch by batch was half of what crossing Redis cost). Each
process skips its own events when Redis hands them back.

When Redis goes away, or cannot keep up with what is queued, the hub says so
on :data:`~flask_livehelp.hub.HEALTH_CHANNEL`, keeps delivering within the
process, drops what it could not send, reconnects with a growing pause, and
says so again when events reach every process once more. Nothing stored is
lost meanwhile: messages are in the database, and a client that hears "up"
asks for what it missed by sequence number.
"""

from __future__ import annotations

import collections
import collections.abc as c
import logging
import os
import secrets
import threading
import time
import typing as t

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from . import redis_wire
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
#: Events waiting to be published beyond this mean Redis cannot keep up:
#: they are dropped, and the hub is down until Redis answers again.
MAX_QUEUED_EVENTS = 10_000
#: A publisher with nothing to send and Redis's answers outstanding waits
#: this long before it waits for the answers themselves (up to the
#: connection's time-out), so a Redis that hung is noticed.
ANSWER_WAIT_SECONDS = 1.0

#: A queued event: the hub channel and the event as JSON text.
Queued = tuple[str, str]


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
        self._enqueue(channel, text)

    def is_healthy(self) -> bool:
        self._start()
        return self._healthy

    def close(self) -> None:
        if self._pid != os.getpid():
            return
        self._stopping.set()
        self._queued.set()
        self._wake_listener_now()
        for thread in (self._listener, self._publisher):
            thread.join(timeout=5)
        self._drop_publishing()
        self._client.close()
        self._subscriber.close()
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
                    self._listener.start()
                    self._publisher.start()
        if not self._first_attempt.is_set() and not self._on_own_thread():
            self._first_attempt.wait(timeout=SUBSCRIBE_WAIT_SECONDS)

    def _setup(self) -> None:
        # Made here, not in __init__: a server may fork after loading the app,
        # and gevent patches threading in the worker.
        self._origin = secrets.token_hex(8)
        self._own_mark = f"{self._origin} ".encode()
        self._stopping = threading.Event()
        self._first_attempt = threading.Event()
        # Healthy when the subscriber connection is up and nothing queued was
        # dropped since the publisher last reached Redis.
        self._health_lock = threading.RLock()
        self._healthy = False
        self._listening = False
        self._sending = True
        self._first_change = True
        self._outbox: collections.deque[Queued] = collections.deque()
        self._queued = threading.Event()
        #: The publisher's own connection, and how many of its PUBLISH
        #: commands Redis has yet to be heard answering.
        self._publishing: redis.Connection | None = None
        self._unanswered = 0
        #: How many times the listener has connected, and how many times it
        #: had when the publisher last wrote: each reconnection announced
        #: "down" and "up", and clients hearing "up" asked for what they
        #: missed, so what was written before it needs no word of its own.
        self._connections = 0
        self._written_in = 0
        #: Messages to this process alone: it keeps the subscriber connection
        #: subscribed, so a ping is always answered, and one wakes the
        #: listener to bring its subscriptions in line with the sockets'.
        self._process_channel = f"process:{self._origin}"
        self._out_of_sync = False
        #: Channels Redis was asked to send us on the listener's connection,
        #: and how many of their subscriptions it has yet to confirm.
        self._remote: set[str] = set()
        self._unconfirmed: dict[str, int] = {}
        #: Events set when Redis confirms a channel, for those waiting on it.
        self._waiting: dict[str, threading.Event] = {}
        self._waiting_lock = threading.Lock()
        options: dict[str, t.Any] = {
            "socket_connect_timeout": 2,
            "socket_timeout": 2,
            # No quiet retries: a failed batch may have been published in
            # part, and a reconnected subscriber has lost events meanwhile.
            "retry": Retry(NoBackoff(), 0),
            # RESP2: pub/sub messages come back as replies, not RESP3 pushes.
            "protocol": 2,
        }
        self._client = redis.Redis.from_url(self.url, **options)
        # Its own pool: a subscribed connection must never serve a publish.
        self._subscriber = redis.Redis.from_url(self.url, **options)
        self._listener = threading.Thread(
            target=self._listen, name="livehelp-redis-hub", daemon=True
        )
        self._publisher = threading.Thread(
            target=self._send_queued, name="livehelp-redis-hub-publisher", daemon=True
        )

    def _on_own_thread(self) -> bool:
        return threading.current_thread() in (self._listener, self._publisher)

    # Health, from the listener and the publisher alike.

    def _set_listening(self, listening: bool) -> None:
        if listening:
            self._connections += 1
        self._listening = listening
        self._update_health()

    def _stop_sending(self, reason: str) -> None:
        with self._health_lock:
            if not self._sending:
                return
            self._sending = False
            log.warning("Events no longer reach Redis: %s", reason)
            self._outbox.clear()
            self._update_health()
        # The publisher starts waiting for Redis.
        self._queued.set()

    def _update_health(self) -> None:
        # Under one lock, so "down" and "up" reach subscribers in the order
        # they happened, whichever thread noticed.
        with self._health_lock:
            healthy = self._listening and self._sending
            first, self._first_change = self._first_change, False
            if healthy == self._healthy:
                return
            self._healthy = healthy
            if healthy and first:
                # Connecting at start is no news to anyone.
                return
            self._health_changed(healthy)

    # The publisher thread.

    def _enqueue(self, channel: str, text: str) -> None:
        if len(self._outbox) >= MAX_QUEUED_EVENTS:
            self._stop_sending(f"more than {MAX_QUEUED_EVENTS} events queued")
            return
        self._outbox.append((channel, text))
        # Set means the publisher has yet to take the queue, this one too.
        if not self._queued.is_set():
            self._queued.set()

    def _send_queued(self) -> None:
        while self._sending or not self._stopping.is_set():
            if not self._sending:
                self._wait_for_redis()
                continue
            if not self._unanswered:
                self._queued.wait()
            elif not self._queued.wait(ANSWER_WAIT_SECONDS):
                self._guarded(self._collect_answers, True)
                continue
            self._queued.clear()
            # Everything queued so far, in order; more may come meanwhile.
            outbox = self._outbox
            batch = [outbox.popleft() for _ in range(len(outbox))]
            if batch:
                self._guarded(self._send, batch)
            if self._stopping.is_set():
                # What was published before close() goes out: closing with
                # answers unread would reset the connection under it.
                self._guarded(self._collect_answers, True)
                return

    def _send(self, batch: list[Queued]) -> None:
        """Publish ``batch`` in one write, in order, without waiting for Redis.

        Each event is a Redis message of its own, after the sender's mark, as
        every release has sent it: while a deploy replaces processes one by
        one, the old ones read what the new ones send. Redis's answers (how
        many heard each) are read when they are there by the next batch, so
        nobody wakes up to wait for them one batch at a time.
        """
        self._collect_answers(False)
        connection = self._publishing_connection()
        prefix, mark = self.prefix, self._origin
        commands = [
            ("PUBLISH", prefix + channel, f"{mark} {text}") for channel, text in batch
        ]
        redis_wire.send(connection, commands)
        self._unanswered += len(batch)
        self._written_in = self._connections

    def _collect_answers(self, wait: bool) -> None:
        """Read Redis's answers, and replace a connection found closed when
        that loses nothing the hub has yet to announce."""
        try:
            self._read_answers(wait)
        except redis.ConnectionError:
            if self._unanswered and self._written_in == self._connections:
                raise
            # Closed while idle with every command answered, or Redis
            # restarted with commands unanswered that were written before the
            # listener reconnected: a new connection will do, and the batch
            # in hand goes out on it.
            self._drop_publishing()

    def _read_answers(self, wait: bool) -> None:
        """Read Redis's answers that came, or with ``wait`` all of them.

        Looking costs one read that finds nothing, and it is what notices a
        connection Redis closed (restarted, say) before a batch is written
        into it and lost. An error answer or a lost connection raises.
        """
        connection = self._publishing
        if connection is None:
            return
        while self._unanswered or not wait:
            if not wait and not connection.can_read(timeout=0):
                return
            if not self._unanswered:
                raise redis.ConnectionError("Redis answered what nobody asked.")
            connection.read_response()
            self._unanswered -= 1

    def _guarded(self, work: c.Callable[..., None], *args: object) -> None:
        """Run the publisher's ``work``; any failure means Redis is not reached."""
        try:
            work(*args)
        except redis.RedisError as error:
            self._drop_publishing()
            self._stop_sending(f"could not publish: {error}")
        except Exception:
            # The thread must outlive any surprise.
            log.exception("The Redis hub's publisher failed.")
            self._drop_publishing()
            self._stop_sending("the publisher failed")

    def _publishing_connection(self) -> redis.Connection:
        if self._publishing is None:
            # A connection of the client's pool, kept: the publisher is its
            # only user, and its commands need no pool round each time.
            self._publishing = self._client.connection_pool.get_connection()
            self._unanswered = 0
        return self._publishing

    def _drop_publishing(self) -> None:
        # Whatever it had in flight is lost with it, as the hub announced.
        if self._publishing is not None:
            self._publishing.disconnect()  # type: ignore[no-untyped-call, unused-ignore]
            self._client.connection_pool.release(self._publishing)
            self._publishing = None
        self._unanswered = 0

    def _wait_for_redis(self) -> None:
        pause = 0.1
        while not self._stopping.wait(pause):
            try:
                self._client.ping()
                # Clients that hear "up" ask for what they missed, and from
                # then on nothing may pass them by: channels opened meanwhile
                # (their listener's wake-up lost with the rest) first.
                self._await_subscriptions()
            except redis.RedisError as error:
                log.debug("Redis hub publisher: %s", error)
                pause = min(pause * 2, MAX_RETRY_SECONDS)
                continue
            with self._health_lock:
                # Whatever slipped in while down is as lost as the rest.
                self._outbox.clear()
                self._sending = True
                self._update_health()
            return

    def _await_subscriptions(self) -> None:
        """Have the listener subscribe to every channel wanted, and wait
        (up to :data:`SUBSCRIBE_WAIT_SECONDS`) until Redis confirms them."""
        if not self._listening:
            # It subscribes to all of them as it connects, and says "up" then.
            return
        pending = [c for c in self._wanted() if not self._subscribed(c)]
        if not pending and not self._out_of_sync:
            return
        with self._waiting_lock:
            confirmations = [
                self._waiting.setdefault(c, threading.Event()) for c in pending
            ]
        self._out_of_sync = True
        self._wake_listener_now()
        deadline = time.monotonic() + SUBSCRIBE_WAIT_SECONDS
        for confirmed in confirmations:
            confirmed.wait(max(0.0, deadline - time.monotonic()))

    def _subscribed(self, channel: str) -> bool:
        """Whether Redis confirmed it sends us ``channel`` (as the listener
        last heard; read from other threads, a moment late at worst)."""
        return channel in self._remote and channel not in self._unconfirmed

    # Channels come and go.

    def _channel_opened(self, channel: str) -> None:
        if channel in LOCAL_CHANNELS:
            return
        self._start()
        # Connecting subscribes to every wanted channel, and the listener
        # cannot wait for itself.
        waits = self._listening and not self._on_own_thread()
        if waits:
            with self._waiting_lock:
                confirmed = self._waiting.setdefault(channel, threading.Event())
        self._ask_listener()
        # Until Redis confirms, another process's event could pass us by,
        # and a socket sends its backlog right after subscribing.
        if waits and not confirmed.wait(SUBSCRIBE_WAIT_SECONDS):
            log.warning("Redis did not confirm the subscription to %s.", channel)
            with self._waiting_lock:
                if self._waiting.get(channel) is confirmed:
                    del self._waiting[channel]

    def _channel_joined(self, channel: str) -> None:
        # A second socket following a chat sends its backlog next, as the
        # first does: it too waits until Redis sends us the channel.
        if channel not in LOCAL_CHANNELS and not self._subscribed(channel):
            self._channel_opened(channel)

    def _channel_closed(self, channel: str) -> None:
        if channel not in LOCAL_CHANNELS:
            self._ask_listener()

    def _ask_listener(self) -> None:
        """Have the listener bring Redis in line with the local subscribers.

        Only the listener uses the subscriber connection (redis-py's PubSub
        is not to be shared between threads); a message to this process
        wakes it if it waits for Redis. Asked after a waiter is registered,
        so a sync that started earlier cannot leave it waiting.
        """
        self._out_of_sync = True
        if self._listening:
            self._enqueue(self._process_channel, "")

    def _wake_listener_now(self) -> None:
        try:
            self._client.publish(
                self.prefix + self._process_channel, f"{self._origin} "
            )
        except redis.RedisError:
            # Redis is gone: the listener is not waiting for it either.
            pass

    def _wanted(self) -> set[str]:
        with self._lock:
            return {c for c in self._subscribers if c not in LOCAL_CHANNELS}

    def _release_waiting(self, channels: c.Iterable[str] | None = None) -> None:
        with self._waiting_lock:
            for channel in list(self._waiting) if channels is None else channels:
                confirmed = self._waiting.pop(channel, None)
                if confirmed is not None:
                    confirmed.set()

    # The listener thread: the only user of the subscriber connection.

    def _listen(self) -> None:
        pause = 0.1
        while not self._stopping.is_set():
            # Typed from redis 8.2 on; the lock's 8.1 is not.
            pubsub = self._subscriber.pubsub()  # type: ignore[no-untyped-call, unused-ignore]
            try:
                self._subscribe_wanted(pubsub)
                pause = 0.1
                self._set_listening(True)
                self._first_attempt.set()
                self._read_until_broken(pubsub)
            except (redis.RedisError, OSError) as error:
                if not self._stopping.is_set():
                    log.debug("Redis hub connection: %s", error)
            except Exception:
                # The loop must outlive any surprise.
                if not self._stopping.is_set():
                    log.exception("The Redis hub's listener failed.")
            # Nobody waits for confirmations that will never come.
            self._release_waiting()
            self._close_quietly(pubsub)
            self._first_attempt.set()
            if self._stopping.is_set():
                break
            self._set_listening(False)
            self._stopping.wait(pause)
            pause = min(pause * 2, MAX_RETRY_SECONDS)

    def _subscribe_wanted(self, pubsub: redis.client.PubSub) -> None:
        self._out_of_sync = False
        wanted = self._wanted()
        self._remote = wanted
        self._unconfirmed = dict.fromkeys(wanted, 1)
        pubsub.subscribe(
            self.prefix + self._process_channel, *(self.prefix + c for c in wanted)
        )

    def _read_until_broken(self, pubsub: redis.client.PubSub) -> None:
        pinged = False
        while not self._stopping.is_set():
            if self._out_of_sync:
                self._sync(pubsub)
            message = pubsub.get_message(timeout=PING_SECONDS)
            if message is None:
                # A dead server is silent; a live one answers a ping.
                if pinged:
                    raise redis.TimeoutError("Redis did not answer a ping.")
                pubsub.ping()
                pinged = True
                continue
            pinged = False
            kind = message["type"]
            if kind == "message":
                self._received(message["channel"], message["data"])
            elif kind == "subscribe":
                self._confirmed(self._channel(message["channel"]))

    def _sync(self, pubsub: redis.client.PubSub) -> None:
        """Subscribe and unsubscribe as the local subscribers now want.

        Deciding from the current wish keeps a quick unsubscribe and
        subscribe from reaching Redis in the wrong order.
        """
        self._out_of_sync = False
        wanted = self._wanted()
        added, dropped = wanted - self._remote, self._remote - wanted
        if dropped:
            pubsub.unsubscribe(*(self.prefix + c for c in dropped))  # type: ignore[no-untyped-call]
        if added:
            pubsub.subscribe(*(self.prefix + c for c in added))
            for channel in added:
                self._unconfirmed[channel] = self._unconfirmed.get(channel, 0) + 1
        self._remote = wanted
        # Whoever waits on a channel Redis already sends us may go on.
        with self._waiting_lock:
            waiting = list(self._waiting)
        self._release_waiting(
            c for c in waiting if c in wanted and c not in self._unconfirmed
        )

    def _confirmed(self, channel: str) -> None:
        left = self._unconfirmed.get(channel, 0) - 1
        if left > 0:
            self._unconfirmed[channel] = left
            return
        self._unconfirmed.pop(channel, None)
        if channel in self._remote:
            self._release_waiting([channel])

    def _received(self, redis_channel: bytes, data: bytes) -> None:
        # Our own events come back whenever this process also subscribes.
        if data.startswith(self._own_mark):
            return
        _, _, text = data.decode().partition(" ")
        self.deliver(self._channel(redis_channel), text)

    def _channel(self, redis_channel: bytes) -> str:
        return redis_channel[len(self._bytes_prefix) :].decode()

    def _close_quietly(self, pubsub: redis.client.PubSub) -> None:
        try:
            pubsub.close()
        except Exception as error:
            log.debug("Closing the Redis hub's connection: %s", error)
