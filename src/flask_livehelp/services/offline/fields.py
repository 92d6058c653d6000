"""Checking what a visitor types: names and addresses never become headers as typed."""

from __future__ import annotations

import secrets

from ...addresses import email_address
from ...errors import Refused
from ...i18n import N_
from ...text import is_blank
from ...text import without_controls


def new_token() -> str:
    # Lower-case hex survives mail systems that change the case of addresses.
    return secrets.token_hex(16)


def clean_name(name: object, limit: int) -> str | None:
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


def clean_email(email: object) -> str | None:
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
