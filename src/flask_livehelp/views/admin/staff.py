"""Operators and departments."""

from __future__ import annotations

import collections.abc as c
import re
import typing as t
import zoneinfo

from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask.typing import ResponseReturnValue

from ...auth import role_required
from ...auth import signed_in_operator
from ...errors import Refused
from ...i18n import _lh
from ...i18n import N_
from ...models import OperatorMixin
from ...models import ROLES
from ...state import get_state
from .forms import choice_field
from .forms import flag_field
from .forms import ids_field
from .forms import number_field
from .forms import saved_form
from .forms import text_field


@role_required("admin")
def operators() -> str:
    return render_template(
        "livehelp/admin/operators.html", operators=get_state().operators.all()
    )


def _operator_choices() -> dict[str, object]:
    state = get_state()
    return {
        "roles": ROLES,
        "all_departments": state.operators.departments(),
        "languages": state.domain.languages(),
        "timezones": sorted(zoneinfo.available_timezones()),
    }


class _OperatorFields(t.TypedDict):
    """The operator form, as create_operator and update take it."""

    name: str
    email: str
    role: str
    max_chats: int
    receives_offline: bool
    locale: str | None
    timezone: str | None
    forward_addresses: list[str]
    department_ids: list[int]


def _operator_fields() -> _OperatorFields:
    addresses = re.split(r"[\s,;]+", request.form.get("forward_addresses", ""))
    department_ids = ids_field("departments")
    get_state().operators.check_departments(department_ids)
    return {
        "name": text_field("name", 120),
        "email": text_field("email", 254),
        "role": choice_field("role", ROLES),
        "max_chats": number_field("max_chats", 1, 50),
        "receives_offline": flag_field("receives_offline"),
        "locale": text_field("locale", 16) or None,
        "timezone": text_field("timezone", 64) or None,
        "forward_addresses": [a for a in addresses if a],
        "department_ids": department_ids,
    }


@role_required("admin")
def new_operator() -> ResponseReturnValue:
    def save() -> OperatorMixin:
        return get_state().operators.create_operator(
            password=request.form.get("password", ""),
            by=signed_in_operator(),
            **_operator_fields(),
        )

    return saved_form(
        "livehelp/admin/operator.html",
        save,
        lambda created: url_for("livehelp.admin.edit_operator", operator_id=created.id),
        N_("The operator is created. They can sign in now."),
        subject=None,
        **_operator_choices(),
    )


@role_required("admin")
def edit_operator(operator_id: int) -> ResponseReturnValue:
    service = get_state().operators
    subject = service.get(operator_id)

    def save() -> OperatorMixin:
        return service.update(
            operator_id, by=signed_in_operator(), **_operator_fields()
        )

    return saved_form(
        "livehelp/admin/operator.html",
        save,
        lambda _: url_for("livehelp.admin.operators"),
        N_("The changes are saved."),
        subject=subject,
        **_operator_choices(),
    )


def _account_action(
    operator_id: int, action: c.Callable[[], object], done: str
) -> ResponseReturnValue:
    try:
        action()
    except Refused as refusal:
        if refusal.status != 400:
            raise
        flash(_lh(refusal.message, **refusal.variables), "livehelp-error")
    else:
        flash(_lh(done), "livehelp-info")
    return redirect(url_for("livehelp.admin.edit_operator", operator_id=operator_id))


@role_required("admin")
def deactivate(operator_id: int) -> ResponseReturnValue:
    return _account_action(
        operator_id,
        lambda: _deactivate(operator_id),
        N_(
            "The operator is deactivated and signed out everywhere; their open"
            " chats are back in the queue."
        ),
    )


def _deactivate(operator_id: int) -> None:
    state = get_state()
    state.operators.deactivate(operator_id, by=signed_in_operator())
    state.conversations.release_chats(operator_id)


@role_required("admin")
def activate(operator_id: int) -> ResponseReturnValue:
    return _account_action(
        operator_id,
        lambda: get_state().operators.activate(operator_id, by=signed_in_operator()),
        N_("The operator can sign in again."),
    )


@role_required("admin")
def reset_password(operator_id: int) -> ResponseReturnValue:
    return _account_action(
        operator_id,
        lambda: get_state().operators.reset_password(
            operator_id, request.form.get("password", ""), by=signed_in_operator()
        ),
        N_("The new password is set. The operator is signed out everywhere."),
    )


# Departments.


class _DepartmentFields(t.TypedDict):
    name: str
    email: str | None
    is_active: bool


def _department_fields() -> _DepartmentFields:
    return {
        "name": text_field("name", 120),
        "email": text_field("email", 254) or None,
        "is_active": flag_field("is_active"),
    }


@role_required("admin")
def departments(department_id: int | None = None) -> ResponseReturnValue:
    """The departments, with a form for a new one or the one chosen."""
    service = get_state().operators
    return saved_form(
        "livehelp/admin/departments.html",
        lambda: service.save_department(
            department_id, by=signed_in_operator(), **_department_fields()
        ),
        lambda _: url_for("livehelp.admin.departments"),
        N_("The department is created.")
        if department_id is None
        else N_("The changes are saved."),
        departments=service.departments(),
        subject=None if department_id is None else service.department(department_id),
    )
