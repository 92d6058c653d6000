"""The hub: the only way realtime events travel between connections.

A publisher sends a JSON-able event to a channel; every subscriber of that
channel, in this process or (with the Redis hub) in any process, gets the
event as JSON text. Channels are named:

``conversation:<id>``
    What visitor and staff of a conversation both see: messages, typing,
    status changes.
``conversation:<id>:staff``
    What only staff see about that conversation.
``staff``
    Queue and presence changes, for every operator panel.
``operator:<id>``
    Events for one operator's panels (a chat assigned, a forced log-out).
``hub``
    This process only: ``{"type": "hub", "state": "down"}`` when events may
    no longer reach every process, ``"up"`` when they do again. A client
    that hears "up" asks for what it missed by sequence number.
"""

from __future__ import annotations

import collections.abc as c
import json
import logging
import threading

log = logging.getLogger(__name__)

#: Called with the channel and the event as JSON text.
Callback = c.Callable[[str, str], None]


def conversation_channel(conversation_id: int) -> str:
    return f"conversation:{conversation_id}"


def staff_conversation_channel(conversation_id: int) -> str:
    return f"conversation:{conversation_id}:staff"


def operator_channel(operator_id: int) -> str:
    return f"operator:{operator_id}"


STAFF_CHANNEL = "staff"
#: Hub health changes; never leaves the process.
HEALTH_CHANNEL = "hub"
#: Channels a hub keeps to its own process.
LOCAL_CHANNELS = frozenset({HEALTH_CHANNEL})


def encode(event: c.Mapping[str, object]) -> str:
    """An event as the JSON text subscribers get."""
    return json.dumps(event, separators=(",", ":"))


def health_text(healthy: bool) -> str:
    return encode({"type": "hub", "state": "up" if healthy else "down"})


class Subscription:
    """One subscriber's interest in some channels; :meth:`close` ends it."""

    def __init__(self, hub: Hub, callback: Callback) -> None:
        self._hub = hub
        self.callback = callback
        self.channels: set[str] = set()
        self._closed = False

    def add(self, channel: str) -> None:
        # A closed one takes no channel, also from an event being delivered
        # to it on another thread as it closes (an operator's new chat).
        if self.is_closed() or channel in self.channels:
            return
        self.channels.add(channel)
        self._hub._attach(channel, self)
        if self.is_closed():
            self.discard(channel)

    def discard(self, channel: str) -> None:
        if channel in self.channels:
            self.channels.discard(channel)
            self._hub._detach(channel, self)

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True
        for channel in list(self.channels):
            self.discard(channel)
        # The subscriber holds its subscription: without this cycle, a closed
        # socket is freed at once, not by the next full garbage collection.
        self.callback = _deliver_nowhere


def _deliver_nowhere(channel: str, text: str) -> None:
    """What a closed subscription hands a late event to: nobody."""


class Hub:
    """Publish/subscribe within this process.

    Subclasses carry events between processes by overriding :meth:`publish`
    and calling :meth:`deliver` for events that arrive from elsewhere, and
    say so with :attr:`reaches_other_processes`.
    """

    #: Whether events reach the other processes that serve the chat; a
    #: process that finds others alive without it says so loudly.
    reaches_other_processes = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str, set[Subscription]] = {}

    def subscribe(self, callback: Callback, *channels: str) -> Subscription:
        subscription = Subscription(self, callback)
        for channel in channels:
            subscription.add(channel)
        return subscription

    def publish(self, channel: str, event: c.Mapping[str, object]) -> None:
        self.deliver(channel, encode(event))

    def deliver(self, channel: str, text: str) -> None:
        """Hand ``text`` to this process's subscribers of ``channel``."""
        with self._lock:
            subscribers = list(self._subscribers.get(channel, ()))
        for subscription in subscribers:
            try:
                subscription.callback(channel, text)
            except Exception:
                # One broken connection must not stop delivery to the rest.
                log.exception("A hub subscriber failed on %s.", channel)

    def is_healthy(self) -> bool:
        """Whether events currently reach every process."""
        return True

    def _health_changed(self, healthy: bool) -> None:
        """Tell this process's subscribers of :data:`HEALTH_CHANNEL`."""
        log.warning(
            "The hub is %s.", "up again" if healthy else "down: events stay local"
        )
        self.deliver(HEALTH_CHANNEL, health_text(healthy))

    def close(self) -> None:
        """Stop background work; the in-process hub has none."""

    def _attach(self, channel: str, subscription: Subscription) -> None:
        with self._lock:
            first = channel not in self._subscribers
            self._subscribers.setdefault(channel, set()).add(subscription)
        if first:
            self._channel_opened(channel)
        else:
            self._channel_joined(channel)
        if channel == HEALTH_CHANNEL and not self.is_healthy():
            # Whoever starts listening during an outage hears of it at once.
            subscription.callback(channel, health_text(False))

    def _detach(self, channel: str, subscription: Subscription) -> None:
        with self._lock:
            subscribers = self._subscribers.get(channel)
            if subscribers is None:
                return
            subscribers.discard(subscription)
            last = not subscribers
            if last:
                del self._subscribers[channel]
        if last:
            self._channel_closed(channel)

    def _channel_opened(self, channel: str) -> None:
        """This process now has a subscriber on ``channel``."""

    def _channel_joined(self, channel: str) -> None:
        """One more subscriber of this process on ``channel``."""

    def _channel_closed(self, channel: str) -> None:
        """This process has no subscriber on ``channel`` any more."""
