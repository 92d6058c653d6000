"""Claims on mails: one sender at a time, however many processes there are."""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import typing as t

import sqlalchemy as sa
from flask import current_app

from ...models import utcnow
from .writing import MailWriting

log = logging.getLogger(__name__)


class MailClaims(MailWriting):
    """A claim taken with one atomic UPDATE, renewed while its sender works."""

    def _claim(self, mail_id: int) -> bool:
        model = self.models.mail
        now = utcnow()
        taken = self.changed(
            sa.update(model)
            .where(model.id == mail_id, model.status.in_(("pending", "sending")))
            .where(model.next_attempt_at <= now)
            .where(sa.or_(model.claimed_until.is_(None), model.claimed_until < now))
            .values(
                claimed_until=now + self._claim_time(),
                claimed_by=holder(),
                claimed_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        self.session.commit()
        return taken == 1

    def _claim_time(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.setting("MAIL_CLAIM_SECONDS"))

    def _renew(self, ids: list[int]) -> None:
        """This process is alive and still sending these: keep them claimed."""
        if not ids:
            return
        model = self.models.mail
        self.session.execute(
            sa.update(model)
            .where(model.id.in_(ids), model.claimed_by == holder())
            .values(claimed_until=utcnow() + self._claim_time())
            .execution_options(synchronize_session=False)
        )
        self.session.commit()

    def _renewing(self, ids: list[int]) -> _Renewer:
        """Renew the claims on ``ids`` (those still there) while this sends.

        On a thread of its own: one slow server answer must not let the
        claims of a live sender lapse, or another process would send the
        same mails again.
        """
        app = current_app._get_current_object()  # type: ignore[attr-defined]

        def renew() -> None:
            with app.app_context():
                try:
                    self._renew(list(ids))
                finally:
                    self.session.remove()

        return _Renewer(renew, self._claim_time().total_seconds() / 3)


class _Renewer:
    """Runs ``renew`` every ``every`` seconds on a thread, while in ``with``."""

    def __init__(self, renew: t.Callable[[], None], every: float) -> None:
        self._renew = renew
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="livehelp-claim-renewer", daemon=True
        )

    def __enter__(self) -> _Renewer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self._renew()
            except Exception:
                log.exception("Renewing the claims on mails being sent failed.")


def holder() -> str:
    """Who claims a mail: this process, on this machine."""
    return f"{socket.gethostname()}:{os.getpid()}"
