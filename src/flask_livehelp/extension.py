"""The extension object and the per-app state it keeps."""

from __future__ import annotations

import collections.abc as c
import datetime as dt
import logging
import os
import typing as t

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from . import cli
from . import processes
from .auth import HostStaff
from .background import hold_lease
from .background import Jobs
from .config import config_value
from .config import init_config
from .formatting import format_duration
from .formatting import format_moment
from .formatting import language_name
from .hub import Hub
from .i18n import LiveHelpDomain
from .models import build_models
from .models import Models
from .models import OperatorMixin
from .models import utcnow
from .services import timeouts
from .services.audit import AuditService
from .services.conversations import ConversationService
from .services.history import HistoryService
from .services.inbound import fetch_mail_job
from .services.inbound import InboundService
from .services.knowledge import ArticleSearch
from .services.knowledge import KnowledgeService
from .services.limits import Limits
from .services.limits import MemoryCounts
from .services.limits import OpenSockets
from .services.limits import RedisCounts
from .services.limits import SharedSockets
from .services.mail import MailService
from .services.offline import OfflineService
from .services.operators import OperatorService
from .services.presence import PresenceService
from .services.reports import ReportService
from .services.settings import SettingsService
from .services.transfers import TransferService
from .services.visitors import VisitorService
from .sqlite_tuning import checkpoint_job
from .sqlite_tuning import CHECKPOINT_SECONDS
from .sqlite_tuning import tune_sqlite
from .state import LiveHelpState
from .text import isolated
from .views import create_blueprint
from .views.embed import livehelp_widget

log = logging.getLogger(__name__)

#: Returns the host's signed-in staff member as an operator, or ``None``.
OperatorLoader = c.Callable[[], "OperatorMixin | HostStaff | None"]
#: Translates ``(text, target, source)``, for operators and customers who do not
#: share a language.
Translator = c.Callable[[str, str, "str | None"], str]
#: Returns what the shop knows about the visitor of this request, or ``None``.
VisitorContext = c.Callable[[], "dict[str, object] | None"]


class LiveHelp:
    """Live chat for a Flask shop: the widget, the operator panel and history.

    :param app: Call :meth:`init_app` on this app now.
    :param db: The host's Flask-SQLAlchemy instance. Our tables are declared
        on it, beside the host's own. Without one, the instance registered on
        the app is used, or else one of our own on a SQLite file in the
        instance folder (``LIVEHELP_DATABASE_URI`` changes that).
    :param table_prefix: Prefix of our table names.
    :param bind_key: Put our tables on this Flask-SQLAlchemy bind.
    :param register_blueprints: Pass ``False`` to register
        :func:`flask_livehelp.views.create_blueprint` yourself.
    :param csp_nonce_generator: Returns the nonce of the current response's
        Content-Security-Policy, added to the script tags we render.
    """

    #: The hub class; a subclass can carry events between processes.
    hub_class: type[Hub] = Hub

    def __init__(
        self,
        app: Flask | None = None,
        db: SQLAlchemy | None = None,
        *,
        table_prefix: str = "livehelp_",
        bind_key: str | None = None,
        register_blueprints: bool = True,
        csp_nonce_generator: c.Callable[[], str] | None = None,
    ) -> None:
        self.db = db
        self.table_prefix = table_prefix
        self.bind_key = bind_key
        self.register_blueprints = register_blueprints
        self.csp_nonce_generator = csp_nonce_generator
        self._operator_loader: OperatorLoader | None = None
        #: The host's help-article search, see :meth:`help_article_search`.
        self.article_search: ArticleSearch | None = None
        self._visitor_context: VisitorContext | None = None
        #: The host's machine translation, see :meth:`translator`.
        self.translate: Translator | None = None
        #: The model classes, declared now when ``db`` is given so the host can
        #: refer to them before any app exists.
        self.models: Models | None = (
            build_models(db, table_prefix=table_prefix, bind_key=bind_key)
            if db is not None
            else None
        )
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Set up Flask-LiveHelp on ``app``.

        Call it after the app's config is loaded and after ``db.init_app(app)``
        and ``Babel(app)``, if the app uses them.
        """
        if "livehelp" in app.extensions:
            raise RuntimeError(
                "Flask-LiveHelp is already set up on this app. Call"
                " 'init_app' once per app and import that 'LiveHelp' instance"
                " where you need it."
            )
        init_config(app)
        db = self._database_for(app)
        self._tune_database(app, db)
        models = build_models(
            db, table_prefix=self.table_prefix, bind_key=self.bind_key
        )
        hub = self._hub_for(app)
        services = (db, models, hub)
        presence = PresenceService(*services)
        settings = SettingsService(*services)
        conversations = ConversationService(
            *services, presence=presence, settings=settings
        )
        visitors = VisitorService(*services)
        mail = MailService(*services)
        limits = Limits(self._counts_for(app))
        offline = OfflineService(
            *services,
            conversations=conversations,
            visitors=visitors,
            settings=settings,
            mail=mail,
            limits=limits,
        )
        app.extensions["livehelp"] = LiveHelpState(
            extension=self,
            db=db,
            models=models,
            hub=hub,
            domain=LiveHelpDomain.for_app(app),
            operators=OperatorService(*services, conversations=conversations),
            presence=presence,
            visitors=visitors,
            conversations=conversations,
            settings=settings,
            transfers=TransferService(*services, conversations=conversations),
            jobs=Jobs(),
            mail=mail,
            offline=offline,
            inbound=InboundService(
                *services, conversations=conversations, offline=offline, mail=mail
            ),
            audit=AuditService(*services),
            history=HistoryService(*services, settings=settings),
            knowledge=KnowledgeService(*services),
            reports=ReportService(*services),
            limits=limits,
            sockets=self._sockets_for(app),
        )
        _add_jobs(app.extensions["livehelp"])
        _add_mail_jobs(app, app.extensions["livehelp"])
        _add_history_jobs(app, app.extensions["livehelp"])
        self._add_template_globals(app)
        _warn_without_sender(app)
        if self.register_blueprints:
            app.register_blueprint(create_blueprint(app))
        if cli_name := config_value("CLI_NAME", app):
            app.cli.add_command(cli.livehelp, cli_name)

    def _hub_for(self, app: Flask) -> Hub:
        """The Redis hub when ``LIVEHELP_HUB_URL`` is set, else ``hub_class``."""
        url = config_value("HUB_URL", app)
        if url is None or self.hub_class is not Hub:
            return self.hub_class()
        # Here, not at the top: redis is an optional extra (flask-livehelp[redis]).
        from .redis_hub import RedisHub

        return RedisHub(url, prefix=_redis_prefix(app))

    @staticmethod
    def _counts_for(app: Flask) -> MemoryCounts | RedisCounts:
        """Where limits count: beside the Redis hub's events, else here."""
        url = config_value("HUB_URL", app)
        if url is None:
            return MemoryCounts()
        return RedisCounts(url, _redis_prefix(app))

    @staticmethod
    def _sockets_for(app: Flask) -> OpenSockets:
        """Where open sockets count: with the Redis hub, in every process."""
        url = config_value("HUB_URL", app)
        if url is None:
            return OpenSockets()
        return SharedSockets(url, _redis_prefix(app))

    def _database_for(self, app: Flask) -> SQLAlchemy:
        if self.db is not None:
            registered = app.extensions.get("sqlalchemy")
            if not isinstance(registered, SQLAlchemy) or registered is not self.db:
                raise RuntimeError(
                    "The 'db' given to LiveHelp is not set up on this app. Call"
                    " 'db.init_app(app)' before 'livehelp.init_app(app)'."
                )
            return registered
        if "sqlalchemy" in app.extensions:
            return t.cast(SQLAlchemy, app.extensions["sqlalchemy"])
        return self._own_database(app)

    @staticmethod
    def _own_database(app: Flask) -> SQLAlchemy:
        uri = config_value("DATABASE_URI", app)
        if uri is None:
            os.makedirs(app.instance_path, exist_ok=True)
            uri = "sqlite:///" + os.path.join(app.instance_path, "livehelp.sqlite3")
        app.config.setdefault("SQLALCHEMY_DATABASE_URI", uri)
        db = SQLAlchemy()
        db.init_app(app)
        return db

    def _tune_database(self, app: Flask, db: SQLAlchemy) -> None:
        """Tune the SQLite engine of our tables, the host's too (unless told not)."""
        if not config_value("TUNE_SQLITE", app):
            return
        with app.app_context():
            tune_sqlite(db.engines[self.bind_key])

    def _add_template_globals(self, app: Flask) -> None:
        domain = app.extensions["livehelp"].domain
        app.jinja_env.globals.update(
            livehelp_widget=livehelp_widget, _lh=domain.gettext, _lhn=domain.ngettext
        )
        # Prefixed, so they never replace a filter of the host's.
        app.jinja_env.filters.update(
            livehelp_moment=format_moment,
            livehelp_isolated=isolated,
            livehelp_duration=format_duration,
            livehelp_language=language_name,
        )

    def operator_loader(self, callback: OperatorLoader) -> OperatorLoader:
        """Register a function that signs the host's own staff into the panel.

        It returns an operator (from ``get_state().operators``) for the staff
        member signed in to the host app now, or ``None``.
        """
        self._operator_loader = callback
        return callback

    def help_article_search(self, callback: ArticleSearch) -> ArticleSearch:
        """Register the host's own search of help articles for the widget.

        It is called with ``(question, lang, limit)`` and returns up to
        ``limit`` dicts with ``title``, ``url`` and ``excerpt`` (or ``body``),
        best first; they replace our own articles' suggestions.
        """
        self.article_search = callback
        return callback

    def translator(self, callback: Translator) -> Translator:
        """Register a translation service for the panel's "Translate" (seed 001).

        It is called with ``(text, target, source)`` (language codes, source
        may be ``None``) and returns the text in ``target``. With one
        registered, operators can read a customer's message in their own
        language and put their answer into the customer's.
        """
        self.translate = callback
        return callback

    def load_host_operator(self) -> OperatorMixin | HostStaff | None:
        """The operator the host's loader gives for this request, if any."""
        return self._operator_loader() if self._operator_loader else None

    def visitor_context(self, callback: VisitorContext) -> VisitorContext:
        """Register a function that tells operators who the visitor is in the shop.

        It runs in the visitor's own requests (with the shop's login and
        session) and returns a dict such as ``{"name": ..., "email": ...,
        "cart": [{"name": ..., "quantity": ...}], "orders_url": ...}``, or
        ``None``. The panel shows it beside the chat.
        """
        self._visitor_context = callback
        return callback

    def load_visitor_context(self) -> dict[str, object] | None:
        context = self._visitor_context() if self._visitor_context else None
        return context if isinstance(context, dict) else None

    def nonce(self) -> str | None:
        return self.csp_nonce_generator() if self.csp_nonce_generator else None


def _redis_prefix(app: Flask) -> str:
    """What every Redis key and channel of this shop starts with."""
    return t.cast(str, config_value("HUB_PREFIX", app) or f"livehelp:{app.name}:")


def _warn_without_sender(app: Flask) -> None:
    """Say at set-up, not at the first lost mail, that mail cannot go out."""
    if not (config_value("MAIL_SENDER", app) or app.config.get("MAIL_DEFAULT_SENDER")):
        log.warning(
            "Flask-LiveHelp cannot send mail: no sender address. Offline"
            " messages, answers and transcripts wait in the outbox until"
            " MAIL_DEFAULT_SENDER (or LIVEHELP_MAIL_SENDER) is set."
        )


def _add_jobs(state: LiveHelpState) -> None:
    jobs = state.jobs
    jobs.add("visitor-beats", 2, lambda state: state.visitors.flush_beats())
    jobs.add("invitations", 1, lambda state: state.visitors.load_invitations())
    jobs.add("presence", 5, _expire_presence)
    jobs.add("processes", processes.HEARTBEAT_SECONDS, processes.Heartbeat())
    jobs.add("queue-timeouts", 5, timeouts.time_out_queue)
    jobs.add("inactive-chats", 30, timeouts.close_inactive)
    jobs.add("sqlite-checkpoint", CHECKPOINT_SECONDS, checkpoint_job)


def _expire_presence(state: LiveHelpState) -> None:
    """Presence by time; the chats of an operator gone for good go on without them.

    Also routes what waited for room: an operator may have come online in
    another process, or by time alone.
    """
    for operator_id in state.presence.expire():
        state.conversations.release_chats(operator_id)
    state.conversations.route_waiting()


def _add_mail_jobs(app: Flask, state: LiveHelpState) -> None:
    state.jobs.add("send-mail", config_value("MAIL_SEND_SECONDS", app), _send_due_mail)
    if config_value("IMAP_URL", app):
        state.jobs.add(
            "fetch-mail", config_value("FETCH_MAIL_SECONDS", app), fetch_mail_job
        )


def _send_due_mail(state: LiveHelpState) -> None:
    state.mail.send_due()


def _add_history_jobs(app: Flask, state: LiveHelpState) -> None:
    state.jobs.add("purge", config_value("PURGE_EVERY_SECONDS", app), _purge)


def _purge(state: LiveHelpState) -> None:
    """Delete chats past the retention, once at a time across processes."""
    if not hold_lease(state, "purge", 600, state.jobs.holder):
        return
    state.history.purge()
    state.operators.forget_attempts(utcnow() - dt.timedelta(days=1))
