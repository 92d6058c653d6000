"""Signing operators in to the panel, roles, CSRF for our forms, Origin checks.

The panel keeps its own keys in the session (``_livehelp_*``) and never
touches the host's: a shop's customer login, its session and its CSRF setup
go on as before.

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
from flask import session
from flask import url_for

from .config import config_value
from .errors import NotAllowed
from .errors import Refused
from .i18n import in_language
from .i18n import N_
from .services import access
from .state import get_state

SESSION_KEY = "_livehelp_operator"
#: Control characters (C0, DEL, C1) and backslashes have no place in a path.
UNSAFE_IN_PATH = re.compile(r"[\x00-\x1f\x7f-\x9f\\]")
CSRF_KEY = "_livehelp_csrf"
CSRF_FIELD = "_lh_csrf"
CSRF_HEADER = "X-LiveHelp-CSRF"

F = t.TypeVar("F", bound=c.Callable[..., t.Any])


class HostStaff(t.TypedDict, total=False):
    """What an ``operator_loader`` may return for the host's staff member."""

    #: The host's own id for the person (required).
    id: str
    name: str
    email: str
    #: ``operator``, ``manager`` or ``admin``; left out, the panel's role stays.
    role: str


def login_operator(operator: t.Any) -> None:
    """Sign ``operator`` in to the panel for this browser."""
    _new_session_id()
    session[SESSION_KEY] = [operator.id, operator.session_key]
    # A fresh token at sign-in, so one planted before it is worthless.
    session[CSRF_KEY] = secrets.token_urlsafe(32)
    g._livehelp_operator = operator


def _new_session_id() -> None:
    """Give a server-side session a new id at sign-in, against session fixation.

    Flask-Session (0.6 and later) can; Flask's own cookie session needs not,
    as the cookie is the session and is written anew with the sign-in.
    """
    regenerate = getattr(current_app.session_interface, "regenerate", None)
    if regenerate is not None:
        regenerate(session)


def logout_operator() -> None:
    session.pop(SESSION_KEY, None)
    session.pop(CSRF_KEY, None)
    g._livehelp_operator = None


def current_operator() -> t.Any | None:
    """The operator signed in to the panel, from our session or the host's loader."""
    if "_livehelp_operator" not in g:
        g._livehelp_operator = _session_operator() or _host_operator()
    return g._livehelp_operator


def signed_in_operator() -> t.Any:
    """The operator of a view behind :func:`operator_required`, never ``None``."""
    operator = current_operator()
    if operator is None:
        raise RuntimeError("signed_in_operator() is for operator_required views.")
    return operator


def _session_operator() -> t.Any | None:
    value = session.get(SESSION_KEY)
    if not (isinstance(value, list) and len(value) == 2):
        return None
    operator_id, key = value
    if not isinstance(operator_id, int) or not isinstance(key, str):
        return None
    return get_state().operators.session_valid(operator_id, key)


def _host_operator() -> t.Any | None:
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


def operator_required(view: F) -> F:
    """Send a visitor without a panel session to the login page.

    The page is then shown in the operator's own language, when they set one.
    """

    @functools.wraps(view)
    def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
        operator = current_operator()
        if operator is None:
            return redirect(url_for("livehelp.panel.login", next=request.full_path))
        with in_language(operator.locale):
            return view(*args, **kwargs)

    return t.cast(F, wrapper)


def role_required(role: str) -> c.Callable[[F], F]:
    """Like :func:`operator_required`, and refuse (403) operators below ``role``."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            if not access.has_role(current_operator(), role):
                raise NotAllowed("not-allowed", N_("Your role may not open this page."))
            return view(*args, **kwargs)

        return operator_required(t.cast(F, wrapper))

    return decorator


def csrf_token() -> str:
    """Our CSRF token for the panel's forms and requests."""
    if CSRF_KEY not in session:
        session[CSRF_KEY] = secrets.token_urlsafe(32)
    return t.cast(str, session[CSRF_KEY])


def check_csrf() -> None:
    """Refuse an unsafe request that does not carry our CSRF token."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD, "")
    expected = session.get(CSRF_KEY)
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
