"""The tables of Flask-LiveHelp, declared on the host's Flask-SQLAlchemy ``db``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing as t
import weakref

import sqlalchemy as sa

# The message search index below uses PostgreSQL's to_tsvector; SQLAlchemy
# compiles it only once this dialect is imported, which a host on PostgreSQL
# may not have done yet when it creates the tables.
import sqlalchemy.dialects.postgresql  # noqa: F401
import sqlalchemy.orm as sa_orm
from flask_sqlalchemy import SQLAlchemy

ROLES = ("operator", "manager", "admin")
OPERATOR_STATUSES = ("online", "away", "offline")
#: queued: waiting for an operator; active: an operator took it; ended: done;
#: missed: no operator took it (an offline message, or a time-out in the queue).
CONVERSATION_STATUSES = ("queued", "active", "ended", "missed")
AUTHORS = ("visitor", "operator", "system")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """A point in time, always given back as an aware UTC datetime.

    SQLite keeps no time zone, so values are stored as naive UTC everywhere
    and made aware again on the way out.
    """

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(
        self, value: dt.datetime | None, dialect: sa.Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("Flask-LiveHelp stores aware datetimes only.")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(
        self, value: dt.datetime | None, dialect: sa.Dialect
    ) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


class OperatorMixin:
    """An operator account: who answers chats in the panel."""

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    name: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(120))
    email: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(254), unique=True)
    #: ``None`` for operators who sign in through the host's own staff accounts.
    password_hash: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(255))
    role: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(16), default="operator")
    receives_offline: sa_orm.Mapped[bool] = sa_orm.mapped_column(default=False)
    max_chats: sa_orm.Mapped[int] = sa_orm.mapped_column(default=3)
    is_active: sa_orm.Mapped[bool] = sa_orm.mapped_column(default=True)
    locale: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(16))
    timezone: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(64))
    #: What the operator chose; what visitors see also depends on whether a
    #: panel of theirs is connected (see :mod:`flask_livehelp.services.presence`).
    status: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(16), default="offline")
    status_changed_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(
        UTCDateTime, default=utcnow
    )
    #: When a panel of theirs was last heard from.
    last_seen_at: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column(UTCDateTime)
    #: Changed to end every session of the operator at once (log out
    #: everywhere, password change, deactivation).
    session_key: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(64))
    #: The host's id for this person, when the host signs its staff in.
    external_id: sa_orm.Mapped[str | None] = sa_orm.mapped_column(
        sa.String(64), unique=True
    )
    #: More addresses that get this operator's offline messages.
    forward_addresses: sa_orm.Mapped[list[str] | None] = sa_orm.mapped_column(sa.JSON)
    created_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(
        UTCDateTime, default=utcnow
    )


class DepartmentMixin:
    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    name: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(120), unique=True)
    #: Offline messages to this department also go here, if set.
    email: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(254))
    is_active: sa_orm.Mapped[bool] = sa_orm.mapped_column(default=True)


class VisitorMixin:
    """A shop visitor, anonymous unless they tell us who they are."""

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    #: SHA-256 of the visitor's secret token; the token itself is never stored.
    #: ``None`` until the visitor opens the chat.
    token_hash: sa_orm.Mapped[str | None] = sa_orm.mapped_column(
        sa.String(64), unique=True
    )
    #: The random id the widget's loader keeps for this browser tab, so the
    #: visitor list can show someone browsing before they chat.
    presence_id: sa_orm.Mapped[str | None] = sa_orm.mapped_column(
        sa.String(32), unique=True
    )
    name: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(120))
    email: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(254))
    locale: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(16))
    ip_address: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(64))
    user_agent: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(400))
    current_page: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(2000))
    page_title: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(200))
    referrer: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(2000))
    pages_seen: sa_orm.Mapped[int] = sa_orm.mapped_column(default=0)
    #: Who the shop says this is (name, e-mail, cart...), from the host's hook
    #: or a claim the shop signed; never from the browser alone.
    shop_identity: sa_orm.Mapped[dict[str, t.Any] | None] = sa_orm.mapped_column(
        sa.JSON
    )
    #: When the visitor's personal data was erased on request.
    erased_at: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column(UTCDateTime)
    #: An operator's invitation to chat, shown by the widget until answered.
    invitation: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(500))
    invited_at: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column(UTCDateTime)
    first_seen_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(
        UTCDateTime, default=utcnow
    )
    #: Indexed for the list of visitors on the site now.
    last_seen_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(
        UTCDateTime, default=utcnow, index=True
    )


class ConversationMixin:
    """One chat, or one offline message, with everything said in it."""

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    status: sa_orm.Mapped[str] = sa_orm.mapped_column(
        sa.String(16), default="queued", index=True
    )
    #: ``chat`` from the widget's chat, ``offline`` from the offline form.
    origin: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(16), default="chat")
    #: Name and e-mail the visitor gave for this conversation, if any.
    visitor_name: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(120))
    visitor_email: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(254))
    email_consent: sa_orm.Mapped[bool] = sa_orm.mapped_column(default=False)
    locale: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(16))
    page_url: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(2000))
    #: The number of the last message; the next one gets ``last_seq + 1``.
    last_seq: sa_orm.Mapped[int] = sa_orm.mapped_column(default=0)
    created_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(
        UTCDateTime, default=utcnow, index=True
    )
    accepted_at: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column(UTCDateTime)
    ended_at: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column(UTCDateTime)
    #: ``visitor``, ``operator`` or ``timeout``.
    ended_by: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(16))
    last_visitor_message_at: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column(
        UTCDateTime
    )
    last_operator_message_at: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column(
        UTCDateTime
    )
    first_response_at: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column(
        UTCDateTime
    )
    #: Part of the conversation's reply address, so answers by mail thread back.
    reply_token: sa_orm.Mapped[str | None] = sa_orm.mapped_column(
        sa.String(32), unique=True
    )
    #: For a conversation no operator took: when someone answered it by mail.
    answered_at: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column(UTCDateTime)
    #: What the host's context hook said about the visitor when the chat began.
    context: sa_orm.Mapped[dict[str, t.Any] | None] = sa_orm.mapped_column(sa.JSON)
    #: Deleted by a manager: kept out of every list, purged with the retention.
    deleted_at: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column(UTCDateTime)


class MessageMixin:
    """One line of a transcript: something said, or something that happened."""

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    #: Numbers the messages of one conversation 1, 2, 3... without gaps.
    seq: sa_orm.Mapped[int] = sa_orm.mapped_column()
    #: The id the sending client made, so a resend is recognised.
    client_id: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(64))
    author: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(16))
    #: The name shown with the message, as it was when it was written.
    author_name: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(120))
    #: ``text`` for something said, ``event`` for something that happened.
    kind: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(16), default="text")
    #: For text, what was said; for an event, its name (``accepted``, ``ended``).
    body: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.Text)
    data: sa_orm.Mapped[dict[str, t.Any] | None] = sa_orm.mapped_column(sa.JSON)
    #: Seen by staff only (a transfer note), never sent to the visitor.
    staff_only: sa_orm.Mapped[bool] = sa_orm.mapped_column(default=False)
    #: ``chat``, or ``email`` for what arrived or went out by mail.
    via: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(16), default="chat")
    created_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(
        UTCDateTime, default=utcnow
    )


class ConnectionMixin:
    """An open operator panel, so presence survives several tabs and processes."""

    id: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(32), primary_key=True)
    opened_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(
        UTCDateTime, default=utcnow
    )
    seen_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(
        UTCDateTime, default=utcnow, index=True
    )


class TagMixin:
    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    name: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(64), unique=True)


class CannedResponseMixin:
    """A ready answer an operator inserts by name, e.g. ``#generic_OneMoment``."""

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    name: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(64))
    #: ``""`` for every language.
    lang: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(16), default="")
    #: May hold ``{visitor_name}`` and ``{operator_name}``.
    body: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.Text)


class HelpArticleMixin:
    """A help page suggested to visitors while they type their question."""

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    title: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(200))
    body: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.Text, default="")
    url: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(2000))
    lang: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(16), default="")
    keywords: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(500), default="")
    is_active: sa_orm.Mapped[bool] = sa_orm.mapped_column(default=True)


class SettingMixin:
    """A setting an admin changed in the panel; it wins over ``LIVEHELP_*``."""

    key: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(64), primary_key=True)
    #: ``""`` for every language; else the value for that language only.
    lang: sa_orm.Mapped[str] = sa_orm.mapped_column(
        sa.String(16), primary_key=True, default=""
    )
    value: sa_orm.Mapped[t.Any] = sa_orm.mapped_column(sa.JSON)


class MailMixin:
    """The outbox: a mail is written with what caused it, then sent with retries."""

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    #: ``offline``, ``copy``, ``transcript``, ``answer``...
    kind: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(32))
    recipients: sa_orm.Mapped[list[str]] = sa_orm.mapped_column(sa.JSON)
    subject: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(300))
    text_body: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.Text)
    html_body: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.Text)
    sender: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(320))
    reply_to: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(320))
    headers: sa_orm.Mapped[dict[str, str] | None] = sa_orm.mapped_column(sa.JSON)
    #: ``pending``, ``sent`` or ``failed``.
    status: sa_orm.Mapped[str] = sa_orm.mapped_column(
        sa.String(16), default="pending", index=True
    )
    attempts: sa_orm.Mapped[int] = sa_orm.mapped_column(default=0)
    next_attempt_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(
        UTCDateTime, default=utcnow, index=True
    )
    #: A sender claims a mail until then, so two processes never send it twice.
    claimed_until: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column(UTCDateTime)
    last_error: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.Text)
    created_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(
        UTCDateTime, default=utcnow
    )
    sent_at: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column(UTCDateTime)


class AuditMixin:
    """Who did what that must be accounted for (deleting a chat, erasing data)."""

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(
        UTCDateTime, default=utcnow, index=True
    )
    #: The operator's name at the time, kept if the account goes.
    actor_name: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(120))
    action: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(64))
    target: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(120))
    details: sa_orm.Mapped[dict[str, t.Any] | None] = sa_orm.mapped_column(sa.JSON)


class LoginAttemptMixin:
    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    email: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(254), index=True)
    ip_address: sa_orm.Mapped[str | None] = sa_orm.mapped_column(
        sa.String(64), index=True
    )
    succeeded: sa_orm.Mapped[bool] = sa_orm.mapped_column(default=False)
    at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(
        UTCDateTime, default=utcnow, index=True
    )


class TransferMixin:
    """A chat offered to a colleague or a department, with a note."""

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    note: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.Text)
    #: ``offered``, ``accepted``, ``declined`` or ``withdrawn``.
    status: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(16), default="offered")
    created_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(
        UTCDateTime, default=utcnow
    )
    answered_at: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column(UTCDateTime)


class LeaseMixin:
    """A named job one process holds for a while, so it runs once at a time."""

    name: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(64), primary_key=True)
    holder: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(64))
    expires_at: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column(UTCDateTime)


@dataclasses.dataclass(frozen=True)
class Models:
    """The model classes of one ``db``."""

    operator: t.Any
    department: t.Any
    operator_departments: sa.Table
    visitor: t.Any
    conversation: t.Any
    message: t.Any
    connection: t.Any
    tag: t.Any
    conversation_tags: sa.Table
    canned_response: t.Any
    help_article: t.Any
    setting: t.Any
    mail: t.Any
    audit: t.Any
    login_attempt: t.Any
    transfer: t.Any
    lease: t.Any


_cache: weakref.WeakKeyDictionary[SQLAlchemy, dict[tuple[str, str | None], Models]]
_cache = weakref.WeakKeyDictionary()


def build_models(
    db: SQLAlchemy, *, table_prefix: str = "livehelp_", bind_key: str | None = None
) -> Models:
    """Declare our models on ``db.Model``, once per ``db`` and options.

    Declaring them twice on one ``db`` would fail, because the tables are
    already in its metadata.
    """
    built = _cache.setdefault(db, {})
    key = (table_prefix, bind_key)
    if key not in built:
        built[key] = _declare(db, table_prefix, bind_key)
    return built[key]


def _declare(db: SQLAlchemy, prefix: str, bind_key: str | None) -> Models:
    # The LiveHelp prefix keeps these class names out of the way of the
    # host's own models in SQLAlchemy's class registry.
    base: t.Any = db.Model

    operator_departments = db.Table(
        f"{prefix}operator_department",
        sa.Column(
            "operator_id",
            sa.ForeignKey(f"{prefix}operator.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "department_id",
            sa.ForeignKey(f"{prefix}department.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        bind_key=bind_key,
    )

    class LiveHelpDepartment(base, DepartmentMixin):  # type: ignore[misc]
        __tablename__ = f"{prefix}department"
        __bind_key__ = bind_key

    class LiveHelpOperator(base, OperatorMixin):  # type: ignore[misc]
        __tablename__ = f"{prefix}operator"
        __bind_key__ = bind_key
        departments = sa_orm.relationship(
            LiveHelpDepartment, secondary=operator_departments, lazy="selectin"
        )

    class LiveHelpVisitor(base, VisitorMixin):  # type: ignore[misc]
        __tablename__ = f"{prefix}visitor"
        __bind_key__ = bind_key
        invited_by_id: sa_orm.Mapped[int | None] = sa_orm.mapped_column(
            sa.ForeignKey(LiveHelpOperator.id, ondelete="SET NULL")
        )
        invited_by = sa_orm.relationship(LiveHelpOperator)

    class LiveHelpConversation(base, ConversationMixin):  # type: ignore[misc]
        __tablename__ = f"{prefix}conversation"
        __bind_key__ = bind_key
        visitor_id: sa_orm.Mapped[int] = sa_orm.mapped_column(
            sa.ForeignKey(LiveHelpVisitor.id), index=True
        )
        operator_id: sa_orm.Mapped[int | None] = sa_orm.mapped_column(
            sa.ForeignKey(LiveHelpOperator.id), index=True
        )
        department_id: sa_orm.Mapped[int | None] = sa_orm.mapped_column(
            sa.ForeignKey(LiveHelpDepartment.id), index=True
        )
        #: The visitor asked for this operator by name (shown green to them).
        requested_operator_id: sa_orm.Mapped[int | None] = sa_orm.mapped_column(
            sa.ForeignKey(LiveHelpOperator.id)
        )
        visitor = sa_orm.relationship(LiveHelpVisitor)
        operator = sa_orm.relationship(LiveHelpOperator, foreign_keys=[operator_id])
        requested_operator = sa_orm.relationship(
            LiveHelpOperator, foreign_keys=[requested_operator_id]
        )
        department = sa_orm.relationship(LiveHelpDepartment)

    class LiveHelpMessage(base, MessageMixin):  # type: ignore[misc]
        __tablename__ = f"{prefix}message"
        __bind_key__ = bind_key
        __table_args__ = (
            sa.UniqueConstraint("conversation_id", "seq"),
            sa.UniqueConstraint("conversation_id", "client_id"),
        )
        conversation_id: sa_orm.Mapped[int] = sa_orm.mapped_column(
            sa.ForeignKey(LiveHelpConversation.id, ondelete="CASCADE")
        )
        operator_id: sa_orm.Mapped[int | None] = sa_orm.mapped_column(
            sa.ForeignKey(LiveHelpOperator.id)
        )

    # INDEX for the history's full-text search on PostgreSQL
    # (services/history.py, HistoryService._matches): words are found through
    # it instead of by reading every message. SQLite searches with LIKE.
    sa.Index(
        f"ix_{prefix}message_body_words",
        # text(), not literal_column(): the index must find its table in here.
        sa.func.to_tsvector(sa.text("'simple'"), LiveHelpMessage.body),
        postgresql_using="gin",
    ).ddl_if(dialect="postgresql")

    class LiveHelpConnection(base, ConnectionMixin):  # type: ignore[misc]
        __tablename__ = f"{prefix}connection"
        __bind_key__ = bind_key
        operator_id: sa_orm.Mapped[int] = sa_orm.mapped_column(
            sa.ForeignKey(LiveHelpOperator.id, ondelete="CASCADE"), index=True
        )

    class LiveHelpTag(base, TagMixin):  # type: ignore[misc]
        __tablename__ = f"{prefix}tag"
        __bind_key__ = bind_key

    conversation_tags = db.Table(
        f"{prefix}conversation_tag",
        sa.Column(
            "conversation_id",
            sa.ForeignKey(LiveHelpConversation.id, ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "tag_id",
            sa.ForeignKey(LiveHelpTag.id, ondelete="CASCADE"),
            primary_key=True,
        ),
        bind_key=bind_key,
    )
    LiveHelpConversation.tags = sa_orm.relationship(
        LiveHelpTag,
        secondary=conversation_tags,
        lazy="selectin",
        order_by=LiveHelpTag.name,
    )

    class LiveHelpCannedResponse(base, CannedResponseMixin):  # type: ignore[misc]
        __tablename__ = f"{prefix}canned_response"
        __bind_key__ = bind_key
        __table_args__ = (sa.UniqueConstraint("name", "lang"),)

    class LiveHelpHelpArticle(base, HelpArticleMixin):  # type: ignore[misc]
        __tablename__ = f"{prefix}help_article"
        __bind_key__ = bind_key

    class LiveHelpSetting(base, SettingMixin):  # type: ignore[misc]
        __tablename__ = f"{prefix}setting"
        __bind_key__ = bind_key

    class LiveHelpMail(base, MailMixin):  # type: ignore[misc]
        __tablename__ = f"{prefix}mail"
        __bind_key__ = bind_key
        conversation_id: sa_orm.Mapped[int | None] = sa_orm.mapped_column(
            sa.ForeignKey(LiveHelpConversation.id, ondelete="SET NULL"), index=True
        )

    class LiveHelpAudit(base, AuditMixin):  # type: ignore[misc]
        __tablename__ = f"{prefix}audit"
        __bind_key__ = bind_key
        operator_id: sa_orm.Mapped[int | None] = sa_orm.mapped_column(
            sa.ForeignKey(LiveHelpOperator.id, ondelete="SET NULL")
        )

    class LiveHelpLoginAttempt(base, LoginAttemptMixin):  # type: ignore[misc]
        __tablename__ = f"{prefix}login_attempt"
        __bind_key__ = bind_key

    class LiveHelpTransfer(base, TransferMixin):  # type: ignore[misc]
        __tablename__ = f"{prefix}transfer"
        __bind_key__ = bind_key
        conversation_id: sa_orm.Mapped[int] = sa_orm.mapped_column(
            sa.ForeignKey(LiveHelpConversation.id, ondelete="CASCADE"), index=True
        )
        from_operator_id: sa_orm.Mapped[int | None] = sa_orm.mapped_column(
            sa.ForeignKey(LiveHelpOperator.id, ondelete="SET NULL")
        )
        to_operator_id: sa_orm.Mapped[int | None] = sa_orm.mapped_column(
            sa.ForeignKey(LiveHelpOperator.id, ondelete="SET NULL")
        )
        to_department_id: sa_orm.Mapped[int | None] = sa_orm.mapped_column(
            sa.ForeignKey(LiveHelpDepartment.id, ondelete="SET NULL")
        )

    class LiveHelpLease(base, LeaseMixin):  # type: ignore[misc]
        __tablename__ = f"{prefix}lease"
        __bind_key__ = bind_key

    return Models(
        operator=LiveHelpOperator,
        department=LiveHelpDepartment,
        operator_departments=operator_departments,
        visitor=LiveHelpVisitor,
        conversation=LiveHelpConversation,
        message=LiveHelpMessage,
        connection=LiveHelpConnection,
        tag=LiveHelpTag,
        conversation_tags=conversation_tags,
        canned_response=LiveHelpCannedResponse,
        help_article=LiveHelpHelpArticle,
        setting=LiveHelpSetting,
        mail=LiveHelpMail,
        audit=LiveHelpAudit,
        login_attempt=LiveHelpLoginAttempt,
        transfer=LiveHelpTransfer,
        lease=LiveHelpLease,
    )
