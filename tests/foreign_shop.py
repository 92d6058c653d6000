"""A Flask shop built the way shops out there are, not the way we would.

Flask 3 and SQLAlchemy 2 with a model base class of its own (an integer id
and timestamps on every row), Flask-Login for its customers, Flask-WTF's
CSRFProtect on every route, Flask-Babel with its own locale selector
(``?lang=``), Flask-Migrate, Flask-Mail and Flask-DebugToolbar switched on,
and a page of Bootstrap-like markup. Flask-LiveHelp is added with the
README's lines and nothing else: ``LiveHelp(db=db)``, ``init_app``, the
template tag, and the migration hook docs/deployment.md asks for.
"""

from __future__ import annotations

import datetime as dt
import typing as t

import sqlalchemy as sa
from flask import Flask
from flask import render_template_string
from flask import request
from flask import Response
from flask_babel import Babel
from flask_debugtoolbar import DebugToolbarExtension
from flask_login import LoginManager
from flask_login import UserMixin
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.model import Model
from flask_wtf.csrf import CSRFProtect

from flask_livehelp import LiveHelp
from flask_livehelp.migrations import include_in


class BaseModel(Model):
    id = sa.Column(sa.Integer, primary_key=True)
    created_at = sa.Column(sa.DateTime, default=dt.datetime.now)
    updated_at = sa.Column(
        sa.DateTime, default=dt.datetime.now, onupdate=dt.datetime.now
    )


db = SQLAlchemy(model_class=BaseModel)
babel = Babel()
csrf = CSRFProtect()
login = LoginManager()
mail = Mail()
migrate = Migrate()
toolbar = DebugToolbarExtension()
livehelp = LiveHelp(db=db)


class Customer(UserMixin, db.Model):  # type: ignore[name-defined, misc]
    __tablename__ = "customer"
    email = sa.Column(sa.String(200), unique=True)


class Product(db.Model):  # type: ignore[name-defined, misc]
    __tablename__ = "product"
    name = sa.Column(sa.String(200))
    price = sa.Column(sa.Numeric(10, 2))


@login.user_loader
def load_customer(customer_id: str) -> Customer | None:
    return db.session.get(Customer, int(customer_id))


def select_locale() -> str | None:
    return request.args.get("lang") or request.accept_languages.best_match(
        ["en", "da", "bg"]
    )


PRODUCT_PAGE = """<!doctype html>
<html lang="{{ lang }}"><head><meta name="viewport" content="width=device-width">
<title>Rain jacket</title></head>
<body class="d-flex flex-column min-vh-100">
<nav class="navbar fixed-top"><a class="navbar-brand" href="/">Nordic Gear</a></nav>
<main class="container">
  <h1>Rain jacket</h1>
  <form method="post" action="/cart" class="row g-2">
    <input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
    <input class="form-control" name="quantity" value="1">
    <button class="btn btn-primary" type="submit">Add to cart</button>
  </form>
</main>
{{ livehelp_widget() }}
</body></html>"""


#: What a development tool of the shop's (a live-reload script, say) puts
#: into every HTML page it can rewrite.
DEV_SCRIPT = '<script src="/livereload.js"></script>'


def inject_dev_script(response: Response) -> Response:
    """As such tools do it: a buffered HTML body gets a script before </body>."""
    if response.mimetype == "text/html" and response.is_sequence:
        html = response.get_data(as_text=True)
        response.set_data(html.replace("</body>", DEV_SCRIPT + "</body>"))
    return response


def create_app(config: dict[str, t.Any]) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="foreign-shop",
        MAIL_DEFAULT_SENDER="shop@nordic-gear.example",
        DEBUG_TB_ENABLED=True,
        BABEL_DEFAULT_LOCALE="en",
        **config,
    )
    db.init_app(app)
    mail.init_app(app)
    csrf.init_app(app)
    login.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    migrate.init_app(app, db)
    migrate.configure(include_in)
    livehelp.init_app(app)
    toolbar.init_app(app)

    app.after_request(inject_dev_script)

    @app.get("/")
    def product() -> str:
        return render_template_string(PRODUCT_PAGE, lang=select_locale() or "en")

    @app.post("/cart")
    def cart() -> str:
        return "Added"

    return app
