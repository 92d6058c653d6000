"""What the shop tells its operators about the customer they are chatting with."""

from __future__ import annotations

import typing as t

from flask_login import current_user

from . import cart
from .extensions import livehelp
from .i18n import format_price


@livehelp.visitor_context
def shop_customer() -> dict[str, t.Any] | None:
    """The signed-in customer and their cart, beside the chat in the panel.

    It runs in the customer's own requests to the chat, with their session,
    so nothing here comes from what the browser claims.
    """
    lines = cart.lines()
    context: dict[str, t.Any] = {}
    if current_user.is_authenticated:
        context.update(name=current_user.name, email=current_user.email)
    if lines:
        context["cart"] = [
            {
                "name": line.product.name,
                "quantity": line.quantity,
                "price": format_price(line.subtotal),
            }
            for line in lines
        ]
    return context or None
