"""Tagging chats."""

from __future__ import annotations

import collections.abc as c

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ...errors import NotAllowed
from ...hub import staff_conversation_channel
from ...i18n import N_
from ...models import ConversationMixin
from ...models import OperatorMixin
from ...models import TagMixin
from .. import access
from .announcing import Announcer


class Tagging(Announcer):
    """The tags of a chat, changed by the staff who have or see it."""

    def set_tags(
        self, operator: OperatorMixin, conversation_id: int, names: list[str]
    ) -> ConversationMixin:
        """Replace the tags of a chat the operator has or may see.

        Whatever was added meanwhile goes; :meth:`change_tags` keeps it.
        """
        conversation = self._taggable(operator, conversation_id)
        wanted = _tag_names(names)
        try:
            existing = self._tags_named(wanted)
            conversation.tags = [existing[name] for name in sorted(wanted)]
            self.session.commit()
        except IntegrityError:
            # Another chat created the same new tag at the same moment.
            self.session.rollback()
            return self.set_tags(operator, conversation_id, names)
        return self._tagged(conversation)

    def change_tags(
        self,
        operator: OperatorMixin,
        conversation_id: int,
        *,
        add: c.Iterable[str] = (),
        remove: c.Iterable[str] = (),
    ) -> ConversationMixin:
        """Add and remove some tags of a chat, keeping every other one.

        Each change is made on the stored rows, not on a list read before:
        two tags added a moment apart (two frames, or two tabs) both stay.
        """
        conversation = self._taggable(operator, conversation_id)
        adding, removing = _tag_names(add), _tag_names(remove) - _tag_names(add)
        links, model = self.models.conversation_tags, self.models.tag
        linked = sa.exists().where(
            links.c.conversation_id == conversation.id, links.c.tag_id == model.id
        )
        try:
            self._tags_named(adding)
            self.session.execute(
                sa.insert(links).from_select(
                    ["conversation_id", "tag_id"],
                    sa.select(sa.literal(conversation.id), model.id).where(
                        model.name.in_(adding), ~linked
                    ),
                )
            )
            self.session.execute(
                sa.delete(links).where(
                    links.c.conversation_id == conversation.id,
                    links.c.tag_id.in_(
                        sa.select(model.id).where(model.name.in_(removing))
                    ),
                )
            )
            self.session.commit()
        except IntegrityError:
            # The same tag was made, or added to this chat, at the same moment.
            self.session.rollback()
            return self.change_tags(
                operator, conversation_id, add=adding, remove=removing
            )
        return self._tagged(conversation)

    def _taggable(
        self, operator: OperatorMixin, conversation_id: int
    ) -> ConversationMixin:
        conversation = self.for_operator(operator, conversation_id)
        if not (
            access.can_write(operator, conversation)
            or access.can_end(operator, conversation)
        ):
            raise NotAllowed("not-yours", N_("Accept the chat before you tag it."))
        return conversation

    def _tags_named(self, names: set[str]) -> dict[str, TagMixin]:
        """The tags of these names, made (not yet committed) where missing."""
        model = self.models.tag
        existing = {
            tag.name: tag
            for tag in self.session.execute(
                sa.select(model).where(model.name.in_(names))
            ).scalars()
        }
        for name in names - existing.keys():
            existing[name] = model(name=name)
            self.session.add(existing[name])
        self.session.flush()
        return existing

    def _tagged(self, conversation: ConversationMixin) -> ConversationMixin:
        """The chat with its tags as stored now, told to the staff who see it."""
        self.session.expire(conversation, ["tags"])
        self.hub.publish(
            staff_conversation_channel(conversation.id),
            self.staff_frame(conversation, "conversation"),
        )
        return conversation

    def all_tags(self) -> list[str]:
        model = self.models.tag
        return list(
            self.session.execute(sa.select(model.name).order_by(model.name)).scalars()
        )


def _tag_names(names: c.Iterable[str]) -> set[str]:
    """Tag names as stored: trimmed, at most 64 characters, none empty."""
    return {name.strip()[:64] for name in names if name.strip()}
