"""What the shop's visitors reach: the widget's state, its chat window, its socket."""

from __future__ import annotations

import functools
import json
import re
import typing as t

from flask import Blueprint
from flask import current_app
from flask import jsonify
from flask import render_template
from flask import request
from flask import Response
from flask import url_for
from werkzeug.routing import BuildError

try:
    # The host's Flask-WTF, if it has one: our offline form carries its token.
    from flask_wtf.csrf import generate_csrf
except ImportError:  # a host without Flask-WTF has no CSRFProtect either
    generate_csrf = None

from ..auth import origin_allowed
from ..colours import ink_on
from ..config import config_value
from ..i18n import _lh
from ..i18n import current_language
from ..i18n import in_language
from ..i18n import known_language
from ..i18n import N_
from ..identity import context_for_visitor
from ..models import utcnow
from ..services.visitors import Beat
from ..sockets.reader import releasing
from ..sockets.visitor import visitor_socket
from ..state import get_state
from ..state import LiveHelpState
from ..text import plain
from .assets import asset_url
from .handshake import check_handshake
from .handshake import socket_route
from .responses import socket_origin

#: The texts of the widget. Admins may replace any of them per language
#: (the ``WIDGET_TEXTS`` setting), and their text wins over the catalog.
TEXTS = {
    # The launcher, in each state.
    "online": N_("We are online - chat with us"),
    "busy": N_("All operators are busy - you can still write"),
    "away": N_("Back in a few minutes - write to us"),
    "offline": N_("Offline - send a message"),
    # TRANSLATORS: the chat button's words while the chat is open.
    "closeChat": N_("Close chat"),
    # The chat window.
    "title": N_("Chat with us"),
    "close": N_("Close"),
    "question": N_("How can we help you?"),
    "name": N_("Your name (optional)"),
    "nameRequired": N_("Your name"),
    "email": N_("Your e-mail (optional)"),
    "emailRequired": N_("Your e-mail"),
    "consent": N_("You may e-mail me about my question"),
    "start": N_("Start chat"),
    "send": N_("Send"),
    "placeholder": N_("Write a message"),
    "waiting": N_(
        "Thank you, we have your message. An operator will be with you shortly."
    ),
    "busyWait": N_(
        "Thank you, we have your message. All operators are busy right now."
    ),
    "position": N_("You are number %(position)s in the queue."),
    "expected": N_("Expected wait: about %(minutes)s min."),
    "awayWait": N_("We will be back in a few minutes and answer you here."),
    "accepted": N_("%(name)s joined the chat."),
    "transferred": N_("You are now chatting with %(name)s."),
    "pushed": N_("%(name)s sent you a page:"),
    "ended": N_("The chat has ended."),
    "returned": N_("Your chat is back in the queue; the next operator will answer."),
    "timedOut": N_(
        "Sorry, nobody could answer in time. "
        "We have your question and will answer by e-mail."
    ),
    "leaveEmail": N_("Leave your e-mail address so we can answer you."),
    "contactSaved": N_("Thank you. We will answer %(email)s."),
    "end": N_("End chat"),
    "newChat": N_("Start a new chat"),
    "transcript": N_("E-mail me the transcript"),
    "transcriptSent": N_("The transcript is on its way to %(email)s."),
    "you": N_("You"),
    "operator": N_("Operator"),
    "typing": N_("%(name)s is writing..."),
    "connecting": N_("Connecting..."),
    "offlineNet": N_("You are offline. We will send your messages when you are back."),
    "sending": N_("Sending..."),
    "delivered": N_("Delivered"),
    "error": N_("Something went wrong. Try again."),
    "suggestions": N_("These pages may answer your question:"),
    "answered": N_("This answered my question"),
    "glad": N_("Glad we could help!"),
    "offlineTitle": N_("Leave a message"),
    "offlineIntro": N_(
        "Nobody is online right now. Write to us and we will answer by e-mail."
    ),
    "offlineSend": N_("Send message"),
    "offlineSent": N_("Thank you! We have your message and will answer by e-mail."),
    "offlineCopy": N_("A copy is on its way to %(email)s."),
    # TRANSLATORS: after an offline message, when mail cannot go out now.
    "offlineKept": N_("Thank you! We have your message."),
    "offlineNoAddress": N_(
        "Thank you! We have your message. Without an e-mail address we cannot"
        " answer you by mail: look in again, or start a chat when we are online."
    ),
    "message": N_("Your message"),
    "invitation": N_("%(name)s would like to help you"),
    "accept": N_("Chat now"),
    "decline": N_("No thanks"),
    "newMessage": N_("New message"),
}
#: The states of the launcher, each with its text in ``TEXTS``.
LAUNCHER = ("online", "busy", "away", "offline")
PRESENCE_ID = re.compile(r"[A-Za-z0-9]{8,32}")


def ui_strings() -> dict[str, str]:
    """Every text of the widget from our catalog, in the current language."""
    return {key: _lh(msgid) for key, msgid in TEXTS.items()}


def fill(text: str, **values: str) -> str:
    """``text`` with its ``%(key)s`` filled in, the way the widget's script does.

    Admins write these texts, so a stray "%" must not break the request.
    """
    return re.sub(r"%\((\w+)\)s", lambda m: values.get(m.group(1), ""), text)


def _admin_texts(lang: str | None) -> dict[str, str]:
    """The shop's own texts for ``lang``: from the panel, else from config.

    The panel keeps one language's texts per row; ``LIVEHELP_WIDGET_TEXTS``
    in config holds them for every language: ``{"da": {"offline": ...}}``.
    """
    lang = lang or current_language()
    texts = get_state().settings.get("WIDGET_TEXTS", lang) or {}
    if isinstance(texts.get(lang), dict):
        texts = texts[lang]
    return {k: v for k, v in texts.items() if k in TEXTS and isinstance(v, str) and v}


def widget_texts(lang: str | None = None) -> dict[str, str]:
    """Every text of the widget in the current language, with the admin's texts."""
    return ui_strings() | _admin_texts(lang)


def widget_text(key: str) -> str:
    """One text of the widget: the admin's, else ours, translated.

    The status request needs one or two; translating all of them there would
    make the cheapest request of the widget cost twice as much.
    """
    return _admin_texts(None).get(key) or _lh(TEXTS[key])


def looks(lang: str) -> dict[str, str]:
    """The button's colour, its text colour and its side, for ``lang``.

    Per language, as the admin set them; the status answer carries them too,
    so a page that is open follows a change.
    """
    settings = get_state().settings
    colour = settings.get("WIDGET_COLOR", lang)
    return {
        "color": colour,
        "ink": ink_on(colour),
        "position": settings.get("WIDGET_POSITION", lang),
    }


def create_blueprint() -> Blueprint:
    bp = Blueprint("widget", __name__, url_prefix="/widget")
    bp.add_url_rule("/status", view_func=status)
    bp.add_url_rule("/frame", view_func=frame)
    bp.add_url_rule("/suggest", view_func=suggest)
    bp.add_url_rule("/decline", view_func=decline, methods=["POST"])
    # The chat speaks the page's language too (`?lang=` on the socket's URL).
    socket_route(bp, "/ws", releasing(in_page_language(visitor_socket)))
    bp.before_request(_check_socket_handshake)
    return bp


def _check_socket_handshake() -> None:
    if request.endpoint == "livehelp.widget.visitor_socket":
        check_handshake()


P = t.ParamSpec("P")
R = t.TypeVar("R")


def in_page_language(view: t.Callable[P, R]) -> t.Callable[P, R]:
    """Answer in the language the embedding page asked for, when we have it."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        param = config_value("WIDGET_LANG_PARAM")
        lang = known_language(request.args.get(param)) if param else None
        with in_language(lang):
            return view(*args, **kwargs)

    return wrapper


def _department() -> int | None:
    return request.args.get("department", type=int)


def _arg(name: str, limit: int) -> str | None:
    value = plain(request.args.get(name) or "")[:limit]
    return value or None


def status() -> Response:
    """The widget's state, and the only request an idle shop page makes.

    With ``pid`` it is also the page's heartbeat for the visitor list, kept
    in memory here and written in batches by the background loop, and it
    carries an operator's invitation to chat when there is one. Every shop
    page asks every few seconds, so the answer for a language is made once
    a second and reused.
    """
    state = get_state()
    param = config_value("WIDGET_LANG_PARAM")
    lang = (known_language(request.args.get(param)) if param else None) or (
        current_language()
    )
    department = _department()
    payload = widget_status(lang, department)
    pid = request.args.get("pid", "")
    if PRESENCE_ID.fullmatch(pid):
        _note_beat(state, pid, lang)
        invitation = state.visitors.invitation_for(pid)
        if invitation is not None:
            payload = payload | {"invitation": _invitation(invitation, lang)}
    response = current_app.response_class(
        json.dumps(payload, separators=(",", ":")), mimetype="application/json"
    )
    response.cache_control.max_age = 2
    if pid:
        response.cache_control.private = True
    else:
        response.cache_control.public = True
    _allow_cross_origin(response)
    return response


def widget_status(lang: str, department: int | None) -> dict[str, object]:
    """The button's state, words and looks for ``lang``, made once a second.

    What the status request answers, and what the widget's tag carries so the
    button has them from the first paint.
    """
    state = get_state()
    return state.presence.remember(
        ("status", lang, department), lambda: _status_payload(state, lang, department)
    )


def _status_payload(
    state: LiveHelpState, lang: str, department: int | None
) -> dict[str, object]:
    widget = state.presence.widget_state(department)
    with in_language(lang):
        label = widget_text(widget.state)
    return {
        "state": widget.state,
        "label": label,
        "queued": widget.queued,
        "lang": lang,
        **looks(lang),
    }


def _invitation(invitation: dict[str, object], lang: str) -> dict[str, object]:
    with in_language(lang):
        title = fill(widget_text("invitation"), name=str(invitation["operator"] or ""))
    return {
        "operator": invitation["operator"],
        "message": invitation["message"],
        "title": title,
    }


def decline() -> tuple[Response, int]:
    """The visitor said no to an operator's invitation (a POST: it changes it).

    Answers ``200 {"ok": true}``, also when there was nothing to decline.
    """
    if not origin_allowed(request.headers.get("Origin")):
        return jsonify(
            error="bad-origin", message=_lh("This origin may not connect.")
        ), 403
    data = request.get_json(silent=True)
    pid = data.get("pid") if isinstance(data, dict) else None
    if not isinstance(pid, str) or not PRESENCE_ID.fullmatch(pid):
        message = _lh("The field %(field)s has the wrong type.", field="pid")
        return jsonify(error="bad-field", message=message), 400
    get_state().visitors.answer_invitation(pid, accepted=False)
    return jsonify(ok=True), 200


def _note_beat(state: LiveHelpState, pid: str, lang: str) -> None:
    state.visitors.beat(
        pid,
        Beat(
            page=_arg("page", 2000),
            title=_arg("title", 200),
            referrer=_arg("ref", 2000),
            locale=lang,
            user_agent=(request.headers.get("User-Agent") or "")[:400] or None,
            ip_address=request.remote_addr,
            at=utcnow(),
        ),
    )


def _allow_cross_origin(response: Response) -> None:
    origin = request.headers.get("Origin")
    if origin and origin_allowed(origin):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.vary.add("Origin")


@in_page_language
def suggest() -> Response:
    """Help articles that may answer the question the visitor is typing."""
    question = (request.args.get("q") or "").strip()[:500]
    found = []
    if len(question) >= 3:
        found = get_state().knowledge.suggest(question, current_language(), limit=3)
    response = jsonify(articles=[_article(a) for a in found])
    response.cache_control.max_age = 60
    response.cache_control.public = True
    return response


# A model row, or the dict a host's search returned.
def _article(article: t.Any) -> dict[str, object]:
    """An article as the widget shows it, from a model row or a host's dict."""

    def get(key: str) -> t.Any:
        if isinstance(article, dict):
            return article.get(key)
        return getattr(article, key, None)

    url = get("url")
    return {
        "title": get("title"),
        "url": url
        if isinstance(url, str) and url.startswith(("http://", "https://", "/"))
        else None,
        "excerpt": (get("excerpt") or get("body") or "")[:300],
    }


@in_page_language
def frame() -> Response:
    """The chat window, loaded into the widget's iframe when a visitor opens it."""
    state = get_state()
    lang = current_language()
    # The frame's own requests speak its language too.
    speak = _in_lang(lang)
    settings = {
        "socket": url_for("livehelp.widget.visitor_socket", **speak),
        "suggest": url_for("livehelp.widget.suggest", **speak),
        "decline": url_for("livehelp.widget.decline"),
        # Who may embed the chat, and so hear from it (the shop's own first).
        "parents": [
            request.host_url.rstrip("/"),
            *(o.rstrip("/") for o in config_value("ALLOWED_ORIGINS")),
        ],
        "offline": _offline_url(speak),
        "maxLength": config_value("MAX_MESSAGE_LENGTH"),
        "lang": lang,
        "askName": state.settings.get("WIDGET_ASK_NAME", lang),
        "askEmail": state.settings.get("WIDGET_ASK_EMAIL", lang),
        **looks(lang),
        "csrf": _host_csrf_token(),
        "known": _known_visitor(),
    }
    html = render_template(
        "livehelp/widget/frame.html",
        strings=widget_texts(lang),
        settings=settings,
        asset_url=asset_url,
        lang=lang,
    )
    response = Response(html)
    if settings["known"]:
        # The customer's own name and address: for their browser only.
        response.cache_control.private = True
        response.cache_control.no_store = True
    # The chat window needs nothing inline and nothing from elsewhere, so it
    # runs under the strictest policy, whatever the shop's own pages allow.
    ancestors = " ".join(["'self'", *config_value("ALLOWED_ORIGINS")])
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        f" connect-src 'self' {socket_origin()}; base-uri 'none'; form-action 'none';"
        f" frame-ancestors {ancestors}"
    )
    return response


def _known_visitor() -> dict[str, str]:
    """The name and e-mail the shop vouches for: its hook, or a claim it signed.

    A signed-in customer finds them in the forms, and need not type them.
    """
    context = context_for_visitor(request.args.get("identity")) or {}
    return {
        field: value.strip()[:limit]
        for field, limit in (("name", 80), ("email", 254))
        if isinstance(value := context.get(field), str) and value.strip()
    }


# For url_for(**values), whose own keywords are typed.
def _in_lang(lang: str) -> dict[str, t.Any]:
    """The URL arguments that tell our views the language (``?lang=``)."""
    param = config_value("WIDGET_LANG_PARAM")
    return {param: lang} if param else {}


# For url_for(**values), as _in_lang.
def _offline_url(speak: dict[str, t.Any]) -> str | None:
    try:
        return url_for("livehelp.offline.message", **speak)
    except BuildError:
        # No offline form where its blueprint is not registered.
        return None


def _host_csrf_token() -> str | None:
    """The host's Flask-WTF CSRF token, when its CSRFProtect guards every POST.

    The offline form sends it along, so the host need not exempt our views.
    """
    if "csrf" not in current_app.extensions:
        return None
    return t.cast(str, generate_csrf())
