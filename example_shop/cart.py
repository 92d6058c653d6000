"""The shopping cart, kept in the signed session cookie as ``{product id: quantity}``.

Session data is JSON, so the product ids are stored as strings.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import session

from .extensions import db
from .models import Product

SESSION_KEY = "cart"

#: The most of one product a single cart line may hold.
MAX_QUANTITY = 99


@dataclass(frozen=True)
class CartLine:
    product: Product
    quantity: int

    @property
    def subtotal(self) -> int:
        return self.product.price * self.quantity


def _load() -> dict[str, int]:
    return dict(session.get(SESSION_KEY, {}))


def _save(cart: dict[str, int]) -> None:
    # Assigning a new dict marks the session as modified; mutating in place would not.
    session[SESSION_KEY] = cart


def add(product: Product, quantity: int) -> int:
    """Add to the product's cart line and return its new quantity.

    A line never holds more than :data:`MAX_QUANTITY`.
    """
    cart = _load()
    key = str(product.id)
    cart[key] = min(cart.get(key, 0) + quantity, MAX_QUANTITY)
    _save(cart)
    return cart[key]


def set_quantity(product: Product, quantity: int) -> None:
    cart = _load()
    cart[str(product.id)] = min(quantity, MAX_QUANTITY)
    _save(cart)


def remove(product: Product) -> None:
    cart = _load()
    cart.pop(str(product.id), None)
    _save(cart)


def contains(product: Product) -> bool:
    return str(product.id) in _load()


def clear() -> None:
    session.pop(SESSION_KEY, None)


def count() -> int:
    """The number of items in the cart, for the header."""
    return sum(_load().values())


def lines() -> list[CartLine]:
    """The cart's lines in catalogue order.

    Products that no longer exist are left out rather than failing the page.
    """
    cart = _load()
    if not cart:
        return []
    ids = [int(key) for key in cart]
    query = db.select(Product).where(Product.id.in_(ids)).order_by(Product.id)
    return [
        CartLine(product, cart[str(product.id)])
        for product in db.session.scalars(query)
    ]


def total(cart_lines: list[CartLine]) -> int:
    """The sum of the lines in øre."""
    return sum(line.subtotal for line in cart_lines)
