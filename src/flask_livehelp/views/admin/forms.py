"""Reading the admin forms' fields, and showing a form or saving it."""

from __future__ import annotations

import collections.abc as c
import typing as t

from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask.typing import ResponseReturnValue

from ...errors import Refused
from ...i18n import _lh
from ...i18n import N_
from ...text import without_controls

Saved = t.TypeVar("Saved")


def saved_form(
    template: str,
    save: c.Callable[[], Saved],
    done: c.Callable[[Saved], str],
    message: str | c.Callable[[Saved], str],
    **context: object,
) -> ResponseReturnValue:
    """Show a form, or save it: redirect on success, else the form again.

    The form comes back with what was typed and the reason, and a 400;
    a refusal of another kind (403, 404) is the error page as everywhere.
    """
    if request.method == "POST":
        try:
            result = save()
        except Refused as refusal:
            if refusal.status != 400:
                raise
            flash(_lh(refusal.message, **refusal.variables), "livehelp-error")
            return render_template(template, form=request.form, **context), 400
        flash(message(result) if callable(message) else _lh(message), "livehelp-info")
        return redirect(done(result))
    return render_template(template, form=None, **context)


def text_field(name: str, maximum: int = 20000) -> str:
    value = without_controls(request.form.get(name, "")).strip()
    if len(value) > maximum:
        raise Refused(
            "too-long",
            N_("The field %(field)s is longer than %(max)d characters."),
            field=name,
            max=maximum,
        )
    return value


@t.overload
def number_field(name: str, low: int, high: int) -> int: ...
@t.overload
def number_field(name: str, low: int, high: int, *, optional: bool) -> int | None: ...
def number_field(
    name: str, low: int, high: int, *, optional: bool = False
) -> int | None:
    value = request.form.get(name, "").strip()
    if not value and optional:
        return None
    if not value.isdigit() or not low <= int(value) <= high:
        raise Refused(
            "bad-number",
            N_("%(field)s must be a whole number from %(low)d to %(high)d."),
            field=name,
            low=low,
            high=high,
        )
    return int(value)


def choice_field(name: str, choices: c.Sequence[str]) -> str:
    value = request.form.get(name, "")
    if value not in choices:
        raise Refused(
            "bad-field", N_("The field %(field)s has an unknown value."), field=name
        )
    return value


def flag_field(name: str) -> bool:
    return request.form.get(name) in ("1", "on", "yes", "true")


def ids_field(name: str) -> list[int]:
    values = request.form.getlist(name)
    if not all(v.isdigit() for v in values):
        raise Refused(
            "bad-field", N_("The field %(field)s must be a number."), field=name
        )
    return [int(v) for v in values]
