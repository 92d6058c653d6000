"""Deleting chats, and erasing a customer's personal data; both audited."""

from __future__ import annotations

import collections.abc as c

import sqlalchemy as sa

from ...errors import NotAllowed
from ...errors import Refused
from ...i18n import N_
from ...models import OperatorMixin
from ...models import utcnow
from .. import access
from .. import audit
from .transcripts import HistoryTranscripts
from .wording import name_of


class HistoryChanges(HistoryTranscripts):
    """Deleting and erasing, by managers and admins."""

    def delete(self, viewer: OperatorMixin, conversation_ids: c.Iterable[int]) -> int:
        """Delete finished chats: gone from every list; the audit log keeps who.

        All or nothing: one chat that may not be deleted refuses them all.

        :raises NotAllowed: The viewer is no manager or admin, or may not
            delete one of the chats.
        """
        if not access.has_role(viewer, "manager"):
            raise NotAllowed(
                "not-allowed", N_("Only managers and admins delete chats.")
            )
        now = utcnow()
        chats = [self.get(viewer, i) for i in dict.fromkeys(conversation_ids)]
        for conversation in chats:
            if conversation.status in access.OPEN:
                raise Refused(
                    "still-open",
                    N_("Chat %(id)d is still going on. End it before you delete it."),
                    id=conversation.id,
                )
            if not access.can_delete(viewer, conversation):
                raise NotAllowed("not-allowed", N_("You may not delete this chat."))
        for conversation in chats:
            conversation.deleted_at = now
            self.session.add(
                audit.entry(
                    self.models,
                    viewer,
                    "conversation-deleted",
                    f"conversation:{conversation.id}",
                    {
                        "started": conversation.created_at.isoformat(),
                        "operator": name_of(conversation.operator) or None,
                        "department": name_of(conversation.department) or None,
                    },
                )
            )
        self.session.commit()
        return len(chats)

    def erase_customer(self, viewer: OperatorMixin, conversation_id: int) -> int:
        """Erase the personal data of the customer of a chat, on their request.

        Name, e-mail, IP address, user agent and what the shop told about
        them go, from this chat and every other chat of the same visitor;
        the chats themselves stay for the shop's statistics.

        :returns: How many chats were touched.
        """
        conversation = self.get(viewer, conversation_id)
        if not access.can_erase(viewer, conversation):
            raise NotAllowed(
                "not-allowed", N_("Only managers and admins erase customer data.")
            )
        return self._erase(
            viewer, [conversation.visitor_id], f"conversation:{conversation.id}"
        )

    def erase_email(self, viewer: OperatorMixin, email: str) -> int:
        """Erase every customer who gave ``email`` (admins only).

        :returns: How many chats were touched.
        """
        if not access.has_role(viewer, "admin"):
            raise NotAllowed("not-allowed", N_("Only admins erase customer data."))
        email = email.strip().lower()
        if not email or len(email) > 254:
            raise Refused("bad-email", N_("This is not a valid e-mail address."))
        visitor, model = self.models.visitor, self.models.conversation
        by_visitor = sa.select(visitor.id).where(sa.func.lower(visitor.email) == email)
        by_chat = sa.select(model.visitor_id).where(
            sa.func.lower(model.visitor_email) == email
        )
        ids = set(self.session.execute(by_visitor.union(by_chat)).scalars())
        if not ids:
            return 0
        return self._erase(viewer, sorted(ids), "e-mail")

    def _erase(self, viewer: OperatorMixin, visitor_ids: list[int], reason: str) -> int:
        visitor, model = self.models.visitor, self.models.conversation
        message = self.models.message
        now = utcnow()
        self.session.execute(
            sa.update(visitor)
            .where(visitor.id.in_(visitor_ids))
            .values(
                name=None,
                email=None,
                ip_address=None,
                user_agent=None,
                shop_identity=None,
                referrer=None,
                erased_at=now,
            )
        )
        chats = sa.select(model.id).where(model.visitor_id.in_(visitor_ids))
        touched = self.changed(
            sa.update(model)
            .where(model.visitor_id.in_(visitor_ids))
            .values(
                visitor_name=None, visitor_email=None, email_consent=False, context=None
            )
        )
        self.session.execute(
            sa.update(message)
            .where(message.conversation_id.in_(chats), message.author == "visitor")
            .values(author_name=None)
        )
        # The outbox's copies carry the address and the name too, and a mail
        # still waiting would go to an address the customer asked us to forget.
        mail = self.models.mail
        self.session.execute(sa.delete(mail).where(mail.conversation_id.in_(chats)))
        self.session.add(
            audit.entry(
                self.models,
                viewer,
                "customer-erased",
                reason,
                {"visitors": visitor_ids, "conversations": touched},
            )
        )
        self.session.commit()
        self.session.expire_all()
        return int(touched or 0)
