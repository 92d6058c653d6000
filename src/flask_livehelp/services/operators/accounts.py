"""Operator accounts: creating, changing, deactivating and activating them."""

from __future__ import annotations

import collections.abc as c
import re
import secrets
import typing as t

import sqlalchemy as sa
from babel.dates import get_timezone

from ...addresses import valid_email
from ...errors import Refused
from ...i18n import N_
from ...models import OperatorMixin
from ...models import ROLES
from ...models import utcnow
from .. import access
from .departments import Departments
from .passwords import check_password
from .passwords import Passwords

LOCALE = re.compile(r"[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})?")
MAX_FORWARD_ADDRESSES = 10


class _Keep:
    """The value of an argument that leaves a field as it is."""

    def __repr__(self) -> str:
        return "KEEP"


#: Loosely typed, so that it can be the default of a parameter of each type.
KEEP: t.Any = _Keep()


def valid_timezone(name: str) -> bool:
    try:
        get_timezone(name)
    except LookupError:
        return False
    return True


class Accounts(Departments, Passwords):
    """Checked fields, the audit log, and always one active admin."""

    def create_operator(
        self,
        *,
        name: str,
        email: str,
        password: str | None,
        role: str = "operator",
        max_chats: int | None = None,
        receives_offline: bool = False,
        locale: str | None = None,
        timezone: str | None = None,
        external_id: str | None = None,
        forward_addresses: list[str] | None = None,
        department_ids: c.Iterable[int] = (),
        by: OperatorMixin | None = None,
    ) -> OperatorMixin:
        """Create an operator account.

        :param password: ``None`` for an operator who signs in through the
            host's own staff accounts.
        :param by: The admin who creates it, for the audit log.
        :raises Refused: A field is not valid, or the e-mail is taken.
        """
        name, email = name.strip(), email.strip().lower()
        self._check_fields(name, email, role, password, max_chats)
        self._check_profile(locale, timezone)
        if self.find_by_email(email) is not None:
            raise Refused("email-taken", N_("An operator with this e-mail exists."))
        operator = self.models.operator(
            name=name,
            email=email,
            role=role,
            password_hash=self._hash(password) if password else None,
            max_chats=max_chats or self.setting("DEFAULT_MAX_CHATS"),
            receives_offline=receives_offline,
            locale=locale or None,
            timezone=timezone or None,
            external_id=external_id,
            forward_addresses=self._addresses(forward_addresses or []),
            session_key=secrets.token_hex(16),
        )
        operator.departments = self._departments(department_ids)
        self.session.add(operator)
        if by is not None:
            self.session.flush()
            self._audit(by, "operator-created", operator, role=role)
        self.session.commit()
        return operator

    def update(
        self,
        operator_id: int,
        *,
        by: OperatorMixin,
        name: str = KEEP,
        email: str = KEEP,
        role: str = KEEP,
        max_chats: int = KEEP,
        receives_offline: bool = KEEP,
        locale: str | None = KEEP,
        timezone: str | None = KEEP,
        forward_addresses: list[str] = KEEP,
        department_ids: c.Iterable[int] = KEEP,
    ) -> OperatorMixin:
        """Change an operator's account; arguments left out stay as they are.

        :param by: The admin who changes it, for the audit log.
        :raises Refused: A field is not valid, the e-mail is taken, or the
            change would leave the shop without an active admin.
        """
        operator = self.get(operator_id)
        name = operator.name if name is KEEP else name.strip()
        email = operator.email if email is KEEP else email.strip().lower()
        role = operator.role if role is KEEP else role
        self._check_fields(
            name, email, role, None, None if max_chats is KEEP else max_chats
        )
        self._check_profile(
            None if locale is KEEP else locale, None if timezone is KEEP else timezone
        )
        other = self.find_by_email(email)
        if other is not None and other.id != operator.id:
            raise Refused("email-taken", N_("An operator with this e-mail exists."))
        if role != "admin" and operator.role == "admin":
            self._keep_an_admin(operator)
        changes = {
            "name": name,
            "email": email,
            "role": role,
            "max_chats": max_chats,
            "receives_offline": receives_offline,
            "locale": locale if locale is KEEP else (locale or None),
            "timezone": timezone if timezone is KEEP else (timezone or None),
        }
        if forward_addresses is not KEEP:
            changes["forward_addresses"] = self._addresses(forward_addresses)
        changed = sorted(
            key
            for key, value in changes.items()
            if value is not KEEP and getattr(operator, key) != value
        )
        for key in changed:
            setattr(operator, key, changes[key])
        if department_ids is not KEEP:
            wanted = self._departments(department_ids)
            if {d.id for d in wanted} != {d.id for d in operator.departments}:
                operator.departments = wanted
                changed.append("departments")
        if changed:
            self._audit(by, "operator-changed", operator, fields=changed)
        self.session.commit()
        if "role" in changed or "departments" in changed:
            # Their chats of departments they left go to those who serve them.
            self.conversations.release_chats(
                operator.id, keep=lambda chat: access.can_accept(operator, chat)
            )
            # A panel open now keeps the role it had; it starts again with the new one.
            self._end_sessions(operator)
        return operator

    def _check_fields(
        self,
        name: str,
        email: str,
        role: str,
        password: str | None,
        max_chats: int | None,
    ) -> None:
        if not name or len(name) > 120:
            raise Refused("bad-name", N_("Give a name of at most 120 characters."))
        if not valid_email(email):
            raise Refused("bad-email", N_("This is not a valid e-mail address."))
        if role not in ROLES:
            raise Refused("bad-role", N_("Unknown role."))
        if password is not None:
            check_password(password)
        if max_chats is not None and not 1 <= max_chats <= 50:
            raise Refused("bad-max-chats", N_("Max chats must be from 1 to 50."))

    @staticmethod
    def _check_profile(locale: str | None, timezone: str | None) -> None:
        if locale and not LOCALE.fullmatch(locale):
            raise Refused("bad-locale", N_("Unknown language."))
        if timezone and not valid_timezone(timezone):
            raise Refused("bad-timezone", N_("Unknown time zone."))

    @staticmethod
    def _addresses(addresses: c.Iterable[str]) -> list[str] | None:
        cleaned = [a.strip().lower() for a in addresses if a.strip()]
        for address in cleaned:
            if not valid_email(address):
                raise Refused(
                    "bad-email",
                    N_("%(address)s is not a valid e-mail address."),
                    address=address[:254],
                )
        if len(cleaned) > MAX_FORWARD_ADDRESSES:
            raise Refused(
                "too-many-addresses",
                N_("Give at most %(num)d forward addresses."),
                num=MAX_FORWARD_ADDRESSES,
            )
        return list(dict.fromkeys(cleaned)) or None

    def _keep_an_admin(self, leaving: OperatorMixin) -> None:
        """Refuse to take the last active admin away."""
        model = self.models.operator
        others = self.session.execute(
            sa.select(sa.func.count())
            .select_from(model)
            .where(model.role == "admin", model.is_active, model.id != leaving.id)
        ).scalar_one()
        if not others:
            raise Refused(
                "last-admin",
                N_("The shop needs at least one active admin. Make another first."),
            )

    def deactivate(self, operator_id: int, *, by: OperatorMixin) -> OperatorMixin:
        """Close an account at once: its sessions end and its panels close."""
        operator = self.get(operator_id)
        if by is not None and operator.id == by.id:
            raise Refused("self", N_("You cannot deactivate your own account."))
        if operator.role == "admin":
            self._keep_an_admin(operator)
        operator.is_active = False
        operator.status = "offline"
        operator.status_changed_at = utcnow()
        self._audit(by, "operator-deactivated", operator)
        self._end_sessions(operator)
        return operator

    def activate(self, operator_id: int, *, by: OperatorMixin) -> OperatorMixin:
        operator = self.get(operator_id)
        operator.is_active = True
        self._audit(by, "operator-activated", operator)
        self.session.commit()
        return operator
