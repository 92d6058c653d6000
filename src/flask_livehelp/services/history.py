"""Chat history: finding chats again, reading, exporting, deleting and erasing them.

Every query here starts from what the viewer may see (:mod:`.access`) and
leaves out deleted chats, so a list, a search, an export and a transcript
never show more than the single checks would allow.

Full-text search looks for every word of the query in the chat's messages:
PostgreSQL matches word beginnings through a GIN index on
``to_tsvector('simple', body)``; SQLite matches any part of a word with
``LIKE`` (a scan, fast enough at 100,000 chats; see ``bench/history.py``).
"""

from __future__ import annotations

import collections.abc as c
import csv
import dataclasses
import datetime as dt
import io
import itertools
import re
import typing as t

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm

from ..errors import NotAllowed
from ..errors import NotFound
from ..errors import Refused
from ..formatting import format_moment
from ..formatting import time_zone
from ..i18n import _lh
from ..i18n import N_
from ..models import CONVERSATION_STATUSES
from ..models import utcnow
from . import access
from . import audit
from . import Service
from .settings import SettingsService

VIEWS = ("active", "completed", "all")
SORTS = (
    "customer",
    "email",
    "department",
    "operator",
    "started",
    "duration",
    "idle",
    "tags",
    "status",
)
#: Words of a search that count, and how long each may be.
MAX_WORDS = 5
MAX_WORD = 100
SEARCH_WORD = re.compile(r"\w+", re.UNICODE)
#: Cells a spreadsheet would run as a formula, unless defused.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: How many chats one purge deletes per transaction.
PURGE_CHUNK = 500


@dataclasses.dataclass
class HistoryFilter:
    """What a history list shows: a view, filters, a search and a sort."""

    #: ``active`` (my active chats), ``completed`` (my finished chats) or
    #: ``all`` (every chat the viewer oversees; managers and admins).
    view: str = "completed"
    status: str | None = None
    operator_id: int | None = None
    department_id: int | None = None
    tag: str | None = None
    #: Days in the viewer's time zone, both included.
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    search: str = ""
    sort: str = "started"
    descending: bool = True

    def words(self) -> list[str]:
        found = SEARCH_WORD.findall(self.search.lower())
        return [w[:MAX_WORD] for w in dict.fromkeys(found)][:MAX_WORDS]


@dataclasses.dataclass
class HistoryRow:
    conversation: t.Any
    #: From the start to the end, or to now while it goes on.
    duration: dt.timedelta
    #: Since the last thing said, for active chats only.
    idle: dt.timedelta | None


@dataclasses.dataclass
class HistoryPage:
    rows: list[HistoryRow]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


class HistoryService(Service):
    def __init__(self, *args: t.Any, settings: SettingsService) -> None:
        super().__init__(*args)
        self.settings = settings

    # Lists.

    def check(self, viewer: t.Any, query: HistoryFilter) -> None:
        """Refuse a filter the viewer may not use, rather than show less.

        :raises NotAllowed: ``all`` for an operator, or a department or
            colleague outside the viewer's view.
        :raises Refused: An unknown view, status or sort.
        """
        if query.view not in VIEWS:
            raise Refused("bad-view", N_("Unknown list."))
        if query.sort not in SORTS:
            raise Refused("bad-sort", N_("Unknown sort order."))
        if query.status is not None and query.status not in CONVERSATION_STATUSES:
            raise Refused("bad-status", N_("Unknown status."))
        if query.view == "all" and not access.has_role(viewer, "manager"):
            raise NotAllowed(
                "not-allowed", N_("Only managers and admins see all chats.")
            )
        if query.department_id is not None and not access.oversees(
            viewer, query.department_id
        ):
            raise NotAllowed(
                "not-allowed", N_("You may not see the chats of this department.")
            )
        if (
            query.operator_id is not None
            and query.operator_id != viewer.id
            and not access.has_role(viewer, "manager")
        ):
            raise NotAllowed(
                "not-allowed", N_("You may not see the chats of other operators.")
            )
        if query.date_from and query.date_to and query.date_from > query.date_to:
            raise Refused("bad-dates", N_("The first day is after the last day."))

    def search(
        self,
        viewer: t.Any,
        query: HistoryFilter,
        *,
        page: int = 1,
        per_page: int = 50,
        timezone: str | None = None,
        now: dt.datetime | None = None,
    ) -> HistoryPage:
        """One page of the chats ``query`` finds for ``viewer``.

        :param timezone: The viewer's, for the days of the date range.
        """
        self.check(viewer, query)
        now = now or utcnow()
        page = max(page, 1)
        select, counted = self._select(viewer, query, timezone, now)
        select = select.offset((page - 1) * per_page).limit(per_page)
        results = self.session.execute(select).all()
        if counted and (results or page == 1):
            total = results[0][1] if results else 0
        else:
            total = self._count(viewer, query, timezone)
        rows = [self._row(result[0], now) for result in results]
        return HistoryPage(rows=rows, total=total, page=page, per_page=per_page)

    def each(
        self,
        viewer: t.Any,
        query: HistoryFilter,
        *,
        timezone: str | None = None,
        now: dt.datetime | None = None,
        chunk: int = 1000,
    ) -> c.Iterator[HistoryRow]:
        """Every chat ``query`` finds, in its order, read a chunk at a time."""
        self.check(viewer, query)
        select, _ = self._select(viewer, query, timezone, now or utcnow())
        return self._chunks(select, now or utcnow(), chunk)

    def _chunks(
        self, select: sa.Select[t.Any], now: dt.datetime, chunk: int
    ) -> c.Iterator[HistoryRow]:
        offset = 0
        while True:
            results = self.session.execute(select.offset(offset).limit(chunk)).all()
            for result in results:
                yield self._row(result[0], now)
                # Rows already written need not stay in memory.
                self.session.expunge(result[0])
            if len(results) < chunk:
                return
            offset += chunk

    def _count(self, viewer: t.Any, query: HistoryFilter, timezone: str | None) -> int:
        model = self.models.conversation
        where = self._where(viewer, query, timezone)
        select = sa.select(sa.func.count()).select_from(model).where(*where)
        if query.words():
            hits = self._hits(query.words())
            select = select.join(hits, hits.c.conversation_id == model.id)
        return int(self.session.execute(select).scalar_one())

    def _select(
        self,
        viewer: t.Any,
        query: HistoryFilter,
        timezone: str | None,
        now: dt.datetime,
    ) -> tuple[sa.Select[t.Any], bool]:
        """The ordered query, and whether it carries the total in column 2.

        A search counts its hits in the same statement (a window), so the
        messages are scanned once, not twice.
        """
        model = self.models.conversation
        counted = bool(query.words())
        total = sa.func.count().over() if counted else sa.literal(None)
        select = (
            sa.select(model, total)
            .where(*self._where(viewer, query, timezone))
            .options(
                sa_orm.selectinload(model.operator),
                sa_orm.selectinload(model.department),
            )
        )
        if counted:
            hits = self._hits(query.words())
            select = select.join(hits, hits.c.conversation_id == model.id)
        select, key = self._sort_key(select, query.sort, now)
        tie = self._last_activity()
        if query.descending:
            order = [key.desc().nulls_last(), tie.asc(), model.id.desc()]
        else:
            # Ties go from least to most idle, as the sorted column goes.
            order = [key.asc().nulls_last(), tie.desc(), model.id.asc()]
        return select.order_by(*order), counted

    def _where(
        self, viewer: t.Any, query: HistoryFilter, timezone: str | None
    ) -> list[sa.ColumnElement[bool]]:
        model = self.models.conversation
        where = [self._scope(viewer, query.view)]
        if query.status is not None:
            where.append(model.status == query.status)
        if query.operator_id is not None:
            where.append(model.operator_id == query.operator_id)
        if query.department_id is not None:
            where.append(model.department_id == query.department_id)
        if query.tag:
            where.append(self._tagged(query.tag))
        zone = time_zone(timezone)
        if query.date_from is not None:
            where.append(model.created_at >= start_of_day(query.date_from, zone))
        if query.date_to is not None:
            next_day = query.date_to + dt.timedelta(days=1)
            where.append(model.created_at < start_of_day(next_day, zone))
        return where

    def _scope(self, viewer: t.Any, view: str) -> sa.ColumnElement[bool]:
        model = self.models.conversation
        alive = model.deleted_at.is_(None)
        if view == "active":
            return sa.and_(
                alive, model.status == "active", model.operator_id == viewer.id
            )
        if view == "completed":
            return sa.and_(
                alive,
                model.status.in_(("ended", "missed")),
                self._took_part(viewer),
            )
        visible = access.visible_clause(viewer, model)
        if viewer.role == "admin":
            return visible
        return sa.or_(visible, sa.and_(alive, self._took_part(viewer)))

    def _took_part(self, viewer: t.Any) -> sa.ColumnElement[bool]:
        """Chats the viewer has, or handed to a colleague."""
        model, transfer = self.models.conversation, self.models.transfer
        handed_over = sa.select(transfer.conversation_id).where(
            transfer.from_operator_id == viewer.id, transfer.status == "accepted"
        )
        return sa.or_(model.operator_id == viewer.id, model.id.in_(handed_over))

    def _tagged(self, name: str) -> sa.ColumnElement[bool]:
        model, tag = self.models.conversation, self.models.tag
        links = self.models.conversation_tags
        return sa.exists(
            sa.select(1)
            .select_from(links.join(tag, tag.id == links.c.tag_id))
            .where(links.c.conversation_id == model.id, tag.name == name)
        )

    def _hits(self, words: list[str]) -> t.Any:
        """The ids of chats whose messages hold every word, as a CTE."""
        message = self.models.message
        if self._dialect() == "postgresql":
            # Each word through the index, then the chats that have them all.
            selects = [self._holding(word) for word in words]
            combined: t.Any = (
                selects[0].distinct() if len(selects) == 1 else sa.intersect(*selects)
            )
            # Found first, then joined: otherwise the planner may walk every
            # chat by date and test each one against the index.
            return combined.cte("livehelp_hits").prefix_with("MATERIALIZED")
        # Without an index every word costs a scan; so the longest (likely the
        # rarest) word is scanned for, and the others are only looked for in
        # the messages of the chats it found.
        first, *others = sorted(words, key=len, reverse=True)
        hits: t.Any = self._holding(first).distinct()
        for word in others:
            hits = (
                self._holding(word).where(message.conversation_id.in_(hits)).distinct()
            )
        return hits.cte("livehelp_hits")

    def _holding(self, word: str) -> sa.Select[t.Any]:
        message = self.models.message
        return sa.select(message.conversation_id).where(
            message.kind == "text", self._matches(message.body, word)
        )

    def _matches(self, column: t.Any, word: str) -> sa.ColumnElement[bool]:
        if self._dialect() == "postgresql":
            # Only word characters reach to_tsquery, so its syntax cannot be
            # injected; ":*" makes it match word beginnings.
            vector = sa.func.to_tsvector(sa.literal_column("'simple'"), column)
            wanted = sa.func.to_tsquery(sa.literal_column("'simple'"), word + ":*")
            return vector.bool_op("@@")(wanted)
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        matched: sa.ColumnElement[bool] = column.like(f"%{escaped}%", escape="\\")
        return matched

    def _sort_key(
        self, select: sa.Select[t.Any], sort: str, now: dt.datetime
    ) -> tuple[sa.Select[t.Any], t.Any]:
        model = self.models.conversation
        if sort == "customer":
            return select, sa.func.lower(model.visitor_name)
        if sort == "email":
            return select, sa.func.lower(model.visitor_email)
        if sort == "operator":
            operator = sa_orm.aliased(self.models.operator)
            select = select.outerjoin(operator, operator.id == model.operator_id)
            return select, sa.func.lower(operator.name)
        if sort == "department":
            department = sa_orm.aliased(self.models.department)
            select = select.outerjoin(department, department.id == model.department_id)
            return select, sa.func.lower(department.name)
        if sort == "duration":
            end = sa.func.coalesce(model.ended_at, sa.literal(now, model.ended_at.type))
            return select, self._seconds_between(model.created_at, end)
        if sort == "idle":
            # Most idle = longest since the last activity.
            return select, self._idle(now)
        if sort == "tags":
            tag, links = self.models.tag, self.models.conversation_tags
            first = (
                sa.select(sa.func.min(sa.func.lower(tag.name)))
                .select_from(links.join(tag, tag.id == links.c.tag_id))
                .where(links.c.conversation_id == model.id)
                .scalar_subquery()
            )
            return select, first
        if sort == "status":
            return select, model.status
        return select, model.created_at

    def _last_activity(self) -> t.Any:
        """When something last happened in a chat (said, accepted or started)."""
        model = self.models.conversation
        moments = [
            sa.func.coalesce(column, model.created_at)
            for column in (
                model.last_visitor_message_at,
                model.last_operator_message_at,
                model.accepted_at,
            )
        ]
        if self._dialect() == "postgresql":
            return sa.func.greatest(model.created_at, *moments)
        # SQLite's max() with several arguments is the largest of them.
        return sa.func.max(model.created_at, *moments)

    def _idle(self, now: dt.datetime) -> t.Any:
        model = self.models.conversation
        return self._seconds_between(
            self._last_activity(), sa.literal(now, model.created_at.type)
        )

    def _seconds_between(self, earlier: t.Any, later: t.Any) -> t.Any:
        if self._dialect() == "postgresql":
            return sa.extract("epoch", later - earlier)
        return (sa.func.julianday(later) - sa.func.julianday(earlier)) * 86400

    def _dialect(self) -> str:
        bind = self.session.get_bind(mapper=sa.inspect(self.models.conversation))
        return t.cast(str, bind.dialect.name)

    @staticmethod
    def _row(conversation: t.Any, now: dt.datetime) -> HistoryRow:
        end = conversation.ended_at or now
        idle = None
        if conversation.status == "active":
            moments = (
                conversation.created_at,
                conversation.accepted_at,
                conversation.last_visitor_message_at,
                conversation.last_operator_message_at,
            )
            idle = now - max(m for m in moments if m is not None)
        return HistoryRow(conversation, end - conversation.created_at, idle)

    # One chat.

    def get(self, viewer: t.Any, conversation_id: int) -> t.Any:
        """A chat the viewer may read; a deleted one does not exist.

        :raises NotFound: No such chat, or it was deleted.
        :raises NotAllowed: The viewer may not read it.
        """
        conversation = self.session.get(self.models.conversation, conversation_id)
        if conversation is None or conversation.deleted_at is not None:
            raise NotFound("no-conversation", N_("This chat does not exist."))
        if not (
            access.can_view(viewer, conversation)
            or self._handed_over(viewer, conversation.id)
        ):
            raise NotAllowed("not-allowed", N_("You may not open this chat."))
        return conversation

    def _handed_over(self, viewer: t.Any, conversation_id: int) -> bool:
        transfer = self.models.transfer
        found = self.session.execute(
            sa.select(transfer.id)
            .where(
                transfer.conversation_id == conversation_id,
                transfer.from_operator_id == viewer.id,
                transfer.status == "accepted",
            )
            .limit(1)
        ).first()
        return found is not None

    def transcript(
        self, viewer: t.Any, conversation_id: int
    ) -> tuple[t.Any, list[t.Any]]:
        """The chat and every message and event of it, staff notes included."""
        conversation = self.get(viewer, conversation_id)
        message = self.models.message
        messages = self.session.execute(
            sa.select(message)
            .where(message.conversation_id == conversation.id)
            .order_by(message.seq)
        ).scalars()
        return conversation, list(messages)

    def transcript_text(
        self, viewer: t.Any, conversation_id: int, *, timezone: str | None = None
    ) -> str:
        """The transcript as plain text, in the viewer's language and time zone."""
        conversation, messages = self.transcript(viewer, conversation_id)
        moment = _moment_in(timezone)
        lines = [
            _lh("Chat %(id)d", id=conversation.id),
            f"{_lh('Customer')}: {customer_name(conversation)}",
            f"{_lh('E-mail')}: {conversation.visitor_email or _lh('no e-mail')}",
            f"{_lh('Department')}: {_name(conversation.department)}",
            f"{_lh('Operator')}: {_name(conversation.operator)}",
            f"{_lh('Started')}: {moment(conversation.created_at)}",
            f"{_lh('Ended')}: {moment(conversation.ended_at)}",
            f"{_lh('Tags')}: {', '.join(tag.name for tag in conversation.tags)}",
            "",
        ]
        for message in messages:
            when = moment(message.created_at, "short")
            if message.kind == "event":
                lines.append(f"[{when}] * {event_text(message)}")
            else:
                lines.append(f"[{when}] {author_name(message)}: {message.body}")
        return "\n".join(lines) + "\n"

    # Export.

    def export_csv(
        self,
        viewer: t.Any,
        query: HistoryFilter,
        *,
        timezone: str | None = None,
        now: dt.datetime | None = None,
    ) -> c.Iterator[str]:
        """The chats of ``query`` as CSV lines, read as they are written.

        The header is translated now, in the caller's language, even when
        the lines are streamed after the request's view has returned.
        """
        header = _csv_line(
            [
                _lh("Chat"),
                _lh("Customer"),
                _lh("E-mail"),
                _lh("Department"),
                _lh("Operator"),
                _lh("Status"),
                _lh("Started"),
                _lh("Ended"),
                _lh("Duration (seconds)"),
                _lh("First response (seconds)"),
                _lh("Tags"),
            ]
        )
        rows = self.each(viewer, query, timezone=timezone, now=now)
        moment = _moment_in(timezone, iso=True)
        return itertools.chain([header], (_csv_row(row, moment) for row in rows))

    # Changes.

    def delete(self, viewer: t.Any, conversation_ids: c.Iterable[int]) -> int:
        """Delete finished chats: gone from every list; the audit log keeps who.

        All or nothing: one chat that may not be deleted refuses them all.

        :raises NotAllowed: The viewer is no manager or admin, or may not
            delete one of the chats.
        """
        if not access.has_role(viewer, "manager"):
            raise NotAllowed(
                "not-allowed", N_("Only managers and admins delete chats.")
            )
        now = utcnow()
        chats = [self.get(viewer, i) for i in dict.fromkeys(conversation_ids)]
        for conversation in chats:
            if conversation.status in access.OPEN:
                raise Refused(
                    "still-open",
                    N_("Chat %(id)d is still going on. End it before you delete it."),
                    id=conversation.id,
                )
            if not access.can_delete(viewer, conversation):
                raise NotAllowed("not-allowed", N_("You may not delete this chat."))
        for conversation in chats:
            conversation.deleted_at = now
            self.session.add(
                audit.entry(
                    self.models,
                    viewer,
                    "conversation-deleted",
                    f"conversation:{conversation.id}",
                    {
                        "started": conversation.created_at.isoformat(),
                        "operator": _name(conversation.operator) or None,
                        "department": _name(conversation.department) or None,
                    },
                )
            )
        self.session.commit()
        return len(chats)

    def erase_customer(self, viewer: t.Any, conversation_id: int) -> int:
        """Erase the personal data of the customer of a chat, on their request.

        Name, e-mail, IP address, user agent and what the shop told about
        them go, from this chat and every other chat of the same visitor;
        the chats themselves stay for the shop's statistics.

        :returns: How many chats were touched.
        """
        conversation = self.get(viewer, conversation_id)
        if not access.can_erase(viewer, conversation):
            raise NotAllowed(
                "not-allowed", N_("Only managers and admins erase customer data.")
            )
        return self._erase(
            viewer, [conversation.visitor_id], f"conversation:{conversation.id}"
        )

    def erase_email(self, viewer: t.Any, email: str) -> int:
        """Erase every customer who gave ``email`` (admins only).

        :returns: How many chats were touched.
        """
        if not access.has_role(viewer, "admin"):
            raise NotAllowed("not-allowed", N_("Only admins erase customer data."))
        email = email.strip().lower()
        if not email or len(email) > 254:
            raise Refused("bad-email", N_("This is not a valid e-mail address."))
        visitor, model = self.models.visitor, self.models.conversation
        by_visitor = sa.select(visitor.id).where(sa.func.lower(visitor.email) == email)
        by_chat = sa.select(model.visitor_id).where(
            sa.func.lower(model.visitor_email) == email
        )
        ids = set(self.session.execute(by_visitor.union(by_chat)).scalars())
        if not ids:
            return 0
        return self._erase(viewer, sorted(ids), "e-mail")

    def _erase(self, viewer: t.Any, visitor_ids: list[int], reason: str) -> int:
        visitor, model = self.models.visitor, self.models.conversation
        message = self.models.message
        now = utcnow()
        self.session.execute(
            sa.update(visitor)
            .where(visitor.id.in_(visitor_ids))
            .values(
                name=None,
                email=None,
                ip_address=None,
                user_agent=None,
                shop_identity=None,
                referrer=None,
                erased_at=now,
            )
        )
        chats = sa.select(model.id).where(model.visitor_id.in_(visitor_ids))
        touched = self.session.execute(
            sa.update(model)
            .where(model.visitor_id.in_(visitor_ids))
            .values(
                visitor_name=None, visitor_email=None, email_consent=False, context=None
            )
        ).rowcount
        self.session.execute(
            sa.update(message)
            .where(message.conversation_id.in_(chats), message.author == "visitor")
            .values(author_name=None)
        )
        # The outbox's copies carry the address and the name too, and a mail
        # still waiting would go to an address the customer asked us to forget.
        mail = self.models.mail
        self.session.execute(sa.delete(mail).where(mail.conversation_id.in_(chats)))
        self.session.add(
            audit.entry(
                self.models,
                viewer,
                "customer-erased",
                reason,
                {"visitors": visitor_ids, "conversations": touched},
            )
        )
        self.session.commit()
        self.session.expire_all()
        return int(touched or 0)

    def purge(self, days: int | None = None, *, now: dt.datetime | None = None) -> int:
        """Delete finished chats older than ``days`` for good, with their messages.

        :param days: Defaults to the ``HISTORY_RETENTION_DAYS`` setting; if
            that is ``None`` too, nothing is deleted.
        :returns: How many chats were deleted.
        """
        if days is None:
            days = self.settings.get("HISTORY_RETENTION_DAYS")
        if days is None:
            return 0
        if days < 1:
            raise Refused("bad-days", N_("Keep chats for at least one day."))
        cutoff = (now or utcnow()) - dt.timedelta(days=days)
        model = self.models.conversation
        old = (
            sa.select(model.id)
            .where(
                model.status.not_in(access.OPEN),
                sa.func.coalesce(model.ended_at, model.created_at) < cutoff,
            )
            .limit(PURGE_CHUNK)
        )
        deleted = 0
        while ids := list(self.session.execute(old).scalars()):
            self._delete_for_good(ids)
            deleted += len(ids)
        self._forget_visitors(cutoff)
        return deleted

    def _delete_for_good(self, ids: list[int]) -> None:
        # Explicit deletes: SQLite enforces no foreign keys unless told to.
        models = self.models
        links = models.conversation_tags
        self.session.execute(
            sa.update(models.mail)
            .where(models.mail.conversation_id.in_(ids))
            .values(conversation_id=None)
        )
        for table, column in (
            (models.message, models.message.conversation_id),
            (models.transfer, models.transfer.conversation_id),
        ):
            self.session.execute(sa.delete(table).where(column.in_(ids)))
        self.session.execute(sa.delete(links).where(links.c.conversation_id.in_(ids)))
        model = models.conversation
        self.session.execute(sa.delete(model).where(model.id.in_(ids)))
        self.session.commit()

    def _forget_visitors(self, cutoff: dt.datetime) -> None:
        """Visitors not seen since ``cutoff`` who have no chats left."""
        visitor, model = self.models.visitor, self.models.conversation
        self.session.execute(
            sa.delete(visitor).where(
                visitor.last_seen_at < cutoff,
                ~sa.exists(sa.select(1).where(model.visitor_id == visitor.id)),
            )
        )
        self.session.commit()


# Reading a transcript.


def customer_name(conversation: t.Any) -> str:
    return t.cast(str, conversation.visitor_name or _lh("Anonymous visitor"))


def author_name(message: t.Any) -> str:
    if message.author_name:
        return t.cast(str, message.author_name)
    return _lh("Visitor") if message.author == "visitor" else _lh("Operator")


#: What an ended chat says, by who or what ended it.
ENDED = {
    "visitor": N_("The customer ended the chat."),
    "operator": N_("%(operator)s ended the chat."),
    "timeout": N_("The chat timed out."),
    "inactive": N_("The chat was closed after a long silence."),
}


def event_text(message: t.Any) -> str:
    """An event of a transcript in words, e.g. "Mette accepted the chat."."""
    data = message.data or {}
    operator = data.get("operator") or _lh("An operator")
    name = message.body
    if name == "accepted":
        return _lh("%(name)s accepted the chat.", name=operator)
    if name == "ended":
        by = data.get("by")
        if by == "operator" and not data.get("operator"):
            return _lh("The chat has ended.")
        return _lh(ENDED.get(str(by), N_("The chat has ended.")), operator=operator)
    if name == "transfer-offered":
        text = _lh(
            "%(operator)s offered the chat to %(target)s.",
            operator=operator,
            target=data.get("to") or "?",
        )
        note = data.get("note")
        return f"{text} {_lh('Note')}: {note}" if note else text
    if name == "transferred":
        if data.get("from_operator"):
            return _lh(
                "%(operator)s took over the chat from %(previous)s.",
                operator=operator,
                previous=data["from_operator"],
            )
        return _lh("%(operator)s took over the chat.", operator=operator)
    if name == "pushed":
        return _lh(
            "%(operator)s showed the customer %(url)s.",
            operator=operator,
            url=data.get("url") or "",
        )
    if name == "returned":
        return _lh("The chat went back to the queue.")
    return t.cast(str, name)


def _name(thing: t.Any | None) -> str:
    return t.cast(str, thing.name) if thing is not None else ""


def start_of_day(day: dt.date, zone: dt.tzinfo) -> dt.datetime:
    """Midnight of ``day`` in ``zone``, as an aware datetime."""
    naive = dt.datetime.combine(day, dt.time())
    localize = getattr(zone, "localize", None)
    if localize is not None:
        return t.cast(dt.datetime, localize(naive))
    return naive.replace(tzinfo=zone)


def _moment_in(timezone: str | None, *, iso: bool = False) -> c.Callable[..., str]:
    """A formatter of moments in ``timezone``: the reader's words, or ISO 8601."""
    if iso:
        zone = time_zone(timezone)

        def as_iso(moment: dt.datetime | None, format: str = "") -> str:
            return "" if moment is None else moment.astimezone(zone).isoformat()

        return as_iso

    def in_words(moment: dt.datetime | None, format: str = "medium") -> str:
        return format_moment(moment, timezone, format)

    return in_words


def _csv_row(row: HistoryRow, moment: c.Callable[..., str]) -> str:
    conversation = row.conversation
    first = conversation.first_response_at
    return _csv_line(
        [
            conversation.id,
            conversation.visitor_name or "",
            conversation.visitor_email or "",
            _name(conversation.department),
            _name(conversation.operator),
            conversation.status,
            moment(conversation.created_at),
            moment(conversation.ended_at),
            int(row.duration.total_seconds()),
            ""
            if first is None
            else int((first - conversation.created_at).total_seconds()),
            ", ".join(tag.name for tag in conversation.tags),
        ]
    )


def _csv_line(cells: list[t.Any]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow([defuse(cell) for cell in cells])
    return out.getvalue()


def defuse(cell: t.Any) -> t.Any:
    """A cell a spreadsheet shows as text, never runs as a formula."""
    if isinstance(cell, str) and cell.startswith(FORMULA_START):
        return "'" + cell
    return cell
