"""Operator accounts and departments: creating, changing, signing in."""

from __future__ import annotations

import collections.abc as c
import datetime as dt
import functools
import logging
import re
import secrets
import typing as t

import sqlalchemy as sa
from babel.dates import get_timezone
from werkzeug.security import check_password_hash
from werkzeug.security import generate_password_hash

from ..addresses import valid_email
from ..errors import NotFound
from ..errors import Refused
from ..formatting import format_duration
from ..hub import operator_channel
from ..i18n import N_
from ..models import ROLES
from ..models import utcnow
from . import access
from . import audit
from . import Service
from .conversations import ConversationService

log = logging.getLogger(__name__)

LOCALE = re.compile(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})?$")
MIN_PASSWORD_LENGTH = 8
MAX_FORWARD_ADDRESSES = 10


@functools.cache
def _dummy_hash(method: str) -> str:
    """A hash checked when the e-mail is unknown.

    A wrong address then costs as much time as a wrong password and does not
    reveal which addresses have accounts. Made on first use, not at import.
    """
    return generate_password_hash("flask-livehelp", method)


class _Keep:
    """The value of an argument that leaves a field as it is."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: t.Any = _Keep()


def valid_timezone(name: str) -> bool:
    try:
        get_timezone(name)
    except LookupError:
        return False
    return True


class OperatorService(Service):
    def __init__(self, *args: t.Any, conversations: ConversationService) -> None:
        super().__init__(*args)
        self.conversations = conversations

    # Accounts.

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
        by: t.Any | None = None,
    ) -> t.Any:
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
        by: t.Any,
        name: str = KEEP,
        email: str = KEEP,
        role: str = KEEP,
        max_chats: int = KEEP,
        receives_offline: bool = KEEP,
        locale: str | None = KEEP,
        timezone: str | None = KEEP,
        forward_addresses: list[str] = KEEP,
        department_ids: c.Iterable[int] = KEEP,
    ) -> t.Any:
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
        if locale and not LOCALE.match(locale):
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

    def _keep_an_admin(self, leaving: t.Any) -> None:
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

    def get(self, operator_id: int) -> t.Any:
        operator = self.session.get(self.models.operator, operator_id)
        if operator is None:
            raise NotFound("no-operator", N_("No such operator."))
        return operator

    def find_by_email(self, email: str) -> t.Any | None:
        model = self.models.operator
        query = sa.select(model).where(model.email == email.strip().lower())
        return self.session.execute(query).scalar_one_or_none()

    def all(self, *, active_only: bool = False) -> list[t.Any]:
        model = self.models.operator
        query = sa.select(model).order_by(model.name, model.id)
        if active_only:
            query = query.where(model.is_active)
        return list(self.session.execute(query).scalars())

    # Deactivating and passwords.

    def deactivate(self, operator_id: int, *, by: t.Any) -> t.Any:
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

    def activate(self, operator_id: int, *, by: t.Any) -> t.Any:
        operator = self.get(operator_id)
        operator.is_active = True
        self._audit(by, "operator-activated", operator)
        self.session.commit()
        return operator

    def reset_password(self, operator_id: int, password: str, *, by: t.Any) -> t.Any:
        """An admin sets a new password; the operator is signed out everywhere."""
        check_password(password)
        operator = self.get(operator_id)
        operator.password_hash = self._hash(password)
        self._audit(by, "password-reset", operator)
        self._end_sessions(operator)
        return operator

    def change_password(self, operator_id: int, current: str, new: str) -> t.Any:
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

    def _end_sessions(self, operator: t.Any) -> None:
        """End every session and close every panel of ``operator``."""
        operator.session_key = secrets.token_hex(16)
        self.session.commit()
        # Open panels close themselves on this frame.
        self.hub.publish(operator_channel(operator.id), {"type": "signed-out"})

    def _audit(
        self, actor: t.Any | None, action: str, operator: t.Any, **details: t.Any
    ) -> None:
        target = f"operator:{operator.id} {operator.email}"
        self.session.add(audit.entry(self.models, actor, action, target, details))

    # Signing in.

    def authenticate(self, email: str, password: str) -> t.Any | None:
        """The active operator with these credentials, or ``None``."""
        operator = self.find_by_email(email)
        stored = operator.password_hash if operator is not None else None
        matches = check_password_hash(
            stored or _dummy_hash(self.setting("PASSWORD_HASH")), password
        )
        if operator is None or stored is None or not matches:
            return None
        return operator if operator.is_active else None

    def sign_in(
        self, email: str, password: str, ip_address: str | None = None
    ) -> t.Any | None:
        """:meth:`authenticate`, with too many failures refused for a while.

        Failures count per e-mail address (until a success) and per IP
        address; unknown addresses count too, so the answer never tells which
        addresses have accounts.

        :raises Refused: ``too-many`` (429) while the address or IP is locked.
        """
        email = email.strip().lower()[:254]
        ip_address = (ip_address or "")[:64] or None
        self._check_attempts(email, ip_address)
        operator = self.authenticate(email, password)
        self.session.add(
            self.models.login_attempt(
                email=email,
                ip_address=ip_address,
                succeeded=operator is not None,
                at=utcnow(),
            )
        )
        self.session.commit()
        return operator

    def _check_attempts(self, email: str, ip_address: str | None) -> None:
        model = self.models.login_attempt
        seconds = self.setting("LOGIN_LOCKOUT_SECONDS")
        since = utcnow() - dt.timedelta(seconds=seconds)
        most = self.setting("LOGIN_MAX_FAILURES")
        recent = self.session.execute(
            sa.select(model.succeeded)
            .where(model.email == email, model.at >= since)
            .order_by(model.at.desc(), model.id.desc())
            .limit(most)
        ).scalars()
        failures = 0
        for succeeded in recent:
            if succeeded:
                break
            failures += 1
        locked = failures >= most
        if ip_address is not None and not locked:
            from_ip = self.session.execute(
                sa.select(sa.func.count())
                .select_from(model)
                .where(
                    model.ip_address == ip_address,
                    sa.not_(model.succeeded),
                    model.at >= since,
                )
            ).scalar_one()
            locked = from_ip >= self.setting("LOGIN_MAX_FAILURES_PER_IP")
        if locked:
            raise Refused(
                "too-many",
                N_("Too many failed sign-ins. Try again in %(time)s."),
                status=429,
                time=format_duration(dt.timedelta(seconds=seconds)),
            )

    def forget_attempts(self, older_than: dt.datetime) -> int:
        model = self.models.login_attempt
        done = self.session.execute(sa.delete(model).where(model.at < older_than))
        self.session.commit()
        return int(done.rowcount or 0)

    def session_valid(self, operator_id: int, session_key: str) -> t.Any | None:
        """The operator a panel session belongs to, if it is still valid."""
        operator = self.session.get(self.models.operator, operator_id)
        if operator is None or not operator.is_active:
            return None
        if not secrets.compare_digest(operator.session_key, session_key):
            return None
        return operator

    def from_host(
        self,
        external_id: str,
        *,
        name: str,
        email: str,
        role: str | None = None,
    ) -> t.Any | None:
        """The operator row of a staff member the host app signed in.

        Found by the host's id; the first time, an operator with the same
        e-mail is linked to it (the host vouches for its staff's addresses),
        or a new one without a password is made. A ``role`` given by the host
        wins over the panel's; without one, the panel's stays.

        :returns: ``None`` if that operator is deactivated in the panel, or
            the e-mail belongs to an operator linked to another host id.
        """
        external_id = str(external_id)[:64]
        model = self.models.operator
        operator = self.session.execute(
            sa.select(model).where(model.external_id == external_id)
        ).scalar_one_or_none()
        if operator is None:
            operator = self._link_host(external_id, name, email, role)
            if operator is None:
                return None
        else:
            self._sync_host(operator, name, email, role)
        return operator if operator.is_active else None

    def _link_host(
        self, external_id: str, name: str, email: str, role: str | None
    ) -> t.Any | None:
        existing = self.find_by_email(email)
        if existing is None:
            return self.create_operator(
                name=name,
                email=email,
                password=None,
                role=role or "operator",
                external_id=external_id,
            )
        if existing.external_id is not None:
            log.warning(
                "The host's staff member %s has the e-mail of operator %s, who"
                " belongs to another host id; not signed in.",
                external_id,
                existing.id,
            )
            return None
        existing.external_id = external_id
        self._sync_host(existing, name, email, role)
        return existing

    def _sync_host(
        self, operator: t.Any, name: str, email: str, role: str | None
    ) -> None:
        name, email = name.strip()[:120], email.strip().lower()
        if name and operator.name != name:
            operator.name = name
        if valid_email(email) and operator.email != email:
            if self.find_by_email(email) is None:
                operator.email = email
        if role in ROLES and operator.role != role:
            operator.role = role
        self.session.commit()

    # Departments.

    def departments(self, *, active_only: bool = False) -> list[t.Any]:
        model = self.models.department
        query = sa.select(model).order_by(model.name)
        if active_only:
            query = query.where(model.is_active)
        return list(self.session.execute(query).scalars())

    def department(self, department_id: int) -> t.Any:
        department = self.session.get(self.models.department, department_id)
        if department is None:
            raise NotFound("no-department", N_("No such department."))
        return department

    def save_department(
        self,
        department_id: int | None,
        *,
        name: str,
        email: str | None,
        is_active: bool = True,
        by: t.Any,
    ) -> t.Any:
        """Create a department (``department_id=None``) or change one."""
        name, email = name.strip(), (email or "").strip().lower() or None
        if not name or len(name) > 120:
            raise Refused("bad-name", N_("Give a name of at most 120 characters."))
        if email is not None and not valid_email(email):
            raise Refused("bad-email", N_("This is not a valid e-mail address."))
        model = self.models.department
        same_name = self.session.execute(
            sa.select(model).where(model.name == name)
        ).scalar_one_or_none()
        if same_name is not None and same_name.id != department_id:
            raise Refused("name-taken", N_("A department with this name exists."))
        if department_id is None:
            department = model(name=name, email=email, is_active=is_active)
            self.session.add(department)
            action = "department-created"
        else:
            department = self.department(department_id)
            department.name, department.email = name, email
            department.is_active = is_active
            action = "department-changed"
        self.session.flush()
        target = f"department:{department.id} {name}"
        self.session.add(audit.entry(self.models, by, action, target))
        self.session.commit()
        return department

    def check_departments(self, department_ids: c.Collection[int]) -> None:
        """The admin form's rule: once the shop has departments, choose one.

        An operator in no department then serves none of them
        (:func:`~flask_livehelp.services.access.scope`).
        """
        if not department_ids and self.departments():
            raise Refused("department-required", N_("Choose at least one department."))

    def _departments(self, department_ids: c.Iterable[int]) -> list[t.Any]:
        wanted = {int(i) for i in department_ids}
        if not wanted:
            return []
        model = self.models.department
        found = list(
            self.session.execute(sa.select(model).where(model.id.in_(wanted))).scalars()
        )
        if len(found) != len(wanted):
            raise NotFound("no-department", N_("No such department."))
        return found


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
