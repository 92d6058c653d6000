"""The mail outbox: every mail is written with what caused it, then sent.

A mail is a row written in the caller's transaction, so it exists exactly
when what caused it (an offline message, an answer) was stored. It is sent
right after the commit and again by the background loop until the SMTP server
accepts it; only then is it marked sent. Each sender claims a mail with one
atomic UPDATE first, so two processes never send the same mail.

Exactly once, as far as SMTP allows: a mail is marked ``sending`` (and
committed) before it goes to the server, and ``sent`` after. A process that
dies between the two leaves it ``sending``, and nobody can know whether the
server took it. Such a mail is sent once more, with the same Message-ID and
an ``X-LiveHelp-Resent`` header (a receiver may drop the copy it has), and
never a third time. Claims are short and renewed while a sender works, so a
dead process's mails go out again within ``LIVEHELP_MAIL_CLAIM_SECONDS``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import re
import secrets
import smtplib
import socket
import threading
import typing as t

import sqlalchemy as sa
from babel import Locale
from flask import current_app
from flask import Flask
from flask import render_template
from flask_mail import BadHeaderError
from flask_mail import Connection
from flask_mail import Message

from ..addresses import mail_address
from ..addresses import valid_email
from ..errors import Refused
from ..i18n import has_babel
from ..i18n import in_language
from ..i18n import N_
from ..models import utcnow
from . import Service
from .mailer import Mailer

log = logging.getLogger(__name__)

#: Says that a mail may have reached the server already, before a crash.
RESENT_HEADER = "X-LiveHelp-Resent"
#: The longest wait between two attempts.
MAX_BACKOFF_SECONDS = 3600
#: Mails one run of the background job sends at most.
BATCH = 50
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


class _TimedConnection(Connection):
    """Flask-Mail's connection with a time limit, so a dead server cannot hang us."""

    def __init__(self, mail: t.Any, timeout: float) -> None:
        super().__init__(mail)
        self.timeout = timeout

    def configure_host(self) -> smtplib.SMTP:
        mail = self.mail
        host: smtplib.SMTP
        if mail.use_ssl:
            host = smtplib.SMTP_SSL(mail.server, mail.port, timeout=self.timeout)
        else:
            host = smtplib.SMTP(mail.server, mail.port, timeout=self.timeout)
        host.set_debuglevel(int(mail.debug))
        if mail.use_tls:
            host.starttls()
        if mail.username and mail.password:
            host.login(mail.username, mail.password)
        return host


class MailService(Service):
    def __init__(self, *args: t.Any) -> None:
        super().__init__(*args)
        self._mailer = Mailer(self._send_in_context)
        self._warned = False

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

    def render(self, template: str, lang: str, **context: t.Any) -> Rendered:
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

    def thread_id(self, token: str) -> str:
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
    ) -> t.Any:
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

    # Sending.

    def send_soon(self, mails: t.Iterable[t.Any]) -> None:
        """Send these just-committed mails now, as ``LIVEHELP_MAIL_SEND_NOW`` says.

        Whatever does not go out now, the background loop sends later.
        """
        ids = [mail if isinstance(mail, int) else mail.id for mail in mails]
        mode = self.setting("MAIL_SEND_NOW")
        if not ids or mode == "off":
            return
        if mode == "inline":
            self.send_ids(ids)
            return
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        self._mailer.put(app, ids)

    def _send_in_context(self, app: Flask, ids: list[int]) -> None:
        with app.app_context():
            try:
                self.send_ids(ids)
            finally:
                self.session.remove()

    def wait_idle(self, timeout: float = 30) -> None:
        """Wait for the mails being sent right now (tests, and a clean shutdown)."""
        self._mailer.wait_idle(timeout)

    def send_due(self, limit: int = BATCH) -> int:
        """Send the mails that are due (the background job); how many went out."""
        if not self.can_send():
            return 0
        model = self.models.mail
        now = utcnow()
        due = self.session.execute(
            sa.select(model.id)
            .where(model.status.in_(("pending", "sending")))
            .where(model.next_attempt_at <= now)
            .where(sa.or_(model.claimed_until.is_(None), model.claimed_until < now))
            .order_by(model.next_attempt_at, model.id)
            .limit(limit)
        ).scalars()
        return self.send_ids(list(due))

    def send_ids(self, ids: list[int]) -> int:
        """Send these mails if they are due and nobody else is sending them."""
        if not self.can_send():
            return 0
        claimed = [mail_id for mail_id in ids if self._claim(mail_id)]
        if not claimed:
            return 0
        return self._send(claimed)

    def problem(self) -> str | None:
        """Why no mail can go out, or ``None`` when mail is set up."""
        if "mail" not in current_app.extensions:
            return "no-flask-mail"
        if not self.sender():
            return "no-sender"
        return None

    def can_send(self) -> bool:
        """Whether mail is set up; until it is, mails wait in the outbox."""
        problem = self.problem()
        if problem is None:
            return True
        if not self._warned:
            self._warned = True
            log.error(
                "Flask-LiveHelp keeps its mails in the outbox: %s",
                UNSENDABLE[problem],
            )
        return False

    def _claim(self, mail_id: int) -> bool:
        model = self.models.mail
        now = utcnow()
        taken = self.session.execute(
            sa.update(model)
            .where(model.id == mail_id, model.status.in_(("pending", "sending")))
            .where(model.next_attempt_at <= now)
            .where(sa.or_(model.claimed_until.is_(None), model.claimed_until < now))
            .values(
                claimed_until=now + self._claim_time(),
                claimed_by=_holder(),
                claimed_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        self.session.commit()
        return t.cast(int, taken.rowcount) == 1

    def _claim_time(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.setting("MAIL_CLAIM_SECONDS"))

    def _renew(self, ids: list[int]) -> None:
        """This process is alive and still sending these: keep them claimed."""
        if not ids:
            return
        model = self.models.mail
        self.session.execute(
            sa.update(model)
            .where(model.id.in_(ids), model.claimed_by == _holder())
            .values(claimed_until=utcnow() + self._claim_time())
            .execution_options(synchronize_session=False)
        )
        self.session.commit()

    def _renewing(self, ids: list[int]) -> _Renewer:
        """Renew the claims on ``ids`` (those still there) while this sends.

        On a thread of its own: one slow server answer must not let the
        claims of a live sender lapse, or another process would send the
        same mails again.
        """
        app = current_app._get_current_object()  # type: ignore[attr-defined]

        def renew() -> None:
            with app.app_context():
                try:
                    self._renew(list(ids))
                finally:
                    self.session.remove()

        return _Renewer(renew, self._claim_time().total_seconds() / 3)

    def _send(self, ids: list[int]) -> int:
        mails = [self.session.get(self.models.mail, mail_id) for mail_id in ids]
        state = current_app.extensions["mail"]
        sent = 0
        waiting = [mail for mail in mails if not self._given_up_after_crash(mail)]
        left = [mail.id for mail in waiting]
        try:
            connection = _TimedConnection(state, self.setting("MAIL_TIMEOUT_SECONDS"))
            with self._renewing(left), connection:
                while waiting:
                    mail = waiting[0]
                    try:
                        message = self._message(mail)
                        # Not when its claim was taken (an admin's "send now").
                        ours = self._sending(mail, message)
                        if ours:
                            connection.send(message)
                    except _MESSAGE_ERRORS as error:
                        # This mail is at fault, not the connection: go on.
                        self._failed(mail, error)
                    else:
                        if ours:
                            self._sent(mail)
                            sent += 1
                    waiting.pop(0)
                    left.pop(0)
        except (OSError, smtplib.SMTPException) as error:
            # The server is away (or went away): every mail not sent waits.
            for mail in waiting:
                self._failed(mail, error)
        return sent

    def _given_up_after_crash(self, mail: t.Any) -> bool:
        """A mail sent again after a crash, then left ``sending`` once more."""
        if mail.status != "sending" or not mail.resent:
            return False
        mail.status = "sent"
        mail.claimed_until = mail.claimed_by = mail.claimed_at = None
        mail.last_error = (
            "A sender stopped twice while sending it; the server may have it."
            " Not sent a third time."
        )
        self.session.commit()
        return True

    def _sending(self, mail: t.Any, message: Message) -> bool:
        """Committed before the server gets it: a crash then is known.

        Whether this process still holds the mail's claim; one it lost is
        not sent from here.
        """
        resent = mail.status == "sending"
        if resent:
            # A sender died with this one at the server: maybe it arrived.
            message.extra_headers = {
                **(message.extra_headers or {}),
                RESENT_HEADER: "after a crash; may be a copy",
            }
        model = self.models.mail
        taken = self.session.execute(
            sa.update(model)
            .where(model.id == mail.id, model.claimed_by == _holder())
            .values(status="sending", resent=model.resent | resent)
            .execution_options(synchronize_session=False)
        )
        self.session.commit()
        return t.cast(int, taken.rowcount) == 1

    def _message(self, mail: t.Any) -> Message:
        headers = dict(mail.headers or {})
        message_id = headers.pop("Message-ID", None)
        message = Message(
            subject=mail.subject,
            recipients=[mail_address(a) for a in mail.recipients],
            body=mail.text_body,
            html=mail.html_body,
            # A mail written before the shop set its sender has none of its own.
            sender=mail.sender or self.sender(),
            reply_to=mail_address(mail.reply_to) if mail.reply_to else None,
            extra_headers=headers,
        )
        if message_id:
            message.msgId = message_id
        return message

    def _sent(self, mail: t.Any) -> None:
        mail.status = "sent"
        mail.sent_at = utcnow()
        mail.attempts += 1
        mail.claimed_until = mail.claimed_by = mail.claimed_at = None
        mail.last_error = None
        # One commit per mail: a crash later must not send this one again.
        self.session.commit()

    def _failed(self, mail: t.Any, error: BaseException) -> None:
        mail.attempts += 1
        mail.claimed_until = mail.claimed_by = mail.claimed_at = None
        mail.last_error = f"{type(error).__name__}: {error}"[:2000]
        final = _permanent(error) or mail.attempts >= self.setting("MAIL_MAX_ATTEMPTS")
        mail.status = "failed" if final else "pending"
        if not final:
            wait = self.setting("MAIL_RETRY_SECONDS") * 2 ** (mail.attempts - 1)
            mail.next_attempt_at = utcnow() + dt.timedelta(
                seconds=min(wait, MAX_BACKOFF_SECONDS)
            )
        self.session.commit()
        log.warning(
            "Mail %s (%s) was not sent, attempt %s%s: %s",
            mail.id,
            mail.kind,
            mail.attempts,
            " (given up)" if final else "",
            mail.last_error,
        )

    # The outbox, as managers and admins see it.

    def problems(
        self, limit: int = 100, visible: sa.ColumnElement[bool] | None = None
    ) -> list[t.Any]:
        """Failed mails, then every mail not sent yet, the oldest first.

        A mail waiting for its first try is listed too: a send-now is what
        it may need (its sender is stuck, or mail is not set up yet).

        :param visible: Only the mails this condition allows
            (:func:`~flask_livehelp.services.access.mail_clause`).
        """
        model = self.models.mail
        seen = sa.true() if visible is None else visible
        failed = sa.select(model).where(model.status == "failed", seen)
        waiting = sa.select(model).where(model.status.in_(("pending", "sending")), seen)
        rows = [
            *self.session.execute(failed.order_by(model.id.desc()).limit(limit)),
            *self.session.execute(waiting.order_by(model.id).limit(limit)),
        ]
        return [row[0] for row in rows]

    def counts(self, visible: sa.ColumnElement[bool] | None = None) -> dict[str, int]:
        model = self.models.mail
        query = sa.select(model.status, sa.func.count()).group_by(model.status)
        if visible is not None:
            query = query.where(visible)
        rows = self.session.execute(query).all()
        return {status: count for status, count in rows}

    def allows(self, mail_id: int, visible: sa.ColumnElement[bool]) -> bool:
        """Whether the mail exists and the condition lets one see it."""
        model = self.models.mail
        found = self.session.execute(
            sa.select(model.id).where(model.id == mail_id, visible)
        ).scalar_one_or_none()
        return found is not None

    def for_conversation(self, conversation_id: int) -> list[t.Any]:
        model = self.models.mail
        query = (
            sa.select(model)
            .where(model.conversation_id == conversation_id)
            .order_by(model.id)
        )
        return list(self.session.execute(query).scalars())

    def retry(self, mail_id: int) -> t.Any:
        """Send a mail now: a failed one from the start (after an admin fixed the
        cause), a waiting one without waiting, a claimed one whatever holds it."""
        mail = self.session.get(self.models.mail, mail_id)
        if mail is None or mail.status == "sent":
            raise Refused("not-failed", N_("Only a failed mail can be sent again."))
        if mail.status == "failed":
            mail.status = "pending"
            mail.attempts = 0
        mail.next_attempt_at = utcnow()
        mail.claimed_until = mail.claimed_by = mail.claimed_at = None
        self.session.commit()
        return mail


class _Renewer:
    """Runs ``renew`` every ``every`` seconds on a thread, while in ``with``."""

    def __init__(self, renew: t.Callable[[], None], every: float) -> None:
        self._renew = renew
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="livehelp-claim-renewer", daemon=True
        )

    def __enter__(self) -> _Renewer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self._renew()
            except Exception:
                log.exception("Renewing the claims on mails being sent failed.")


#: What to do about each :meth:`MailService.problem`, for the log.
UNSENDABLE = {
    "no-flask-mail": "the app has no Flask-Mail. Call 'Mail(app)' (or"
    " 'mail.init_app(app)') and set MAIL_SERVER, and they go out.",
    "no-sender": "no sender address. Set MAIL_DEFAULT_SENDER (or"
    " LIVEHELP_MAIL_SENDER), and they go out.",
}


def _holder() -> str:
    """Who claims a mail: this process, on this machine."""
    return f"{socket.gethostname()}:{os.getpid()}"


# Errors that concern one mail; the connection can go on with the next.
_MESSAGE_ERRORS = (
    smtplib.SMTPRecipientsRefused,
    smtplib.SMTPSenderRefused,
    smtplib.SMTPDataError,
    smtplib.SMTPNotSupportedError,
    BadHeaderError,
    UnicodeError,
)


def _permanent(error: BaseException) -> bool:
    """Whether trying again cannot help (the server said no for good)."""
    if isinstance(error, (BadHeaderError, UnicodeError)):
        return True
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPResponseException):
        return error.smtp_code >= 500
    return False


def _address(address: str) -> bool:
    return valid_email(address)


def _unique(addresses: t.Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for address in addresses:
        address = address.strip(" \t")
        seen.setdefault(address.lower(), address)
    return list(seen.values())
