"""Flask-LiveHelp's first schema (0.1), frozen, as shops created it.

A copy of the table declarations at commit c05bd2b, kept as they were so
tests can make a database "made by the first schema" and upgrade it. Never
edit it to follow the models.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing as t
import weakref

import sqlalchemy as sa
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
    created_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(
        UTCDateTime, default=utcnow
    )


class DepartmentMixin:
    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    name: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(120), unique=True)
    is_active: sa_orm.Mapped[bool] = sa_orm.mapped_column(default=True)


class VisitorMixin:
    """A shop visitor, anonymous unless they tell us who they are."""

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    #: SHA-256 of the visitor's secret token; the token itself is never stored.
    token_hash: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(64), unique=True)
    name: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(120))
    email: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(254))
    locale: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(16))
    ip_address: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(64))
    user_agent: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(400))
    current_page: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(2000))
    first_seen_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(
        UTCDateTime, default=utcnow
    )
    last_seen_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(
        UTCDateTime, default=utcnow
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
        visitor = sa_orm.relationship(LiveHelpVisitor)
        operator = sa_orm.relationship(LiveHelpOperator)
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

    class LiveHelpConnection(base, ConnectionMixin):  # type: ignore[misc]
        __tablename__ = f"{prefix}connection"
        __bind_key__ = bind_key
        operator_id: sa_orm.Mapped[int] = sa_orm.mapped_column(
            sa.ForeignKey(LiveHelpOperator.id, ondelete="CASCADE"), index=True
        )

    return Models(
        operator=LiveHelpOperator,
        department=LiveHelpDepartment,
        operator_departments=operator_departments,
        visitor=LiveHelpVisitor,
        conversation=LiveHelpConversation,
        message=LiveHelpMessage,
        connection=LiveHelpConnection,
    )
