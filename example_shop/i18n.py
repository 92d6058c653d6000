"""Language choice and money formatting for the shop."""

from __future__ import annotations

from decimal import Decimal

from flask import has_request_context
from flask import request
from flask import session
from flask_babel import format_currency
from flask_babel import get_locale

#: Languages the shop has texts for, in the order we prefer them on a tie.
LANGUAGES = ("da", "en")

#: The language when nothing else decides (also ``BABEL_DEFAULT_LOCALE``).
DEFAULT_LANGUAGE = "en"

#: The session key that remembers a language picked by the customer.
SESSION_KEY = "lang"

CURRENCY = "DKK"


def select_locale() -> str | None:
    """Pick the language: ``?lang=``, then the remembered choice, then the browser's.

    ``None`` means Flask-Babel's ``BABEL_DEFAULT_LOCALE``.
    """
    # Background work (mail, clean-up jobs) renders outside any request.
    if not has_request_context():
        return None
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        remember_language(asked)
        return asked
    remembered = session.get(SESSION_KEY)
    if remembered in LANGUAGES:
        return str(remembered)
    return request.accept_languages.best_match(LANGUAGES)


def remember_language(code: str) -> None:
    """Store the customer's language choice for the rest of the visit."""
    # Writing only on a change keeps the session cookie, and so caches, untouched.
    if session.get(SESSION_KEY) != code:
        session[SESSION_KEY] = code


def current_language() -> str:
    """The two-letter code of the language this request is shown in."""
    locale = get_locale()
    return locale.language if locale is not None else DEFAULT_LANGUAGE


def format_price(minor_units: int) -> str:
    """Format a price held in øre as kroner in the current language."""
    # Decimal keeps 12999 øre at exactly 129.99; a float would not.
    return format_currency(Decimal(minor_units) / 100, CURRENCY)
