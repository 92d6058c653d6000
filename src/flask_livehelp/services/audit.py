"""The audit log: who did what that must be accounted for."""

from __future__ import annotations

import sqlalchemy as sa

from ..models import AuditMixin
from ..models import Models
from ..models import OperatorMixin
from ..models import utcnow
from . import Service

#: How many entries one page of the log shows.
PAGE = 100


def entry(
    models: Models,
    actor: OperatorMixin | None,
    action: str,
    target: str | None,
    details: dict[str, object] | None = None,
) -> AuditMixin:
    """A new audit row, for services that write one in their own transaction."""
    return models.audit(
        at=utcnow(),
        operator_id=actor.id if actor is not None else None,
        actor_name=actor.name if actor is not None else None,
        action=action,
        target=None if target is None else target[:120],
        details=details or None,
    )


class AuditService(Service):
    def record(
        self,
        actor: OperatorMixin | None,
        action: str,
        target: str | None = None,
        *,
        commit: bool = True,
        **details: object,
    ) -> AuditMixin:
        """Write an entry: ``actor`` (an operator, or ``None`` for the system)
        did ``action`` to ``target``.

        :param commit: ``False`` to leave the entry in the caller's transaction,
            so it is stored together with what it records, or not at all.
        :param details: JSON-able facts about the action.
        """
        row = entry(self.models, actor, action, target, details)
        self.session.add(row)
        if commit:
            self.session.commit()
        return row

    def entries(
        self, *, action: str | None = None, page: int = 1, per_page: int = PAGE
    ) -> tuple[list[AuditMixin], int]:
        """The newest entries first, and how many there are."""
        model = self.models.audit
        where = [model.action == action] if action else []
        query = (
            sa.select(model).where(*where).order_by(model.at.desc(), model.id.desc())
        )
        return self.page_of(query, page, per_page)

    def actions(self) -> list[str]:
        model = self.models.audit
        query = sa.select(model.action).distinct().order_by(model.action)
        return list(self.session.execute(query).scalars())
