"""Sending the visitor to a page of the shop."""

from __future__ import annotations

from urllib.parse import urljoin
from urllib.parse import urlsplit

from ...errors import NotAllowed
from ...errors import Refused
from ...i18n import N_
from ...models import ConversationMixin
from ...models import MessageMixin
from ...models import OperatorMixin
from .. import access
from .transcript import TranscriptWriter


class PagePushing(TranscriptWriter):
    """Pushing a page, checked against the shop's own origins."""

    def push_page(
        self,
        operator: OperatorMixin,
        conversation_id: int,
        url: str,
        *,
        shop_origin: str | None = None,
    ) -> MessageMixin:
        """Send the visitor to a page of the shop; written in the transcript.

        :param shop_origin: The shop app's own address, always allowed.
        """
        conversation = self.for_operator(operator, conversation_id)
        if not access.can_write(operator, conversation):
            raise NotAllowed("not-yours", N_("Accept the chat before you answer it."))
        url = _on_the_page(conversation, url)
        if not self._pushable(conversation, url, shop_origin):
            raise Refused(
                "bad-url",
                N_("Only http and https pages of the shop can be pushed."),
            )
        event = self.add_event(conversation, "pushed", operator=operator, url=url)
        self.session.commit()
        self.publish(event)
        return event

    def _pushable(
        self, conversation: ConversationMixin, url: str, shop_origin: str | None
    ) -> bool:
        allowed = {_origin(o) for o in self.setting("PUSH_ORIGINS")}
        allowed |= {_origin(o) for o in self.setting("ALLOWED_ORIGINS")}
        for page in (
            shop_origin,
            conversation.page_url,
            conversation.visitor.current_page,
        ):
            if page:
                allowed.add(_origin(page))
        target = _origin(url)
        return target is not None and target in allowed


def _on_the_page(conversation: ConversationMixin, url: str) -> str:
    """A shop path (``/cart``) as an address on the visitor's own page's site.

    Resolved before the origin check, so a path like ``//other.example/``
    still lands on the other site, and is refused there.
    """
    url = url.strip()
    page: str | None = conversation.visitor.current_page or conversation.page_url
    if page and not urlsplit(url).scheme:
        return urljoin(page, url)
    return url


def _origin(url: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL, else ``None``."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc.lower()}"
