"""The operator's own account: changing the password."""

from __future__ import annotations

from flask import Blueprint
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask.typing import ResponseReturnValue

from ..auth import check_csrf
from ..auth import login_operator
from ..auth import operator_required
from ..auth import signed_in_operator
from ..errors import Refused
from ..i18n import _lh
from ..i18n import N_
from ..state import get_state
from .panel import staff_context


def create_blueprint() -> Blueprint:
    bp = Blueprint("account", __name__, url_prefix="/account")
    bp.add_url_rule("/password", view_func=password, methods=["GET", "POST"])
    bp.before_request(check_csrf)
    bp.context_processor(staff_context)
    return bp


@operator_required
def password() -> ResponseReturnValue:
    """Change the password; every other session of the operator ends."""
    operator = signed_in_operator()
    template = "livehelp/account/password.html"
    if request.method == "GET":
        return render_template(template)
    new = request.form.get("new", "")
    try:
        if new != request.form.get("again", ""):
            raise Refused("mismatch", N_("The two new passwords are not the same."))
        changed = get_state().operators.change_password(
            operator.id, request.form.get("current", ""), new
        )
    except Refused as refusal:
        flash(_lh(refusal.message, **refusal.variables), "livehelp-error")
        return render_template(template), refusal.status
    # This browser stays signed in, with the new session key.
    login_operator(changed)
    flash(
        _lh("Your password is changed. Other sessions are signed out."), "livehelp-info"
    )
    return redirect(url_for("livehelp.panel.index"))
