"""The widget's settings per language, and the chat rules."""

from __future__ import annotations

import re

import sqlalchemy as sa
from babel import Locale
from babel import UnknownLocaleError
from flask import current_app
from flask import request
from flask import url_for
from flask.typing import ResponseReturnValue

from ...addresses import valid_email
from ...auth import current_operator
from ...auth import role_required
from ...errors import Refused
from ...i18n import _lh
from ...i18n import in_language
from ...i18n import N_
from ...state import get_state
from ..widget import TEXTS
from .forms import choice_field
from .forms import flag_field
from .forms import number_field
from .forms import saved_form
from .forms import text_field

#: The widget texts an admin changes per language here: what customers read
#: first. (The ``WIDGET_TEXTS`` setting may replace any text of ``TEXTS``.)
WIDGET_TEXT_KEYS = (
    "online",
    "busy",
    "away",
    "offline",
    "title",
    "question",
    "waiting",
    "busyWait",
    "awayWait",
    "offlineTitle",
    "offlineIntro",
    "offlineSent",
)
MAX_WIDGET_TEXT = 300
COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
LANGUAGE = re.compile(r"[a-z]{2,3}(_[a-z0-9]{2,8})?")
POSITIONS = ("right", "left")
ASK = ("optional", "required", "hidden")
#: The number settings of the settings page, with their allowed range.
NUMBERS = {
    "QUEUE_TIMEOUT_SECONDS": (0, 86400),
    "IDLE_SECONDS": (0, 86400),
    "INACTIVE_CLOSE_SECONDS": (0, 7 * 86400),
}
FLAGS = ("REQUIRE_TAG", "AUTO_ASSIGN")


@role_required("admin")
def widget() -> ResponseReturnValue:
    """The fields asked, and the colour, position and texts of one language."""
    state = get_state()
    languages = _widget_languages()
    lang = _language(request.args.get("lang", languages[0]))
    # The texts of this language only, as the widget reads them.
    texts = {
        key: text
        for key, text in (state.settings.get("WIDGET_TEXTS", lang) or {}).items()
        if key in TEXTS
    }
    with in_language(lang):
        defaults = {key: _lh(TEXTS[key]) for key in WIDGET_TEXT_KEYS}

    def save() -> None:
        colour = text_field("color", 7)
        if not COLOUR.fullmatch(colour):
            raise Refused("bad-color", N_("Give the colour as #rrggbb, e.g. #1d6b3a."))
        _save_settings(
            {
                "WIDGET_ASK_NAME": choice_field("ask_name", ASK),
                "WIDGET_ASK_EMAIL": choice_field("ask_email", ASK),
            }
        )
        # A shop may look different per language, as its texts are.
        _save_settings(
            {
                "WIDGET_COLOR": colour,
                "WIDGET_POSITION": choice_field("position", POSITIONS),
            },
            lang=lang,
        )
        mine = dict(texts)
        for key in WIDGET_TEXT_KEYS:
            mine.pop(key, None)
            if text := text_field(f"text_{key}", MAX_WIDGET_TEXT):
                mine[key] = text
        if mine != texts:
            # None removes this language's texts: ours show again.
            _save_settings({"WIDGET_TEXTS": mine or None}, lang=lang)

    return saved_form(
        "livehelp/admin/widget.html",
        save,
        lambda _: url_for("livehelp.admin.widget", lang=lang),
        N_("The widget settings are saved."),
        lang=lang,
        languages=languages,
        texts=texts,
        defaults=defaults,
        keys=WIDGET_TEXT_KEYS,
        current={key: state.settings.get(key, lang) for key in _WIDGET_KEYS},
        positions=POSITIONS,
        ask=ASK,
    )


def _language(code: str) -> str:
    """A language code Babel knows, e.g. ``da`` or ``pt_br``."""
    code = code.strip().replace("-", "_").lower()
    try:
        if LANGUAGE.fullmatch(code):
            Locale.parse(code)
            return code
    except (UnknownLocaleError, ValueError):
        pass
    raise Refused("bad-lang", N_("Unknown language."))


def _widget_languages() -> list[str]:
    """Ours, the shop's default, and every language that has texts already."""
    state = get_state()
    model = state.models.setting
    with_texts = state.db.session.execute(
        sa.select(model.lang).where(
            model.key.in_(("WIDGET_TEXTS", "WIDGET_COLOR", "WIDGET_POSITION")),
            model.lang != "",
        )
    ).scalars()
    default = current_app.config.get("BABEL_DEFAULT_LOCALE", "en").split("_")[0]
    found = {*state.domain.languages(), default, *with_texts}
    return ["en", *sorted(found - {"en"})]


_WIDGET_KEYS = (
    "WIDGET_COLOR",
    "WIDGET_POSITION",
    "WIDGET_ASK_NAME",
    "WIDGET_ASK_EMAIL",
)


def _save_settings(values: dict[str, object], lang: str = "") -> None:
    get_state().settings.change(values, lang, by=current_operator())


@role_required("admin")
def settings() -> ResponseReturnValue:
    """The central mailbox, the time-outs, the chat rules and the retention."""
    state = get_state()
    keys = ("OFFLINE_MAILBOX", *NUMBERS, *FLAGS, "HISTORY_RETENTION_DAYS")

    def save() -> None:
        mailbox = text_field("OFFLINE_MAILBOX", 254).lower() or None
        if mailbox is not None and not valid_email(mailbox):
            raise Refused("bad-email", N_("This is not a valid e-mail address."))
        values: dict[str, object] = {"OFFLINE_MAILBOX": mailbox}
        for key, (low, high) in NUMBERS.items():
            values[key] = number_field(key, low, high)
        for key in FLAGS:
            values[key] = flag_field(key)
        values["HISTORY_RETENTION_DAYS"] = number_field(
            "HISTORY_RETENTION_DAYS", 1, 3650, optional=True
        )
        _save_settings(values)

    return saved_form(
        "livehelp/admin/settings.html",
        save,
        lambda _: url_for("livehelp.admin.settings"),
        N_("The settings are saved."),
        current={key: state.settings.get(key) for key in keys},
        numbers=NUMBERS,
        flags=FLAGS,
    )
