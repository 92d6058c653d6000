"""Signing in to the panel, and the host's own staff signed in for it."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import secrets

import sqlalchemy as sa
from werkzeug.security import check_password_hash
from werkzeug.security import generate_password_hash

from ...addresses import valid_email
from ...errors import Refused
from ...formatting import format_duration
from ...i18n import N_
from ...models import OperatorMixin
from ...models import ROLES
from ...models import utcnow
from .accounts import Accounts

log = logging.getLogger(__name__)


@functools.cache
def _dummy_hash(method: str) -> str:
    """A hash checked when the e-mail is unknown.

    A wrong address then costs as much time as a wrong password and does not
    reveal which addresses have accounts. Made on first use, not at import.
    """
    return generate_password_hash("flask-livehelp", method)


class SigningIn(Accounts):
    """Credentials, lockouts after failures, sessions and host staff."""

    def authenticate(self, email: str, password: str) -> OperatorMixin | None:
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
    ) -> OperatorMixin | None:
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
        done = self.changed(sa.delete(model).where(model.at < older_than))
        self.session.commit()
        return done

    def session_valid(self, operator_id: int, session_key: str) -> OperatorMixin | None:
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
    ) -> OperatorMixin | None:
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
    ) -> OperatorMixin | None:
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
        self, operator: OperatorMixin, name: str, email: str, role: str | None
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
