"""What every response of our blueprints gets on its way out.

Staff pages (the panel, history, administration, sign-in) hold customers'
words and addresses: they may not be framed by another site, cached, or run
a script that is not ours, whatever headers the host sets for its own pages.
Every JSON answer says it is JSON, no sniffing.

Our pages are not the host's: a host's development tools that decorate every
HTML page (Flask-DebugToolbar injects a toolbar before ``</body>`` and turns
redirects into a page of its own) would cover the panel's buttons and break
the chat window's strict Content-Security-Policy. They are kept out here.
"""

from __future__ import annotations

import secrets
import typing as t

from flask import Blueprint
from flask import g
from flask import jsonify
from flask import request
from flask import Response

from ..errors import Refused
from ..i18n import _lh
from ..state import get_state

#: What customers' pages load and post to; each has a policy of its own
#: (the chat window) or is no page at all.
PUBLIC = frozenset(
    {
        "livehelp.static",
        "livehelp.widget.status",
        "livehelp.widget.frame",
        "livehelp.widget.suggest",
        "livehelp.widget.decline",
        "livehelp.widget.visitor_socket",
        "livehelp.offline.message",
        "livehelp.offline.inbound",
    }
)


def refusal_json(refusal: Refused) -> tuple[Response, int]:
    """A refusal as scripts read it, with when to try again after a limit."""
    message = _lh(refusal.message, **refusal.variables)
    response = jsonify(error=refusal.code, message=message)
    if refusal.retry_after is not None:
        response.headers["Retry-After"] = str(refusal.retry_after)
    return response, refusal.status


def socket_origin() -> str:
    """The WebSocket origin of this app; CSP's 'self' does not cover ws: everywhere."""
    scheme = "wss" if request.scheme == "https" else "ws"
    return f"{scheme}://{request.host}"


def page_nonce() -> str:
    """The nonce of this page's scripts: the host's, when it has a generator."""
    if "_livehelp_nonce" not in g:
        g._livehelp_nonce = get_state().extension.nonce() or secrets.token_urlsafe(16)
    return t.cast(str, g._livehelp_nonce)


def protect(response: Response) -> Response:
    """The headers of a staff page, and nosniff on every answer."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    if request.endpoint in PUBLIC or request.endpoint is None:
        return response
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; object-src 'none'; base-uri 'none';"
        f" script-src 'self' 'nonce-{page_nonce()}'; style-src 'self';"
        f" img-src 'self' data:; connect-src 'self' {socket_origin()};"
        " form-action 'self'; frame-ancestors 'none'"
    )
    # For browsers without frame-ancestors.
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def leave_debug_toolbar_out() -> None:
    """Take this request off Flask-DebugToolbar's list, as its own views are.

    The toolbar (0.13 and later) decorates only the requests it noted in its
    ``before_request``, which runs before ours.
    """
    toolbar = g.get("debug_toolbar")
    toolbars = getattr(toolbar, "debug_toolbars_var", None)
    if toolbars is not None:
        toolbars.get({}).pop(request._get_current_object(), None)  # type: ignore[attr-defined]


def stream_html(response: Response) -> Response:
    """Send an HTML page as a stream, which other injectors leave alone.

    Injectors work on a buffered body (``response.is_sequence``); the page is
    the same bytes, with its length said.
    """
    if response.mimetype == "text/html" and response.is_sequence:
        body = response.get_data()
        response.response = iter((body,))
        response.headers["Content-Length"] = str(len(body))
    return response


def register(blueprint: Blueprint) -> None:
    blueprint.before_request(leave_debug_toolbar_out)
    blueprint.after_request(stream_html)
    blueprint.after_request(protect)
