"""Signals a host app can connect to. The sender is always the application."""

from __future__ import annotations

from blinker import NamedSignal
from blinker import Namespace
from flask import current_app

_signals = Namespace()

conversation_started = _signals.signal(
    "livehelp-conversation-started",
    doc="A visitor started a chat. Receivers get ``conversation``.",
)
conversation_accepted = _signals.signal(
    "livehelp-conversation-accepted",
    doc="An operator took a chat. Receivers get ``conversation`` and ``operator``.",
)
conversation_ended = _signals.signal(
    "livehelp-conversation-ended",
    doc="A chat ended. Receivers get ``conversation`` and ``reason``"
    " (``visitor``, ``operator``, ``timeout``: not accepted in time,"
    " ``inactive``: closed after a long silence).",
)
message_posted = _signals.signal(
    "livehelp-message-posted",
    doc="A message was stored. Receivers get ``conversation`` and ``message``.",
)
operator_status_changed = _signals.signal(
    "livehelp-operator-status-changed",
    doc="An operator went online, away or offline. Receivers get ``operator``"
    " and ``status``.",
)


def send(signal: NamedSignal, **kwargs: object) -> None:
    """Send ``signal`` from the current application."""
    # Never the current_app proxy: receivers compare senders by identity.
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    signal.send(app, _async_wrapper=app.ensure_sync, **kwargs)


offline_message_received = _signals.signal(
    "livehelp-offline-message-received",
    doc="A message for the shop was stored while nobody could chat: from the"
    " offline form, or a chat nobody took in time. Receivers get"
    " ``conversation`` and ``message`` (its first message, or ``None``).",
)
