"""The shop's pages: catalogue, cart, checkout, customer login and language."""

from __future__ import annotations

from urllib.parse import urlencode
from urllib.parse import urlsplit

from flask import abort
from flask import Blueprint
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_login import login_required
from flask_login import login_user
from flask_login import logout_user
from werkzeug.wrappers import Response

from . import cart
from .extensions import db
from .forms import ButtonForm
from .forms import LoginForm
from .forms import QuantityForm
from .i18n import LANGUAGES
from .i18n import remember_language
from .models import find_customer
from .models import Product

bp = Blueprint("shop", __name__)

#: Where the thank-you page finds the total of the order just placed.
LAST_ORDER_KEY = "last_order_total"


@bp.get("/")
def index() -> str:
    products = db.session.scalars(db.select(Product).order_by(Product.id)).all()
    return render_template("index.html", products=products)


@bp.route("/product/<slug>", methods=["GET", "POST"])
def product(slug: str) -> str | Response:
    item = _product_by_slug(slug)
    form = QuantityForm()
    if form.validate_on_submit():
        cart.add(item, form.quantity.data)
        flash(_("%(name)s was added to your cart.", name=item.name), "success")
        return redirect(url_for(".show_cart"))
    return render_template("product.html", product=item, form=form)


@bp.get("/cart")
def show_cart() -> str:
    lines = cart.lines()
    forms = {line.product.id: QuantityForm(quantity=line.quantity) for line in lines}
    return render_template(
        "cart.html",
        lines=lines,
        total=cart.total(lines),
        quantity_forms=forms,
        button_form=ButtonForm(),
    )


@bp.post("/cart/<int:product_id>/quantity")
def update_quantity(product_id: int) -> Response:
    item = _product_in_cart(product_id)
    form = QuantityForm()
    if form.validate():
        cart.set_quantity(item, form.quantity.data)
        flash(_("Your cart is updated."), "success")
    else:
        flash(form.quantity.errors[0], "error")
    return redirect(url_for(".show_cart"))


@bp.post("/cart/<int:product_id>/remove")
def remove_from_cart(product_id: int) -> Response:
    item = db.get_or_404(Product, product_id)
    cart.remove(item)
    flash(_("%(name)s is removed from your cart.", name=item.name), "success")
    return redirect(url_for(".show_cart"))


@bp.route("/checkout", methods=["GET", "POST"])
def checkout() -> str | Response:
    lines = cart.lines()
    form = ButtonForm()
    if lines and form.validate_on_submit():
        return _place_order(cart.total(lines))
    return render_template(
        "checkout.html", lines=lines, total=cart.total(lines), form=form
    )


@bp.get("/checkout/thanks")
def thanks() -> str | Response:
    total = session.get(LAST_ORDER_KEY)
    if total is None:
        return redirect(url_for(".index"))
    return render_template("thanks.html", total=total)


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response:
    if current_user.is_authenticated:
        return redirect(url_for(".account"))
    form = LoginForm()
    if form.validate_on_submit():
        customer = find_customer(form.email.data)
        if customer is not None and customer.check_password(form.password.data):
            login_user(customer)
            flash(_("Welcome back, %(name)s.", name=customer.name), "success")
            return redirect(_safe_next(request.args.get("next"), url_for(".account")))
        flash(_("Wrong e-mail address or password."), "error")
    return render_template("login.html", form=form)


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> str | Response:
    form = ButtonForm()
    if form.validate_on_submit():
        logout_user()
        flash(_("You are logged out."), "success")
        return redirect(url_for(".index"))
    # A plain GET asks first, so a stray link cannot log anyone out.
    return render_template("logout.html", form=form)


@bp.get("/account")
@login_required
def account() -> str:
    return render_template("account.html")


@bp.get("/lang/<code>")
def set_language(code: str) -> Response:
    if code not in LANGUAGES:
        abort(404)
    remember_language(code)
    return redirect(_safe_next(request.args.get("next"), url_for(".index")))


@bp.app_template_global()
def language_url(code: str) -> str:
    """A link that switches to language ``code`` and comes back to this page."""
    return url_for(".set_language", code=code, next=_here_without_lang())


def _here_without_lang() -> str:
    # Coming back with the old ?lang= would switch the language straight back.
    query = [
        (key, value) for key, value in request.args.items(multi=True) if key != "lang"
    ]
    return f"{request.path}?{urlencode(query)}" if query else request.path


def _product_by_slug(slug: str) -> Product:
    query = db.select(Product).filter_by(slug=slug)
    return db.first_or_404(query)


def _product_in_cart(product_id: int) -> Product:
    item = db.get_or_404(Product, product_id)
    if not cart.contains(item):
        abort(404)
    return item


def _place_order(total: int) -> Response:
    # A demo shop: no payment and no stock change, so every run sees the same shop.
    cart.clear()
    session[LAST_ORDER_KEY] = total
    return redirect(url_for(".thanks"))


def _safe_next(target: str | None, default: str) -> str:
    """Follow ``next`` only to a path on this site, never to another host."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target:
        return default
    return target
