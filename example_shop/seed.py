"""Demo data: the catalogue, a demo customer and a demo operator.

Every function here is safe to run on each start; it only adds what is missing.
"""

from __future__ import annotations

import typing as t

from flask import Flask

from flask_livehelp import get_state

from .extensions import db
from .models import Customer
from .models import find_customer
from .models import Product

DEMO_CUSTOMER = {
    "email": "kunde@example.com",
    "password": "kunde",
    "name": "Karen Kunde",
}
DEMO_OPERATOR = {
    "name": "Mette",
    "email": "operator@example.com",
    "password": "operator",
    "role": "admin",
    # Seed 003: this seller also gets the messages left while nobody is online.
    "receives_offline": True,
}

#: The catalogue, in the order the shop lists it. Prices are in øre.
PRODUCTS: list[dict[str, t.Any]] = [
    {
        "slug": "regnjakke-blaa",
        "name_da": "Regnjakke, blå",
        "name_en": "Rain jacket, blue",
        "description_da": "Vandtæt regnjakke med hætte og svejste sømme. "
        "Holder dig tør på cyklen hele vejen til arbejde.",
        "description_en": "Waterproof rain jacket with a hood and welded seams. "
        "Keeps you dry on the bike all the way to work.",
        "price": 49900,
        "colour": "blue",
        "kind": "jacket",
        "stock": 25,
    },
    {
        "slug": "regnjakke-gul",
        "name_da": "Regnjakke, gul",
        "name_en": "Rain jacket, yellow",
        "description_da": "Den klassiske gule regnjakke. Let at se i mørke "
        "og regnvejr.",
        "description_en": "The classic yellow rain jacket. Easy to see in the dark "
        "and the rain.",
        "price": 49900,
        "colour": "yellow",
        "kind": "jacket",
        "stock": 18,
    },
    {
        "slug": "uldtroeje-marine",
        "name_da": "Uldtrøje, marineblå",
        "name_en": "Wool sweater, navy",
        "description_da": "Tyk strikket trøje i ren lammeuld. Varm, når blæsten "
        "kommer ind fra Vesterhavet.",
        "description_en": "Chunky knitted sweater in pure lambswool. Warm when the "
        "wind comes in from the North Sea.",
        "price": 79900,
        "colour": "navy",
        "kind": "sweater",
        "stock": 12,
    },
    {
        "slug": "uldtroeje-graa",
        "name_da": "Uldtrøje, grå",
        "name_en": "Wool sweater, grey",
        "description_da": "Blød rundhalset uldtrøje, der passer til alt.",
        "description_en": "Soft crew-neck wool sweater that goes with everything.",
        "price": 69900,
        "colour": "grey",
        "kind": "sweater",
        "stock": 15,
    },
    {
        "slug": "gummistoevler-groenne",
        "name_da": "Gummistøvler, grønne",
        "name_en": "Rubber boots, green",
        "description_da": "Gummistøvler i naturgummi med skridsikker sål. "
        "Til havearbejde, skovture og vandpytter.",
        "description_en": "Natural rubber boots with a non-slip sole. For the "
        "garden, the woods and puddles.",
        "price": 34900,
        "colour": "green",
        "kind": "boots",
        "stock": 30,
    },
    {
        "slug": "strikhue-roed",
        "name_da": "Strikhue, rød",
        "name_en": "Knitted hat, red",
        "description_da": "Hue strikket i merinould med bred opslag.",
        "description_en": "Hat knitted in merino wool with a wide turn-up.",
        "price": 14900,
        "colour": "red",
        "kind": "hat",
        "stock": 40,
    },
    {
        "slug": "uldvanter-okker",
        "name_da": "Uldvanter, okker",
        "name_en": "Wool mittens, ochre",
        "description_da": "Varme vanter i tovet uld, der holder fingrene tørre.",
        "description_en": "Warm mittens in felted wool that keep your fingers dry.",
        "price": 12900,
        "colour": "ochre",
        "kind": "mittens",
        "stock": 35,
    },
    {
        "slug": "stormparaply-sort",
        "name_da": "Stormparaply, sort",
        "name_en": "Storm umbrella, black",
        "description_da": "Paraply med fleksibel stel, der ikke vender vrangen ud "
        "i kraftig vind.",
        "description_en": "Umbrella with a flexible frame that does not turn inside "
        "out in strong wind.",
        "price": 24900,
        "colour": "black",
        "kind": "umbrella",
        "stock": 20,
    },
]


def seed(app: Flask) -> None:
    """Create the shop's tables, the catalogue and the demo customer if missing."""
    with app.app_context():
        db.create_all()
        _add_missing_products()
        _add_demo_customer()
        db.session.commit()


def create_demo_operator(app: Flask) -> None:
    """Create the live-chat operator the README and the browser tests log in as."""
    with app.app_context():
        operators = get_state(app).operators
        if operators.find_by_email(DEMO_OPERATOR["email"]) is None:
            operators.create_operator(**DEMO_OPERATOR)


def _add_missing_products() -> None:
    existing = set(db.session.scalars(db.select(Product.slug)))
    for data in PRODUCTS:
        if data["slug"] not in existing:
            db.session.add(Product(**data))


def _add_demo_customer() -> None:
    if find_customer(DEMO_CUSTOMER["email"]) is not None:
        return
    customer = Customer(email=DEMO_CUSTOMER["email"], name=DEMO_CUSTOMER["name"])
    customer.set_password(DEMO_CUSTOMER["password"])
    db.session.add(customer)
