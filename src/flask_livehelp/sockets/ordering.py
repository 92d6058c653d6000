"""Numbered frames reach a socket in order, once each.

Every stored message of a conversation has the next sequence number, and a
client shows the messages in that order. Live frames can arrive out of it:
two writers of one chat commit in order but publish from different threads
(or processes), and while a socket sends the backlog of a chat it resumes,
new messages of that chat are published meanwhile. A :class:`Sequencer`
puts each conversation's frames back in order for one socket: it holds a
frame that comes early until the ones before it arrive, and drops one it
sent already.

It knows where a conversation stands only once the socket has sent that
conversation's backlog (:meth:`Sequencer.catch_up`); before that, frames
pass straight through and the client orders them. A frame whose predecessor
never comes (its publisher died between commit and publish) is sent after
:data:`HOLD_SECONDS` anyway; the client then asks for the gap.
"""

from __future__ import annotations

import collections.abc as c
import contextlib
import re
import threading

#: Seconds an early frame waits for the ones before it.
HOLD_SECONDS = 1.0

# Frames are built by protocol.message_frame and hidden_frame, whose first
# keys are always these, so the number is read without decoding the body.
NUMBERED = re.compile(
    r'^\{"type":"(?:message|hidden)","conversation":(\d+),"seq":(\d+)'
)


def numbered(text: str) -> tuple[int, int] | None:
    """The conversation and sequence number of a numbered frame's text."""
    found = NUMBERED.match(text)
    return (int(found[1]), int(found[2])) if found else None


class Sequencer:
    """Puts one socket's numbered frames in order, per conversation.

    :param send: Sends a frame's text to the client; called under the
        sequencer's lock, so frames leave in the order decided here.
    """

    def __init__(self, send: c.Callable[[str], None]) -> None:
        self._send = send
        self._lock = threading.Lock()
        #: The next number each conversation's client is to get.
        self._next: dict[int, int] = {}
        #: Frames that came early, by conversation and number.
        self._held: dict[int, dict[int, str]] = {}
        #: Conversations whose backlog is being sent: every live frame waits.
        self._catching_up: set[int] = set()
        self._timers: dict[int, threading.Timer] = {}
        self._closed = False

    def live(self, conversation_id: int, seq: int, text: str) -> None:
        """A numbered frame from the hub: send it in its turn."""
        with self._lock:
            if self._closed:
                return
            expected = self._next.get(conversation_id)
            if conversation_id in self._catching_up:
                self._held.setdefault(conversation_id, {})[seq] = text
            elif expected is None:
                self._send(text)
            elif seq == expected:
                self._send(text)
                self._next[conversation_id] = seq + 1
                self._release(conversation_id)
            elif seq > expected:
                self._held.setdefault(conversation_id, {})[seq] = text
                self._wait_for_gap(conversation_id)

    @contextlib.contextmanager
    def catch_up(self, conversation_id: int, after: int) -> c.Iterator[CatchUp]:
        """Send a conversation's backlog: live frames of it wait until the end.

        The block sends every frame numbered after ``after`` that the
        client may see, and reports each number with :meth:`CatchUp.sent`.
        """
        with self._lock:
            self._catching_up.add(conversation_id)
        progress = CatchUp(after)
        try:
            yield progress
        finally:
            with self._lock:
                self._catching_up.discard(conversation_id)
                self._next[conversation_id] = max(
                    progress.last + 1, self._next.get(conversation_id, 0)
                )
                if not self._closed:
                    self._release(conversation_id)

    def forget(self, conversation_id: int) -> None:
        """The socket no longer follows this conversation."""
        with self._lock:
            self._next.pop(conversation_id, None)
            self._held.pop(conversation_id, None)
            self._stop_timer(conversation_id)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for conversation_id in list(self._timers):
                self._stop_timer(conversation_id)
            self._held.clear()
            # Its socket holds it: see Subscription.close.
            self._send = _send_nowhere

    # Under the lock.

    def _release(self, conversation_id: int) -> None:
        """Send the held frames that are now next in line, dropping old ones."""
        held = self._held.get(conversation_id)
        expected = self._next[conversation_id]
        while held:
            seq = min(held)
            if seq > expected:
                self._wait_for_gap(conversation_id)
                break
            text = held.pop(seq)
            if seq == expected:
                self._send(text)
                expected += 1
        self._next[conversation_id] = expected
        if not held:
            self._held.pop(conversation_id, None)
            self._stop_timer(conversation_id)

    def _wait_for_gap(self, conversation_id: int) -> None:
        if conversation_id in self._timers:
            return
        timer = threading.Timer(HOLD_SECONDS, self._give_up, (conversation_id,))
        timer.daemon = True
        self._timers[conversation_id] = timer
        timer.start()

    def _stop_timer(self, conversation_id: int) -> None:
        timer = self._timers.pop(conversation_id, None)
        if timer is not None:
            timer.cancel()

    def _give_up(self, conversation_id: int) -> None:
        """The missing frames are not coming live: send what waits, in order."""
        with self._lock:
            self._timers.pop(conversation_id, None)
            held = self._held.pop(conversation_id, {})
            if self._closed or conversation_id in self._catching_up:
                if held:
                    self._held[conversation_id] = held
                return
            for seq in sorted(held):
                if seq >= self._next.get(conversation_id, 0):
                    self._send(held[seq])
                    self._next[conversation_id] = seq + 1


def _send_nowhere(text: str) -> None:
    """What a closed sequencer sends with: nothing."""


class CatchUp:
    """How far a backlog has got."""

    def __init__(self, after: int) -> None:
        self.last = after

    def sent(self, seq: int) -> None:
        self.last = max(self.last, seq)
