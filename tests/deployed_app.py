"""A shop as docs/deployment.md deploys it, for tests/test_deployment.py.

Served by gunicorn (``deployed_app:app``) and driven by ``flask --app
deployed_app``. Every setting comes from ``SHOP_*`` environment variables,
e.g. ``SHOP_SQLALCHEMY_DATABASE_URI`` and ``SHOP_LIVEHELP_HUB_URL``.
"""

from __future__ import annotations

from flask import Flask
from flask import render_template_string
from flask_babel import Babel
from flask_mail import Mail
from flask_sqlalchemy import SQLAlchemy

from flask_livehelp import LiveHelp

db = SQLAlchemy()
mail = Mail()
livehelp = LiveHelp(db=db)


def create_app() -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="not-secret-in-tests", BABEL_DEFAULT_LOCALE="en")
    # Values are read as JSON where they parse: SHOP_MAIL_PORT=8025 is a number.
    app.config.from_prefixed_env("SHOP")
    db.init_app(app)
    mail.init_app(app)
    Babel(app)
    livehelp.init_app(app)
    app.add_url_rule("/", "shop", shop_page)
    return app


def shop_page() -> str:
    """A page of the shop, with the chat button on it."""
    return render_template_string(
        "<!doctype html><html lang=en><title>Shop</title>"
        "<h1>Rain jackets</h1>{{ livehelp_widget() }}</html>"
    )


app = create_app()
