"""Writing the mails of a conversation and putting them in the outbox."""

from __future__ import annotations

import email.utils
import logging

from flask import url_for
from werkzeug.routing import BuildError

from ...colours import ink_on
from ...formatting import format_moment_in_zone
from ...i18n import _lh
from ...models import ConversationMixin
from ...models import MailMixin
from ...models import MessageMixin
from ..history.wording import event_text
from .addressing import Addressing
from .rates import RateChecks

log = logging.getLogger(__name__)


class MailComposing(Addressing, RateChecks):
    """Rendering each mail in its reader's language; the caller commits."""

    def _queue_offline(
        self,
        conversation: ConversationMixin,
        messages: list[MessageMixin],
        *,
        timed_out: bool,
    ) -> list[MailMixin]:
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
        conversation: ConversationMixin,
        template: str,
        kind: str,
        messages: list[MessageMixin],
        **extra: object,
    ) -> list[MailMixin]:
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

    def _queue_customer(
        self,
        conversation: ConversationMixin,
        template: str,
        kind: str,
        messages: list[MessageMixin],
        **extra: object,
    ) -> list[MailMixin]:
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
        conversation: ConversationMixin,
        template: str,
        kind: str,
        messages: list[MessageMixin],
        lang: str,
        addresses: list[str],
        *,
        reply_to: str | None,
        automatic: bool,
        customer: bool,
        **extra: object,
    ) -> MailMixin:
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
        conversation: ConversationMixin,
        messages: list[MessageMixin],
        *,
        customer: bool,
        **extra: object,
    ) -> dict[str, object]:
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

    def _brand(self, conversation: ConversationMixin) -> dict[str, object]:
        """The shop's name, logo and colour, as the customer's widget shows it."""
        colour = self.settings.get("WIDGET_COLOR", conversation.locale)
        logo = self.setting("MAIL_LOGO_URL")
        return {
            "name": self.setting("SHOP_NAME") or _display_name(self.mail.sender()),
            "logo": logo if _web_link(logo) else None,
            "color": colour,
            "ink": ink_on(colour),
        }


def author_label(message: MessageMixin) -> str:
    """Who wrote ``message``, as the mails name them (plain text; Jinja escapes it)."""
    if message.author_name:
        return message.author_name
    return _lh("Customer") if message.author == "visitor" else _lh("Shop")


def _display_name(sender: str | tuple[str, str] | None) -> str | None:
    """The name part of a sender ("Nordlys Butik <shop@...>"), if it has one."""
    if isinstance(sender, (tuple, list)) and sender:
        return str(sender[0]) or None
    name, _ = email.utils.parseaddr(sender if isinstance(sender, str) else "")
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
