"""The shop's forms. ``CSRFProtect`` guards every POST; the forms add validation."""

from __future__ import annotations

import typing as t

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField
from wtforms import IntegerField
from wtforms import PasswordField
from wtforms import SubmitField
from wtforms.validators import DataRequired
from wtforms.validators import InputRequired
from wtforms.validators import NumberRange

from .cart import MAX_QUANTITY


class QuantityField(IntegerField):
    """An integer field whose parse error is in the shop's own catalog."""

    def process_formdata(self, valuelist: list[t.Any]) -> None:
        # WTForms ships no Danish catalog, so its "Not a valid integer value."
        # would show in English on a Danish page.
        try:
            super().process_formdata(valuelist)
        except ValueError as exc:
            raise ValueError(gettext("Enter a whole number.")) from exc


class QuantityForm(FlaskForm):
    """Add a product to the cart, or change a cart line's quantity."""

    quantity = QuantityField(
        _l("Quantity"),
        default=1,
        validators=[
            InputRequired(message=_l("Enter a quantity.")),
            NumberRange(
                min=1,
                max=MAX_QUANTITY,
                # WTForms fills in %(min)s and %(max)s.
                message=_l("Choose a quantity from %(min)s to %(max)s."),
            ),
        ],
    )


class ButtonForm(FlaskForm):
    """A form that is only a button (remove, check out, log out)."""


class LoginForm(FlaskForm):
    email = EmailField(
        _l("E-mail"),
        validators=[DataRequired(message=_l("Enter your e-mail address."))],
    )
    password = PasswordField(
        _l("Password"),
        validators=[DataRequired(message=_l("Enter your password."))],
    )
    submit = SubmitField(_l("Log in"))
