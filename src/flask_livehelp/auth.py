"""Signing operators in to the panel, roles, CSRF for our forms, Origin checks.

The panel keeps its sign-in and its CSRF token in a cookie of its own
(``livehelp_panel``: signed, HttpOnly, SameSite=Lax, Secure over HTTPS,
only for our URLs) and never touches the host's session: a shop's customer
login, its session and its CSRF setup go on as before. The cookie holds the
operator's session key, which signing out, a new password or deactivation
changes, so a copy of the cookie is worthless afterwards.

A host with staff accounts of its own registers an ``operator_loader`` that
returns, for the staff member signed in to the host now, either an operator
from ``get_state().operators`` or a :class:`HostStaff` mapping; the operator
row for it is then found, linked by e-mail, or made.
"""

from __future__ import annotations

import collections.abc as c
import functools
import re
import secrets
import typing as t
from urllib.parse import urlsplit

from flask import current_app
from flask import g
from flask import redirect
from flask import request
from flask import Response
from flask import url_for
from itsdangerous import BadSignature
from itsdangerous import URLSafeTimedSerializer
from werkzeug.wrappers import Response as BaseResponse

from .config import config_value
from .errors import NotAllowed
from .errors import Refused
from .i18n import in_language
from .i18n import N_
from .models import OperatorMixin
from .services import access
from .state import get_state

#: Control characters (C0, DEL, C1) and backslashes have no place in a path.
UNSAFE_IN_PATH = re.compile(r"[\x00-\x1f\x7f-\x9f\\]")
COOKIE_SALT = "livehelp-panel"
CSRF_FIELD = "_lh_csrf"
CSRF_HEADER = "X-LiveHelp-CSRF"

P = t.ParamSpec("P")
R = t.TypeVar("R")


class HostStaff(t.TypedDict, total=False):
    """What an ``operator_loader`` may return for the host's staff member."""

    #: The host's own id for the person (required).
    id: str
    name: str
    email: str
    #: ``operator``, ``manager`` or ``admin``; left out, the panel's role stays.
    role: str


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(t.cast(str, current_app.secret_key), salt=COOKIE_SALT)


def _panel() -> dict[str, object]:
    """What the panel's cookie holds for this request (``o``, ``k``, ``c``)."""
    if "_livehelp_panel" not in g:
        data: object = {}
        raw = request.cookies.get(config_value("COOKIE_NAME"))
        if raw and current_app.secret_key:
            days = config_value("PANEL_SESSION_DAYS")
            try:
                data = _serializer().loads(raw, max_age=days * 86400)
            except BadSignature:
                data = {}
        g._livehelp_panel = data if isinstance(data, dict) else {}
    return t.cast("dict[str, object]", g._livehelp_panel)


def _change_panel(**values: object) -> None:
    panel = _panel()
    for key, value in values.items():
        if value is None:
            panel.pop(key, None)
        else:
            panel[key] = value
    g._livehelp_panel_changed = True


def write_panel_cookie(response: Response) -> Response:
    """Send the panel's cookie along when this request changed it."""
    if not g.get("_livehelp_panel_changed"):
        return response
    name, panel = config_value("COOKIE_NAME"), _panel()
    path = config_value("URL_PREFIX") or "/"
    if not panel:
        response.delete_cookie(name, path=path)
        return response
    response.set_cookie(
        name,
        _serializer().dumps(panel),
        path=path,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure,
    )
    return response


def login_operator(operator: OperatorMixin) -> None:
    """Sign ``operator`` in to the panel for this browser.

    The cookie is made anew, with a fresh CSRF token: one planted before the
    sign-in is worthless.
    """
    _panel().clear()
    _change_panel(o=operator.id, k=operator.session_key, c=secrets.token_urlsafe(32))
    g._livehelp_operator = operator


def logout_operator() -> None:
    """End this browser's sign-in, and the operator's session key with it."""
    operator = _session_operator()
    if operator is not None:
        get_state().operators.sign_out_everywhere(operator.id)
    _panel().clear()
    _change_panel()
    g._livehelp_operator = None


def current_operator() -> OperatorMixin | None:
    """The operator signed in to the panel, from our session or the host's loader."""
    if "_livehelp_operator" not in g:
        g._livehelp_operator = _session_operator() or _host_operator()
    return t.cast("OperatorMixin | None", g._livehelp_operator)


def signed_in_operator() -> OperatorMixin:
    """The operator of a view behind :func:`operator_required`, never ``None``."""
    operator = current_operator()
    if operator is None:
        raise RuntimeError("signed_in_operator() is for operator_required views.")
    return operator


def _session_operator() -> OperatorMixin | None:
    operator_id, key = _panel().get("o"), _panel().get("k")
    if not isinstance(operator_id, int) or not isinstance(key, str):
        return None
    return get_state().operators.session_valid(operator_id, key)


def _host_operator() -> OperatorMixin | None:
    state = get_state()
    found = state.extension.load_host_operator()
    if found is None:
        return None
    if isinstance(found, state.models.operator):
        return found if found.is_active else None
    if not isinstance(found, c.Mapping) or not found.get("id"):
        raise TypeError(
            "The operator_loader must return None, an operator or a dict with"
            " the host's 'id', 'name' and 'email' of the staff member."
        )
    return state.operators.from_host(
        str(found["id"]),
        name=str(found.get("name") or found.get("email") or found["id"]),
        email=str(found.get("email") or ""),
        role=found.get("role"),
    )


def operator_required(view: c.Callable[P, R]) -> c.Callable[P, R | BaseResponse]:
    """Send a visitor without a panel session to the login page.

    The page is then shown in the operator's own language, when they set one.
    """

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | BaseResponse:
        operator = current_operator()
        if operator is None:
            return redirect(url_for("livehelp.panel.login", next=request.full_path))
        with in_language(operator.locale):
            return view(*args, **kwargs)

    return wrapper


def role_required(
    role: str,
) -> c.Callable[[c.Callable[P, R]], c.Callable[P, R | BaseResponse]]:
    """Like :func:`operator_required`, and refuse (403) operators below ``role``."""

    def decorator(view: c.Callable[P, R]) -> c.Callable[P, R | BaseResponse]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if not access.has_role(signed_in_operator(), role):
                raise NotAllowed("not-allowed", N_("Your role may not open this page."))
            return view(*args, **kwargs)

        return operator_required(wrapper)

    return decorator


def csrf_token() -> str:
    """Our CSRF token for the panel's forms and requests."""
    if not isinstance(_panel().get("c"), str):
        _change_panel(c=secrets.token_urlsafe(32))
    return t.cast(str, _panel()["c"])


def check_csrf() -> None:
    """Refuse an unsafe request that does not carry our CSRF token."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD, "")
    expected = _panel().get("c")
    if not expected or not secrets.compare_digest(str(sent), str(expected)):
        raise Refused(
            "expired", N_("The form has expired. Reload the page and try again.")
        )


def safe_next(target: str | None, default: str) -> str:
    """``target`` if it is a path on this site, else ``default`` (no open redirect).

    Browsers drop tabs and newlines from a URL and read a backslash as a
    slash, so ``/%09/evil.example`` would lead to ``//evil.example``: a target
    with any control character or backslash is refused, and so is one with a
    scheme or a host of its own. A newline would also break the header.
    """
    if not target or not target.startswith("/") or UNSAFE_IN_PATH.search(target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return default
    return target


def origin_allowed(origin: str | None) -> bool:
    """Whether a browser on ``origin`` may talk to our sockets and endpoints.

    Browsers always send ``Origin`` on a WebSocket handshake; a request
    without one does not come from a web page, so it cannot ride on a
    visitor's or an operator's cookies.
    """
    if origin is None:
        return True
    own = urlsplit(request.host_url).netloc
    if urlsplit(origin).netloc == own:
        return True
    allowed = config_value("ALLOWED_ORIGINS")
    return origin.rstrip("/") in {o.rstrip("/") for o in allowed}


def check_origin() -> None:
    if not origin_allowed(request.headers.get("Origin")):
        raise NotAllowed("bad-origin", N_("This origin may not connect."))
