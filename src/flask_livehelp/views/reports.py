"""The managers' report: chats per day, missed chats, response times, durations."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint
from flask import render_template

from ..auth import role_required
from ..auth import signed_in_operator
from ..formatting import time_zone
from ..models import utcnow
from ..services import access
from ..state import get_state
from .history import date_arg
from .history import int_arg
from .panel import staff_context

#: The days a report covers when none are asked for.
DEFAULT_DAYS = 30


def create_blueprint() -> Blueprint:
    bp = Blueprint("report", __name__, url_prefix="/report")
    bp.add_url_rule("/", view_func=index)
    bp.context_processor(staff_context)
    return bp


@role_required("manager")
def index() -> str:
    operator = signed_in_operator()
    today = utcnow().astimezone(time_zone(operator.timezone)).date()
    date_to = date_arg("to") or today
    date_from = date_arg("from") or date_to - dt.timedelta(days=DEFAULT_DAYS - 1)
    department_id = int_arg("department")
    report = get_state().reports.figures(
        operator,
        date_from,
        date_to,
        timezone=operator.timezone,
        department_id=department_id,
    )
    departments = [
        d
        for d in get_state().operators.departments()
        if access.oversees(operator, d.id)
    ]
    return render_template(
        "livehelp/report.html",
        report=report,
        department_id=department_id,
        departments=departments,
        seconds=_seconds,
    )


def _seconds(value: float | None) -> dt.timedelta | None:
    return None if value is None else dt.timedelta(seconds=round(value))
