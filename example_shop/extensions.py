"""Extension instances, created here and bound to the app in ``create_app``."""

from __future__ import annotations

from flask_babel import Babel
from flask_babel import lazy_gettext as _l
from flask_login import LoginManager
from flask_mail import Mail
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from flask_livehelp import LiveHelp

db = SQLAlchemy()
babel = Babel()
login_manager = LoginManager()
login_manager.login_view = "shop.login"
login_manager.login_message = _l("Please log in to see that page.")
login_manager.login_message_category = "info"
# Flask-Login flashes the message through this; str() translates the lazy
# string in the language of the request that needs the login.
login_manager.localize_callback = str
mail = Mail()
csrf = CSRFProtect()

# Live chat shares the shop's database: its tables live next to ours.
livehelp = LiveHelp(db=db)
