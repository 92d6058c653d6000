"""Nordlys Butik: the example web shop that shows Flask-LiveHelp in use."""

from __future__ import annotations

import os
import typing as t

from flask import Flask

from . import cart
from . import livechat  # noqa: F401  (registers the shop's visitor context)
from .extensions import babel
from .extensions import csrf
from .extensions import db
from .extensions import livehelp
from .extensions import login_manager
from .extensions import mail
from .i18n import current_language
from .i18n import format_price
from .i18n import select_locale
from .views import bp

__all__ = ["create_app"]


def create_app(config: dict[str, t.Any] | None = None) -> Flask:
    """Create the shop.

    :param config: Settings that override the defaults and the environment, for
        example ``SQLALCHEMY_DATABASE_URI`` and ``TESTING`` in tests.
    """
    app = Flask(__name__)
    app.config.from_mapping(_default_config(app))
    # Any setting from the environment: SHOP_MAIL_SERVER=smtp.example.com,
    # SHOP_MAIL_PORT=2525 (read as JSON where it parses, so a number).
    app.config.from_prefixed_env("SHOP")
    if config:
        app.config.update(config)
    if app.config["SQLALCHEMY_DATABASE_URI"] == _default_database_uri(app):
        # SQLite creates the file but not the folder it lives in.
        os.makedirs(app.instance_path, exist_ok=True)
    _init_extensions(app)
    _init_templates(app)
    app.register_blueprint(bp)
    return app


def _default_config(app: Flask) -> dict[str, t.Any]:
    return {
        "SECRET_KEY": os.environ.get("SHOP_SECRET_KEY", "dev-only-not-secret"),
        "SQLALCHEMY_DATABASE_URI": os.environ.get(
            "SHOP_DATABASE_URI", _default_database_uri(app)
        ),
        "BABEL_DEFAULT_LOCALE": "en",
        "MAIL_DEFAULT_SENDER": "shop@example.com",
        # The top of the chat's mails to customers.
        "LIVEHELP_SHOP_NAME": "Nordlys Butik",
        "MAIL_SERVER": "localhost",
        "MAIL_PORT": 8025,
    }


def _default_database_uri(app: Flask) -> str:
    return "sqlite:///" + os.path.join(app.instance_path, "shop.sqlite3")


def _init_extensions(app: Flask) -> None:
    db.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    mail.init_app(app)
    csrf.init_app(app)
    login_manager.init_app(app)
    # Live chat goes last: it builds on the database, Babel, mail and CSRF above.
    livehelp.init_app(app)


def _init_templates(app: Flask) -> None:
    app.add_template_filter(format_price, "price")
    app.add_template_global(current_language)
    # A function, not a value, so only the shop's own pages read the cart.
    app.add_template_global(cart.count, "cart_count")
