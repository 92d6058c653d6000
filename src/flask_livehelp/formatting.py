"""Dates, times and durations, in the reader's language and time zone."""

from __future__ import annotations

import datetime as dt

from babel import Locale
from babel.dates import format_datetime
from babel.dates import format_timedelta
from babel.dates import get_timezone
from flask import current_app

from .i18n import current_language


def _zone(timezone: str | None) -> dt.tzinfo:
    name = timezone or current_app.config.get("BABEL_DEFAULT_TIMEZONE") or "UTC"
    try:
        return get_timezone(name)
    except LookupError:
        return dt.UTC


def format_moment(
    moment: dt.datetime | None, timezone: str | None = None, format: str = "medium"
) -> str:
    """``moment`` as the reader writes dates, in their time zone."""
    if moment is None:
        return ""
    locale = Locale.parse(current_language())
    return format_datetime(moment, format, tzinfo=_zone(timezone), locale=locale)


def format_duration(delta: dt.timedelta | None) -> str:
    """How long something took, e.g. "3 minutes" or "3 minutter"."""
    if delta is None:
        return ""
    return format_timedelta(
        delta, threshold=1.2, locale=Locale.parse(current_language())
    )


def language_name(code: str) -> str:
    """A language's name in the reader's language, e.g. "dansk" or "Danish"."""
    try:
        name = Locale.parse(code).get_display_name(Locale.parse(current_language()))
    except (ValueError, LookupError):
        return code
    return name or code
