"""Posting a message to a chat, by the visitor or the operator who has it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import os
import threading
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
from .group_commit import Draft
from .group_commit import GroupCommit
from .prepared import Prepared


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
    """The statements that store messages, built once per set of models.

    Storing messages is the hot path: each statement is built and compiled
    once for each number of chats or messages it takes (.prepared), then
    only run.
    """

    #: The message's columns a post sets; the others get their defaults.
    COLUMNS = (
        "conversation_id",
        "seq",
        "client_id",
        "author",
        "author_name",
        "operator_id",
        "body",
        "created_at",
    )

    def __init__(self, models: Models) -> None:
        self.chat = models.conversation.__table__
        self.message = models.message.__table__
        self.now = sa.bindparam("now", type_=self.chat.c.last_visitor_message_at.type)
        #: By dialect and size: building a statement and its cache key for
        #: each batch would cost more than running it.
        self._claims: dict[tuple[str, int], Prepared] = {}
        self._inserts: dict[tuple[str, int], Prepared] = {}
        #: The driver's SQL gets no defaults worked out: the model's own
        #: (a message's kind, say) go in as constants.
        self.defaults = {
            column.name: column.default.arg
            for column in self.message.c
            if column.name not in self.COLUMNS
            and isinstance(column.default, sa.ColumnDefault)
            and column.default.is_scalar
        }

    def claim(
        self, groups: list[Group], dialect: sa.Dialect
    ) -> tuple[Prepared, dict[str, object]]:
        """One UPDATE that takes the next numbers of several chats at once,
        and its parameters.

        It also proves each sender may write: a chat matches only for the
        visitor's own open chat, or the operator's own active one. And it
        holds the chats' rows locked until the commit. Each chat may be in
        ``groups`` once (an UPDATE changes a row once). Its rows: each
        chat's id, its last number now, and its visitor's name.
        """
        parameters: dict[str, object] = {}
        for number, group in enumerate(groups):
            parameters.update(
                {
                    f"chat_{number}": group.chat,
                    f"taken_{number}": len(group.drafts),
                    f"author_{number}": group.author_id,
                    f"by_visitor_{number}": group.by_visitor,
                }
            )
        key = (dialect.name, len(groups))
        if key not in self._claims:
            self._claims[key] = Prepared(self._claim_of(len(groups)), dialect)
        return self._claims[key], parameters

    def insert(
        self, rows: list[dict[str, t.Any]], dialect: sa.Dialect
    ) -> tuple[Prepared, dict[str, object]]:
        """One INSERT of ``rows`` (values of :attr:`COLUMNS`), and its
        parameters. Its rows: each message's id, chat and number."""
        parameters = {
            f"{column}_{number}": value
            for number, row in enumerate(rows)
            for column, value in row.items()
        }
        key = (dialect.name, len(rows))
        if key not in self._inserts:
            self._inserts[key] = Prepared(self._insert_of(len(rows)), dialect)
        return self._inserts[key], parameters

    def _insert_of(self, size: int) -> sa.Insert:
        message = self.message
        rows = [
            {
                **{
                    column: sa.bindparam(
                        f"{column}_{number}", type_=message.c[column].type
                    )
                    for column in self.COLUMNS
                },
                **{
                    column: sa.bindparam(
                        f"{column}_{number}", value, type_=message.c[column].type
                    )
                    for column, value in self.defaults.items()
                },
            }
            for number in range(size)
        ]
        return (
            sa.insert(message)
            .values(rows)
            .returning(message.c.id, message.c.conversation_id, message.c.seq)
        )

    def _claim_of(self, size: int) -> sa.Update:
        chat, now = self.chat, self.now
        claims = sa.union_all(
            *(
                sa.select(
                    sa.bindparam(f"chat_{n}", type_=sa.Integer).label("chat"),
                    sa.bindparam(f"taken_{n}", type_=sa.Integer).label("taken"),
                    sa.bindparam(f"author_{n}", type_=sa.Integer).label("author"),
                    sa.bindparam(f"by_visitor_{n}", type_=sa.Boolean).label(
                        "by_visitor"
                    ),
                )
                for n in range(size)
            )
        ).subquery("claims")
        by_visitor = claims.c.by_visitor
        return (
            sa.update(chat)
            .where(
                chat.c.id == claims.c.chat,
                chat.c.deleted_at.is_(None),
                sa.or_(
                    sa.and_(
                        by_visitor,
                        chat.c.visitor_id == claims.c.author,
                        sa.or_(*(chat.c.status == status for status in OPEN)),
                    ),
                    sa.and_(
                        sa.not_(by_visitor),
                        chat.c.operator_id == claims.c.author,
                        chat.c.status == "active",
                    ),
                ),
            )
            .values(
                last_seq=chat.c.last_seq + claims.c.taken,
                last_visitor_message_at=sa.case(
                    (by_visitor, now), else_=chat.c.last_visitor_message_at
                ),
                last_operator_message_at=sa.case(
                    (by_visitor, chat.c.last_operator_message_at), else_=now
                ),
                first_response_at=sa.case(
                    (by_visitor, chat.c.first_response_at),
                    else_=sa.func.coalesce(chat.c.first_response_at, now),
                ),
            )
            .returning(chat.c.id, chat.c.last_seq, chat.c.visitor_name)
        )


@dataclasses.dataclass
class Group:
    """The drafts of one author in one chat, numbered by one claim."""

    chat: int
    by_visitor: bool
    author_id: int
    drafts: list[Draft]


def claim_rounds(drafts: list[Draft]) -> list[list[Group]]:
    """``drafts`` in rounds of one claim each, every chat at most once a round.

    Nearly always one round; a chat where both sides (or a stranger) wrote
    in the same batch needs one more for each other author.
    """
    rounds: list[dict[int, Group]] = []
    for draft in drafts:
        author = (draft.author == "visitor", draft.author_id)
        for groups in rounds:
            group = groups.get(draft.conversation_id)
            if group is None or (group.by_visitor, group.author_id) == author:
                break
        else:
            groups, group = {}, None
            rounds.append(groups)
        if group is None:
            group = groups[draft.conversation_id] = Group(
                draft.conversation_id, *author, []
            )
        group.drafts.append(draft)
    return [list(groups.values()) for groups in rounds]


#: Held while a process makes its group commit.
_group_lock = threading.Lock()


class Posting(Announcer):
    """Storing each message once, however often it is sent."""

    #: Made on the first post in each process (a forked worker makes its own).
    _group: GroupCommit | None = None

    # Posting is the hot path of the chat: every message goes through it.
    # Messages that arrive together are stored together (.group_commit) in
    # a few plain statements: one claim takes the chats' next numbers while
    # checking who may write, one insert, one commit. Only a message its chat
    # refuses is posted alone, which loads everything to say why.

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
        draft = Draft(
            conversation_id,
            client_id,
            body,
            author,
            author_id,
            operator.name if operator is not None else None,
        )
        group = self._group_commit()
        if group is not None and not self._has_writes():
            # Whatever the caller read is done with: its transaction must not
            # hold the database while the batch is stored.
            if self.session().in_transaction():
                self.session.commit()
            stored = group.submit(draft, self._store_together)
            if stored is not None:
                self._announce_posted(stored)
                return stored, True
        return self._post_alone(draft, refuse)

    def _group_commit(self) -> GroupCommit | None:
        """This process's group commit, or ``None`` when each message goes alone."""
        limit = self.setting("GROUP_COMMIT_MESSAGES")
        if not limit or limit <= 1:
            return None
        group = self._group
        if group is None or group.pid != os.getpid():
            with _group_lock:
                if self._group is None or self._group.pid != os.getpid():
                    window = self.setting("GROUP_COMMIT_SECONDS") or 0.0
                    self._group = GroupCommit(window, limit)
                group = self._group
        return group

    def _has_writes(self) -> bool:
        """Whether the caller's session holds changes of its own, to be
        committed with the message as before."""
        session = self.session
        return bool(session.new or session.dirty or session.deleted)

    def _store_together(self, drafts: list[Draft]) -> None:
        """Store ``drafts`` in one transaction, then publish each in order.

        A draft whose chat refuses it (ended, or not the author's) is left
        unstored; its poster posts it alone to learn why.
        """
        claimed = []
        try:
            connection = self.session.connection(
                bind_arguments={"mapper": self.models.message}
            )
            claimed = self._claim(connection, drafts, utcnow())
            if claimed:
                self._insert(connection, claimed)
            self.session.commit()
        except BaseException:
            self.session.rollback()
            for draft, _ in claimed:
                draft.stored = None
            raise
        for draft, _ in claimed:
            self.publish(t.cast(StoredMessage, draft.stored))

    def _claim(
        self, connection: sa.Connection, drafts: list[Draft], now: dt.datetime
    ) -> list[tuple[Draft, dict[str, t.Any]]]:
        """Number the drafts whose authors may write there; the rows to insert."""
        claimed = []
        for groups in claim_rounds(drafts):
            statement, parameters = self._statements.claim(groups, connection.dialect)
            rows = statement.run(connection, {"now": now, **parameters}).all()
            taken = {
                chat: (last, visitor_name)
                for chat, last, visitor_name in t.cast(list[tuple[int, int, str]], rows)
            }
            for group in groups:
                if group.chat not in taken:
                    continue
                last, visitor_name = taken[group.chat]
                first = last - len(group.drafts) + 1
                for seq, draft in enumerate(group.drafts, start=first):
                    fields = dict(
                        conversation_id=group.chat,
                        seq=seq,
                        client_id=draft.client_id,
                        author=draft.author,
                        author_name=(
                            visitor_name if group.by_visitor else draft.operator_name
                        ),
                        operator_id=None if group.by_visitor else draft.author_id,
                        body=draft.body,
                        created_at=now,
                    )
                    claimed.append((draft, fields))
        return claimed

    def _insert(
        self, connection: sa.Connection, claimed: list[tuple[Draft, dict[str, t.Any]]]
    ) -> None:
        """Insert the claimed rows in one statement; each draft learns its id."""
        rows = [fields for _, fields in claimed]
        statement, parameters = self._statements.insert(rows, connection.dialect)
        # By chat and number: the order of RETURNING's rows is not promised.
        inserted = statement.run(connection, parameters).all()
        ids = {
            (chat, seq): message_id
            for message_id, chat, seq in t.cast(list[tuple[int, int, int]], inserted)
        }
        for draft, fields in claimed:
            message_id = ids[fields["conversation_id"], fields["seq"]]
            draft.stored = StoredMessage(id=message_id, **fields)

    def _announce_posted(self, message: StoredMessage) -> None:
        """Tell the host's ``message_posted`` receivers, if there are any."""
        if signals.message_posted.receivers:
            signals.send(
                signals.message_posted,
                conversation=self.get(message.conversation_id),
                message=self.row(self.models.message, message.id),
            )

    def _post_alone(
        self, draft: Draft, refuse: t.Callable[[], None]
    ) -> tuple[Posted, bool]:
        """Store one message in a transaction of its own, or say why not."""
        try:
            self._store_together([draft])
        except IntegrityError:
            # A resend: no look-up first, as a resend is rare, and the unique
            # client id turned it away (the number it took was rolled back).
            existing = self.by_client_id(draft.conversation_id, draft.client_id)
            if existing is None:
                raise
            return self._resent(existing), False
        if draft.stored is not None:
            self._announce_posted(draft.stored)
            return draft.stored, True
        # A resend of a message stored before the chat ended is answered as
        # stored; anything else is refused with the reason.
        existing = self.by_client_id(draft.conversation_id, draft.client_id)
        if existing is not None:
            return self._resent(existing), False
        refuse()
        raise Refused("ended", N_("This chat has ended."))

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
