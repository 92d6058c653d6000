"""A mail in its reader's language, written into the outbox."""

from __future__ import annotations

import dataclasses
import re
import secrets
import typing as t

from babel import Locale
from flask import current_app
from flask import render_template

from ...addresses import valid_email
from ...errors import Refused
from ...i18n import has_babel
from ...i18n import in_language
from ...i18n import N_
from ...models import MailMixin
from ...models import utcnow
from .. import Service

#: Marks every mail we send, so the inbound side never takes our own for a reply.
KIND_HEADER = "X-LiveHelp-Mail"
HEADER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,75}")
# Header values we write are plain printable text; a line break would start a
# header of its own.
HEADER_VALUE = re.compile(r"[^\x00-\x1f\x7f]{0,998}")


@dataclasses.dataclass(frozen=True)
class Rendered:
    """A mail's subject and its text and HTML parts, in one language."""

    subject: str
    text: str
    html: str | None


class MailWriting(Service):
    """Languages, templates, addresses and headers of the mails we write."""

    # Languages and templates.

    def default_locale(self, staff: bool) -> str:
        """The language of a mail whose reader chose none."""
        preferred = self.setting("MAIL_LOCALE") if staff else None
        return preferred or current_app.config.get("BABEL_DEFAULT_LOCALE") or "en"

    def locale(self, preferred: str | None, *, staff: bool) -> str:
        """``preferred`` if Babel knows it, else the default for staff or customers."""
        if preferred:
            try:
                Locale.parse(preferred.replace("-", "_"))
                return preferred.replace("-", "_")
            except (ValueError, LookupError):
                pass
        return self.default_locale(staff)

    def render(self, template: str, lang: str, **context: object) -> Rendered:
        """Render ``livehelp/email/<template>`` (``.subject.txt``, ``.txt``, ``.html``).

        The host overrides any of them with its own file of the same name.
        Jinja escapes everything in the HTML part, the visitor's text included.
        """
        base = f"livehelp/email/{template}"
        context.setdefault("lang", lang.split("_")[0])
        with in_language(lang if has_babel() else None):
            subject = render_template(f"{base}.subject.txt", **context)
            text = render_template(f"{base}.txt", **context)
            html = render_template(f"{base}.html", **context)
        # One line, however the template or a name in it was written.
        return Rendered(" ".join(subject.split())[:300], text, html)

    # Writing mails.

    def sender(self) -> str | None:
        mail = current_app.extensions.get("mail")
        default = mail.default_sender if mail is not None else None
        return t.cast("str | None", self.setting("MAIL_SENDER") or default)

    def message_id(self, token: str | None = None) -> str:
        """A new Message-ID; with a conversation's token a reply finds its way back."""
        unique = secrets.token_hex(8)
        left = f"livehelp.{token}.{unique}" if token else f"livehelp.{unique}"
        return f"<{left}@{self.domain()}>"

    def thread_id(self, token: str | None) -> str:
        """The Message-ID every mail of one conversation refers to, so they thread."""
        return f"<livehelp.{token}@{self.domain()}>"

    def domain(self) -> str:
        sender = self.sender() or ""
        domain = sender.rpartition("@")[2].strip(" >")
        return domain if re.fullmatch(r"[A-Za-z0-9.-]{1,253}", domain) else "localhost"

    def queue(
        self,
        kind: str,
        recipients: t.Sequence[str],
        subject: str,
        text: str,
        html: str | None = None,
        *,
        reply_to: str | None = None,
        headers: dict[str, str] | None = None,
        conversation_id: int | None = None,
    ) -> MailMixin:
        """Add a mail to the outbox, in the caller's transaction.

        Nothing is committed here: the mail is stored with what caused it, or
        not at all. After the commit, :meth:`send_soon` sends it.

        :raises Refused: An address is not one plain, valid e-mail address.
        :raises ValueError: A header would not be one safe line.
        """
        addresses = _unique(recipients)
        if not addresses or not all(_address(a) for a in addresses):
            raise Refused("bad-email", N_("This is not a valid e-mail address."))
        if reply_to is not None and not _address(reply_to):
            raise Refused("bad-email", N_("This is not a valid e-mail address."))
        extra = dict(headers or {})
        extra.setdefault("Message-ID", self.message_id())
        extra[KIND_HEADER] = kind
        for name, value in extra.items():
            if not (HEADER_NAME.fullmatch(name) and HEADER_VALUE.fullmatch(value)):
                raise ValueError(f"The mail header {name!r} is not one safe line.")
        mail = self.models.mail(
            kind=kind,
            recipients=addresses,
            subject=" ".join(subject.split())[:300],
            text_body=text,
            html_body=html,
            sender=self.sender(),
            reply_to=reply_to,
            headers=extra,
            conversation_id=conversation_id,
            status="pending",
            attempts=0,
            next_attempt_at=utcnow(),
        )
        self.session.add(mail)
        self.session.flush()
        return mail


def _address(address: str) -> bool:
    return valid_email(address)


def _unique(addresses: t.Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for address in addresses:
        address = address.strip(" \t")
        seen.setdefault(address.lower(), address)
    return list(seen.values())
