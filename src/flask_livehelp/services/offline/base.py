"""The base of the offline service: its collaborators, and the text check."""

from __future__ import annotations

from ...errors import Refused
from ...i18n import N_
from ...text import is_blank
from ...text import without_controls
from .. import Basics
from .. import Service
from ..conversations import ConversationService
from ..limits import Limits
from ..mail import MailService
from ..settings import SettingsService
from ..visitors import VisitorService


class OfflineBase(Service):
    """What every part of the offline service works with."""

    def __init__(
        self,
        *args: *Basics,
        conversations: ConversationService,
        visitors: VisitorService,
        settings: SettingsService,
        mail: MailService,
        limits: Limits,
    ) -> None:
        super().__init__(*args)
        self.conversations = conversations
        self.visitors = visitors
        self.settings = settings
        self.mail = mail
        self.limits = limits

    def clean_body(self, body: object) -> str:
        """The visitor's text, without control characters, within the limit."""
        if not isinstance(body, str) or is_blank(without_controls(body)):
            raise Refused("bad-field", N_("Write a message first."))
        body = without_controls(body).strip()
        limit = self.setting("MAX_MESSAGE_LENGTH")
        if len(body) > limit:
            raise Refused(
                "too-long",
                N_("The message is longer than %(max)d characters."),
                max=limit,
            )
        return body
