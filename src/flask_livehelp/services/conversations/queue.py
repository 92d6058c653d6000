"""The queue of waiting chats: each one's place, and about how long it will wait."""

from __future__ import annotations

import collections.abc as c
import statistics
import typing as t

import sqlalchemy as sa

from ...hub import conversation_channel
from ...models import ConversationMixin
from .reading import ConversationStore


class QueueWatch(ConversationStore):
    """Where waiting chats stand, told to their visitors as the queue moves."""

    def queue_place(self, conversation: ConversationMixin) -> dict[str, object]:
        """Where a waiting chat is in the queue, and about how long it will wait."""
        model = self.models.conversation
        ahead = self.session.execute(
            sa.select(sa.func.count())
            .select_from(model)
            .where(
                model.status == "queued",
                model.deleted_at.is_(None),
                model.created_at < conversation.created_at,
            )
        ).scalar_one()
        position = ahead + 1
        return {"position": position, "wait": self._wait_per_place()(position)}

    def _wait_per_place(self) -> c.Callable[[int], int | None]:
        """Seconds a chat at a place in the queue will likely wait, from recent chats.

        When someone is free, the recent time to accept; when all are busy, a
        chat has to end first, so the recent chat length shared by everyone
        online. ``None`` when there is no history or nobody online to go by.
        Looked up once, for every place.
        """
        state = self.presence.widget_state()
        online = [o for o in self.presence.operators() if o.status == "online"]
        model = self.models.conversation
        per_chat: float | None = None
        if not online:
            pass
        elif state.state == "busy":
            spans = self._recent_spans(model.accepted_at, model.ended_at, "ended")
            if spans:
                per_chat = statistics.median(spans) / len(online)
        else:
            waits = self._recent_spans(
                model.created_at, model.accepted_at, "ended", "active"
            )
            if waits:
                per_chat = statistics.median(waits)
        return lambda place: None if per_chat is None else round(place * per_chat)

    # begin, end: two time columns of a chat, one of them nullable.
    def _recent_spans(self, begin: t.Any, end: t.Any, *statuses: str) -> list[float]:
        model = self.models.conversation
        rows = self.session.execute(
            sa.select(begin, end)
            .where(model.status.in_(statuses), begin.is_not(None), end.is_not(None))
            .order_by(model.id.desc())
            .limit(20)
        ).all()
        return [(finish - start).total_seconds() for start, finish in rows]

    def announce_queue(self) -> None:
        """Tell every waiting visitor their new place after the queue moved.

        One query for the queue in its order, one look-up for the waits.
        """
        model = self.models.conversation
        waiting = (
            self.session.execute(
                sa.select(model.id)
                .where(model.status == "queued", model.deleted_at.is_(None))
                .order_by(model.created_at)
            )
            .scalars()
            .all()
        )
        wait = self._wait_per_place()
        for place, conversation_id in enumerate(waiting, start=1):
            self.hub.publish(
                conversation_channel(conversation_id),
                {
                    "type": "queue",
                    "conversation": conversation_id,
                    "position": place,
                    "wait": wait(place),
                },
            )
