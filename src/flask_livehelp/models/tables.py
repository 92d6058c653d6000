"""The concrete model classes of one ``db``, declared once per metadata and prefix."""

from __future__ import annotations

import dataclasses
import typing as t
import weakref

import sqlalchemy as sa

# The message search index in _declare uses PostgreSQL's to_tsvector; SQLAlchemy
# compiles it only once this dialect is imported, which a host on PostgreSQL
# may not have done yet when it creates the tables.
import sqlalchemy.dialects.postgresql  # noqa: F401
import sqlalchemy.orm as sa_orm
from flask_sqlalchemy import SQLAlchemy

from .columns import ONE_OPEN
from .mixins import AuditMixin
from .mixins import CannedResponseMixin
from .mixins import ConnectionMixin
from .mixins import ConversationMixin
from .mixins import DepartmentMixin
from .mixins import HelpArticleMixin
from .mixins import LeaseMixin
from .mixins import LoginAttemptMixin
from .mixins import MailMixin
from .mixins import MessageMixin
from .mixins import OperatorMixin
from .mixins import SettingMixin
from .mixins import TagMixin
from .mixins import TransferMixin
from .mixins import VisitorMixin


@dataclasses.dataclass(frozen=True)
class Models:
    """The model classes of one ``db``."""

    operator: type[OperatorMixin]
    department: type[DepartmentMixin]
    operator_departments: sa.Table
    visitor: type[VisitorMixin]
    conversation: type[ConversationMixin]
    message: type[MessageMixin]
    connection: type[ConnectionMixin]
    tag: type[TagMixin]
    conversation_tags: sa.Table
    canned_response: type[CannedResponseMixin]
    help_article: type[HelpArticleMixin]
    setting: type[SettingMixin]
    mail: type[MailMixin]
    audit: type[AuditMixin]
    login_attempt: type[LoginAttemptMixin]
    transfer: type[TransferMixin]
    lease: type[LeaseMixin]


#: The models declared into each metadata, by table prefix.
_cache: weakref.WeakKeyDictionary[sa.MetaData, dict[str, Models]]
_cache = weakref.WeakKeyDictionary()


def build_models(
    db: SQLAlchemy, *, table_prefix: str = "livehelp_", bind_key: str | None = None
) -> Models:
    """Declare our models for ``db``, once per metadata and table prefix.

    Declaring them twice into one metadata would fail, as the tables are in
    it already; a host whose model class brings its own metadata shares it
    between every ``db`` made on it (an app factory's tests do that).
    """
    metadata = shared_metadata(db, bind_key)
    built = _cache.setdefault(metadata, {})
    if table_prefix not in built:
        built[table_prefix] = _declare(metadata, table_prefix)
    return built[table_prefix]


def shared_metadata(db: SQLAlchemy, bind_key: str | None) -> sa.MetaData:
    """The host's metadata for ``bind_key``, made as Flask-SQLAlchemy makes one."""
    if bind_key not in db.metadatas:
        metadata = sa.MetaData(naming_convention=db.metadata.naming_convention)
        metadata.info["bind_key"] = bind_key
        db.metadatas[bind_key] = metadata
    return db.metadatas[bind_key]


class _Row:
    def __repr__(self) -> str:
        return f"<{type(self).__name__} {getattr(self, 'id', '?')}>"


def _declare(metadata: sa.MetaData, prefix: str) -> Models:
    # A declarative base of our own, its tables in the host's metadata.
    # Made at runtime from the metadata, so the type checker cannot see it.
    base: t.Any = type(
        "LiveHelpBase", (_Row, sa_orm.DeclarativeBase), {"metadata": metadata}
    )

    operator_departments = sa.Table(
        f"{prefix}operator_department",
        metadata,
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
    )

    class LiveHelpDepartment(base, DepartmentMixin):  # type: ignore[misc]
        __tablename__ = f"{prefix}department"

    class LiveHelpOperator(base, OperatorMixin):  # type: ignore[misc]
        __tablename__ = f"{prefix}operator"
        departments = sa_orm.relationship(
            LiveHelpDepartment, secondary=operator_departments, lazy="selectin"
        )
        #: Whether the shop has departments at all, read with the row: an
        #: operator in none serves none once it has (services/access.py).
        shop_has_departments = sa_orm.column_property(
            sa.exists(sa.select(LiveHelpDepartment.id)).correlate(None)
        )

    class LiveHelpVisitor(base, VisitorMixin):  # type: ignore[misc]
        __tablename__ = f"{prefix}visitor"
        invited_by_id: sa_orm.Mapped[int | None] = sa_orm.mapped_column(
            sa.ForeignKey(LiveHelpOperator.id, ondelete="SET NULL")
        )
        invited_by = sa_orm.relationship(LiveHelpOperator)

    class LiveHelpConversation(base, ConversationMixin):  # type: ignore[misc]
        __tablename__ = f"{prefix}conversation"
        # One open chat per visitor, also when two tabs start one at once.
        __table_args__ = (
            sa.Index(
                f"ix_{prefix}conversation_one_open",
                "visitor_id",
                unique=True,
                sqlite_where=ONE_OPEN,
                postgresql_where=ONE_OPEN,
            ),
        )
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
    # (services/history/full_text.py): words are found through
    # it instead of by reading every message. SQLite searches with LIKE.
    sa.Index(
        f"ix_{prefix}message_body_words",
        # text(), not literal_column(): the index must find its table in here.
        sa.func.to_tsvector(sa.text("'simple'"), LiveHelpMessage.body),
        postgresql_using="gin",
    ).ddl_if(dialect="postgresql")

    class LiveHelpConnection(base, ConnectionMixin):  # type: ignore[misc]
        __tablename__ = f"{prefix}connection"
        operator_id: sa_orm.Mapped[int] = sa_orm.mapped_column(
            sa.ForeignKey(LiveHelpOperator.id, ondelete="CASCADE"), index=True
        )

    class LiveHelpTag(base, TagMixin):  # type: ignore[misc]
        __tablename__ = f"{prefix}tag"

    conversation_tags = sa.Table(
        f"{prefix}conversation_tag",
        metadata,
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
    )
    LiveHelpConversation.tags = sa_orm.relationship(
        LiveHelpTag,
        secondary=conversation_tags,
        lazy="selectin",
        order_by=LiveHelpTag.name,
    )

    class LiveHelpCannedResponse(base, CannedResponseMixin):  # type: ignore[misc]
        __tablename__ = f"{prefix}canned_response"
        __table_args__ = (sa.UniqueConstraint("name", "lang"),)

    class LiveHelpHelpArticle(base, HelpArticleMixin):  # type: ignore[misc]
        __tablename__ = f"{prefix}help_article"

    class LiveHelpSetting(base, SettingMixin):  # type: ignore[misc]
        __tablename__ = f"{prefix}setting"

    class LiveHelpMail(base, MailMixin):  # type: ignore[misc]
        __tablename__ = f"{prefix}mail"
        conversation_id: sa_orm.Mapped[int | None] = sa_orm.mapped_column(
            sa.ForeignKey(LiveHelpConversation.id, ondelete="SET NULL"), index=True
        )

    class LiveHelpAudit(base, AuditMixin):  # type: ignore[misc]
        __tablename__ = f"{prefix}audit"
        operator_id: sa_orm.Mapped[int | None] = sa_orm.mapped_column(
            sa.ForeignKey(LiveHelpOperator.id, ondelete="SET NULL")
        )

    class LiveHelpLoginAttempt(base, LoginAttemptMixin):  # type: ignore[misc]
        __tablename__ = f"{prefix}login_attempt"

    class LiveHelpTransfer(base, TransferMixin):  # type: ignore[misc]
        __tablename__ = f"{prefix}transfer"
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
