"""The operator panel: sign in, and the one page operators work in all day."""

from __future__ import annotations

from flask import Blueprint
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask.typing import ResponseReturnValue

from ..auth import check_csrf
from ..auth import csrf_token
from ..auth import current_operator
from ..auth import login_operator
from ..auth import logout_operator
from ..auth import operator_required
from ..auth import safe_next
from ..config import config_value
from ..errors import Refused
from ..i18n import _lh
from ..i18n import current_language
from ..sockets.operator import operator_socket
from ..sockets.reader import releasing
from ..state import get_state
from .handshake import check_handshake
from .handshake import socket_route


def create_blueprint() -> Blueprint:
    bp = Blueprint("panel", __name__, url_prefix="/panel")
    bp.add_url_rule("/", view_func=index)
    bp.add_url_rule("/login", view_func=login, methods=["GET", "POST"])
    bp.add_url_rule("/logout", view_func=logout, methods=["POST"])
    socket_route(bp, "/ws", releasing(operator_socket))
    bp.before_request(_protect)
    bp.context_processor(staff_context)
    return bp


def _protect() -> None:
    if request.endpoint == "livehelp.panel.operator_socket":
        check_handshake()
    check_csrf()


def staff_context() -> dict[str, object]:
    """What every staff page's template may use."""
    return {"livehelp_csrf_token": csrf_token, "operator": current_operator()}


def panel_strings() -> dict[str, str]:
    """Every text the panel's script shows, translated."""
    return {
        "online": _lh("Online"),
        "away": _lh("Back in five minutes"),
        "offline": _lh("Offline"),
        "queued": _lh("Queued"),
        "routedTo": _lh("For %(name)s"),
        "noQueue": _lh("Nobody is waiting."),
        "noActive": _lh("No active chats."),
        "anonymous": _lh("Anonymous visitor"),
        "accepted": _lh("%(name)s accepted the chat."),
        "taken": _lh("Another operator has already taken this chat."),
        "transferred": _lh("%(name)s took over the chat."),
        "transferOffered": _lh("%(operator)s offered the chat to %(to)s."),
        "note": _lh("Note: %(note)s"),
        "pushed": _lh("%(operator)s pushed a page: %(url)s"),
        "ended": _lh("The chat has ended."),
        "dismissChat": _lh("Dismiss the chat with %(name)s"),
        "returned": _lh("The chat went back to the queue."),
        "timedOut": _lh("Nobody accepted the chat in time; it went to the mailbox."),
        "closedQuiet": _lh("The chat was closed after a long silence."),
        "byEmail": _lh("by e-mail"),
        "typing": _lh("The visitor is writing..."),
        "newRequest": _lh("New chat request"),
        "newTransfer": _lh("A colleague offers you a chat"),
        "reconnecting": _lh("Connection lost. Reconnecting..."),
        "hubDown": _lh(
            "The servers lost touch with each other. Messages are kept and"
            " appear when the connection is back."
        ),
        "waitingFor": _lh("waiting %(time)s"),
        "idleFor": _lh("idle %(time)s"),
        "transferFrom": _lh("%(name)s offers you the chat with %(visitor)s."),
        "takeIt": _lh("Take it"),
        "decline": _lh("Decline"),
        "transferDeclined": _lh("%(name)s declined the transfer."),
        "invitationDeclined": _lh("The visitor declined your invitation."),
        "invite": _lh("Invite"),
        "invited": _lh("Invited"),
        "chatting": _lh("Chatting"),
        "left": _lh("Left the site"),
        "name": _lh("Name"),
        "email": _lh("E-mail"),
        "noEmail": _lh("no e-mail"),
        # Beside a name or e-mail: whether the shop vouches for it.
        "verified": _lh("confirmed by the shop"),
        "typed": _lh("typed by the customer"),
        "consent": _lh("May be e-mailed about the question"),
        "yes": _lh("Yes"),
        "no": _lh("No"),
        "page": _lh("Page"),
        "language": _lh("Language"),
        "customerNumber": _lh("Customer number"),
        "orders": _lh("Orders"),
        "department": _lh("Department"),
        "colleague": _lh("Colleague"),
        "you": _lh("(you)"),
        "removeTag": _lh("Remove tag %(name)s"),
        "translate": _lh("Translate"),
    }


@operator_required
def index() -> str:
    settings = {
        "socket": url_for("livehelp.panel.operator_socket"),
        "lang": current_language(),
        "loginUrl": url_for("livehelp.panel.login"),
        "maxLength": config_value("MAX_MESSAGE_LENGTH"),
    }
    return render_template(
        "livehelp/panel/index.html",
        strings=panel_strings(),
        settings=settings,
    )


def login() -> ResponseReturnValue:
    if request.method == "POST":
        try:
            operator = get_state().operators.sign_in(
                request.form.get("email", ""),
                request.form.get("password", ""),
                request.remote_addr,
            )
        except Refused as refusal:
            # Too many failures: the same page, with the reason and a 429.
            flash(_lh(refusal.message, **refusal.variables), "livehelp-error")
            return render_template("livehelp/panel/login.html"), refusal.status
        if operator is not None:
            login_operator(operator)
            return redirect(_safe_next(request.args.get("next")))
        flash(_lh("Wrong e-mail or password."), "livehelp-error")
        return render_template("livehelp/panel/login.html"), 401
    if current_operator() is not None:
        return redirect(url_for("livehelp.panel.index"))
    return render_template("livehelp/panel/login.html")


def _safe_next(target: str | None) -> str:
    return safe_next(target, url_for("livehelp.panel.index"))


def logout() -> ResponseReturnValue:
    logout_operator()
    return redirect(url_for("livehelp.panel.login"))
