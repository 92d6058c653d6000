"""The ``livehelp`` blueprint and its children: widget, panel and history."""

from __future__ import annotations

import logging

from flask import Blueprint
from flask import Flask
from flask import render_template
from flask import request
from flask import Response
from flask.typing import ResponseValue

from .. import identity
from .. import processes
from ..auth import write_panel_cookie
from ..background import start_jobs
from ..config import config_value
from ..errors import Refused
from ..i18n import _lh
from ..i18n import current_language
from ..i18n import N_
from ..state import get_state
from . import account
from . import admin
from . import history
from . import offline
from . import panel
from . import reports
from . import responses
from . import widget
from .assets import asset_url

log = logging.getLogger(__name__)


def create_blueprint(app: Flask) -> Blueprint:
    """Build the ``livehelp`` blueprint tree for ``app``'s settings."""
    parent = Blueprint(
        "livehelp",
        "flask_livehelp",  # templates/ and static/ of the package
        url_prefix=config_value("URL_PREFIX", app),
        subdomain=config_value("SUBDOMAIN", app),
        template_folder="templates",
        static_folder="static",
    )
    parent.register_blueprint(widget.create_blueprint())
    parent.register_blueprint(panel.create_blueprint())
    parent.register_blueprint(history.create_blueprint())
    parent.register_blueprint(offline.create_blueprint())
    parent.register_blueprint(admin.create_blueprint())
    parent.register_blueprint(reports.create_blueprint())
    parent.register_blueprint(account.create_blueprint())
    responses.register(parent)
    parent.before_request(start_jobs)
    parent.after_request(write_panel_cookie)
    parent.register_error_handler(Refused, _refused)
    parent.register_error_handler(ConnectionError, _client_gone)
    parent.context_processor(_livehelp_context)
    return parent


def _refused(refusal: Refused) -> tuple[ResponseValue, int]:
    """A refusal as JSON for scripts, as a page for people."""
    if request.accept_mimetypes.best == "application/json":
        return responses.refusal_json(refusal)
    message = _lh(refusal.message, **refusal.variables)
    return (
        render_template("livehelp/error.html", message=message, status=refusal.status),
        refusal.status,
    )


def _client_gone(error: ConnectionError) -> Response:
    """A client that went away during a socket's handshake is no server error.

    Phones in tunnels do it all day; nothing was accepted from them yet, so
    there is nothing to lose and nothing worth a traceback in the log.
    """
    if request.environ.get("HTTP_UPGRADE", "").lower() != "websocket":
        raise error
    log.info("A client left during the WebSocket handshake: %s", error)
    return Response(status=400)


#: Why mail cannot go out, as admins are told.
MAIL_PROBLEMS = {
    "no-flask-mail": N_(
        "the app has no Flask-Mail (call Mail(app) and set MAIL_SERVER)"
    ),
    "no-sender": N_(
        "no sender address is set (MAIL_DEFAULT_SENDER or LIVEHELP_MAIL_SENDER)"
    ),
}


def _mail_problem() -> str | None:
    problem = get_state().mail.problem()
    return _lh(MAIL_PROBLEMS[problem]) if problem else None


def _unreached_processes() -> int:
    return processes.unreached(get_state())


def _livehelp_context() -> dict[str, object]:
    return {
        "lh_mail_problem": _mail_problem,
        "lh_unreached_processes": _unreached_processes,
        "lh_verified": identity.verified,
        "lh_nonce": responses.page_nonce(),
        "lh_lang": current_language(),
        "asset_url": asset_url,
    }
