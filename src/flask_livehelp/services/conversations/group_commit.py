"""Group commit: messages posted at about the same time share one transaction.

The commit is what a stored message costs most (a round trip and a flush to
disk), and a busy shop's messages arrive from many sockets within the same
millisecond. So posters queue their messages here, and the first poster
that finds nobody storing *leads*: it takes what is queued (up to a limit),
stores it in one transaction, publishes each message, and then wakes the
others with their answers. Whoever queued meanwhile waits for the next
leader, the first of them, so a commit in progress gathers the next batch:
at low load nobody waits for anybody, and under load one commit serves
many messages. ``LIVEHELP_GROUP_COMMIT_SECONDS`` lets a leader also wait a
moment for more before it stores.

There is no thread of our own: the leader is a poster's own thread (or
greenlet), in its own app context and database session.
"""

from __future__ import annotations

import collections
import collections.abc as c
import dataclasses
import logging
import os
import threading
import time
import typing as t

if t.TYPE_CHECKING:
    from .posting import StoredMessage

log = logging.getLogger(__name__)


@dataclasses.dataclass(eq=False)
class Draft:
    """A message waiting to be stored, and, once its batch ran, its answer."""

    conversation_id: int
    client_id: str
    body: str
    #: ``"visitor"`` or ``"operator"``.
    author: str
    #: The visitor's id, or the operator's.
    author_id: int
    operator_name: str | None = None
    #: Set once the batch that held it committed (or failed).
    stored: StoredMessage | None = None
    #: Whether its poster is to lead the next batch.
    leads: bool = False
    done: threading.Event = dataclasses.field(default_factory=threading.Event)


#: Stores a batch in one transaction and publishes what it stored, setting
#: ``stored`` on each draft it stored; raises if the transaction failed.
Store = c.Callable[[list[Draft]], None]
#: How many of so many messages waiting the next batch may take.
Room = c.Callable[[int], int]


class GroupCommit:
    """The queue of one process's posters, and who leads the next batch.

    :param window: Seconds a leader waits for more messages before storing.
    :param limit: The most messages one transaction stores.
    """

    def __init__(self, window: float, limit: int) -> None:
        self.window = window
        self.limit = max(1, limit)
        #: The process it serves; a forked worker makes its own.
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._queue: collections.deque[Draft] = collections.deque()
        self._leading = False

    def submit(
        self, draft: Draft, store: Store, room: Room | None = None
    ) -> StoredMessage | None:
        """Store ``draft`` together with whatever else is waiting.

        Returns the stored message, or ``None`` when the batch did not store
        it: its chat refused it (or it was sent before) or the transaction
        failed. The poster then posts it alone, which stores it or says why
        not, exactly as without group commit. A batch takes as many of the
        messages waiting as ``room`` says (up to the limit); the rest wait
        for the next.
        """
        with self._lock:
            self._queue.append(draft)
            follows, self._leading = self._leading, True
        if follows:
            try:
                draft.done.wait()
            except BaseException:
                # Stopped while waiting (a greenlet killed): whoever waits
                # behind us must still get a leader.
                self._abandon(draft)
                raise
            if not draft.leads:
                return draft.stored
        self._lead(draft, store, room)
        return draft.stored

    def _lead(self, draft: Draft, store: Store, room: Room | None) -> None:
        batch: list[Draft] = []
        try:
            if len(self._queue) < self.limit:
                # Even for no time at all: under gevent this lets every socket
                # with a message waiting read it and join, before we store.
                time.sleep(self.window)
            wanted = min(len(self._queue), self.limit)
            size = wanted if room is None else room(wanted)
            with self._lock:
                # A poster stopped meanwhile has left the queue.
                size = min(size, len(self._queue))
                batch = [self._queue.popleft() for _ in range(size)]
            store(batch)
        except Exception as error:
            # Nothing of the batch was committed: each poster posts alone and
            # gets the answer (or the error) a message alone would get. Why,
            # in one line: a resend in the batch is usual, and no traceback.
            reason = str(error).strip().splitlines()[:1]
            log.warning(
                "A group commit failed (%s: %s); its messages go one by one.",
                type(error).__name__,
                reason[0] if reason else "",
            )
            for taken in batch:
                taken.stored = None
        finally:
            self._hand_over(draft, batch)

    def _abandon(self, draft: Draft) -> None:
        with self._lock:
            if draft in self._queue:
                self._queue.remove(draft)
            if not draft.leads:
                return
        self._hand_over(draft, [])

    def _hand_over(self, leader: Draft, batch: list[Draft]) -> None:
        """Wake the batch's posters, and make the first of the queue lead.

        Also when the leader was stopped before it took its batch (its
        greenlet killed): its own draft leaves the queue, and the rest get
        a leader.
        """
        with self._lock:
            if leader not in batch and leader in self._queue:
                self._queue.remove(leader)
            successor = self._queue[0] if self._queue else None
            self._leading = successor is not None
            if successor is not None:
                successor.leads = True
        for draft in batch:
            draft.done.set()
        if successor is not None:
            successor.done.set()
