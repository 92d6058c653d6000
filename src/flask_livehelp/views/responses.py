"""What every response of our blueprints gets on its way out.

Our pages are not the host's: a host's development tools that decorate every
HTML page (Flask-DebugToolbar injects a toolbar before ``</body>`` and turns
redirects into a page of its own) would cover the panel's buttons and break
the chat window's strict Content-Security-Policy. They are kept out here.
"""

from __future__ import annotations

import typing as t

from flask import g
from flask import request
from flask import Response


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


def register(blueprint: t.Any) -> None:
    blueprint.before_request(leave_debug_toolbar_out)
    blueprint.after_request(stream_html)
