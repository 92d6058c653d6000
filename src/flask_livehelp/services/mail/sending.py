"""Sending the outbox: right away, and again by the background loop."""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import typing as t

import sqlalchemy as sa
from flask import current_app
from flask import Flask
from flask_mail import Message

from ...addresses import mail_address
from ...models import MailMixin
from ...models import utcnow
from .. import Basics
from ..mailer import Mailer
from .claims import holder
from .claims import MailClaims
from .smtp import MESSAGE_ERRORS
from .smtp import permanent
from .smtp import TimedConnection

log = logging.getLogger(__name__)

#: Says that a mail may have reached the server already, before a crash.
RESENT_HEADER = "X-LiveHelp-Resent"
#: The longest wait between two attempts.
MAX_BACKOFF_SECONDS = 3600
#: Mails one run of the background job sends at most.
BATCH = 50


class MailSending(MailClaims):
    """Each mail sent once, as far as SMTP allows (see the package's docstring)."""

    def __init__(self, *args: *Basics) -> None:
        super().__init__(*args)
        self._mailer = Mailer(self._send_in_context)
        self._warned = False

    def send_soon(self, mails: t.Iterable[MailMixin]) -> None:
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

    def _send(self, ids: list[int]) -> int:
        mails = [self.row(self.models.mail, mail_id) for mail_id in ids]
        state = current_app.extensions["mail"]
        sent = 0
        waiting = [mail for mail in mails if not self._given_up_after_crash(mail)]
        left = [mail.id for mail in waiting]
        try:
            connection = TimedConnection(state, self.setting("MAIL_TIMEOUT_SECONDS"))
            with self._renewing(left), connection:
                while waiting:
                    mail = waiting[0]
                    try:
                        message = self._message(mail)
                        # Not when its claim was taken (an admin's "send now").
                        ours = self._sending(mail, message)
                        if ours:
                            connection.send(message)
                    except MESSAGE_ERRORS as error:
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

    def _given_up_after_crash(self, mail: MailMixin) -> bool:
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

    def _sending(self, mail: MailMixin, message: Message) -> bool:
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
        taken = self.changed(
            sa.update(model)
            .where(model.id == mail.id, model.claimed_by == holder())
            .values(status="sending", resent=model.resent | resent)
            .execution_options(synchronize_session=False)
        )
        self.session.commit()
        return taken == 1

    def _message(self, mail: MailMixin) -> Message:
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

    def _sent(self, mail: MailMixin) -> None:
        mail.status = "sent"
        mail.sent_at = utcnow()
        mail.attempts += 1
        mail.claimed_until = mail.claimed_by = mail.claimed_at = None
        mail.last_error = None
        # One commit per mail: a crash later must not send this one again.
        self.session.commit()

    def _failed(self, mail: MailMixin, error: BaseException) -> None:
        mail.attempts += 1
        mail.claimed_until = mail.claimed_by = mail.claimed_at = None
        mail.last_error = f"{type(error).__name__}: {error}"[:2000]
        final = permanent(error) or mail.attempts >= self.setting("MAIL_MAX_ATTEMPTS")
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


#: What to do about each :meth:`MailService.problem`, for the log.
UNSENDABLE = {
    "no-flask-mail": "the app has no Flask-Mail. Call 'Mail(app)' (or"
    " 'mail.init_app(app)') and set MAIL_SERVER, and they go out.",
    "no-sender": "no sender address. Set MAIL_DEFAULT_SENDER (or"
    " LIVEHELP_MAIL_SENDER), and they go out.",
}
