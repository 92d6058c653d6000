"""Administration in the panel: operators, departments, settings, knowledge, audit.

Admins may use every page here; managers keep the canned responses. Every
change goes through a service, which checks it and writes the audit log.
"""

from __future__ import annotations

import collections.abc as c
import re
import typing as t
import zoneinfo

import sqlalchemy as sa
from babel import Locale
from babel import UnknownLocaleError
from flask import Blueprint
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for

from ..addresses import valid_email
from ..auth import check_csrf
from ..auth import current_operator
from ..auth import role_required
from ..errors import Refused
from ..i18n import _lh
from ..i18n import in_language
from ..i18n import N_
from ..models import ROLES
from ..services import access
from ..state import get_state
from ..text import without_controls
from .panel import staff_context
from .widget import TEXTS

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


def create_blueprint() -> Blueprint:
    bp = Blueprint("admin", __name__, url_prefix="/admin")
    rules: list[tuple[str, c.Callable[..., t.Any], list[str]]] = [
        ("/", index, ["GET"]),
        ("/operators", operators, ["GET"]),
        ("/operators/new", new_operator, ["GET", "POST"]),
        ("/operators/<int:operator_id>", edit_operator, ["GET", "POST"]),
        ("/operators/<int:operator_id>/deactivate", deactivate, ["POST"]),
        ("/operators/<int:operator_id>/activate", activate, ["POST"]),
        ("/operators/<int:operator_id>/password", reset_password, ["POST"]),
        ("/departments", departments, ["GET", "POST"]),
        ("/departments/<int:department_id>", departments, ["GET", "POST"]),
        ("/widget", widget, ["GET", "POST"]),
        ("/settings", settings, ["GET", "POST"]),
        ("/canned", canned, ["GET", "POST"]),
        ("/canned/<int:canned_id>", canned, ["GET", "POST"]),
        ("/canned/<int:canned_id>/delete", delete_canned, ["POST"]),
        ("/articles", articles, ["GET", "POST"]),
        ("/articles/<int:article_id>", articles, ["GET", "POST"]),
        ("/articles/<int:article_id>/delete", delete_article, ["POST"]),
        ("/audit", audit_log, ["GET"]),
        ("/erase", erase_customer, ["GET", "POST"]),
    ]
    for rule, view, methods in rules:
        bp.add_url_rule(rule, view_func=view, methods=methods)
    bp.before_request(check_csrf)
    bp.context_processor(staff_context)
    bp.context_processor(lambda: {"may": access})
    return bp


# Forms.


def _saved(
    template: str,
    save: c.Callable[[], t.Any],
    done: c.Callable[[t.Any], str],
    message: str | c.Callable[[t.Any], str],
    **context: t.Any,
) -> t.Any:
    """Show a form, or save it: redirect on success, else the form again.

    The form comes back with what was typed and the reason, and a 400;
    a refusal of another kind (403, 404) is the error page as everywhere.
    """
    if request.method == "POST":
        try:
            result = save()
        except Refused as refusal:
            if refusal.status != 400:
                raise
            flash(_lh(refusal.message, **refusal.variables), "livehelp-error")
            return render_template(template, form=request.form, **context), 400
        flash(message(result) if callable(message) else _lh(message), "livehelp-info")
        return redirect(done(result))
    return render_template(template, form=None, **context)


def _text(name: str, maximum: int = 20000) -> str:
    value = without_controls(request.form.get(name, "")).strip()
    if len(value) > maximum:
        raise Refused(
            "too-long",
            N_("The field %(field)s is longer than %(max)d characters."),
            field=name,
            max=maximum,
        )
    return value


def _number(name: str, low: int, high: int, *, optional: bool = False) -> int | None:
    value = request.form.get(name, "").strip()
    if not value and optional:
        return None
    if not value.isdigit() or not low <= int(value) <= high:
        raise Refused(
            "bad-number",
            N_("%(field)s must be a whole number from %(low)d to %(high)d."),
            field=name,
            low=low,
            high=high,
        )
    return int(value)


def _choice(name: str, choices: c.Sequence[str]) -> str:
    value = request.form.get(name, "")
    if value not in choices:
        raise Refused(
            "bad-field", N_("The field %(field)s has an unknown value."), field=name
        )
    return value


def _flag(name: str) -> bool:
    return request.form.get(name) in ("1", "on", "yes", "true")


def _ids(name: str) -> list[int]:
    values = request.form.getlist(name)
    if not all(v.isdigit() for v in values):
        raise Refused(
            "bad-field", N_("The field %(field)s must be a number."), field=name
        )
    return [int(v) for v in values]


# The start page.


@role_required("manager")
def index() -> str:
    return render_template("livehelp/admin/index.html")


# Operators.


@role_required("admin")
def operators() -> str:
    return render_template(
        "livehelp/admin/operators.html", operators=get_state().operators.all()
    )


def _operator_choices() -> dict[str, t.Any]:
    state = get_state()
    return {
        "roles": ROLES,
        "all_departments": state.operators.departments(),
        "languages": state.domain.languages(),
        "timezones": sorted(zoneinfo.available_timezones()),
    }


def _operator_fields() -> dict[str, t.Any]:
    addresses = re.split(r"[\s,;]+", request.form.get("forward_addresses", ""))
    department_ids = _ids("departments")
    get_state().operators.check_departments(department_ids)
    return {
        "name": _text("name", 120),
        "email": _text("email", 254),
        "role": _choice("role", ROLES),
        "max_chats": _number("max_chats", 1, 50),
        "receives_offline": _flag("receives_offline"),
        "locale": _text("locale", 16) or None,
        "timezone": _text("timezone", 64) or None,
        "forward_addresses": [a for a in addresses if a],
        "department_ids": department_ids,
    }


@role_required("admin")
def new_operator() -> t.Any:
    def save() -> t.Any:
        return get_state().operators.create_operator(
            password=request.form.get("password", ""),
            by=current_operator(),
            **_operator_fields(),
        )

    return _saved(
        "livehelp/admin/operator.html",
        save,
        lambda created: url_for("livehelp.admin.edit_operator", operator_id=created.id),
        N_("The operator is created. They can sign in now."),
        subject=None,
        **_operator_choices(),
    )


@role_required("admin")
def edit_operator(operator_id: int) -> t.Any:
    service = get_state().operators
    subject = service.get(operator_id)

    def save() -> t.Any:
        return service.update(operator_id, by=current_operator(), **_operator_fields())

    return _saved(
        "livehelp/admin/operator.html",
        save,
        lambda _: url_for("livehelp.admin.operators"),
        N_("The changes are saved."),
        subject=subject,
        **_operator_choices(),
    )


def _account_action(
    operator_id: int, action: c.Callable[[], t.Any], done: str
) -> t.Any:
    try:
        action()
    except Refused as refusal:
        if refusal.status != 400:
            raise
        flash(_lh(refusal.message, **refusal.variables), "livehelp-error")
    else:
        flash(_lh(done), "livehelp-info")
    return redirect(url_for("livehelp.admin.edit_operator", operator_id=operator_id))


@role_required("admin")
def deactivate(operator_id: int) -> t.Any:
    return _account_action(
        operator_id,
        lambda: _deactivate(operator_id),
        N_(
            "The operator is deactivated and signed out everywhere; their open"
            " chats are back in the queue."
        ),
    )


def _deactivate(operator_id: int) -> None:
    state = get_state()
    state.operators.deactivate(operator_id, by=current_operator())
    state.conversations.release_chats(operator_id)


@role_required("admin")
def activate(operator_id: int) -> t.Any:
    return _account_action(
        operator_id,
        lambda: get_state().operators.activate(operator_id, by=current_operator()),
        N_("The operator can sign in again."),
    )


@role_required("admin")
def reset_password(operator_id: int) -> t.Any:
    return _account_action(
        operator_id,
        lambda: get_state().operators.reset_password(
            operator_id, request.form.get("password", ""), by=current_operator()
        ),
        N_("The new password is set. The operator is signed out everywhere."),
    )


# Departments.


def _department_fields() -> dict[str, t.Any]:
    return {
        "name": _text("name", 120),
        "email": _text("email", 254) or None,
        "is_active": _flag("is_active"),
    }


@role_required("admin")
def departments(department_id: int | None = None) -> t.Any:
    """The departments, with a form for a new one or the one chosen."""
    service = get_state().operators
    return _saved(
        "livehelp/admin/departments.html",
        lambda: service.save_department(
            department_id, by=current_operator(), **_department_fields()
        ),
        lambda _: url_for("livehelp.admin.departments"),
        N_("The department is created.")
        if department_id is None
        else N_("The changes are saved."),
        departments=service.departments(),
        subject=None if department_id is None else service.department(department_id),
    )


# Settings.


@role_required("admin")
def widget() -> t.Any:
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
        colour = _text("color", 7)
        if not COLOUR.fullmatch(colour):
            raise Refused("bad-color", N_("Give the colour as #rrggbb, e.g. #1d6b3a."))
        _save_settings(
            {
                "WIDGET_ASK_NAME": _choice("ask_name", ASK),
                "WIDGET_ASK_EMAIL": _choice("ask_email", ASK),
            }
        )
        # A shop may look different per language, as its texts are.
        _save_settings(
            {
                "WIDGET_COLOR": colour,
                "WIDGET_POSITION": _choice("position", POSITIONS),
            },
            lang=lang,
        )
        mine = dict(texts)
        for key in WIDGET_TEXT_KEYS:
            mine.pop(key, None)
            if text := _text(f"text_{key}", MAX_WIDGET_TEXT):
                mine[key] = text
        if mine != texts:
            # None removes this language's texts: ours show again.
            _save_settings({"WIDGET_TEXTS": mine or None}, lang=lang)

    return _saved(
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


def _save_settings(values: dict[str, t.Any], lang: str = "") -> None:
    get_state().settings.change(values, lang, by=current_operator())


@role_required("admin")
def settings() -> t.Any:
    """The central mailbox, the time-outs, the chat rules and the retention."""
    state = get_state()
    keys = ("OFFLINE_MAILBOX", *NUMBERS, *FLAGS, "HISTORY_RETENTION_DAYS")

    def save() -> None:
        mailbox = _text("OFFLINE_MAILBOX", 254).lower() or None
        if mailbox is not None and not valid_email(mailbox):
            raise Refused("bad-email", N_("This is not a valid e-mail address."))
        values: dict[str, t.Any] = {"OFFLINE_MAILBOX": mailbox}
        for key, (low, high) in NUMBERS.items():
            values[key] = _number(key, low, high)
        for key in FLAGS:
            values[key] = _flag(key)
        values["HISTORY_RETENTION_DAYS"] = _number(
            "HISTORY_RETENTION_DAYS", 1, 3650, optional=True
        )
        _save_settings(values)

    return _saved(
        "livehelp/admin/settings.html",
        save,
        lambda _: url_for("livehelp.admin.settings"),
        N_("The settings are saved."),
        current={key: state.settings.get(key) for key in keys},
        numbers=NUMBERS,
        flags=FLAGS,
    )


# Canned responses (managers too) and help articles.


def _canned_fields() -> dict[str, t.Any]:
    return {
        "name": _text("name", 64),
        "lang": _text("lang", 16),
        "body": _text("body", 4000),
    }


@role_required("manager")
def canned(canned_id: int | None = None) -> t.Any:
    """The canned responses, with a form for a new one or the one chosen."""
    knowledge = get_state().knowledge
    return _saved(
        "livehelp/admin/canned.html",
        lambda: knowledge.save_canned(
            canned_id, by=current_operator(), **_canned_fields()
        ),
        lambda _: url_for("livehelp.admin.canned"),
        N_("The canned response is saved."),
        responses=knowledge.canned_responses(),
        languages=get_state().domain.languages(),
        subject=None if canned_id is None else knowledge.canned(canned_id),
    )


@role_required("manager")
def delete_canned(canned_id: int) -> t.Any:
    get_state().knowledge.delete_canned(canned_id, by=current_operator())
    flash(_lh("The canned response is deleted."), "livehelp-info")
    return redirect(url_for("livehelp.admin.canned"))


def _article_fields() -> dict[str, t.Any]:
    return {
        "title": _text("title", 200),
        "body": _text("body"),
        "url": _text("url", 2000) or None,
        "lang": _text("lang", 16),
        "keywords": _text("keywords", 500),
        "is_active": _flag("is_active"),
    }


@role_required("admin")
def articles(article_id: int | None = None) -> t.Any:
    """The help articles, with a form for a new one or the one chosen."""
    knowledge = get_state().knowledge
    return _saved(
        "livehelp/admin/articles.html",
        lambda: knowledge.save_article(
            article_id, by=current_operator(), **_article_fields()
        ),
        lambda _: url_for("livehelp.admin.articles"),
        N_("The help article is saved."),
        articles=knowledge.articles(),
        languages=get_state().domain.languages(),
        subject=None if article_id is None else knowledge.article(article_id),
    )


@role_required("admin")
def delete_article(article_id: int) -> t.Any:
    get_state().knowledge.delete_article(article_id, by=current_operator())
    flash(_lh("The help article is deleted."), "livehelp-info")
    return redirect(url_for("livehelp.admin.articles"))


# The audit log and erasing on request.


@role_required("admin")
def audit_log() -> str:
    state = get_state()
    action = request.args.get("action") or None
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    entries, total = state.audit.entries(action=action, page=page)
    return render_template(
        "livehelp/admin/audit.html",
        entries=entries,
        total=total,
        page=page,
        pages=max(1, -(-total // 100)),
        action=action,
        actions=state.audit.actions(),
    )


@role_required("admin")
def erase_customer() -> t.Any:
    """Erase every chat's personal data of a customer who asks, by their e-mail."""
    return _saved(
        "livehelp/admin/erase.html",
        lambda: get_state().history.erase_email(
            current_operator(), _text("email", 254)
        ),
        lambda _: url_for("livehelp.admin.erase_customer"),
        lambda chats: _lh("Chats with personal data erased: %(num)d.", num=chats),
    )
