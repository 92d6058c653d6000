"""What the staff and the visitor are told of a conversation, through the hub."""

from __future__ import annotations

from ... import identity
from ...hub import conversation_channel
from ...hub import STAFF_CHANNEL
from ...hub import staff_conversation_channel
from ...models import ConversationMixin
from ...protocol import conversation_frame
from ...protocol import hidden_frame
from ...protocol import message_frame
from ...protocol import Said
from ...protocol import typing_frame
from .queue import QueueWatch


class Announcer(QueueWatch):
    """Frames of a conversation, and publishing its messages and changes."""

    def staff_frame(
        self, conversation: ConversationMixin, kind: str = "conversation"
    ) -> dict[str, object]:
        """The conversation as staff see it, as an event of type ``kind``."""
        return self.staff_frames([conversation], kind)[0]

    def staff_frames(
        self, conversations: list[ConversationMixin], kind: str = "conversation"
    ) -> list[dict[str, object]]:
        """:meth:`staff_frame` of each; a panel's whole queue costs one query."""
        previews = self.previews([c.id for c in conversations])
        frames = []
        for conversation in conversations:
            frame = conversation_frame(conversation, staff=True)
            requested = conversation.requested_operator
            frame.update(
                type=kind,
                preview=previews[conversation.id],
                tags=[tag.name for tag in conversation.tags],
                requested_operator_id=conversation.requested_operator_id,
                requested_operator=requested.name if requested is not None else None,
                context=conversation.context,
                verified=identity.verified(conversation),
            )
            frames.append(frame)
        return frames

    def visitor_frame(self, conversation: ConversationMixin) -> dict[str, object]:
        """The conversation as its visitor sees it, with their place in the queue."""
        frame = conversation_frame(conversation, staff=False)
        if conversation.status == "queued":
            frame.update(self.queue_place(conversation))
        return frame

    def publish(self, message: Said) -> None:
        """Send a stored message to whoever may read it.

        Visitors hear of a staff-only message too, as its number alone.
        """
        public = conversation_channel(message.conversation_id)
        if message.staff_only:
            self.hub.publish(
                staff_conversation_channel(message.conversation_id),
                message_frame(message),
            )
            self.hub.publish(public, hidden_frame(message))
        else:
            self.hub.publish(public, message_frame(message))

    def announce_change(
        self, conversation: ConversationMixin, change: str, event: Said
    ) -> None:
        """Publish a changed conversation and the event message it wrote."""
        self.publish(event)
        self.hub.publish(
            conversation_channel(conversation.id), self.visitor_frame(conversation)
        )
        self.hub.publish(STAFF_CHANNEL, self.staff_frame(conversation, change))

    def typing(self, conversation_id: int, author: str, state: bool) -> None:
        self.hub.publish(
            conversation_channel(conversation_id),
            typing_frame(conversation_id, author, state),
        )
