"""Dates, times and durations, in the reader's language and time zone."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from babel import Locale
from babel.dates import format_datetime
from babel.dates import format_timedelta
from babel.dates import get_timezone
from babel.dates import get_timezone_name
from flask import current_app

from .i18n import current_language


def time_zone(timezone: str | None) -> dt.tzinfo:
    """The reader's time zone by name, else the app's default, else UTC."""
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
    return format_datetime(moment, format, tzinfo=time_zone(timezone), locale=locale)


def valid_timezone(name: object) -> str | None:
    """``name`` if it is a time zone we know (an IANA name), else ``None``.

    Browsers tell theirs; what comes from a browser is checked before use.
    """
    if not isinstance(name, str) or not 0 < len(name) <= 64:
        return None
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
    return name


def format_moment_in_zone(moment: dt.datetime | None, timezone: str) -> str:
    """``moment`` in ``timezone``, with the zone's name: a time a mail can give.

    E.g. "5. dec. 2026 14.03.00 (Centraleuropæisk normaltid)": whoever reads
    it, wherever they are, knows which time it is.
    """
    if moment is None:
        return ""
    locale = Locale.parse(current_language())
    zone = time_zone(timezone)
    when = format_datetime(moment, "medium", tzinfo=zone, locale=locale)
    name = get_timezone_name(moment.astimezone(zone), "long", locale=locale)
    return f"{when} ({name})"


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
