"""The shop's own tables. Live chat brings its own (prefixed ``livehelp_``)."""

from __future__ import annotations

from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_login import UserMixin
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from werkzeug.security import check_password_hash
from werkzeug.security import generate_password_hash

from .extensions import db
from .extensions import login_manager

#: Colours the stylesheet can paint (``.art--<colour>`` in shop.css).
COLOURS = {
    "blue": _l("blue"),
    "yellow": _l("yellow"),
    "navy": _l("navy"),
    "grey": _l("grey"),
    "green": _l("green"),
    "red": _l("red"),
    "ochre": _l("ochre"),
    "black": _l("black"),
}

#: Product pictures the templates can draw (``templates/_art.html``).
KINDS = ("jacket", "sweater", "boots", "hat", "mittens", "umbrella")


class Product(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(unique=True)
    name_en: Mapped[str]
    name_da: Mapped[str]
    description_en: Mapped[str]
    description_da: Mapped[str]
    #: Price in øre, so sums are exact.
    price: Mapped[int]
    colour: Mapped[str]
    #: Which picture to draw; one of :data:`KINDS`.
    kind: Mapped[str] = mapped_column(default="jacket")
    stock: Mapped[int] = mapped_column(default=0)

    @property
    def name(self) -> str:
        return self.name_da if _wants_danish() else self.name_en

    @property
    def description(self) -> str:
        return self.description_da if _wants_danish() else self.description_en

    @property
    def colour_label(self) -> str:
        return str(COLOURS.get(self.colour, self.colour))

    @property
    def in_stock(self) -> bool:
        return self.stock > 0

    def __repr__(self) -> str:
        return f"<Product {self.slug!r}>"


class Customer(UserMixin, db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(unique=True)
    name: Mapped[str]
    password_hash: Mapped[str]

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def __repr__(self) -> str:
        return f"<Customer {self.email!r}>"


@login_manager.user_loader
def load_customer(customer_id: str) -> Customer | None:
    return db.session.get(Customer, int(customer_id))


def find_customer(email: str) -> Customer | None:
    """Look a customer up by e-mail address, ignoring case and spaces."""
    query = db.select(Customer).filter_by(email=email.strip().lower())
    return db.session.scalars(query).first()


def _wants_danish() -> bool:
    locale = get_locale()
    return locale is not None and locale.language == "da"
