"""Every ``LIVEHELP_*`` setting with its default, and strict access to them."""

from __future__ import annotations

import copy
import difflib
import logging
import typing as t
from urllib.parse import urlsplit

from flask import current_app
from flask import Flask

PREFIX = "LIVEHELP_"

#: Every setting, without the ``LIVEHELP_`` prefix, each of its own type.
#: ``docs/configuration.md`` documents each one; a test keeps the two in step.
DEFAULTS: dict[str, t.Any] = {
    # Where the blueprints live.
    "URL_PREFIX": "/livehelp",
    "SUBDOMAIN": None,
    # The database used when the host has no Flask-SQLAlchemy of its own.
    # ``None`` means a SQLite file ``livehelp.sqlite3`` in the instance folder.
    "DATABASE_URI": None,
    # Write-ahead log, a busy timeout and synchronous=NORMAL on the SQLite
    # database our tables live in, the host's own included.
    "TUNE_SQLITE": True,
    # Origins besides the app's own that may embed the widget and open sockets.
    "ALLOWED_ORIGINS": [],
    # Origins besides the visitor's page's own that operators may push pages of.
    "PUSH_ORIGINS": [],
    # How often an idle widget asks for the operators' state.
    "STATUS_POLL_SECONDS": 10,
    # Visitor input limits.
    "MAX_MESSAGE_LENGTH": 4000,
    "MAX_NAME_LENGTH": 80,
    "MAX_FRAME_BYTES": 16384,
    # Limits that follow the visitor and their IP address, in every process
    # (with the Redis hub): messages, chats started, new visitors, open
    # sockets (per process), and how soon a socket must say hello.
    "VISITOR_MESSAGES_PER_MINUTE": 30,
    "MESSAGES_PER_MINUTE_PER_IP": 120,
    "CHATS_PER_HOUR": 10,
    "CHATS_PER_HOUR_PER_IP": 30,
    "NEW_VISITORS_PER_MINUTE_PER_IP": 30,
    "SOCKETS_PER_IP": 30,
    "HELLO_WITHIN_SECONDS": 10,
    # What the widget looks like and asks; admins can change these in the panel.
    # WIDGET_TEXTS replaces our texts: {"offline": "..."} in every language,
    # or {"da": {"offline": "..."}} per language.
    "WIDGET_TEXTS": {},
    "WIDGET_COLOR": "#1d6b3a",
    "WIDGET_POSITION": "right",
    # Pixels between the button and the bottom of the screen (above a shop's
    # own bar at the bottom, say); a shop's CSS can move it per page.
    "WIDGET_BOTTOM": 16,
    # "optional", "required" or "hidden".
    "WIDGET_ASK_NAME": "optional",
    "WIDGET_ASK_EMAIL": "optional",
    # Time-outs (the seeds' defaults): nobody takes a queued chat; the visitor
    # says nothing; nobody says anything.
    "QUEUE_TIMEOUT_SECONDS": 240,
    "IDLE_SECONDS": 120,
    "INACTIVE_CLOSE_SECONDS": 1800,
    # A chat needs a tag before it is ended.
    "REQUIRE_TAG": False,
    # Give a new chat to the least busy online operator of its department.
    "AUTO_ASSIGN": False,
    # Offline messages also go to this central mailbox.
    "OFFLINE_MAILBOX": None,
    # Chats older than this many days are deleted; None keeps them.
    "HISTORY_RETENTION_DAYS": None,
    # Several worker processes: a Redis URL (``redis://host:6379/0``) joins
    # them through Redis pub/sub; None keeps events within one process.
    "HUB_URL": None,
    # Put before every Redis channel, so two shops on one Redis never mix;
    # None means ``livehelp:<app name>:``.
    "HUB_PREFIX": None,
    # Mail: offline messages, answers and transcripts go through an outbox
    # and Flask-Mail. The From address; None means MAIL_DEFAULT_SENDER.
    "MAIL_SENDER": None,
    # The language of staff mails for operators who chose none; None means
    # BABEL_DEFAULT_LOCALE. Mails to customers are in the customer's language.
    "MAIL_LOCALE": None,
    # The shop's time zone (an IANA name, e.g. "Europe/Copenhagen"): the times
    # in staff mails, and in mails to a customer whose browser did not tell
    # theirs. Mails always name the zone.
    "TIMEZONE": "UTC",
    # The top of mails to customers: the shop's name (None: the sender's
    # display name, if it has one) and a logo (an https:// URL, or None), on
    # the widget's colour.
    "SHOP_NAME": None,
    "MAIL_LOGO_URL": None,
    # Where replies come back, with "{token}" for the conversation's own part,
    # e.g. "reply+{token}@shop.example" (the mailbox LIVEHELP_IMAP_URL reads or
    # the inbound webhook hears of). None: replies go to the shop's mailbox.
    "REPLY_ADDRESS": None,
    # The secret that signs inbound-mail webhooks; None turns the webhook off.
    "INBOUND_SECRET": None,
    # The mailbox of replies, e.g. "imaps://user:password@imap.shop.example/INBOX";
    # None: nobody fetches mail. Its mails are marked read once handled.
    "IMAP_URL": None,
    "FETCH_MAIL_SECONDS": 60,
    # "thread": send right after the commit without making anyone wait;
    # "inline": before the request answers; "off": the background loop only.
    "MAIL_SEND_NOW": "thread",
    "MAIL_SEND_SECONDS": 5,
    "MAIL_TIMEOUT_SECONDS": 30,
    # A sender's claim on the mails it sends, renewed while it works; a
    # process that dies holds them no longer than this.
    "MAIL_CLAIM_SECONDS": 30,
    # After this many failed attempts a mail is marked failed (admins see it);
    # the wait between attempts starts here and doubles, up to an hour.
    "MAIL_MAX_ATTEMPTS": 10,
    "MAIL_RETRY_SECONDS": 30,
    # Offline messages per hour from one visitor, one IP address, or to one
    # e-mail address; transcripts per hour of one conversation or visitor.
    "OFFLINE_PER_HOUR": 5,
    "TRANSCRIPTS_PER_HOUR": 3,
    # Signing in: after this many failed sign-ins for one e-mail address (in a
    # row) or from one IP address, sign-ins are refused for the lockout time.
    "LOGIN_MAX_FAILURES": 5,
    "LOGIN_MAX_FAILURES_PER_IP": 30,
    "LOGIN_LOCKOUT_SECONDS": 900,
    # The panel's own cookie (its sign-in and CSRF token), and how many days
    # a sign-in lasts at most.
    "COOKIE_NAME": "livehelp_panel",
    "PANEL_SESSION_DAYS": 7,
    # Werkzeug's method for new password hashes; old hashes keep their own.
    "PASSWORD_HASH": "scrypt",
    # How often the background loop deletes chats older than
    # HISTORY_RETENTION_DAYS (and old sign-in attempts).
    "PURGE_EVERY_SECONDS": 3600,
    # Operators.
    "DEFAULT_MAX_CHATS": 3,
    "HEARTBEAT_SECONDS": 10,
    # A socket whose client answered nothing for this long is closed (the
    # server pings a quiet one every HEARTBEAT_SECONDS).
    "CLIENT_SILENCE_SECONDS": 30,
    "PRESENCE_GRACE_SECONDS": 60,
    # Group commit: messages posted at about the same time are stored in one
    # transaction of at most this many (1 stores each alone), and the first
    # of them waits this long for more before storing.
    "GROUP_COMMIT_MESSAGES": 100,
    "GROUP_COMMIT_SECONDS": 0.0,
    # Languages.
    "TRANSLATION_DIRECTORIES": ["builtin"],
    "WIDGET_LANG_PARAM": "lang",
    # The background loop: "auto" starts it in each serving process on its
    # first request (not under TESTING); "thread" always; "off" leaves it to
    # ``flask livehelp worker``.
    "JOBS": "auto",
    "JOBS_TICK_SECONDS": 1.0,
    # Command line.
    "CLI_NAME": "livehelp",
}


#: The settings that take one of a few values, and those values.
CHOICES: dict[str, tuple[object, ...]] = {
    "WIDGET_POSITION": ("right", "left"),
    "WIDGET_ASK_NAME": ("optional", "required", "hidden"),
    "WIDGET_ASK_EMAIL": ("optional", "required", "hidden"),
    "MAIL_SEND_NOW": ("thread", "inline", "off"),
    "JOBS": ("auto", "thread", "off"),
}

#: Settings that hold origins (``https://shop.example``), each checked.
ORIGIN_LISTS = ("ALLOWED_ORIGINS", "PUSH_ORIGINS")

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A ``LIVEHELP_*`` setting has a value it cannot take."""


def init_config(app: Flask) -> None:
    """Write every default into ``app.config`` unless the app set it, then
    check every value, so a typo fails at start-up and not on some request.

    :raises ConfigError: A value is not one the setting takes.
    """
    for key, value in DEFAULTS.items():
        # Copied, so two apps never share (and mutate) one default list.
        app.config.setdefault(PREFIX + key, copy.deepcopy(value))
    for key in DEFAULTS:
        _check(key, app.config[PREFIX + key])
    _warn_about_unknown(app)


def _check(key: str, value: object) -> None:
    default = DEFAULTS[key]
    if key in CHOICES:
        if value not in CHOICES[key]:
            _refuse(key, value, "one of " + ", ".join(map(repr, CHOICES[key])))
    elif isinstance(default, bool):
        if not isinstance(value, bool):
            _refuse(key, value, "True or False")
    elif isinstance(default, (int, float)):
        # None (or 0) turns a limit off.
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if value is not None and (not number or t.cast(float, value) < 0):
            _refuse(key, value, "a number, 0 or more")
    elif isinstance(default, list):
        if not isinstance(value, (list, tuple)):
            _refuse(key, value, "a list")
        if key in ORIGIN_LISTS:
            for origin in value:
                if not _is_origin(origin):
                    _refuse(key, origin, "origins like 'https://shop.example'")


def _is_origin(origin: object) -> bool:
    if not isinstance(origin, str):
        return False
    parts = urlsplit(origin)
    return (
        parts.scheme in ("http", "https")
        and bool(parts.netloc)
        and not (parts.path or parts.query or parts.fragment)
    )


def _refuse(key: str, value: object, wanted: str) -> t.NoReturn:
    raise ConfigError(f"{PREFIX}{key} = {value!r}: it takes {wanted}.")


def _warn_about_unknown(app: Flask) -> None:
    """A setting we do not have is most likely a typo of one we do."""
    for name in app.config:
        if not name.startswith(PREFIX) or name[len(PREFIX) :] in DEFAULTS:
            continue
        close = difflib.get_close_matches(name[len(PREFIX) :], DEFAULTS, n=1)
        hint = f" Did you mean {PREFIX}{close[0]}?" if close else ""
        log.warning("%s is not a Flask-LiveHelp setting.%s", name, hint)


# Loosely typed: each setting has its own type, as in DEFAULTS.
def config_value(key: str, app: Flask | None = None) -> t.Any:
    """Return the setting ``LIVEHELP_<key>``.

    :param key: The name without the ``LIVEHELP_`` prefix.
    :param app: Read this app's config instead of ``current_app``'s.
    :raises KeyError: ``key`` is not a Flask-LiveHelp setting, so a typo is an
        error instead of a silent ``None``.
    """
    if key not in DEFAULTS:
        raise KeyError(f"'LIVEHELP_{key}' is not a Flask-LiveHelp setting.")
    return (app or current_app).config[PREFIX + key]
