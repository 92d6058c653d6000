"""The columns of each table, as mixins a host's own models may extend.

Keys between tables are declared with the concrete classes (:mod:`.tables`),
whose names carry the table prefix.
"""

from __future__ import annotations

import datetime as dt
import typing as t

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm

from .columns import UTCDateTime
from .columns import utcnow


class _Declared:
    """What every concrete class of :mod:`.tables` has, told to the type checker.

    The keys between tables and the relationships are declared there, on
    classes whose names carry the table prefix; the mixins below announce
    them under ``TYPE_CHECKING`` only, so the runtime mapping is exactly what
    :mod:`.tables` declares.
    """

    if t.TYPE_CHECKING:
        __table__: t.ClassVar[sa.Table]

        def __init__(self, **values: object) -> None: ...


class OperatorMixin(_Declared):
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

    if t.TYPE_CHECKING:  # declared in .tables
        departments: sa_orm.Mapped[list[DepartmentMixin]]
        shop_has_departments: sa_orm.Mapped[bool]


class DepartmentMixin(_Declared):
    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    name: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(120), unique=True)
    #: Offline messages to this department also go here, if set.
    email: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(254))
    is_active: sa_orm.Mapped[bool] = sa_orm.mapped_column(default=True)


class VisitorMixin(_Declared):
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
    #: The browser's time zone (an IANA name), for the times in their mails.
    timezone: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(64))
    ip_address: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(64))
    user_agent: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(400))
    current_page: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(2000))
    page_title: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(200))
    referrer: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(2000))
    pages_seen: sa_orm.Mapped[int] = sa_orm.mapped_column(default=0)
    #: Who the shop says this is (name, e-mail, cart...), from the host's hook
    #: or a claim the shop signed; never from the browser alone.
    shop_identity: sa_orm.Mapped[dict[str, object] | None] = sa_orm.mapped_column(
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

    if t.TYPE_CHECKING:  # declared in .tables
        invited_by_id: sa_orm.Mapped[int | None]
        invited_by: sa_orm.Mapped[OperatorMixin | None]


class ConversationMixin(_Declared):
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
    #: ``visitor``, ``operator``, ``timeout`` (not accepted in time) or
    #: ``inactive`` (closed after a long silence; in older rows also ``timeout``).
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
    context: sa_orm.Mapped[dict[str, object] | None] = sa_orm.mapped_column(sa.JSON)
    #: Deleted by a manager: kept out of every list, purged with the retention.
    deleted_at: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column(UTCDateTime)

    if t.TYPE_CHECKING:  # declared in .tables
        visitor_id: sa_orm.Mapped[int]
        operator_id: sa_orm.Mapped[int | None]
        department_id: sa_orm.Mapped[int | None]
        requested_operator_id: sa_orm.Mapped[int | None]
        visitor: sa_orm.Mapped[VisitorMixin]
        operator: sa_orm.Mapped[OperatorMixin | None]
        requested_operator: sa_orm.Mapped[OperatorMixin | None]
        department: sa_orm.Mapped[DepartmentMixin | None]
        tags: sa_orm.Mapped[list[TagMixin]]


class MessageMixin(_Declared):
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
    data: sa_orm.Mapped[dict[str, object] | None] = sa_orm.mapped_column(sa.JSON)
    #: Seen by staff only (a transfer note), never sent to the visitor.
    staff_only: sa_orm.Mapped[bool] = sa_orm.mapped_column(default=False)
    #: ``chat``, or ``email`` for what arrived or went out by mail.
    via: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(16), default="chat")
    created_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(
        UTCDateTime, default=utcnow
    )

    if t.TYPE_CHECKING:  # declared in .tables
        conversation_id: sa_orm.Mapped[int]
        operator_id: sa_orm.Mapped[int | None]


class ConnectionMixin(_Declared):
    """An open operator panel, so presence survives several tabs and processes."""

    id: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(32), primary_key=True)
    opened_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(
        UTCDateTime, default=utcnow
    )
    seen_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(
        UTCDateTime, default=utcnow, index=True
    )

    if t.TYPE_CHECKING:  # declared in .tables
        operator_id: sa_orm.Mapped[int]


class TagMixin(_Declared):
    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    name: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(64), unique=True)


class CannedResponseMixin(_Declared):
    """A ready answer an operator inserts by name, e.g. ``#generic_OneMoment``."""

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    name: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(64))
    #: ``""`` for every language.
    lang: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(16), default="")
    #: May hold ``{visitor_name}`` and ``{operator_name}``.
    body: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.Text)


class HelpArticleMixin(_Declared):
    """A help page suggested to visitors while they type their question."""

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    title: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(200))
    body: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.Text, default="")
    url: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(2000))
    lang: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(16), default="")
    keywords: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(500), default="")
    is_active: sa_orm.Mapped[bool] = sa_orm.mapped_column(default=True)


class SettingMixin(_Declared):
    """A setting an admin changed in the panel; it wins over ``LIVEHELP_*``."""

    key: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(64), primary_key=True)
    #: ``""`` for every language; else the value for that language only.
    lang: sa_orm.Mapped[str] = sa_orm.mapped_column(
        sa.String(16), primary_key=True, default=""
    )
    value: sa_orm.Mapped[object] = sa_orm.mapped_column(sa.JSON)


class MailMixin(_Declared):
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
    #: ``pending``, ``sending`` (at the server now, or when a sender died),
    #: ``sent`` or ``failed``.
    status: sa_orm.Mapped[str] = sa_orm.mapped_column(
        sa.String(16), default="pending", index=True
    )
    attempts: sa_orm.Mapped[int] = sa_orm.mapped_column(default=0)
    next_attempt_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(
        UTCDateTime, default=utcnow, index=True
    )
    #: A sender claims a mail until then, so two processes never send it twice;
    #: a live one renews its claim while it works.
    claimed_until: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column(UTCDateTime)
    #: Which process (``host:pid``) holds the claim, and since when.
    claimed_by: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(120))
    claimed_at: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column(UTCDateTime)
    #: Sent once more after a sender died while sending it (marked so).
    resent: sa_orm.Mapped[bool] = sa_orm.mapped_column(
        default=False, server_default=sa.false()
    )
    last_error: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.Text)
    created_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(
        UTCDateTime, default=utcnow
    )
    sent_at: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column(UTCDateTime)

    if t.TYPE_CHECKING:  # declared in .tables
        conversation_id: sa_orm.Mapped[int | None]


class AuditMixin(_Declared):
    """Who did what that must be accounted for (deleting a chat, erasing data)."""

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(
        UTCDateTime, default=utcnow, index=True
    )
    #: The operator's name at the time, kept if the account goes.
    actor_name: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(120))
    action: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(64))
    target: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(120))
    details: sa_orm.Mapped[dict[str, object] | None] = sa_orm.mapped_column(sa.JSON)

    if t.TYPE_CHECKING:  # declared in .tables
        operator_id: sa_orm.Mapped[int | None]


class LoginAttemptMixin(_Declared):
    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    email: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(254), index=True)
    ip_address: sa_orm.Mapped[str | None] = sa_orm.mapped_column(
        sa.String(64), index=True
    )
    succeeded: sa_orm.Mapped[bool] = sa_orm.mapped_column(default=False)
    at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(
        UTCDateTime, default=utcnow, index=True
    )


class TransferMixin(_Declared):
    """A chat offered to a colleague or a department, with a note."""

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    note: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.Text)
    #: ``offered``, ``accepted``, ``declined`` or ``withdrawn``.
    status: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(16), default="offered")
    created_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(
        UTCDateTime, default=utcnow
    )
    answered_at: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column(UTCDateTime)

    if t.TYPE_CHECKING:  # declared in .tables
        conversation_id: sa_orm.Mapped[int]
        from_operator_id: sa_orm.Mapped[int | None]
        to_operator_id: sa_orm.Mapped[int | None]
        to_department_id: sa_orm.Mapped[int | None]


class LeaseMixin(_Declared):
    """A named job one process holds for a while, so it runs once at a time."""

    name: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(64), primary_key=True)
    holder: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(64))
    expires_at: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column(UTCDateTime)
