"""Administration in the panel: operators, departments, settings, knowledge, audit.

Admins may use every page here; managers keep the canned responses. Every
change goes through a service, which checks it and writes the audit log.

One module per page family: :mod:`.staff` (operators and departments),
:mod:`.settings_pages` (the widget and the chat rules), :mod:`.knowledge` (canned
responses and help articles) and :mod:`.audit_and_erasure` (the log, and erasing on
request); :mod:`.forms` reads and shows their forms.
"""

from __future__ import annotations

import collections.abc as c

from flask import Blueprint
from flask import render_template
from flask.typing import ResponseReturnValue

from ...auth import check_csrf
from ...auth import role_required
from ...services import access
from ..panel import staff_context
from .audit_and_erasure import audit_log
from .audit_and_erasure import erase_customer
from .knowledge import articles
from .knowledge import canned
from .knowledge import delete_article
from .knowledge import delete_canned
from .settings_pages import settings
from .settings_pages import widget
from .staff import activate
from .staff import deactivate
from .staff import departments
from .staff import edit_operator
from .staff import new_operator
from .staff import operators
from .staff import reset_password


def create_blueprint() -> Blueprint:
    bp = Blueprint("admin", __name__, url_prefix="/admin")
    rules: list[tuple[str, c.Callable[..., ResponseReturnValue], list[str]]] = [
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


# The start page.


@role_required("manager")
def index() -> str:
    return render_template("livehelp/admin/index.html")
