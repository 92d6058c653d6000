"""Conversations and their messages: start, post, accept, end, and read back.

Every stored message gets the next sequence number of its conversation, and
a message's client-made id is unique within the conversation, so a resend
finds the stored message instead of writing a second one.
"""

from __future__ import annotations

import collections
import collections.abc as c
import dataclasses
import functools
import statistics
import typing as t
from urllib.parse import urljoin
from urllib.parse import urlsplit

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from sqlalchemy.exc import IntegrityError

from .. import identity
from .. import signals
from ..errors import NotAllowed
from ..errors import NotFound
from ..errors import Refused
from ..hub import conversation_channel
from ..hub import operator_channel
from ..hub import STAFF_CHANNEL
from ..hub import staff_conversation_channel
from ..i18n import N_
from ..models import utcnow
from ..protocol import conversation_frame
from ..protocol import hidden_frame
from ..protocol import message_frame
from ..protocol import typing_frame
from . import access
from . import load
from . import Service
from .access import OPEN
from .presence import PresenceService
from .settings import SettingsService


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
    created_at: t.Any
    kind: str = "text"
    data: dict[str, t.Any] | None = None
    staff_only: bool = False
    via: str = "chat"


class PostStatements:
    """The statements that store a message, built once per set of models.

    Storing a message is the hot path: prepared Core statements with bound
    parameters skip the ORM's bulk machinery and the statement building and
    cache-key work that rebuilding them for every message would cost.
    """

    def __init__(self, models: t.Any) -> None:
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


#: How many messages one read hands back at most.
PAGE = 500


@dataclasses.dataclass
class Room:
    """Who could take another chat, for auto-assignment."""

    #: The operators online.
    operators: list[t.Any]
    #: Waiting chats already asked of each, by operator id.
    routed: collections.Counter[int]

    def load(self, operator: t.Any) -> int:
        return t.cast(int, operator.active_chats + self.routed[operator.id])

    def left(self, operator: t.Any) -> bool:
        return self.load(operator) < t.cast(int, operator.max_chats)


class ConversationService(Service):
    def __init__(
        self, *args: t.Any, presence: PresenceService, settings: SettingsService
    ) -> None:
        super().__init__(*args)
        # Taking and ending chats changes operators' load, so who is busy.
        self.presence = presence
        self.settings = settings

    # Reading.

    def get(self, conversation_id: int) -> t.Any:
        conversation = self._load(conversation_id)
        if conversation is None:
            raise NotFound("no-conversation", N_("This chat does not exist."))
        return conversation

    def _load(self, conversation_id: int) -> t.Any | None:
        # Tags only when asked for: posting a message reads none, and loading
        # them with every conversation would cost a query per message.
        model = self.models.conversation
        return self.session.get(
            model, conversation_id, options=[sa_orm.lazyload(model.tags)]
        )

    def for_visitor(self, visitor_id: int, conversation_id: int) -> t.Any:
        """The visitor's own conversation; anyone else's does not exist for them."""
        conversation = self._load(conversation_id)
        if (
            conversation is None
            or conversation.visitor_id != visitor_id
            or conversation.deleted_at is not None
        ):
            raise NotFound("no-conversation", N_("This chat does not exist."))
        return conversation

    def for_operator(self, operator: t.Any, conversation_id: int) -> t.Any:
        """A conversation the operator may see; a deleted one exists for nobody."""
        conversation = self.get(conversation_id)
        if conversation.deleted_at is not None:
            raise NotFound("no-conversation", N_("This chat does not exist."))
        if not access.can_view(operator, conversation):
            raise NotAllowed("not-allowed", N_("You may not open this chat."))
        return conversation

    def open_for_visitor(self, visitor_id: int) -> t.Any | None:
        """The visitor's chat that is still waiting or going on, if any."""
        model = self.models.conversation
        query = (
            sa.select(model)
            .where(model.visitor_id == visitor_id, model.status.in_(OPEN))
            .order_by(model.id.desc())
            .limit(1)
        )
        return self.session.execute(query).scalar_one_or_none()

    def messages_after(
        self,
        conversation_id: int,
        after: int,
        limit: int | None = PAGE,
        *,
        staff: bool = False,
    ) -> list[t.Any]:
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

    def backlog(self, conversation_id: int, after: int) -> c.Iterator[t.Any]:
        """Every message numbered after ``after``, in order, a page at a time.

        Staff-only messages too: a visitor's socket sends those as their
        number alone (:func:`~flask_livehelp.protocol.numbered_frame`).
        """
        while page := self.messages_after(conversation_id, after, staff=True):
            yield from page
            after = page[-1].seq

    def message_at(self, conversation_id: int, seq: int, *, staff: bool) -> t.Any:
        """One message of a conversation by its number."""
        found = self.messages_after(conversation_id, seq - 1, limit=1, staff=staff)
        if not found or found[0].seq != seq:
            raise NotFound("no-message", N_("No such message."))
        return found[0]

    def queue_for(self, operator: t.Any) -> list[t.Any]:
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

    def active_for(self, operator: t.Any) -> list[t.Any]:
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
        self, operator: t.Any, *, page: int = 1, per_page: int = 50
    ) -> tuple[list[t.Any], int]:
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

    def staff_frame(
        self, conversation: t.Any, kind: str = "conversation"
    ) -> dict[str, t.Any]:
        """The conversation as staff see it, as an event of type ``kind``."""
        return self.staff_frames([conversation], kind)[0]

    def staff_frames(
        self, conversations: list[t.Any], kind: str = "conversation"
    ) -> list[dict[str, t.Any]]:
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

    def visitor_frame(self, conversation: t.Any) -> dict[str, t.Any]:
        """The conversation as its visitor sees it, with their place in the queue."""
        frame = conversation_frame(conversation, staff=False)
        if conversation.status == "queued":
            frame.update(self.queue_place(conversation))
        return frame

    def queue_place(self, conversation: t.Any) -> dict[str, t.Any]:
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

    # Writing.

    def start(
        self,
        visitor_id: int,
        *,
        client_id: str,
        body: str,
        name: str | None = None,
        email: str | None = None,
        consent: bool = False,
        page: str | None = None,
        locale: str | None = None,
        department_id: int | None = None,
        requested_operator_id: int | None = None,
        context: dict[str, t.Any] | None = None,
    ) -> tuple[t.Any, t.Any]:
        """Open a chat with the visitor's first message; a resend finds it again.

        :param requested_operator_id: Route the chat to this operator (an
            invitation they sent) while they have room for it; else, with
            ``AUTO_ASSIGN`` on, to the least busy online operator of the
            department.
        :param context: What the host's context hook says about the visitor.
        """
        existing = self.by_visitor_client_id(visitor_id, client_id)
        if existing is not None:
            # Sent again: the staff may never have heard of it (see _resent).
            started = self.get(existing.conversation_id)
            if started.status == "queued":
                self.hub.publish(STAFF_CHANNEL, self.staff_frame(started, "queued"))
            return started, existing
        if self.open_for_visitor(visitor_id) is not None:
            raise Refused("already-open", N_("You already have a chat going on."))
        if requested_operator_id is not None and not load.has_room(
            self.session, self.models, requested_operator_id
        ):
            # The inviter filled up meanwhile: the customer is not kept
            # waiting for them, the chat goes its usual way.
            requested_operator_id = None
        conversation = self.models.conversation(
            visitor_id=visitor_id,
            visitor_name=name or None,
            visitor_email=email or None,
            email_consent=bool(email) and consent,
            page_url=page,
            locale=locale,
            department_id=department_id,
            requested_operator_id=requested_operator_id
            or self._least_busy(department_id),
            context=context,
        )
        self.session.add(conversation)
        try:
            self.session.flush()
        except IntegrityError:
            # Another tab of the visitor started one a moment ago.
            self.session.rollback()
            raise Refused(
                "already-open", N_("You already have a chat going on.")
            ) from None
        visitor = conversation.visitor
        # What they tell us here is also who they are in the visitor list.
        visitor.name = name or visitor.name
        visitor.email = email or visitor.email
        message = self._append(conversation, "visitor", body, client_id=client_id)
        self.session.commit()
        self.hub.publish(STAFF_CHANNEL, self.staff_frame(conversation, "queued"))
        if conversation.requested_operator_id is not None:
            self.hub.publish(
                operator_channel(conversation.requested_operator_id),
                self.staff_frame(conversation, "routed"),
            )
        signals.send(signals.conversation_started, conversation=conversation)
        signals.send(signals.message_posted, conversation=conversation, message=message)
        return conversation, message

    def _least_busy(
        self, department_id: int | None, room: Room | None = None
    ) -> int | None:
        """The online operator with the most room, when auto-assignment is on."""
        if not self.settings.get("AUTO_ASSIGN"):
            return None
        room = room or self._room()
        free = [
            o
            for o in room.operators
            if access.serves(o, department_id) and room.left(o)
        ]
        if not free:
            return None
        chosen = min(free, key=lambda o: (room.load(o) / o.max_chats, room.load(o)))
        return t.cast(int, chosen.id)

    def _room(self) -> Room:
        """Who is online, and the chats waiting for each of them."""
        model = self.models.conversation
        routed = self.session.execute(
            sa.select(model.requested_operator_id, sa.func.count())
            .where(
                model.status == "queued",
                model.requested_operator_id.is_not(None),
                model.deleted_at.is_(None),
            )
            .group_by(model.requested_operator_id)
        )
        return Room(
            [o for o in self.presence.operators() if o.status == "online"],
            collections.Counter({id_: count for id_, count in routed}),
        )

    def route_waiting(self) -> list[int]:
        """Give the chats that waited for room to whoever has some now.

        With ``AUTO_ASSIGN`` on, a chat that came while every operator was
        full waits for nobody in particular. Called whenever room may have
        come free (a chat ended or went back to the queue, a transfer moved
        one, an operator came online); oldest chat first. Returns those
        routed.
        """
        if not self.settings.get("AUTO_ASSIGN"):
            return []
        model = self.models.conversation
        waiting = (
            self.session.execute(
                sa.select(model)
                .where(
                    model.status == "queued",
                    model.requested_operator_id.is_(None),
                    model.deleted_at.is_(None),
                )
                .order_by(model.created_at)
            )
            .scalars()
            .all()
        )
        if not waiting:
            return []
        room = self._room()
        routed = []
        for conversation in waiting:
            operator_id = self._least_busy(conversation.department_id, room)
            if operator_id is not None and self._route(conversation, operator_id):
                room.routed[operator_id] += 1
                routed.append(conversation.id)
        return routed

    def _route(self, conversation: t.Any, operator_id: int) -> bool:
        """Ask ``operator_id`` to take a waiting chat, unless another process did."""
        model = self.models.conversation
        done = self.session.execute(
            sa.update(model)
            .where(
                model.id == conversation.id,
                model.status == "queued",
                model.requested_operator_id.is_(None),
            )
            .values(requested_operator_id=operator_id)
        )
        if done.rowcount != 1:
            self.session.rollback()
            return False
        self.session.commit()
        self.session.refresh(conversation)
        self.hub.publish(
            operator_channel(operator_id), self.staff_frame(conversation, "routed")
        )
        return True

    # Posting is the hot path of the chat: every message goes through it. It
    # is written in a few plain statements (look for a resend, take the next
    # number while checking who may write, insert, commit), and only when the
    # chat may not be written to does it load everything to say why.

    def post_by_visitor(
        self, visitor_id: int, conversation_id: int, *, client_id: str, body: str
    ) -> tuple[t.Any, bool]:
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
        self, operator: t.Any, conversation_id: int, *, client_id: str, body: str
    ) -> tuple[t.Any, bool]:
        """Store the answer of the operator who has the chat, once.

        :param operator: Anything with the operator's ``id`` and ``name``.
        """
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
        operator: t.Any | None = None,
    ) -> tuple[t.Any, bool]:
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

    def _resent(self, message: t.Any) -> t.Any:
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
        operator = self.session.get(self.models.operator, operator_id)
        conversation = self.for_operator(operator, conversation_id)
        if not access.can_write(operator, conversation) and conversation.status in OPEN:
            raise NotAllowed("not-yours", N_("Accept the chat before you answer it."))

    def publish(self, message: t.Any) -> None:
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

    def accept(
        self,
        operator: t.Any,
        conversation_id: int,
        *,
        ready: c.Callable[[], None] | None = None,
    ) -> t.Any:
        """Make ``operator`` the owner; of two at once, exactly one wins.

        :param ready: Called once the operator may take the chat, before it is
            theirs: their socket follows it then, so that nothing the customer
            says after hearing of the accept passes it by.
        :raises Refused: ``taken`` by someone else, or ``full``: the operator
            has ``max_chats`` chats already.
        """
        conversation = self.get(conversation_id)
        if not access.can_accept(operator, conversation):
            raise NotAllowed("not-allowed", N_("You may not take this chat."))
        if ready is not None:
            ready()
        model = self.models.conversation
        now = utcnow()
        room, limit = load.room_clause(self.session, self.models, operator.id)
        taken = self.session.execute(
            sa.update(model)
            .where(model.id == conversation_id, model.status == "queued", room)
            .values(status="active", operator_id=operator.id, accepted_at=now)
        )
        if taken.rowcount != 1:
            self.session.rollback()
            if self.get(conversation_id).status == "queued":
                raise load.full(limit)
            raise Refused("taken", N_("Another operator has already taken this chat."))
        self.session.refresh(conversation)
        event = self.add_event(conversation, "accepted", operator=operator)
        self.session.commit()
        # The operator's other tabs follow the chat on this, before the
        # customer hears of it and answers.
        self.hub.publish(
            operator_channel(operator.id),
            self.staff_frame(conversation, "assigned"),
        )
        self.announce_change(conversation, "accepted", event)
        self.presence.announce(operator.id)
        self.announce_queue()
        signals.send(
            signals.conversation_accepted, conversation=conversation, operator=operator
        )
        return conversation

    def end(
        self, conversation_id: int, *, by: str, operator: t.Any | None = None
    ) -> t.Any:
        """End a chat; one no operator took counts as missed.

        :param by: ``visitor``, ``operator``, ``timeout`` (nobody accepted it
            in time) or ``inactive`` (closed after a long silence).
        """
        return self.finish(conversation_id, by=by, operator=operator)[0]

    def finish(
        self,
        conversation_id: int,
        *,
        by: str,
        operator: t.Any | None = None,
        only: str | None = None,
    ) -> tuple[t.Any, bool]:
        """End a chat, and say whether this call ended it (not another process).

        :param only: End it only while it has this status (``queued``).
        """
        conversation = self.get(conversation_id)
        if operator is not None and not access.can_end(operator, conversation):
            raise NotAllowed("not-allowed", N_("You may not end this chat."))
        if self._needs_tag(conversation, by):
            raise Refused("tag-required", N_("Add a tag before you end the chat."))
        current = conversation.status
        if current not in OPEN or (only is not None and current != only):
            return conversation, False
        model = self.models.conversation
        done = self.session.execute(
            sa.update(model)
            .where(model.id == conversation_id, model.status == current)
            .values(
                status="ended" if current == "active" else "missed",
                ended_at=utcnow(),
                ended_by=by,
            )
        )
        if done.rowcount != 1:
            self.session.rollback()
            return self.get(conversation_id), False
        self.session.refresh(conversation)
        event = self.add_event(conversation, "ended", operator=operator, by=by)
        self.session.commit()
        self.announce_change(conversation, "ended", event)
        if conversation.operator_id is not None:
            self.presence.announce(conversation.operator_id)
        if current == "queued":
            self.announce_queue()
        signals.send(signals.conversation_ended, conversation=conversation, reason=by)
        if current == "active":
            self.route_waiting()
        return conversation, True

    def release_chats(
        self, operator_id: int, *, keep: c.Callable[[t.Any], bool] | None = None
    ) -> list[int]:
        """Put an operator's active chats back in the queue, the customers told.

        For an operator who can no longer answer them (deactivated, gone, or
        moved to other departments): the customers wait for the next
        operator instead.

        :param keep: Leave the chats it says yes to with the operator.
        """
        model = self.models.conversation
        active = self.session.execute(
            sa.select(model).where(
                model.status == "active", model.operator_id == operator_id
            )
        ).scalars()
        leaving = [c.id for c in active if keep is None or not keep(c)]
        released = []
        for conversation_id in leaving:
            back = self.session.execute(
                sa.update(model)
                .where(model.id == conversation_id, model.status == "active")
                .values(status="queued", operator_id=None, requested_operator_id=None)
            )
            if back.rowcount != 1:
                self.session.rollback()
                continue
            conversation = self.get(conversation_id)
            self.session.refresh(conversation)
            event = self.add_event(conversation, "returned")
            self.session.commit()
            self.announce_change(conversation, "queued", event)
            self.hub.publish(
                operator_channel(operator_id),
                self.staff_frame(conversation, "unassigned"),
            )
            released.append(conversation_id)
        if released:
            self.presence.announce(operator_id)
            self.announce_queue()
            self.route_waiting()
        return released

    def _needs_tag(self, conversation: t.Any, by: str) -> bool:
        return (
            by == "operator"
            and conversation.status == "active"
            and not conversation.tags
            and bool(self.settings.get("REQUIRE_TAG"))
        )

    def set_tags(
        self, operator: t.Any, conversation_id: int, names: list[str]
    ) -> t.Any:
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
        operator: t.Any,
        conversation_id: int,
        *,
        add: c.Iterable[str] = (),
        remove: c.Iterable[str] = (),
    ) -> t.Any:
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

    def _taggable(self, operator: t.Any, conversation_id: int) -> t.Any:
        conversation = self.for_operator(operator, conversation_id)
        if not (
            access.can_write(operator, conversation)
            or access.can_end(operator, conversation)
        ):
            raise NotAllowed("not-yours", N_("Accept the chat before you tag it."))
        return conversation

    def _tags_named(self, names: set[str]) -> dict[str, t.Any]:
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

    def _tagged(self, conversation: t.Any) -> t.Any:
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

    def push_page(
        self,
        operator: t.Any,
        conversation_id: int,
        url: str,
        *,
        shop_origin: str | None = None,
    ) -> t.Any:
        """Send the visitor to a page of the shop; written in the transcript.

        :param shop_origin: The shop app's own address, always allowed.
        """
        conversation = self.for_operator(operator, conversation_id)
        if not access.can_write(operator, conversation):
            raise NotAllowed("not-yours", N_("Accept the chat before you answer it."))
        url = _on_the_page(conversation, url)
        if not self._pushable(conversation, url, shop_origin):
            raise Refused(
                "bad-url",
                N_("Only http and https pages of the shop can be pushed."),
            )
        event = self.add_event(conversation, "pushed", operator=operator, url=url)
        self.session.commit()
        self.publish(event)
        return event

    def _pushable(self, conversation: t.Any, url: str, shop_origin: str | None) -> bool:
        allowed = {_origin(o) for o in self.setting("PUSH_ORIGINS")}
        allowed |= {_origin(o) for o in self.setting("ALLOWED_ORIGINS")}
        for page in (
            shop_origin,
            conversation.page_url,
            conversation.visitor.current_page,
        ):
            if page:
                allowed.add(_origin(page))
        target = _origin(url)
        return target is not None and target in allowed

    def typing(self, conversation_id: int, author: str, state: bool) -> None:
        self.hub.publish(
            conversation_channel(conversation_id),
            typing_frame(conversation_id, author, state),
        )

    # Internals.

    def announce_change(self, conversation: t.Any, change: str, event: t.Any) -> None:
        """Publish a changed conversation and the event message it wrote."""
        self.publish(event)
        self.hub.publish(
            conversation_channel(conversation.id), self.visitor_frame(conversation)
        )
        self.hub.publish(STAFF_CHANNEL, self.staff_frame(conversation, change))

    def add_event(
        self, conversation: t.Any, name: str, *, staff_only: bool = False, **data: t.Any
    ) -> t.Any:
        """Write an event (``accepted``, ``pushed``...) into the transcript.

        The caller commits, then publishes it with :meth:`publish`.
        """
        operator = data.pop("operator", None)
        if operator is not None:
            data["operator"] = operator.name
        return self._append(
            conversation, "system", name, kind="event", data=data, staff_only=staff_only
        )

    def _append(
        self,
        conversation: t.Any,
        author: str,
        body: str,
        *,
        kind: str = "text",
        client_id: str | None = None,
        operator: t.Any | None = None,
        data: dict[str, t.Any] | None = None,
        staff_only: bool = False,
    ) -> t.Any:
        now = utcnow()
        message = self.models.message(
            conversation_id=conversation.id,
            seq=self._next_seq(conversation),
            client_id=client_id,
            author=author,
            author_name=self._author_name(conversation, author, operator),
            operator_id=operator.id if operator is not None else None,
            kind=kind,
            body=body,
            data=data or None,
            staff_only=staff_only,
            created_at=now,
        )
        self.session.add(message)
        if kind == "text":
            self._note_activity(conversation, author, now)
        return message

    @staticmethod
    def _author_name(
        conversation: t.Any, author: str, operator: t.Any | None
    ) -> str | None:
        if operator is not None:
            return t.cast(str, operator.name)
        if author == "visitor":
            return t.cast("str | None", conversation.visitor_name)
        return None

    @staticmethod
    def _note_activity(conversation: t.Any, author: str, now: t.Any) -> None:
        if author == "visitor":
            conversation.last_visitor_message_at = now
        elif author == "operator":
            conversation.last_operator_message_at = now
            if conversation.first_response_at is None:
                conversation.first_response_at = now

    def _next_seq(self, conversation: t.Any) -> int:
        # An UPDATE takes the row's write lock until commit, so concurrent
        # writers to one conversation get consecutive numbers on SQLite and
        # PostgreSQL alike.
        model = self.models.conversation
        seq = self.session.execute(
            sa.update(model)
            .where(model.id == conversation.id)
            .values(last_seq=model.last_seq + 1)
            .returning(model.last_seq)
            .execution_options(synchronize_session=False)
        ).scalar_one()
        self.session.expire(conversation, ["last_seq"])
        return t.cast(int, seq)

    def by_client_id(self, conversation_id: int, client_id: str) -> t.Any | None:
        """The message a client sent with ``client_id`` in a conversation, if any."""
        model = self.models.message
        query = sa.select(model).where(
            model.conversation_id == conversation_id, model.client_id == client_id
        )
        return self.session.execute(query).scalar_one_or_none()

    def by_visitor_client_id(self, visitor_id: int, client_id: str) -> t.Any | None:
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

    # Mail: offline messages, and what comes and goes by mail (services/offline.py
    # and services/inbound.py). These do not commit: the caller commits the
    # message together with the mails it causes.

    def add_offline(
        self,
        visitor_id: int,
        *,
        client_id: str,
        body: str,
        name: str | None,
        email: str | None,
        consent: bool,
        page: str | None,
        locale: str | None,
        department_id: int | None,
        reply_token: str,
    ) -> tuple[t.Any, t.Any]:
        """A conversation no operator took, with the visitor's text as message 1."""
        conversation = self.models.conversation(
            visitor_id=visitor_id,
            status="missed",
            origin="offline",
            visitor_name=name,
            visitor_email=email,
            email_consent=bool(email) and consent,
            page_url=page,
            locale=locale,
            department_id=department_id,
            reply_token=reply_token,
            last_seq=0,
        )
        self.session.add(conversation)
        try:
            self.session.flush()
        except IntegrityError:
            # Another tab of the visitor started one a moment ago.
            self.session.rollback()
            raise Refused(
                "already-open", N_("You already have a chat going on.")
            ) from None
        visitor = conversation.visitor
        # What they tell us here is also who they are in the visitor list.
        visitor.name = name or visitor.name
        visitor.email = email or visitor.email
        message = self._append(conversation, "visitor", body, client_id=client_id)
        return conversation, message

    def append_by_mail(
        self,
        conversation: t.Any,
        author: str,
        body: str,
        *,
        client_id: str | None = None,
        operator: t.Any | None = None,
        author_name: str | None = None,
        data: dict[str, t.Any] | None = None,
    ) -> t.Any:
        """Add a message that came or went by mail, whatever the chat's status."""
        message = self._append(
            conversation,
            author,
            body,
            client_id=client_id,
            operator=operator,
            data=data,
        )
        message.via = "email"
        if author_name:
            message.author_name = author_name[:120]
        return message

    def announce_by_mail(
        self, conversation: t.Any, message: t.Any, change: str
    ) -> None:
        """After the commit: show a message that came or went by mail everywhere."""
        frame = message_frame(message)
        frame["via"] = message.via
        self.hub.publish(conversation_channel(conversation.id), frame)
        self.hub.publish(STAFF_CHANNEL, self.staff_frame(conversation, change))
        signals.send(signals.message_posted, conversation=conversation, message=message)


def _tag_names(names: c.Iterable[str]) -> set[str]:
    """Tag names as stored: trimmed, at most 64 characters, none empty."""
    return {name.strip()[:64] for name in names if name.strip()}


def _on_the_page(conversation: t.Any, url: str) -> str:
    """A shop path (``/cart``) as an address on the visitor's own page's site.

    Resolved before the origin check, so a path like ``//other.example/``
    still lands on the other site, and is refused there.
    """
    url = url.strip()
    page: str | None = conversation.visitor.current_page or conversation.page_url
    if page and not urlsplit(url).scheme:
        return urljoin(page, url)
    return url


def _origin(url: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL, else ``None``."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc.lower()}"
