"""The panel's list of offline messages, and who may read them."""

from __future__ import annotations

import sqlalchemy as sa

from ...errors import NotAllowed
from ...i18n import N_
from ...models import ConversationMixin
from ...models import OperatorMixin
from .. import access
from .base import OfflineBase


class StaffViews(OfflineBase):
    """Offline messages as the staff find them."""

    def listing(
        self,
        operator: OperatorMixin,
        *,
        answered: bool,
        page: int = 1,
        per_page: int = 50,
    ) -> tuple[list[ConversationMixin], int]:
        """Offline messages (and missed chats mailed so) the operator may answer."""
        model = self.models.conversation
        where = [
            model.status == "missed",
            model.reply_token.is_not(None),
            model.deleted_at.is_(None),
            model.answered_at.is_not(None) if answered else model.answered_at.is_(None),
        ]
        where.append(access.answer_clause(operator, model.department_id))
        order = model.answered_at.desc() if answered else model.created_at.desc()
        query = sa.select(model).where(*where).order_by(order, model.id.desc())
        return self.page_of(query, page, per_page)

    def for_operator(
        self, operator: OperatorMixin, conversation_id: int
    ) -> ConversationMixin:
        conversation = self.conversations.get(conversation_id)
        if conversation.deleted_at is not None or not access.can_answer(
            operator, conversation
        ):
            raise NotAllowed("not-allowed", N_("You may not open this message."))
        return conversation
