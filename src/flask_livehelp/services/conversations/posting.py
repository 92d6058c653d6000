"""Posting a message to a chat, by the visitor or the operator who has it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import typing as t

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ... import signals
from ...errors import NotAllowed
from ...errors import Refused
from ...i18n import N_
from ...models import MessageMixin
from ...models import Models
from ...models import utcnow
from .. import access
from ..access import OPEN
from .announcing import Announcer


@dataclasses.dataclass(frozen=True)
class StoredMessage:
    """A message just stored, as the socket and the hub need it (no ORM)."""

    id: int
    conversation_id: int
    seq: int
    client_id: str | None
    author: str
    author_name: str | None
    operator_id: int | None
    body: str
    created_at: dt.datetime
    kind: str = "text"
    data: dict[str, object] | None = None
    staff_only: bool = False
    via: str = "chat"


#: A message as the hub publishes it: stored just now, or read back for a resend.
Posted = MessageMixin | StoredMessage


class Author(t.Protocol):
    """Who answers: an operator row, or the socket's seat."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...


class PostStatements:
    """The statements that store a message, built once per set of models.

    Storing a message is the hot path: prepared Core statements with bound
    parameters skip the ORM's bulk machinery and the statement building and
    cache-key work that rebuilding them for every message would cost.
    """

    def __init__(self, models: Models) -> None:
        chat = models.conversation.__table__
        message = models.message.__table__
        now = sa.bindparam("now", type_=chat.c.last_visitor_message_at.type)
        mine = (chat.c.id == sa.bindparam("chat"), chat.c.deleted_at.is_(None))
        # One UPDATE takes the next number and proves the sender may write:
        # the row matches only for the visitor's own open chat, or the
        # operator's own active one. It also holds the row's lock to commit.
        claim = sa.update(chat).returning(chat.c.last_seq, chat.c.visitor_name)
        self.visitor_claim = claim.where(
            *mine,
            chat.c.visitor_id == sa.bindparam("author"),
            chat.c.status.in_(OPEN),
        ).values(last_seq=chat.c.last_seq + 1, last_visitor_message_at=now)
        self.operator_claim = claim.where(
            *mine,
            chat.c.operator_id == sa.bindparam("author"),
            chat.c.status == "active",
        ).values(
            last_seq=chat.c.last_seq + 1,
            last_operator_message_at=now,
            first_response_at=sa.func.coalesce(chat.c.first_response_at, now),
        )
        self.insert = sa.insert(message).returning(message.c.id)


class Posting(Announcer):
    """Storing each message once, however often it is sent."""

    # Posting is the hot path of the chat: every message goes through it. It
    # is written in a few plain statements (look for a resend, take the next
    # number while checking who may write, insert, commit), and only when the
    # chat may not be written to does it load everything to say why.

    def post_by_visitor(
        self, visitor_id: int, conversation_id: int, *, client_id: str, body: str
    ) -> tuple[Posted, bool]:
        """Store the visitor's message once, however often it is sent."""
        return self._post(
            conversation_id,
            client_id,
            body,
            author="visitor",
            author_id=visitor_id,
            refuse=lambda: self._refuse_visitor(visitor_id, conversation_id),
        )

    def post_by_operator(
        self, operator: Author, conversation_id: int, *, client_id: str, body: str
    ) -> tuple[Posted, bool]:
        """Store the answer of the operator who has the chat, once."""
        return self._post(
            conversation_id,
            client_id,
            body,
            author="operator",
            author_id=operator.id,
            operator=operator,
            refuse=lambda: self._refuse_operator(operator.id, conversation_id),
        )

    @functools.cached_property
    def _statements(self) -> PostStatements:
        return PostStatements(self.models)

    def _post(
        self,
        conversation_id: int,
        client_id: str,
        body: str,
        *,
        author: str,
        author_id: int,
        refuse: t.Callable[[], None],
        operator: Author | None = None,
    ) -> tuple[Posted, bool]:
        statements = self._statements
        connection = self.session.connection(
            bind_arguments={"mapper": self.models.message}
        )
        now = utcnow()
        claim = (
            statements.visitor_claim if operator is None else statements.operator_claim
        )
        taken = connection.execute(
            claim, {"chat": conversation_id, "author": author_id, "now": now}
        ).first()
        if taken is None:
            self.session.rollback()
            # A resend of a message stored before the chat ended is answered
            # as stored; anything else is refused with the reason.
            existing = self.by_client_id(conversation_id, client_id)
            if existing is not None:
                return self._resent(existing), False
            refuse()
            raise Refused("ended", N_("This chat has ended."))
        seq, visitor_name = taken
        fields = dict(
            conversation_id=conversation_id,
            seq=seq,
            client_id=client_id,
            author=author,
            author_name=operator.name if operator is not None else visitor_name,
            operator_id=operator.id if operator is not None else None,
            body=body,
            created_at=now,
        )
        try:
            # No look-up first: a resend is rare, and the unique client id
            # turns it away here (the number taken above is rolled back).
            message_id = connection.execute(statements.insert, fields).scalar_one()
            self.session.commit()
        except IntegrityError:
            self.session.rollback()
            existing = self.by_client_id(conversation_id, client_id)
            if existing is None:
                raise
            return self._resent(existing), False
        message = StoredMessage(id=message_id, **fields)
        self.publish(message)
        if signals.message_posted.receivers:
            stored = self.by_client_id(conversation_id, client_id)
            signals.send(
                signals.message_posted,
                conversation=self.get(conversation_id),
                message=stored,
            )
        return message, True

    def _resent(self, message: MessageMixin) -> MessageMixin:
        """A message sent again: published again, and answered as stored.

        The sender resends what it saw no acknowledgement for, which is also
        what a process that died between storing and publishing left
        unpublished; nobody would ask for it if nothing followed it. Readers
        drop a number they have already.
        """
        self.publish(message)
        return message

    def _refuse_visitor(self, visitor_id: int, conversation_id: int) -> None:
        """Why the visitor may not write here (raises), for the error they see."""
        self.for_visitor(visitor_id, conversation_id)

    def _refuse_operator(self, operator_id: int, conversation_id: int) -> None:
        operator = self.row(self.models.operator, operator_id)
        conversation = self.for_operator(operator, conversation_id)
        if not access.can_write(operator, conversation) and conversation.status in OPEN:
            raise NotAllowed("not-yours", N_("Accept the chat before you answer it."))
