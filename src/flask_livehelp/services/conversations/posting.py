"""Posting a message to a chat, by the visitor or the operator who has it."""

from __future__ import annotations

import collections.abc as c
import contextlib
import dataclasses
import datetime as dt
import functools
import logging
import os
import threading
import typing as t

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from sqlalchemy.exc import IntegrityError

from ... import signals
from ...errors import NotAllowed
from ...errors import Refused
from ...i18n import N_
from ...models import MessageMixin
from ...models import Models
from ...models import utcnow
from ...threads import off_the_event_loop
from .. import access
from ..access import OPEN
from .announcing import Announcer
from .group_commit import Draft
from .group_commit import GroupCommit
from .prepared import batch_size
from .prepared import bound_rows
from .prepared import bound_values
from .prepared import driver_transaction
from .prepared import Prepared
from .prepared import PreparedCache
from .prepared import Run
from .prepared import Statement
from .prepared import through_connection
from .prepared import watched

log = logging.getLogger(__name__)


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
    once for each size of batch (.prepared.batch_size), then only run.

    Compiling for a larger batch takes tens of milliseconds. On a poster's
    thread that stalls every chat of a gevent worker, just when messages
    pile up: a worker started under load compiled one size after another,
    each stall making the next batch larger, of a size new again. So a
    batch takes no more messages than the statements compiled so far take
    (:meth:`room`), and a backlog larger has the next size compiled in the
    background, off the event loop.
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
    #: Those given for each message; all of a batch are stored at once (``now``).
    GIVEN = tuple(column for column in COLUMNS if column != "created_at")

    def __init__(self, models: Models) -> None:
        self.chat = models.conversation.__table__
        self.message = models.message.__table__
        self.now = sa.bindparam("now", type_=self.chat.c.last_visitor_message_at.type)
        #: By dialect and size: building a statement and its cache key for
        #: each batch would cost more than running it.
        self._prepared = PreparedCache()
        self._builders: dict[str, t.Callable[[int], Statement]] = {
            "claim": self._claim_only_of,
            "insert": self._insert_of,
            "claim and insert": self._claim_and_insert_of,
        }
        #: By dialect: the largest batch the statements are compiled for
        #: (every size below it too), and those growing in the background.
        self._room: dict[tuple[str, str], int] = {}
        self._growing: set[tuple[str, str]] = set()
        self._growing_lock = threading.Lock()
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
        size = batch_size(len(groups))
        prepared = self._prepared_for("claim", size, dialect)
        return prepared, self._claim_parameters(groups, size)

    def claim_and_insert(
        self, groups: list[Group], dialect: sa.Dialect
    ) -> tuple[Prepared, dict[str, object]]:
        """The claim and the insert of its messages as one statement, and its
        parameters: a single round trip, for a database that takes an UPDATE
        in a WITH (PostgreSQL). Its rows: each message's id, chat, number,
        client id and author's name; none for a chat the claim refused.
        """
        drafts = [
            {
                "chat": group.chat,
                "ordinal": ordinal,
                "client_id": draft.client_id,
                "author": draft.author,
                "operator_id": None if group.by_visitor else draft.author_id,
                "operator_name": draft.operator_name,
                "body": draft.body,
            }
            for group in groups
            for ordinal, draft in enumerate(group.drafts, start=1)
        ]
        # One size for both: there are never more chats than messages.
        size = batch_size(len(drafts))
        prepared = self._prepared_for("claim and insert", size, dialect)
        return prepared, {
            **self._claim_parameters(groups, size),
            **bound_values("drafts", drafts, size),
        }

    @staticmethod
    def _claim_parameters(groups: list[Group], size: int) -> dict[str, object]:
        return bound_values(
            "claims",
            [
                {
                    "chat": group.chat,
                    "taken": len(group.drafts),
                    "author": group.author_id,
                    "by_visitor": group.by_visitor,
                }
                for group in groups
            ],
            size,
        )

    def insert(
        self, rows: list[dict[str, t.Any]], dialect: sa.Dialect
    ) -> tuple[Prepared, dict[str, object]]:
        """One INSERT of ``rows`` (values of :attr:`COLUMNS`, all stored at
        the parameter ``now``), and its parameters. Its rows: each message's
        id, chat and number."""
        size = batch_size(len(rows))
        prepared = self._prepared_for("insert", size, dialect)
        given = [{column: row[column] for column in self.GIVEN} for row in rows]
        return prepared, bound_values("rows", given, size)

    @staticmethod
    def in_one_statement(dialect: sa.Dialect) -> bool:
        """Whether a batch of one round is stored by :meth:`claim_and_insert`
        (else :meth:`claim`, then :meth:`insert`)."""
        return dialect.name == "postgresql"

    def room(self, wanted: int, dialect: sa.Dialect) -> int:
        """How many of ``wanted`` messages the next batch may take: as many
        as the statements compiled so far take. Wanting more starts the
        next size compiling in the background."""
        kind = _kind(dialect)
        room = self._room.get(kind, 1)  # the first batch compiles its own
        if wanted > room:
            with self._growing_lock:
                grows = kind not in self._growing
                self._growing.add(kind)
            if grows:
                threading.Thread(
                    target=self._grow,
                    args=(room * 2, dialect),
                    name="livehelp-statements",
                    daemon=True,
                ).start()
        return min(wanted, room)

    def _grow(self, size: int, dialect: sa.Dialect) -> None:
        """Compile a batch's statements for ``size``, then let batches take as
        many. In a thread of its own (a greenlet under gevent)."""
        kind = _kind(dialect)
        names = ["claim and insert"] if self.in_one_statement(dialect) else []
        try:
            for name in names or ["claim", "insert"]:
                self._prepared_for(name, size, dialect, aside=True)
            self._room[kind] = max(size, self._room.get(kind, 1))
        except Exception:
            log.exception("Compiling the statements for batches of %d failed.", size)
        finally:
            with self._growing_lock:
                self._growing.discard(kind)

    def _prepared_for(
        self, name: str, size: int, dialect: sa.Dialect, *, aside: bool = False
    ) -> Prepared:
        """The statement ``name`` for ``size`` rows, compiled the first time
        (``aside``: off the event loop)."""
        build = functools.partial(self._compiled, name, size, dialect)
        if aside:
            build = functools.partial(off_the_event_loop, build)
        return self._prepared.get((name, *_kind(dialect), size), build)

    def _compiled(self, name: str, size: int, dialect: sa.Dialect) -> Prepared:
        return Prepared(self._builders[name](size), dialect)

    def _insert_of(self, size: int) -> sa.Insert:
        message = self.message
        types = {column: message.c[column].type for column in self.GIVEN}
        rows = bound_rows("rows", size, **types)
        values = sa.select(
            *(rows.c[column] for column in self.GIVEN), self.now, *self._defaults
        ).where(rows.c.conversation_id.is_not(None))  # not the padding
        return (
            sa.insert(message)
            .from_select([*self.GIVEN, "created_at", *self.defaults], values)
            .returning(message.c.id, message.c.conversation_id, message.c.seq)
        )

    @property
    def _defaults(self) -> list[sa.BindParameter[t.Any]]:
        """The model's defaults (:attr:`defaults`) as the statements' constants."""
        return [
            sa.bindparam(f"default_{column}", value, type_=self.message.c[column].type)
            for column, value in self.defaults.items()
        ]

    @property
    def _claimed_columns(self) -> tuple[sa.ColumnElement[t.Any], ...]:
        return (self.chat.c.id, self.chat.c.last_seq, self.chat.c.visitor_name)

    def _claim_only_of(self, size: int) -> sa.Update:
        return self._claim_of(self._claims_of(size)).returning(*self._claimed_columns)

    @staticmethod
    def _claims_of(size: int) -> sa.Subquery:
        """The chats to claim, as rows: each chat, how many numbers it takes,
        who writes and whether that is the visitor."""
        return bound_rows(
            "claims",
            size,
            chat=sa.Integer(),
            taken=sa.Integer(),
            author=sa.Integer(),
            by_visitor=sa.Boolean(),
        )

    def _claim_of(self, claims: sa.Subquery) -> sa.Update:
        chat, now = self.chat, self.now
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
        )

    def _claim_and_insert_of(self, size: int) -> sa.Insert:
        message = self.message
        claims = self._claims_of(size)
        claimed = (
            self._claim_of(claims)
            .returning(*self._claimed_columns, claims.c.taken)
            .cte("claimed")
        )
        typed = message.c
        drafts = bound_rows(
            "drafts",
            size,
            chat=sa.Integer(),
            ordinal=sa.Integer(),
            client_id=typed.client_id.type,
            author=typed.author.type,
            operator_id=typed.operator_id.type,
            operator_name=typed.author_name.type,
            body=typed.body.type,
        )
        rows = sa.select(
            drafts.c.chat,
            claimed.c.last_seq - claimed.c.taken + drafts.c.ordinal,
            drafts.c.client_id,
            drafts.c.author,
            sa.case(
                (drafts.c.author == "visitor", claimed.c.visitor_name),
                else_=drafts.c.operator_name,
            ),
            drafts.c.operator_id,
            drafts.c.body,
            self.now,
            *self._defaults,
        ).join_from(drafts, claimed, claimed.c.id == drafts.c.chat)
        return (
            sa.insert(message)
            .from_select([*self.COLUMNS, *self.defaults], rows)
            .returning(
                message.c.id,
                message.c.conversation_id,
                message.c.seq,
                message.c.client_id,
                message.c.author_name,
            )
        )


def _kind(dialect: sa.Dialect) -> tuple[str, str]:
    """What compiled SQL is good for: psycopg and psycopg2 differ."""
    return dialect.name, dialect.driver


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


def _fields(
    draft: Draft, seq: int, author_name: str | None, now: dt.datetime
) -> dict[str, t.Any]:
    """The stored row of ``draft`` (numbered ``seq``), but for its id."""
    by_visitor = draft.author == "visitor"
    return dict(
        conversation_id=draft.conversation_id,
        seq=seq,
        client_id=draft.client_id,
        author=draft.author,
        author_name=author_name,
        operator_id=None if by_visitor else draft.author_id,
        body=draft.body,
        created_at=now,
    )


#: Held while a process makes its group commit.
_group_lock = threading.Lock()
#: The most messages one batch stores, whatever ``GROUP_COMMIT_MESSAGES``
#: says. A batch's rows are a compound SELECT of as many terms as its
#: statement takes, a power of two, and SQLite takes at most 500 terms.
MOST_IN_A_BATCH = 256


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
        if group is not None and self._done_with_session():
            stored = group.submit(draft, self._store_together, self._batch_room)
            if stored is not None:
                self._announce_posted(stored)
                return stored, True
        return self._post_alone(draft, refuse)

    def _batch_room(self, wanted: int) -> int:
        """How many messages the next batch may take, of ``wanted``."""
        return self._statements.room(wanted, self._engine.dialect)

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
                    self._group = GroupCommit(window, min(limit, MOST_IN_A_BATCH))
                group = self._group
        return group

    def _done_with_session(self) -> bool:
        """Whether the caller's session holds no changes of its own (those are
        committed with the message, alone); what it read is committed, so its
        transaction holds nothing while a batch is stored."""
        if not self.session.registry.has():
            return True  # none made in this context yet: nothing to look at
        session = self.session()
        if session.new or session.dirty or session.deleted:
            return False
        if session.in_transaction():
            session.commit()
        return True

    @functools.cached_property
    def _engine(self) -> sa.Engine:
        """Where messages are stored (Flask-SQLAlchemy's engine for their bind)."""
        bind = self.session.get_bind(mapper=sa.inspect(self.models.message))
        return bind if isinstance(bind, sa.Engine) else bind.engine

    def _store_together(self, drafts: list[Draft]) -> None:
        """Store a group commit's ``drafts`` in one transaction, then publish
        each in order.

        A message its chat stored before (a resend after a reconnect, or the
        same one from two tabs at once) fails the whole batch. Then one
        look-up finds such messages and the rest are stored together again:
        one client resending, by chance or to slow the chat down, must not
        make everyone's messages of the batch go alone. What is left out goes
        alone, and is answered as sent before.
        """
        try:
            self._store_batch(drafts)
        except IntegrityError:
            fresh = self._not_stored_before(drafts)
            if len(fresh) == len(drafts):
                raise
            if fresh:
                self._store_batch(fresh)

    def _not_stored_before(self, drafts: list[Draft]) -> list[Draft]:
        """Those of ``drafts`` whose chat holds no message of their client id,
        each client id once."""
        model = self.models.message
        query = sa.select(model.conversation_id, model.client_id).where(
            model.conversation_id.in_(sorted({d.conversation_id for d in drafts})),
            model.client_id.in_(sorted({d.client_id for d in drafts})),
        )
        with self._engine.connect() as connection:
            taken = {tuple(row) for row in connection.execute(query)}
        fresh = []
        for draft in drafts:
            key = (draft.conversation_id, draft.client_id)
            if key not in taken:
                taken.add(key)
                fresh.append(draft)
        return fresh

    def _store_batch(self, drafts: list[Draft]) -> None:
        """Store ``drafts`` in one transaction, then publish each in order: on
        the driver, or in the session where something watches the engine or
        the session (listeners, SQL logging)."""
        engine = self._engine
        rounds = claim_rounds(drafts)
        if watched(engine, self._session_to_watch()):
            self._store(rounds, self._in_session)
            return
        # One statement is a transaction of its own: no BEGIN and COMMIT,
        # each a round trip to the database.
        alone = self._at_once(rounds)
        self._store(
            rounds, functools.partial(driver_transaction, engine, autocommit=alone)
        )

    def _session_to_watch(self) -> sa_orm.Session:
        """The session whose listeners a batch is to be seen by: the
        context's own if it has one, else one as the context would get."""
        if self.session.registry.has():
            return self.session()
        return self._unused_session

    @functools.cached_property
    def _unused_session(self) -> sa_orm.Session:
        """A session never used, made once. A new session has the listeners
        of its class and factory, and it sees those added later: making one
        for each batch only to look at it, and removing it after the frame,
        was a tenth of the Python calls storing a message takes."""
        return self.session.session_factory()

    def _at_once(self, rounds: list[list[Group]]) -> bool:
        """Whether ``rounds`` are stored by one statement."""
        return len(rounds) == 1 and self._statements.in_one_statement(
            self._engine.dialect
        )

    def _store(
        self,
        rounds: list[list[Group]],
        transaction: c.Callable[[], t.ContextManager[Run]],
    ) -> None:
        """Store the drafts of ``rounds`` in ``transaction``, then publish
        each in order.

        A draft whose chat refuses it (ended, or not the author's) is left
        unstored; its poster posts it alone to learn why.
        """
        stored: list[Draft] = []
        try:
            with transaction() as run:
                now = utcnow()
                if self._at_once(rounds):
                    stored = self._claim_and_insert(run, rounds[0], now)
                else:
                    stored = self._insert(run, self._claim(run, rounds, now), now)
        except BaseException:
            for draft in stored:
                draft.stored = None
            raise
        for draft in stored:
            self.publish(t.cast(StoredMessage, draft.stored))

    @contextlib.contextmanager
    def _in_session(self) -> c.Iterator[Run]:
        """The caller's session's transaction: its changes commit with the
        messages."""
        try:
            yield through_connection(
                self.session.connection(bind_arguments={"mapper": self.models.message})
            )
            self.session.commit()
        except BaseException:
            self.session.rollback()
            raise

    def _claim(
        self, run: Run, rounds: list[list[Group]], now: dt.datetime
    ) -> list[tuple[Draft, dict[str, t.Any]]]:
        """Number the drafts whose authors may write there; the rows to insert."""
        claimed = []
        for groups in rounds:
            statement, parameters = self._statements.claim(groups, self._engine.dialect)
            rows = run(statement, {"now": now, **parameters})
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
                    author_name = (
                        visitor_name if group.by_visitor else draft.operator_name
                    )
                    claimed.append((draft, _fields(draft, seq, author_name, now)))
        return claimed

    def _insert(
        self, run: Run, claimed: list[tuple[Draft, dict[str, t.Any]]], now: dt.datetime
    ) -> list[Draft]:
        """Insert the claimed rows in one statement; each draft learns its id.
        The drafts stored."""
        if not claimed:
            return []
        rows = [fields for _, fields in claimed]
        statement, parameters = self._statements.insert(rows, self._engine.dialect)
        # By chat and number: the order of RETURNING's rows is not promised.
        inserted = run(statement, {"now": now, **parameters})
        ids = {
            (chat, seq): message_id
            for message_id, chat, seq in t.cast(list[tuple[int, int, int]], inserted)
        }
        for draft, fields in claimed:
            message_id = ids[fields["conversation_id"], fields["seq"]]
            draft.stored = StoredMessage(id=message_id, **fields)
        return [draft for draft, _ in claimed]

    def _claim_and_insert(
        self, run: Run, groups: list[Group], now: dt.datetime
    ) -> list[Draft]:
        """Claim and insert in one statement; the drafts stored."""
        statement, parameters = self._statements.claim_and_insert(
            groups, self._engine.dialect
        )
        inserted = t.cast(
            list[tuple[int, int, int, str, str | None]],
            run(statement, {"now": now, **parameters}),
        )
        # A chat's client ids are unique (a batch holding one twice fails).
        by_client_id = {
            (chat, client_id): (message_id, seq, author_name)
            for message_id, chat, seq, client_id, author_name in inserted
        }
        stored = []
        for draft in (draft for group in groups for draft in group.drafts):
            found = by_client_id.get((draft.conversation_id, draft.client_id))
            if found is not None:
                message_id, seq, author_name = found
                fields = _fields(draft, seq, author_name, now)
                draft.stored = StoredMessage(id=message_id, **fields)
                stored.append(draft)
        return stored

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
            self._store(claim_rounds([draft]), self._in_session)
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
