"""Offline messages: stored first, then mailed to the shop and to the customer.

An offline message is a conversation no operator took (``status="missed"``)
with the visitor's text as message 1 and a ``reply_token`` of its own. Its
mails go through the outbox in the same transaction, so the customer is told
"sent" only once the message and its mails are stored.

Who replies where:

* With ``LIVEHELP_REPLY_ADDRESS`` (e.g. ``reply+{token}@shop.example``) every
  mail about a conversation has that conversation's reply address as
  Reply-To, for staff and customer alike. A reply from either side lands in
  the transcript (see :mod:`.inbound`), and we pass it on: the customer's
  reply to the staff, the staff's reply to the customer. So a plain "Reply"
  in the staff's mail program still reaches the customer, and nothing said
  by mail is missing from the panel.
* Without it, nothing can come back to us, so mails point at the people:
  the staff's Reply-To is the customer's address, the customer's is the
  shop's mailbox (``OFFLINE_MAILBOX``, else the department's address).

Either way the visitor's own input is never a header as typed: names and
addresses with line breaks are refused, addresses must be one plain address,
and only the copy of their own message ever goes to an address they typed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import logging
import secrets
import typing as t

import sqlalchemy as sa
from flask import url_for
from werkzeug.routing import BuildError

from .. import signals
from ..addresses import email_address
from ..addresses import valid_email
from ..colours import ink_on
from ..errors import NotAllowed
from ..errors import Refused
from ..formatting import format_moment_in_zone
from ..formatting import valid_timezone
from ..hub import STAFF_CHANNEL
from ..i18n import _lh
from ..i18n import N_
from ..models import utcnow
from ..protocol import CLIENT_ID
from ..text import is_blank
from ..text import without_controls
from . import access
from . import Service
from .conversations import ConversationService
from .history import event_text
from .limits import Limits
from .mail import MailService
from .settings import SettingsService
from .visitors import VisitorService

log = logging.getLogger(__name__)

MAX_PAGE_LENGTH = 2000
#: How long a resend of the same message is recognised without a visitor token.
RESEND_WINDOW = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)


#: Too many offline messages, or mails to customers, in an hour.
TOO_MANY = N_(
    "You have sent many messages in a short time. Please wait an hour and try again."
)


@dataclasses.dataclass(frozen=True)
class Submission:
    """What the offline form gets back."""

    #: ``None`` for a message dropped as spam (told apart from a real one to
    #: nobody: a bot would learn to leave the field empty).
    conversation_id: int | None
    #: False when this was a resend of a message already stored.
    created: bool
    #: The new visitor's token, when the form came without one.
    token: str | None = None
    #: The customer's address, when mail can go out to it: the shop answers
    #: there, and a copy is on its way.
    answered_at: str | None = None


class OfflineService(Service):
    def __init__(
        self,
        *args: t.Any,
        conversations: ConversationService,
        visitors: VisitorService,
        settings: SettingsService,
        mail: MailService,
        limits: Limits,
    ) -> None:
        super().__init__(*args)
        self.conversations = conversations
        self.visitors = visitors
        self.settings = settings
        self.mail = mail
        self.limits = limits

    # The offline form.

    def submit(
        self,
        *,
        client_id: str,
        body: str,
        name: str | None = None,
        email: str | None = None,
        consent: bool = False,
        page: str | None = None,
        department_id: int | None = None,
        honeypot: str | None = None,
        visitor_token: str | None = None,
        ip_address: str | None = None,
        user_agent: str | None = None,
        locale: str | None = None,
        timezone: str | None = None,
    ) -> Submission:
        """Store an offline message and mail it; a resend stores and mails nothing.

        :param honeypot: The form's hidden field; people leave it empty, and a
            message with it filled is dropped as if it were stored.
        :param timezone: The browser's time zone, for the times in their mails;
            checked here, and left out if we do not know it.
        :raises Refused: A field is not valid (``bad-field``, ``bad-email``,
            ``too-long``), or too many messages came from this visitor,
            address or IP (``too-many``).
        """
        if honeypot:
            log.info("An offline message with the hidden field filled was dropped.")
            # A number and a token as a new visitor gets them; they open nothing.
            fake = None if visitor_token else secrets.token_urlsafe(32)
            return Submission(
                secrets.randbelow(10**6) + 1,
                created=False,
                token=fake,
                answered_at=email if email and self.mail.problem() is None else None,
            )
        if not isinstance(client_id, str) or not CLIENT_ID.fullmatch(client_id):
            raise Refused("bad-field", N_("The message id is not valid."))
        body = self.clean_body(body)
        name = clean_name(name, self.setting("MAX_NAME_LENGTH"))
        email = clean_email(email)
        self._check_department(department_id)
        visitor = self.visitors.from_token(visitor_token)
        earlier = self._resent(visitor, client_id, ip_address)
        if earlier is not None:
            mailed = earlier.visitor_email if self.mail.problem() is None else None
            return Submission(earlier.id, created=False, answered_at=mailed)
        self._check_rate(visitor, ip_address, email)
        token = None
        if visitor is None:
            visitor, token = self.visitors.create(
                ip_address=ip_address,
                user_agent=user_agent,
                locale=locale,
                page=page,
            )
        elif ip_address:
            # The latest address, so the limit per IP also counts this visitor.
            visitor.ip_address = ip_address
        visitor.timezone = valid_timezone(timezone) or visitor.timezone
        conversation, message = self.conversations.add_offline(
            visitor.id,
            client_id=client_id,
            body=body,
            name=name,
            email=email,
            consent=consent,
            page=(page or "")[:MAX_PAGE_LENGTH] or None,
            locale=locale,
            department_id=department_id,
            reply_token=new_token(),
        )
        mails = self._queue_offline(conversation, [message], timed_out=False)
        self.session.commit()
        self._announce(conversation, message)
        self.mail.send_soon(mails)
        mailed = email if email and self.mail.problem() is None else None
        return Submission(
            conversation.id, created=True, token=token, answered_at=mailed
        )

    def clean_body(self, body: t.Any) -> str:
        """The visitor's text, without control characters, within the limit."""
        if not isinstance(body, str) or is_blank(without_controls(body)):
            raise Refused("bad-field", N_("Write a message first."))
        body = without_controls(body).strip()
        limit = self.setting("MAX_MESSAGE_LENGTH")
        if len(body) > limit:
            raise Refused(
                "too-long",
                N_("The message is longer than %(max)d characters."),
                max=limit,
            )
        return t.cast(str, body)

    def _check_department(self, department_id: int | None) -> None:
        if department_id is None:
            return
        department = self.session.get(self.models.department, department_id)
        if department is None or not department.is_active:
            raise Refused("bad-field", N_("There is no such department."))

    def _resent(
        self, visitor: t.Any | None, client_id: str, ip_address: str | None
    ) -> t.Any | None:
        """The conversation an earlier send of this very message made, if any."""
        if visitor is not None:
            message = self.conversations.by_visitor_client_id(visitor.id, client_id)
            if message is not None:
                return self.conversations.get(message.conversation_id)
        if not ip_address:
            return None
        # Without a token (the answer to the first send got lost), the same
        # random id from the same address is the same message.
        c, m, v = self.models.conversation, self.models.message, self.models.visitor
        query = (
            sa.select(c)
            .join(m, m.conversation_id == c.id)
            .join(v, v.id == c.visitor_id)
            .where(m.client_id == client_id, m.seq == 1, c.origin == "offline")
            .where(v.ip_address == ip_address)
            .where(c.created_at >= utcnow() - RESEND_WINDOW)
            .limit(1)
        )
        return self.session.execute(query).scalar_one_or_none()

    def _check_rate(
        self, visitor: t.Any | None, ip_address: str | None, email: str | None
    ) -> None:
        c, v = self.models.conversation, self.models.visitor
        checks = []
        if visitor is not None:
            checks.append(c.visitor_id == visitor.id)
        if ip_address:
            checks.append(v.ip_address == ip_address)
        if email:
            # One inbox cannot be flooded with copies from many visitors.
            checks.append(sa.func.lower(c.visitor_email) == email.lower())
        limit = self.setting("OFFLINE_PER_HOUR")
        for check in checks:
            count = self.session.execute(
                sa.select(sa.func.count())
                .select_from(c)
                .join(v, v.id == c.visitor_id)
                .where(c.origin == "offline", c.created_at >= utcnow() - HOUR, check)
            ).scalar_one()
            if count >= limit:
                raise Refused("too-many", TOO_MANY, status=429)

    # A chat nobody took in time.

    def mail_timed_out(self, conversation_id: int) -> list[t.Any]:
        """Mail a chat that timed out in the queue as an offline message, once.

        The caller has already marked it missed. Returns the mails queued.
        """
        conversation = self.conversations.get(conversation_id)
        if self._mails_of(conversation.id, "offline"):
            return []
        if conversation.reply_token is None:
            conversation.reply_token = new_token()
        messages = [
            m
            for m in self.conversations.messages_after(conversation.id, 0, None)
            if m.kind == "text" and m.author == "visitor"
        ]
        mails = self._queue_offline(conversation, messages, timed_out=True)
        self.session.commit()
        self.hub.publish(
            STAFF_CHANNEL, self.conversations.staff_frame(conversation, "offline")
        )
        signals.send(
            signals.offline_message_received,
            conversation=conversation,
            message=messages[0] if messages else None,
        )
        self.mail.send_soon(mails)
        return mails

    def add_contact(
        self, conversation_id: int, *, email: str, name: str | None = None
    ) -> t.Any:
        """The customer of a missed chat says where to answer; they get their copy.

        The copy goes once per conversation, however often this is called.
        """
        conversation = self.conversations.get(conversation_id)
        conversation.visitor_email = clean_email(email)
        cleaned = clean_name(name, self.setting("MAX_NAME_LENGTH"))
        conversation.visitor_name = cleaned or conversation.visitor_name
        if conversation.reply_token is None:
            conversation.reply_token = new_token()
        mails = []
        if not self._mails_of(conversation.id, "copy"):
            self._within_mail_budget(conversation, refuse=True)
            messages = self._visitor_texts(conversation.id)
            mails = self._queue_customer(
                conversation, "offline_copy", "copy", messages, timed_out=True
            )
        self.session.commit()
        self.mail.send_soon(mails)
        return conversation

    # Answers.

    def answer(
        self,
        operator: t.Any,
        conversation_id: int,
        body: str,
        *,
        client_id: str | None = None,
    ) -> t.Any:
        """An operator answers by mail from the panel; it joins the transcript.

        :param client_id: The form's id, so a double click mails once.
        :raises Refused: The customer gave no e-mail address, or the text is bad.
        """
        conversation = self.conversations.get(conversation_id)
        if not access.can_answer(operator, conversation):
            raise NotAllowed("not-allowed", N_("You may not answer this message."))
        if client_id is not None:
            earlier = self.conversations.by_client_id(conversation.id, client_id)
            if earlier is not None:
                return earlier
        if not conversation.visitor_email:
            raise Refused(
                "no-email",
                N_("The customer left no e-mail address, so no answer can be mailed."),
            )
        body = self.clean_body(body)
        if conversation.reply_token is None:
            conversation.reply_token = new_token()
        message = self.conversations.append_by_mail(
            conversation, "operator", body, client_id=client_id, operator=operator
        )
        conversation.answered_at = utcnow()
        mails = self.queue_answer(conversation, message)
        self.session.commit()
        self.conversations.announce_by_mail(conversation, message, "answered")
        self.mail.send_soon(mails)
        return message

    def queue_answer(self, conversation: t.Any, message: t.Any) -> list[t.Any]:
        """Mail the staff's ``message`` to the customer, in the caller's transaction."""
        earlier = [
            m
            for m in self.conversations.messages_after(conversation.id, 0, None)
            if m.kind == "text" and m.seq < (message.seq or 0)
        ]
        return self._queue_customer(
            conversation, "answer", "answer", earlier, answer=message
        )

    def queue_reply_to_staff(self, conversation: t.Any, message: t.Any) -> list[t.Any]:
        """Pass the customer's mailed reply on to the staff (caller commits)."""
        return self._queue_staff(conversation, "reply", "reply", [message])

    # Transcripts.

    def queue_transcript(
        self, conversation_id: int, recipient: str, *, requested_by: t.Any
    ) -> t.Any:
        """Mail the transcript to ``recipient``, which the caller has checked.

        :param recipient: The customer's address on file, or the operator's own.
            The customer's copy is in their language and leaves out staff-only
            notes; any other is a staff copy, in the staff language.
        :param requested_by: ``"visitor"``, or the operator who asked.
        :raises Refused: Too many transcripts of this conversation (or this
            visitor's) this hour.
        """
        conversation = self.conversations.get(conversation_id)
        recipient = clean_email(recipient) or ""
        if not recipient:
            raise Refused("no-email", N_("There is no e-mail address to send it to."))
        self._check_transcript_rate(conversation, requested_by)
        staff = recipient.lower() != (conversation.visitor_email or "").lower()
        if not staff:
            self._within_mail_budget(conversation, refuse=True)
        if staff:
            lang = self.mail.locale(getattr(requested_by, "locale", None), staff=True)
            reply_to = None
            headers = {"Auto-Submitted": "auto-generated"}
        else:
            lang = self.mail.locale(conversation.locale, staff=False)
            if conversation.reply_token is None:
                conversation.reply_token = new_token()
            reply_to = self._customer_reply_to(conversation)
            headers = self._thread_headers(conversation, automatic=True)
        messages = self.conversations.messages_after(
            conversation.id, 0, None, staff=staff
        )
        context = self._context(conversation, messages, customer=not staff)
        # A staff copy's replies would go nowhere useful: no reply line.
        context["replies_thread"] = context["replies_thread"] and not staff
        rendered = self.mail.render("transcript", lang, **context)
        mail = self.mail.queue(
            "transcript",
            [recipient],
            rendered.subject,
            rendered.text,
            rendered.html,
            reply_to=reply_to,
            headers=headers,
            conversation_id=conversation.id,
        )
        self.session.commit()
        self.mail.send_soon([mail])
        return mail

    def _check_transcript_rate(self, conversation: t.Any, requested_by: t.Any) -> None:
        mail, c, v = self.models.mail, self.models.conversation, self.models.visitor
        checks = [mail.conversation_id == conversation.id]
        if requested_by == "visitor":
            checks.append(c.visitor_id == conversation.visitor_id)
            ip_address = conversation.visitor.ip_address
            if ip_address:
                checks.append(v.ip_address == ip_address)
        limit = self.setting("TRANSCRIPTS_PER_HOUR")
        for check in checks:
            count = self.session.execute(
                sa.select(sa.func.count())
                .select_from(mail)
                .join(c, c.id == mail.conversation_id)
                .join(v, v.id == c.visitor_id)
                .where(mail.kind == "transcript", mail.created_at >= utcnow() - HOUR)
                .where(check)
            ).scalar_one()
            if count >= limit:
                raise Refused(
                    "too-many",
                    N_("The transcript was sent recently. Try again later."),
                    status=429,
                )

    # The panel's list.

    def listing(
        self, operator: t.Any, *, answered: bool, page: int = 1, per_page: int = 50
    ) -> tuple[list[t.Any], int]:
        """Offline messages (and missed chats mailed so) the operator may answer."""
        model = self.models.conversation
        where = [
            model.status == "missed",
            model.reply_token.is_not(None),
            model.deleted_at.is_(None),
            model.answered_at.is_not(None) if answered else model.answered_at.is_(None),
        ]
        where.append(access.answer_clause(operator, model.department_id))
        order = model.answered_at.desc() if answered else model.created_at.desc()
        query = sa.select(model).where(*where).order_by(order, model.id.desc())
        return self.page_of(query, page, per_page)

    def for_operator(self, operator: t.Any, conversation_id: int) -> t.Any:
        conversation = self.conversations.get(conversation_id)
        if conversation.deleted_at is not None or not access.can_answer(
            operator, conversation
        ):
            raise NotAllowed("not-allowed", N_("You may not open this message."))
        return conversation

    # Who gets what.

    def staff_recipients(self, conversation: t.Any) -> dict[str, list[str]]:
        """The staff addresses for a conversation's mails, grouped by language.

        Operators who receive offline messages (of its department, where
        departments are used) with their forward addresses, the department's
        address and the central mailbox. Never the customer's own address.
        """
        groups: dict[str, list[str]] = {}
        seen = {(conversation.visitor_email or "").lower()}

        def add(address: str | None, lang: str) -> None:
            address = (address or "").strip()
            if not address or address.lower() in seen:
                return
            if not valid_email(address):
                log.warning("Offline mail skips %r: not an e-mail address.", address)
                return
            seen.add(address.lower())
            groups.setdefault(lang, []).append(address)

        for operator in self._receivers(conversation.department_id):
            lang = self.mail.locale(operator.locale, staff=True)
            add(operator.email, lang)
            for address in operator.forward_addresses or []:
                add(address, lang)
        default = self.mail.default_locale(staff=True)
        department = conversation.department
        if department is not None:
            add(department.email, default)
        add(self.settings.get("OFFLINE_MAILBOX", conversation.locale), default)
        return groups

    def staff_addresses(self) -> set[str]:
        """Every address a staff member's mail may come from, in lower case."""
        found = set()
        for operator in self.session.execute(sa.select(self.models.operator)).scalars():
            found.add(operator.email.lower())
            found.update(a.lower() for a in operator.forward_addresses or [])
        for department in self.session.execute(
            sa.select(self.models.department)
        ).scalars():
            if department.email:
                found.add(department.email.lower())
        model = self.models.setting
        for value in self.session.execute(
            sa.select(model.value).where(model.key == "OFFLINE_MAILBOX")
        ).scalars():
            if isinstance(value, str):
                found.add(value.lower())
        for value in (self.setting("OFFLINE_MAILBOX"), self.mail.sender()):
            if isinstance(value, str):
                found.add(value.rpartition("<")[2].strip(" >").lower())
        return found

    def _receivers(self, department_id: int | None) -> list[t.Any]:
        model = self.models.operator
        query = sa.select(model).where(
            model.receives_offline.is_(True), model.is_active.is_(True)
        )
        return [
            operator
            for operator in self.session.execute(query).scalars()
            if access.serves(operator, department_id)
        ]

    def reply_address(self, conversation: t.Any) -> str | None:
        """The conversation's own address replies come back to, if there is one."""
        pattern = self.setting("REPLY_ADDRESS")
        if not pattern or not conversation.reply_token:
            return None
        address = t.cast(str, pattern).replace("{token}", conversation.reply_token)
        if not valid_email(address):
            log.error("LIVEHELP_REPLY_ADDRESS %r is no e-mail address.", pattern)
            return None
        return address

    def _shop_address(self, conversation: t.Any) -> str | None:
        mailbox = self.settings.get("OFFLINE_MAILBOX", conversation.locale)
        if isinstance(mailbox, str) and valid_email(mailbox.strip()):
            return mailbox.strip()
        department = conversation.department
        if department is not None and valid_email(department.email or ""):
            return t.cast(str, department.email)
        return None

    def _staff_reply_to(self, conversation: t.Any) -> str | None:
        return self.reply_address(conversation) or conversation.visitor_email

    def _customer_reply_to(self, conversation: t.Any) -> str | None:
        return self.reply_address(conversation) or self._shop_address(conversation)

    def _thread_headers(
        self, conversation: t.Any, *, automatic: bool
    ) -> dict[str, str]:
        token = conversation.reply_token
        headers = {
            "Message-ID": self.mail.message_id(token),
            # One made-up root that every mail refers to: mail programs show
            # the conversation as one thread, and a reply names its token.
            "References": self.mail.thread_id(token),
        }
        if automatic:
            # RFC 3834: holiday auto-replies must not answer this.
            headers["Auto-Submitted"] = "auto-generated"
        return headers

    # Writing the mails.

    def _queue_offline(
        self, conversation: t.Any, messages: list[t.Any], *, timed_out: bool
    ) -> list[t.Any]:
        mails = self._queue_staff(
            conversation, "offline_message", "offline", messages, timed_out=timed_out
        )
        # A copy of a chat nobody took goes to an address typed in the chat;
        # nobody is there to refuse, so past the budget it is left out.
        if self._within_mail_budget(conversation, refuse=not timed_out):
            mails += self._queue_customer(
                conversation, "offline_copy", "copy", messages, timed_out=timed_out
            )
        if not mails:
            log.warning(
                "Offline message %s is stored, but nobody gets it by mail: no"
                " operator receives offline messages and OFFLINE_MAILBOX is not set.",
                conversation.id,
            )
        return mails

    def _queue_staff(
        self,
        conversation: t.Any,
        template: str,
        kind: str,
        messages: list[t.Any],
        **extra: t.Any,
    ) -> list[t.Any]:
        return [
            self._queue_one(
                conversation,
                template,
                kind,
                messages,
                lang,
                addresses,
                reply_to=self._staff_reply_to(conversation),
                automatic=True,
                customer=False,
                **extra,
            )
            for lang, addresses in self.staff_recipients(conversation).items()
        ]

    def _within_mail_budget(self, conversation: t.Any, *, refuse: bool) -> bool:
        """Whether the customer's address may get one more mail we send unasked
        by staff (a copy, a transcript they asked for).

        Anybody can type anybody's address: every such mail counts against
        one budget per address and per the visitor's IP address, an hour, in
        every process, however it was asked for (the offline form, a chat
        start that timed out, a contact after a time-out, a transcript).

        :raises Refused: Past the budget, with ``refuse``.
        """
        if not conversation.visitor_email:
            return True
        limit = self.setting("OFFLINE_PER_HOUR")
        visitor = conversation.visitor
        senders = (
            conversation.visitor_email.lower(),
            visitor.ip_address if visitor is not None else None,
        )
        if all(
            self.limits.allow("mail-to-customer", who, limit, 3600) for who in senders
        ):
            return True
        if refuse:
            raise Refused("too-many", TOO_MANY, status=429)
        log.warning(
            "No copy of conversation %s to the address given: past its mail budget.",
            conversation.id,
        )
        return False

    def _queue_customer(
        self,
        conversation: t.Any,
        template: str,
        kind: str,
        messages: list[t.Any],
        **extra: t.Any,
    ) -> list[t.Any]:
        if not conversation.visitor_email:
            return []
        lang = self.mail.locale(conversation.locale, staff=False)
        mail = self._queue_one(
            conversation,
            template,
            kind,
            messages,
            lang,
            [conversation.visitor_email],
            reply_to=self._customer_reply_to(conversation),
            automatic=kind == "copy",
            customer=True,
            **extra,
        )
        return [mail]

    def _queue_one(
        self,
        conversation: t.Any,
        template: str,
        kind: str,
        messages: list[t.Any],
        lang: str,
        addresses: list[str],
        *,
        reply_to: str | None,
        automatic: bool,
        customer: bool,
        **extra: t.Any,
    ) -> t.Any:
        """Render one mail of the conversation in ``lang`` and put it in the outbox."""
        rendered = self.mail.render(
            template,
            lang,
            **self._context(conversation, messages, customer=customer, **extra),
        )
        return self.mail.queue(
            kind,
            addresses,
            rendered.subject,
            rendered.text,
            rendered.html,
            reply_to=reply_to,
            headers=self._thread_headers(conversation, automatic=automatic),
            conversation_id=conversation.id,
        )

    def _context(
        self,
        conversation: t.Any,
        messages: list[t.Any],
        *,
        customer: bool,
        **extra: t.Any,
    ) -> dict[str, t.Any]:
        """What a mail's templates get; ``customer``: a mail to the customer.

        ``moment(dt)`` gives a time in the reader's zone (the customer's own,
        else the shop's) and names it; ``brand`` heads mails to customers.
        """
        zone = self.setting("TIMEZONE")
        if customer:
            zone = conversation.visitor.timezone or zone
        return {
            "conversation": conversation,
            "messages": messages,
            "page_url": _web_link(conversation.page_url),
            "panel_url": _panel_url(conversation.id),
            "replies_thread": self.reply_address(conversation) is not None,
            "author_of": author_label,
            "event_text": event_text,
            "moment": lambda moment: format_moment_in_zone(moment, zone),
            "brand": self._brand(conversation) if customer else None,
            **extra,
        }

    def _brand(self, conversation: t.Any) -> dict[str, t.Any]:
        """The shop's name, logo and colour, as the customer's widget shows it."""
        colour = self.settings.get("WIDGET_COLOR", conversation.locale)
        logo = self.setting("MAIL_LOGO_URL")
        return {
            "name": self.setting("SHOP_NAME") or _display_name(self.mail.sender()),
            "logo": logo if _web_link(logo) else None,
            "color": colour,
            "ink": ink_on(colour),
        }

    def _visitor_texts(self, conversation_id: int) -> list[t.Any]:
        return [
            m
            for m in self.conversations.messages_after(conversation_id, 0, None)
            if m.kind == "text" and m.author == "visitor"
        ]

    def _mails_of(self, conversation_id: int, kind: str) -> list[t.Any]:
        return [
            mail
            for mail in self.mail.for_conversation(conversation_id)
            if mail.kind == kind
        ]

    def _announce(self, conversation: t.Any, message: t.Any) -> None:
        self.hub.publish(
            STAFF_CHANNEL, self.conversations.staff_frame(conversation, "offline")
        )
        signals.send(
            signals.offline_message_received, conversation=conversation, message=message
        )


def author_label(message: t.Any) -> str:
    """Who wrote ``message``, as the mails name them (plain text; Jinja escapes it)."""
    if message.author_name:
        return t.cast(str, message.author_name)
    return _lh("Customer") if message.author == "visitor" else _lh("Shop")


def new_token() -> str:
    # Lower-case hex survives mail systems that change the case of addresses.
    return secrets.token_hex(16)


def clean_name(name: t.Any, limit: int) -> str | None:
    """The visitor's name, one line, or ``None``.

    :raises Refused: It has a line break or is too long.
    """
    if name is None:
        return None
    if not isinstance(name, str):
        raise Refused("bad-field", N_("The name is not valid."))
    if "\r" in name or "\n" in name:
        raise Refused("bad-field", N_("The name must be on one line."))
    name = without_controls(name).strip()
    if is_blank(name):
        return None
    if len(name) > limit:
        raise Refused(
            "too-long", N_("The name is longer than %(max)d characters."), max=limit
        )
    return name or None


def clean_email(email: t.Any) -> str | None:
    """One plain e-mail address, or ``None`` when none was given.

    :raises Refused: It is not one valid address (a line break in it included).
    """
    if email is None:
        return None
    if not isinstance(email, str):
        raise Refused("bad-email", N_("This is not a valid e-mail address."))
    address = email.strip(" \t")
    if not address:
        return None
    # Said apart: a customer who pasted two lines should know what is wrong.
    if "\r" in address or "\n" in address:
        raise Refused("bad-email", N_("The e-mail address must be on one line."))
    normal = email_address(address)
    if normal is None:
        raise Refused("bad-email", N_("This is not a valid e-mail address."))
    return normal


def _display_name(sender: t.Any) -> str | None:
    """The name part of a sender ("Nordlys Butik <shop@...>"), if it has one."""
    if isinstance(sender, (tuple, list)) and sender:
        return str(sender[0]) or None
    name, _ = email.utils.parseaddr(sender or "")
    return name or None


def _web_link(url: str | None) -> str | None:
    """Only http(s) addresses become links in mails; anything else stays text."""
    if url and url.lower().startswith(("http://", "https://")):
        return url
    return None


def _panel_url(conversation_id: int) -> str | None:
    """The staff page of this message, when a URL can be built here."""
    try:
        return url_for(
            "livehelp.offline.detail", conversation_id=conversation_id, _external=True
        )
    except (RuntimeError, BuildError):
        # Outside a request without SERVER_NAME there is no host to link to.
        return None
