"""Conversations and their messages as stored, read back.

The base of :class:`~flask_livehelp.services.conversations.ConversationService`:
it holds the collaborators every part of the service uses.
"""

from __future__ import annotations

import collections.abc as c

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm

from ...errors import NotAllowed
from ...errors import NotFound
from ...i18n import N_
from ...models import ConversationMixin
from ...models import MessageMixin
from ...models import OperatorMixin
from .. import access
from .. import Basics
from .. import Service
from ..access import OPEN
from ..presence import PresenceService
from ..settings import SettingsService

#: How many messages one read hands back at most.
PAGE = 500


class ConversationStore(Service):
    """Finding conversations and messages, for whoever may see them."""

    def __init__(
        self, *args: *Basics, presence: PresenceService, settings: SettingsService
    ) -> None:
        super().__init__(*args)
        # Taking and ending chats changes operators' load, so who is busy.
        self.presence = presence
        self.settings = settings

    def get(self, conversation_id: int) -> ConversationMixin:
        conversation = self._load(conversation_id)
        if conversation is None:
            raise NotFound("no-conversation", N_("This chat does not exist."))
        return conversation

    def _load(
        self, conversation_id: int, with_operator: bool = False
    ) -> ConversationMixin | None:
        return self.session.get(
            self.models.conversation,
            conversation_id,
            options=self._alone(with_operator),
        )

    def _alone(
        self, with_operator: bool = False
    ) -> list[sa_orm.interfaces.LoaderOption]:
        """How one conversation is read: what it links to, only when asked for.

        Posting a message reads no tags, and a widget's frame only the
        operator's name: loading the tags, or the operator's departments,
        with each conversation would cost a query every message, and every
        page a customer in a chat opens. ``with_operator`` reads the operator
        in the same query, for the widget's frame.
        """
        model = self.models.conversation
        operator = (
            sa_orm.joinedload(model.operator)
            if with_operator
            else sa_orm.defaultload(model.operator)
        )
        return [
            sa_orm.lazyload(model.tags),
            operator.lazyload(self.models.operator.departments),
        ]

    def for_visitor(self, visitor_id: int, conversation_id: int) -> ConversationMixin:
        """The visitor's own conversation; anyone else's does not exist for them."""
        conversation = self._load(conversation_id, with_operator=True)
        if (
            conversation is None
            or conversation.visitor_id != visitor_id
            or conversation.deleted_at is not None
        ):
            raise NotFound("no-conversation", N_("This chat does not exist."))
        return conversation

    def for_operator(
        self, operator: OperatorMixin, conversation_id: int
    ) -> ConversationMixin:
        """A conversation the operator may see; a deleted one exists for nobody."""
        conversation = self.get(conversation_id)
        if conversation.deleted_at is not None:
            raise NotFound("no-conversation", N_("This chat does not exist."))
        if not access.can_view(operator, conversation):
            raise NotAllowed("not-allowed", N_("You may not open this chat."))
        return conversation

    def open_for_visitor(self, visitor_id: int) -> ConversationMixin | None:
        """The visitor's chat that is still waiting or going on, if any."""
        model = self.models.conversation
        query = (
            sa.select(model)
            .where(model.visitor_id == visitor_id, model.status.in_(OPEN))
            .order_by(model.id.desc())
            .limit(1)
            .options(*self._alone(with_operator=True))
        )
        return self.session.execute(query).scalar_one_or_none()

    def messages_after(
        self,
        conversation_id: int,
        after: int,
        limit: int | None = PAGE,
        *,
        staff: bool = False,
    ) -> list[MessageMixin]:
        """Messages numbered after ``after``, in order.

        :param limit: At most this many; ``None`` for all (a whole transcript).
        :param staff: Include what only staff may read (transfer notes).
        """
        model = self.models.message
        query = (
            sa.select(model)
            .where(model.conversation_id == conversation_id, model.seq > after)
            .order_by(model.seq)
            .limit(limit)
        )
        if not staff:
            query = query.where(sa.not_(model.staff_only))
        return list(self.session.execute(query).scalars())

    def backlog(
        self, conversation_id: int, after: int
    ) -> c.Iterator[list[MessageMixin]]:
        """Every message numbered after ``after``, in order, in pages.

        Staff-only messages too: a visitor's socket sends those as their
        number alone (:func:`~flask_livehelp.protocol.numbered_frame`).
        The caller may end the session's transaction between pages.
        """
        while page := self.messages_after(conversation_id, after, staff=True):
            after = page[-1].seq
            yield page

    def message_at(
        self, conversation_id: int, seq: int, *, staff: bool
    ) -> MessageMixin:
        """One message of a conversation by its number."""
        found = self.messages_after(conversation_id, seq - 1, limit=1, staff=staff)
        if not found or found[0].seq != seq:
            raise NotFound("no-message", N_("No such message."))
        return found[0]

    def queue_for(self, operator: OperatorMixin) -> list[ConversationMixin]:
        """Waiting conversations this operator may take, longest waiting first."""
        model = self.models.conversation
        query = (
            sa.select(model)
            .where(model.status == "queued", model.deleted_at.is_(None))
            .order_by(model.created_at)
            .options(sa_orm.selectinload(model.tags))
        )
        return [
            c
            for c in self.session.execute(query).scalars()
            if access.can_accept(operator, c)
        ]

    def active_for(self, operator: OperatorMixin) -> list[ConversationMixin]:
        model = self.models.conversation
        query = (
            sa.select(model)
            .where(
                model.status == "active",
                model.operator_id == operator.id,
                model.deleted_at.is_(None),
            )
            .order_by(model.accepted_at)
            .options(sa_orm.selectinload(model.tags))
        )
        return list(self.session.execute(query).scalars())

    def completed_for(
        self, operator: OperatorMixin, *, page: int = 1, per_page: int = 50
    ) -> tuple[list[ConversationMixin], int]:
        """The operator's ended chats, newest first, and how many there are."""
        model = self.models.conversation
        where = (
            model.operator_id == operator.id,
            model.status == "ended",
            model.deleted_at.is_(None),
        )
        query = (
            sa.select(model)
            .where(*where)
            .order_by(model.ended_at.desc(), model.id.desc())
        )
        return self.page_of(query, page, per_page)

    def preview(self, conversation_id: int) -> str | None:
        """The first thing the visitor wrote, as a hint in the queue."""
        return self.previews([conversation_id])[conversation_id]

    def previews(self, conversation_ids: list[int]) -> dict[int, str | None]:
        """:meth:`preview` of each conversation, in one query for a whole list."""
        model = self.models.message
        first = (
            sa.select(model.conversation_id, sa.func.min(model.seq).label("seq"))
            .where(
                model.conversation_id.in_(conversation_ids),
                model.author == "visitor",
                model.kind == "text",
            )
            .group_by(model.conversation_id)
            .subquery()
        )
        query = sa.select(model.conversation_id, model.body).join(
            first,
            sa.and_(
                model.conversation_id == first.c.conversation_id,
                model.seq == first.c.seq,
            ),
        )
        found = {id_: body[:200] for id_, body in self.session.execute(query)}
        return {id_: found.get(id_) for id_ in conversation_ids}

    def by_client_id(self, conversation_id: int, client_id: str) -> MessageMixin | None:
        """The message a client sent with ``client_id`` in a conversation, if any."""
        model = self.models.message
        query = sa.select(model).where(
            model.conversation_id == conversation_id, model.client_id == client_id
        )
        return self.session.execute(query).scalar_one_or_none()

    def by_visitor_client_id(
        self, visitor_id: int, client_id: str
    ) -> MessageMixin | None:
        """The message a visitor sent with ``client_id`` in any chat, if any."""
        message, conversation = self.models.message, self.models.conversation
        query = (
            sa.select(message)
            .join(conversation, conversation.id == message.conversation_id)
            .where(
                conversation.visitor_id == visitor_id, message.client_id == client_id
            )
        )
        return self.session.execute(query).scalar_one_or_none()
