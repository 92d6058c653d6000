"""What a shop page embeds: one small script tag."""

from __future__ import annotations

import json

from flask import url_for
from markupsafe import escape
from markupsafe import Markup

from ..config import config_value
from ..i18n import current_language
from ..i18n import in_language
from ..identity import sign_identity
from ..state import get_state
from .assets import asset_url
from .widget import widget_status
from .widget import widget_text


def livehelp_widget(
    lang: str | None = None,
    department: int | None = None,
    identity: dict[str, object] | None = None,
) -> Markup:
    """The tag that puts the chat widget on a page: ``{{ livehelp_widget() }}``.

    :param lang: The page's language; by default the host's Babel locale.
    :param department: Send this page's chats to one department.
    :param identity: Who the shop knows the visitor to be (``name``,
        ``email``...), signed here so that operators can trust it. Needed only
        when the widget runs on another origin than the shop's own app;
        otherwise the ``visitor_context`` hook sees the shop's login directly.
    """
    lang = lang or current_language()
    settings: dict[str, object] = {
        "base": url_for("livehelp.widget.frame").rsplit("/", 1)[0],
        "lang": lang,
        "poll": config_value("STATUS_POLL_SECONDS"),
        "bottom": config_value("WIDGET_BOTTOM"),
        # The state and its words now, so the button has them from the first
        # paint: without, it showed as an empty pill, with no name for screen
        # readers, until the first status answer, then grew and moved.
        **widget_status(lang, department),
    }
    with in_language(lang):
        # The button's words while the chat is open: it closes it then.
        settings["close"] = widget_text("closeChat")
        # The chat window's name for screen readers, known before the
        # status answers (the customer may open the chat before it does).
        settings["title"] = widget_text("title")
    if department is not None:
        settings["department"] = department
    if identity:
        settings["identity"] = sign_identity(identity)
    nonce = get_state().extension.nonce()
    nonce_attribute = Markup(' nonce="%s"') % nonce if nonce else ""
    return Markup('<script src="%s" async data-livehelp="%s"%s></script>') % (
        asset_url("loader.js"),
        escape(json.dumps(settings, separators=(",", ":"))),
        nonce_attribute,
    )
