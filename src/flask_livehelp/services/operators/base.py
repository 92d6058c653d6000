"""The base of the operator service: finding operators, and auditing changes."""

from __future__ import annotations

import sqlalchemy as sa

from ...errors import NotFound
from ...i18n import N_
from ...models import OperatorMixin
from .. import audit
from .. import Basics
from .. import Service
from ..conversations import ConversationService


class OperatorBase(Service):
    """What every part of the operator service works with."""

    def __init__(self, *args: *Basics, conversations: ConversationService) -> None:
        super().__init__(*args)
        self.conversations = conversations

    def get(self, operator_id: int) -> OperatorMixin:
        operator = self.session.get(self.models.operator, operator_id)
        if operator is None:
            raise NotFound("no-operator", N_("No such operator."))
        return operator

    def find_by_email(self, email: str) -> OperatorMixin | None:
        model = self.models.operator
        query = sa.select(model).where(model.email == email.strip().lower())
        return self.session.execute(query).scalar_one_or_none()

    def all(self, *, active_only: bool = False) -> list[OperatorMixin]:
        model = self.models.operator
        query = sa.select(model).order_by(model.name, model.id)
        if active_only:
            query = query.where(model.is_active)
        return list(self.session.execute(query).scalars())

    def _audit(
        self,
        actor: OperatorMixin | None,
        action: str,
        operator: OperatorMixin,
        **details: object,
    ) -> None:
        target = f"operator:{operator.id} {operator.email}"
        self.session.add(audit.entry(self.models, actor, action, target, details))
