"""E-mail addresses: one check for every address we accept, keep or mail to.

Customers, operators and admins type addresses in many places (the chat's
form, the offline form, a time-out's contact frame, operator accounts, the
shop's mailboxes); each goes through :func:`email_address`, which is
email-validator's check without a DNS look-up. So ``o'brien@example.com`` and
``kunde@bøger.dk`` are addresses, and a display name, a second address or a
line break (a header injection) never is.
"""

from __future__ import annotations

import email_validator

#: The longest address SMTP carries (RFC 5321, a path of 256 with its brackets).
MAX_LENGTH = 254


def email_address(text: str | None) -> str | None:
    """``text`` as one e-mail address in its normal form, or ``None``.

    The domain may be internationalised; the part before the @ must be
    ASCII, since not every relay speaks SMTPUTF8. Nothing around the
    address is trimmed: a caller strips what its form allows.
    """
    if not isinstance(text, str) or not text or len(text) > MAX_LENGTH:
        return None
    try:
        checked = email_validator.validate_email(
            text, check_deliverability=False, allow_smtputf8=False
        )
    except email_validator.EmailNotValidError:
        return None
    return str(checked.normalized)


def valid_email(text: str | None) -> bool:
    """Whether ``text`` is one e-mail address, safe in a mail header."""
    return email_address(text) is not None


def mail_address(text: str) -> str:
    """The form of a valid address the SMTP server gets: an ASCII domain."""
    checked = email_validator.validate_email(
        text, check_deliverability=False, allow_smtputf8=False
    )
    return str(checked.ascii_email)
