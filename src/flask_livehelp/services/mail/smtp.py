"""The SMTP side: a connection with a time limit, and errors that are final."""

from __future__ import annotations

import smtplib

from flask_mail import BadHeaderError
from flask_mail import Connection
from flask_mail import Mail


class TimedConnection(Connection):
    """Flask-Mail's connection with a time limit, so a dead server cannot hang us."""

    def __init__(self, mail: Mail, timeout: float) -> None:
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


# Errors that concern one mail; the connection can go on with the next.
MESSAGE_ERRORS = (
    smtplib.SMTPRecipientsRefused,
    smtplib.SMTPSenderRefused,
    smtplib.SMTPDataError,
    smtplib.SMTPNotSupportedError,
    BadHeaderError,
    UnicodeError,
)


def permanent(error: BaseException) -> bool:
    """Whether trying again cannot help (the server said no for good)."""
    if isinstance(error, (BadHeaderError, UnicodeError)):
        return True
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPResponseException):
        return error.smtp_code >= 500
    return False
