"""Who the shop says a visitor is: from the host's hook, or signed by the host.

A claim that comes from the browser (a name, an e-mail, a customer number) is
believed only when the shop signed it with its secret key, through
``livehelp_widget(identity=...)``.
"""

from __future__ import annotations

from flask import current_app
from itsdangerous import BadSignature
from itsdangerous import URLSafeTimedSerializer

from .models import ConversationMixin
from .state import get_state

SALT = "livehelp-identity"
#: A signed identity in a page is believed for a day.
MAX_AGE = 24 * 3600
#: The keys the panel shows; anything else the host adds is kept as it is.
KNOWN = ("name", "email", "customer_id", "cart", "orders_url", "note")


def _serializer() -> URLSafeTimedSerializer:
    if not current_app.secret_key:
        raise RuntimeError(
            "Signing the visitor's identity needs the app's SECRET_KEY. Set it."
        )
    return URLSafeTimedSerializer(current_app.secret_key, salt=SALT)


def sign_identity(identity: dict[str, object]) -> str:
    """Sign what the shop knows about the visitor, for the widget to carry."""
    return _serializer().dumps(identity)


def read_identity(signed: str | None) -> dict[str, object] | None:
    """The shop's signed claim, or ``None`` if it is missing, forged or old."""
    if not signed:
        return None
    try:
        identity = _serializer().loads(signed, max_age=MAX_AGE)
    except BadSignature:
        return None
    return identity if isinstance(identity, dict) else None


def context_for_visitor(signed: str | None = None) -> dict[str, object] | None:
    """What the shop says about the visitor now: its hook, then a signed claim."""
    hooked = get_state().extension.load_visitor_context()
    claimed = read_identity(signed)
    if not hooked and not claimed:
        return None
    return {**(claimed or {}), **(hooked or {})}


def verified(conversation: ConversationMixin) -> dict[str, bool]:
    """Whether the shop vouches for the customer's name and e-mail in a chat.

    Staff see what the customer typed, else what the shop said; either is
    verified only when the shop's context for the chat (its hook, or what
    it signed) says the same.
    """
    context = conversation.context or {}
    return {
        "name": _vouched(conversation.visitor_name, context.get("name")),
        "email": _vouched(conversation.visitor_email, context.get("email")),
    }


def _vouched(typed: str | None, known: object) -> bool:
    if not isinstance(known, str) or not known.strip():
        return False
    return typed is None or typed.strip().casefold() == known.strip().casefold()
