"""Offline messages over HTTP: the widget's form, the inbound-mail webhook, and
the staff pages (the list, answering by mail, and the outbox for managers).
"""

from __future__ import annotations

import secrets
import typing as t

import sqlalchemy as sa
from flask import abort
from flask import Blueprint
from flask import current_app
from flask import flash
from flask import jsonify
from flask import redirect
from flask import render_template
from flask import request
from flask import Response
from flask import url_for
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue

from ..auth import check_csrf
from ..auth import operator_required
from ..auth import origin_allowed
from ..auth import role_required
from ..auth import signed_in_operator
from ..config import config_value
from ..errors import NotAllowed
from ..errors import Refused
from ..i18n import _lh
from ..i18n import current_language
from ..i18n import N_
from ..models import OperatorMixin
from ..protocol import CLIENT_ID
from ..protocol import NOT_TEXT
from ..services import access
from ..services.history.wording import event_text
from ..services.inbound import SIGNATURE_HEADER
from ..services.inbound import TIMESTAMP_HEADER
from ..services.inbound import webhook_signed
from ..state import get_state
from ..text import has_surrogates
from .panel import staff_context
from .responses import refusal_json
from .widget import in_page_language

PER_PAGE = 50
#: The largest mail the webhook takes (attachments included).
MAX_INBOUND_BYTES = 10 * 1024 * 1024
TOKEN_HEADER = "X-LiveHelp-Token"
#: Endpoints that are not staff pages: no panel session, no panel CSRF token.
PUBLIC = ("livehelp.offline.message", "livehelp.offline.inbound")


def create_blueprint() -> Blueprint:
    bp = Blueprint("offline", __name__, url_prefix="/offline")
    bp.add_url_rule("/message", view_func=message, methods=["POST"])
    bp.add_url_rule("/inbound", view_func=inbound, methods=["POST"])
    bp.add_url_rule("/", view_func=index)
    bp.add_url_rule("/<int:conversation_id>", view_func=detail)
    bp.add_url_rule("/<int:conversation_id>/answer", view_func=answer, methods=["POST"])
    bp.add_url_rule("/outbox", view_func=outbox)
    bp.add_url_rule("/outbox/<int:mail_id>/retry", view_func=retry, methods=["POST"])
    bp.before_request(_protect)
    bp.context_processor(staff_context)
    bp.record_once(_exempt_webhook_from_host_csrf)
    return bp


def _protect() -> None:
    if request.endpoint not in PUBLIC:
        check_csrf()


def _exempt_webhook_from_host_csrf(setup: BlueprintSetupState) -> None:
    # A mail relay sends no cookies and cannot know the host's CSRF token; the
    # webhook proves itself by its signature instead. Only this one view is
    # exempted from the host's Flask-WTF CSRFProtect (when it is set up
    # before LiveHelp; otherwise the host exempts it the same way).
    csrf = setup.app.extensions.get("csrf")
    if csrf is not None and hasattr(csrf, "exempt"):
        csrf.exempt(f"{__name__}.inbound")


# The widget's offline form.


Value = t.TypeVar("Value")


def _field(data: dict[str, object], name: str, kind: type[Value]) -> Value | None:
    value = data.get(name)
    # bool is an int in Python, not in our JSON.
    if value is not None and (
        not isinstance(value, kind) or (kind is int and isinstance(value, bool))
    ):
        raise Refused(
            "bad-field", N_("The field %(field)s has the wrong type."), field=name
        )
    if isinstance(value, str) and has_surrogates(value):
        raise Refused("bad-field", NOT_TEXT, field=name)
    return value


@in_page_language
def message() -> tuple[Response, int]:
    """Store an offline message from the widget, then mail it.

    Answers ``201 {"ok": true, "conversation": id}`` (plus ``"token"`` for a
    visitor we did not know yet) once it is stored, the same for a resend,
    and ``4xx {"error": code, "message": text}`` when it is refused.
    """
    if not origin_allowed(request.headers.get("Origin")):
        return refusal_json(
            Refused(
                "bad-origin",
                N_("This site may not send messages here."),
                status=403,
            )
        )
    data = request.get_json(silent=True)
    try:
        if not isinstance(data, dict):
            raise Refused("bad-field", N_("Send the message as a JSON object."))
        submission = get_state().offline.submit(
            client_id=_field(data, "id", str),
            body=_field(data, "body", str),
            name=_field(data, "name", str),
            email=_field(data, "email", str),
            consent=bool(_field(data, "consent", bool)),
            page=_field(data, "page", str),
            department_id=_field(data, "department", int),
            honeypot=_field(data, "website", str),
            visitor_token=request.headers.get(TOKEN_HEADER),
            ip_address=request.remote_addr,
            user_agent=request.user_agent.string,
            locale=current_language(),
            timezone=_field(data, "timezone", str),
        )
    except Refused as refusal:
        return refusal_json(refusal)
    answer: dict[str, object] = {
        "ok": True,
        "conversation": submission.conversation_id,
        # Only an address mail really goes out to: what the widget promises.
        "mailed": submission.answered_at,
    }
    if submission.token is not None:
        answer["token"] = submission.token
    return jsonify(answer), 201


# The inbound-mail webhook.


def inbound() -> tuple[Response, int]:
    """A relay posts one raw mail (``message/rfc822``), signed with the secret.

    Answers 200 whatever became of a signed mail (so the relay does not send
    it again), 403 for a bad signature, 404 while no secret is set.
    """
    secret = config_value("INBOUND_SECRET")
    if not secret:
        abort(404)
    # Read at most that much (Flask 3.0 has no per-request setting for it).
    if (request.content_length or 0) > MAX_INBOUND_BYTES:
        abort(413)
    body = request.stream.read(MAX_INBOUND_BYTES + 1)
    if len(body) > MAX_INBOUND_BYTES:
        abort(413)
    signed = webhook_signed(
        secret,
        body,
        request.headers.get(TIMESTAMP_HEADER),
        request.headers.get(SIGNATURE_HEADER),
    )
    if not signed:
        return jsonify(
            error="bad-signature", message="The signature does not match."
        ), 403
    result = get_state().inbound.receive(body)
    return jsonify(
        ok=True,
        outcome=result.outcome,
        reason=result.reason,
        conversation=result.conversation_id,
    ), 200


# The staff pages.


@operator_required
def index() -> str:
    state = get_state()
    answered = request.args.get("show") == "answered"
    page = max(request.args.get("page", 1, type=int), 1)
    operator = signed_in_operator()
    conversations, total = state.offline.listing(
        operator, answered=answered, page=page, per_page=PER_PAGE
    )
    return render_template(
        "livehelp/offline/list.html",
        conversations=conversations,
        previews=state.conversations.previews([c.id for c in conversations]),
        answered=answered,
        page=page,
        pages=max((total + PER_PAGE - 1) // PER_PAGE, 1),
        total=total,
        outbox=_outbox_summary(operator) if _sees_outbox(operator) else None,
    )


def _sees_outbox(operator: OperatorMixin) -> bool:
    return access.has_role(operator, "manager")


def _mails_of(operator: OperatorMixin) -> sa.ColumnElement[bool]:
    """Which mails of the outbox the operator sees (an access rule)."""
    return access.mail_clause(operator, get_state().models)


def _outbox_summary(operator: OperatorMixin) -> dict[str, object]:
    counts = get_state().mail.counts(_mails_of(operator))
    return {
        "failed": counts.get("failed", 0),
        "pending": counts.get("pending", 0),
        "mail_ready": "mail" in current_app.extensions,
    }


@operator_required
def detail(
    conversation_id: int, body: str = "", status: int = 200
) -> ResponseReturnValue:
    state = get_state()
    conversation = state.offline.for_operator(signed_in_operator(), conversation_id)
    html = render_template(
        "livehelp/offline/detail.html",
        conversation=conversation,
        messages=state.conversations.messages_after(
            conversation.id, 0, None, staff=True
        ),
        mails=state.mail.for_conversation(conversation.id),
        form_id=secrets.token_hex(12),
        body=body,
        event_text=event_text,
    )
    return html, status


@operator_required
def answer(conversation_id: int) -> ResponseReturnValue:
    body = request.form.get("body", "")
    form_id = request.form.get("form_id", "")
    operator = signed_in_operator()
    try:
        get_state().offline.answer(
            operator,
            conversation_id,
            body,
            client_id=form_id if CLIENT_ID.fullmatch(form_id) else None,
        )
    except NotAllowed:
        raise
    except Refused as refusal:
        # The page again, with what they wrote, so nothing is lost.
        flash(_lh(refusal.message, **refusal.variables), "livehelp-error")
        return detail(conversation_id, body=body, status=refusal.status)
    flash(_lh("Your answer is saved and on its way by mail."), "livehelp-info")
    return redirect(url_for(".detail", conversation_id=conversation_id))


@role_required("manager")
def outbox() -> str:
    operator = signed_in_operator()
    state = get_state()
    return render_template(
        "livehelp/offline/outbox.html",
        problems=state.mail.problems(visible=_mails_of(operator)),
        summary=_outbox_summary(operator),
    )


@role_required("manager")
def retry(mail_id: int) -> ResponseReturnValue:
    mail = get_state().mail
    if not mail.allows(mail_id, _mails_of(signed_in_operator())):
        raise NotAllowed("not-allowed", N_("You may not send this mail."))
    try:
        mail.send_soon([mail.retry(mail_id)])
    except Refused as refusal:
        flash(_lh(refusal.message, **refusal.variables), "livehelp-error")
    else:
        flash(_lh("The mail will be sent again."), "livehelp-info")
    return redirect(url_for(".outbox"))
