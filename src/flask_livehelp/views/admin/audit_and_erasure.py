"""The audit log, and erasing a customer's data on request."""

from __future__ import annotations

from flask import render_template
from flask import request
from flask import url_for
from flask.typing import ResponseReturnValue

from ...auth import role_required
from ...auth import signed_in_operator
from ...i18n import _lh
from ...state import get_state
from .forms import saved_form
from .forms import text_field


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
def erase_customer() -> ResponseReturnValue:
    """Erase every chat's personal data of a customer who asks, by their e-mail."""
    return saved_form(
        "livehelp/admin/erase.html",
        lambda: get_state().history.erase_email(
            signed_in_operator(), text_field("email", 254)
        ),
        lambda _: url_for("livehelp.admin.erase_customer"),
        lambda chats: _lh("Chats with personal data erased: %(num)d.", num=chats),
    )
