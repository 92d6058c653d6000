"""Passwords and panel sessions."""

from __future__ import annotations

import secrets

from werkzeug.security import check_password_hash
from werkzeug.security import generate_password_hash

from ...errors import Refused
from ...hub import operator_channel
from ...i18n import N_
from ...models import OperatorMixin
from .base import OperatorBase

MIN_PASSWORD_LENGTH = 8


class Passwords(OperatorBase):
    """Setting passwords; a change ends every session and closes every panel."""

    def reset_password(
        self, operator_id: int, password: str, *, by: OperatorMixin
    ) -> OperatorMixin:
        """An admin sets a new password; the operator is signed out everywhere."""
        check_password(password)
        operator = self.get(operator_id)
        operator.password_hash = self._hash(password)
        self._audit(by, "password-reset", operator)
        self._end_sessions(operator)
        return operator

    def change_password(
        self, operator_id: int, current: str, new: str
    ) -> OperatorMixin:
        """The operator changes their own password.

        Every other session of theirs ends; the caller signs the current one
        in again with the new session key.
        """
        operator = self.get(operator_id)
        if operator.password_hash is None or not check_password_hash(
            operator.password_hash, current
        ):
            raise Refused(
                "wrong-password", N_("Your current password is not right."), status=403
            )
        check_password(new)
        operator.password_hash = self._hash(new)
        self._audit(operator, "password-changed", operator)
        self._end_sessions(operator)
        return operator

    def _hash(self, password: str) -> str:
        return generate_password_hash(password, self.setting("PASSWORD_HASH"))

    def sign_out_everywhere(self, operator_id: int) -> None:
        """End every panel sign-in of the operator and close their panels."""
        self._end_sessions(self.get(operator_id))

    def _end_sessions(self, operator: OperatorMixin) -> None:
        """End every session and close every panel of ``operator``."""
        operator.session_key = secrets.token_hex(16)
        self.session.commit()
        # Open panels close themselves on this frame.
        self.hub.publish(operator_channel(operator.id), {"type": "signed-out"})


def check_password(password: str) -> None:
    """Refuse a password that is too short or too long to be hashed sensibly."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Refused(
            "weak-password",
            N_("The password must have at least %(num)d characters."),
            num=MIN_PASSWORD_LENGTH,
        )
    if len(password) > 1000:
        raise Refused("long-password", N_("The password is too long."))
