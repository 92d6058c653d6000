"""Chat history: my active and completed chats, all chats for managers, transcripts.

The pages read their filters from the query string, so every list (and its
CSV export) has an address that can be bookmarked and shared with a
colleague, who sees what their own role allows.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import Response
from flask import stream_with_context
from flask import url_for
from flask.typing import ResponseReturnValue

from ..auth import check_csrf
from ..auth import operator_required
from ..auth import safe_next
from ..auth import signed_in_operator
from ..errors import NotAllowed
from ..errors import Refused
from ..i18n import _lh
from ..i18n import _lhn
from ..i18n import N_
from ..models import DepartmentMixin
from ..models import OperatorMixin
from ..models import utcnow
from ..services import access
from ..services.history.filters import HistoryFilter
from ..services.history.filters import SORTS
from ..services.history.wording import author_name
from ..services.history.wording import customer_name
from ..services.history.wording import event_text
from ..state import get_state
from .panel import staff_context

PER_PAGE = 50
#: The most chats one action changes at once.
MAX_SELECTED = 500


def create_blueprint() -> Blueprint:
    bp = Blueprint("history", __name__, url_prefix="/history")
    bp.add_url_rule("/", view_func=index)
    bp.add_url_rule("/export.csv", view_func=export)
    bp.add_url_rule("/actions", view_func=actions, methods=["POST"])
    bp.add_url_rule("/<int:conversation_id>", view_func=transcript)
    bp.add_url_rule("/<int:conversation_id>.txt", view_func=transcript_text)
    bp.add_url_rule(
        "/<int:conversation_id>/erase", view_func=erase, methods=["GET", "POST"]
    )
    bp.before_request(check_csrf)
    bp.context_processor(staff_context)
    bp.context_processor(_history_context)
    return bp


def _history_context() -> dict[str, object]:
    return {
        "event_text": event_text,
        "author_name": author_name,
        "customer_name": customer_name,
        "may": access,
    }


# Reading the query string.


def int_arg(name: str) -> int | None:
    value = request.args.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise Refused(
            "bad-field", N_("The field %(field)s must be a number."), field=name
        )
    return int(value)


def date_arg(name: str) -> dt.date | None:
    value = request.args.get(name, "").strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise Refused(
            "bad-date", N_("Write dates as YYYY-MM-DD, e.g. 2026-11-22.")
        ) from None


def history_filter() -> HistoryFilter:
    """The list the query string asks for."""
    args = request.args
    return HistoryFilter(
        view=args.get("view", "completed"),
        status=args.get("status") or None,
        operator_id=int_arg("operator"),
        department_id=int_arg("department"),
        tag=args.get("tag", "").strip()[:64] or None,
        date_from=date_arg("from"),
        date_to=date_arg("to"),
        search=args.get("q", "").strip()[:500],
        sort=args.get("sort", "started"),
        descending=args.get("dir", "desc") != "asc",
    )


def _filter_args(query: HistoryFilter) -> dict[str, object]:
    """``query`` as query-string arguments, for links that keep it."""
    args = {
        "view": query.view,
        "status": query.status,
        "operator": query.operator_id,
        "department": query.department_id,
        "tag": query.tag,
        "from": query.date_from.isoformat() if query.date_from else None,
        "to": query.date_to.isoformat() if query.date_to else None,
        "q": query.search or None,
        "sort": query.sort,
        "dir": "desc" if query.descending else "asc",
    }
    return {key: value for key, value in args.items() if value is not None}


# Pages.


@operator_required
def index() -> str:
    operator = signed_in_operator()
    query = history_filter()
    page = max(int_arg("page") or 1, 1)
    state = get_state()
    found = state.history.search(
        operator, query, page=page, per_page=PER_PAGE, timezone=operator.timezone
    )
    return render_template(
        "livehelp/history/list.html",
        query=query,
        found=found,
        args=_filter_args(query),
        sorts=SORTS,
        operators=_colleagues(operator),
        departments=_departments(operator),
        tags=state.conversations.all_tags(),
        transfer_targets=state.operators.all(active_only=True),
        transfer_departments=state.operators.departments(active_only=True),
    )


def _colleagues(operator: OperatorMixin) -> list[OperatorMixin]:
    """The operators a viewer may filter by."""
    if not access.has_role(operator, "manager"):
        return [operator]
    everyone = get_state().operators.all()
    return [o for o in everyone if access.sees_colleague(operator, o)]


def _departments(operator: OperatorMixin) -> list[DepartmentMixin]:
    return [
        d
        for d in get_state().operators.departments()
        if access.oversees(operator, d.id)
    ]


@operator_required
def export() -> Response:
    """The whole filtered list as CSV, written as it is read."""
    operator = signed_in_operator()
    query = history_filter()
    history = get_state().history
    history.check(operator, query)
    lines = history.export_csv(operator, query, timezone=operator.timezone)
    response = Response(
        stream_with_context(lines), content_type="text/csv; charset=utf-8"
    )
    stamp = dt.date.today().isoformat()
    response.headers["Content-Disposition"] = (
        f'attachment; filename="chat-history-{stamp}.csv"'
    )
    return response


@operator_required
def transcript(conversation_id: int) -> str:
    conversation, messages = get_state().history.transcript(
        signed_in_operator(), conversation_id
    )
    return render_template(
        "livehelp/history/detail.html",
        conversation=conversation,
        messages=messages,
        duration=(conversation.ended_at or utcnow()) - conversation.created_at,
    )


@operator_required
def transcript_text(conversation_id: int) -> Response:
    operator = signed_in_operator()
    text = get_state().history.transcript_text(
        operator, conversation_id, timezone=operator.timezone
    )
    response = Response(text, content_type="text/plain; charset=utf-8")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="chat-{conversation_id}.txt"'
    )
    return response


@operator_required
def erase(conversation_id: int) -> ResponseReturnValue:
    """Ask first, then erase the customer's personal data of a chat."""
    operator = signed_in_operator()
    history = get_state().history
    conversation = history.get(operator, conversation_id)
    if not access.can_erase(operator, conversation):
        raise NotAllowed(
            "not-allowed", N_("Only managers and admins erase customer data.")
        )
    if request.method == "GET":
        return render_template("livehelp/history/erase.html", conversation=conversation)
    touched = history.erase_customer(operator, conversation_id)
    flash(
        _lhn(
            "The customer's personal data is erased from %(num)d chat.",
            "The customer's personal data is erased from %(num)d chats.",
            touched,
        ),
        "livehelp-info",
    )
    return redirect(
        url_for("livehelp.history.transcript", conversation_id=conversation_id)
    )


@operator_required
def actions() -> ResponseReturnValue:
    """Delete or transfer the chats ticked in a list."""
    operator = signed_in_operator()
    ids = _selected()
    action = request.form.get("action")
    if action == "delete":
        deleted = get_state().history.delete(operator, ids)
        flash(
            _lhn("Deleted %(num)d chat.", "Deleted %(num)d chats.", deleted),
            "livehelp-info",
        )
    elif action == "transfer":
        _transfer(operator, ids)
    else:
        raise Refused("bad-action", N_("Unknown action."))
    return redirect(_back())


def _selected() -> list[int]:
    values = request.form.getlist("ids")
    if not values:
        raise Refused("none-selected", N_("Select at least one chat."))
    if len(values) > MAX_SELECTED:
        raise Refused("too-many", N_("Select at most %(num)d chats."), num=MAX_SELECTED)
    if not all(value.isdigit() for value in values):
        raise Refused(
            "bad-field", N_("The field %(field)s must be a number."), field="ids"
        )
    return [int(value) for value in values]


def _transfer(operator: OperatorMixin, ids: list[int]) -> None:
    """Offer each chat to the colleague or department chosen.

    A chat the operator may not see or move refuses the whole action (403);
    one that cannot go now (the colleague went offline, the chat ended) is
    named, and the others are offered.
    """
    target = request.form.get("to", "")
    kind, _, number = target.partition(":")
    if kind not in ("operator", "department") or not number.isdigit():
        raise Refused("bad-target", N_("Choose one colleague or one department."))
    to = {f"to_{kind}_id": int(number)}
    state = get_state()
    offer = state.transfers.offer
    note = request.form.get("note", "").strip()[:1000] or None
    for conversation_id in ids:
        state.history.get(operator, conversation_id)
    offered = []
    for conversation_id in ids:
        try:
            offer(operator, conversation_id, note=note, **to)
        except Refused as refusal:
            state.db.session.rollback()
            if refusal.status != 400:
                raise
            reason = _lh(refusal.message, **refusal.variables)
            flash(
                _lh("Chat %(id)d: %(reason)s", id=conversation_id, reason=reason),
                "livehelp-error",
            )
        else:
            offered.append(conversation_id)
    if offered:
        flash(
            _lhn(
                "Offered %(num)d chat for transfer.",
                "Offered %(num)d chats for transfer.",
                len(offered),
            ),
            "livehelp-info",
        )


def _back() -> str:
    """The list the action came from, never another site."""
    return safe_next(request.form.get("next"), url_for("livehelp.history.index"))
