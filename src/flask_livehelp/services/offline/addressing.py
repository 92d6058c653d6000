"""Who gets an offline mail, and where replies go."""

from __future__ import annotations

import logging
import typing as t

import sqlalchemy as sa

from ...addresses import valid_email
from ...models import ConversationMixin
from ...models import OperatorMixin
from .. import access
from .base import OfflineBase

log = logging.getLogger(__name__)


class Addressing(OfflineBase):
    """Staff recipients, reply addresses and thread headers."""

    def staff_recipients(self, conversation: ConversationMixin) -> dict[str, list[str]]:
        """The staff addresses for a conversation's mails, grouped by language.

        Operators who receive offline messages (of its department, where
        departments are used) with their forward addresses, the department's
        address and the central mailbox. Never the customer's own address.
        """
        groups: dict[str, list[str]] = {}
        seen = {(conversation.visitor_email or "").lower()}

        def add(address: str | None, lang: str) -> None:
            address = (address or "").strip()
            if not address or address.lower() in seen:
                return
            if not valid_email(address):
                log.warning("Offline mail skips %r: not an e-mail address.", address)
                return
            seen.add(address.lower())
            groups.setdefault(lang, []).append(address)

        for operator in self._receivers(conversation.department_id):
            lang = self.mail.locale(operator.locale, staff=True)
            add(operator.email, lang)
            for address in operator.forward_addresses or []:
                add(address, lang)
        default = self.mail.default_locale(staff=True)
        department = conversation.department
        if department is not None:
            add(department.email, default)
        add(self.settings.get("OFFLINE_MAILBOX", conversation.locale), default)
        return groups

    def staff_addresses(self) -> set[str]:
        """Every address a staff member's mail may come from, in lower case."""
        found = set()
        for operator in self.session.execute(sa.select(self.models.operator)).scalars():
            found.add(operator.email.lower())
            found.update(a.lower() for a in operator.forward_addresses or [])
        for department in self.session.execute(
            sa.select(self.models.department)
        ).scalars():
            if department.email:
                found.add(department.email.lower())
        model = self.models.setting
        for value in self.session.execute(
            sa.select(model.value).where(model.key == "OFFLINE_MAILBOX")
        ).scalars():
            if isinstance(value, str):
                found.add(value.lower())
        for value in (self.setting("OFFLINE_MAILBOX"), self.mail.sender()):
            if isinstance(value, str):
                found.add(value.rpartition("<")[2].strip(" >").lower())
        return found

    def _receivers(self, department_id: int | None) -> list[OperatorMixin]:
        model = self.models.operator
        query = sa.select(model).where(
            model.receives_offline.is_(True), model.is_active.is_(True)
        )
        return [
            operator
            for operator in self.session.execute(query).scalars()
            if access.serves(operator, department_id)
        ]

    def reply_address(self, conversation: ConversationMixin) -> str | None:
        """The conversation's own address replies come back to, if there is one."""
        pattern = self.setting("REPLY_ADDRESS")
        if not pattern or not conversation.reply_token:
            return None
        address = t.cast(str, pattern).replace("{token}", conversation.reply_token)
        if not valid_email(address):
            log.error("LIVEHELP_REPLY_ADDRESS %r is no e-mail address.", pattern)
            return None
        return address

    def _shop_address(self, conversation: ConversationMixin) -> str | None:
        mailbox = self.settings.get("OFFLINE_MAILBOX", conversation.locale)
        if isinstance(mailbox, str) and valid_email(mailbox.strip()):
            return mailbox.strip()
        department = conversation.department
        if department is not None and valid_email(department.email or ""):
            return t.cast(str, department.email)
        return None

    def _staff_reply_to(self, conversation: ConversationMixin) -> str | None:
        return self.reply_address(conversation) or conversation.visitor_email

    def _customer_reply_to(self, conversation: ConversationMixin) -> str | None:
        return self.reply_address(conversation) or self._shop_address(conversation)

    def _thread_headers(
        self, conversation: ConversationMixin, *, automatic: bool
    ) -> dict[str, str]:
        token = conversation.reply_token
        headers = {
            "Message-ID": self.mail.message_id(token),
            # One made-up root that every mail refers to: mail programs show
            # the conversation as one thread, and a reply names its token.
            "References": self.mail.thread_id(token),
        }
        if automatic:
            # RFC 3834: holiday auto-replies must not answer this.
            headers["Auto-Submitted"] = "auto-generated"
        return headers
