"""The state Flask-LiveHelp keeps per app, and :func:`get_state` to reach it.

A module of its own, below everything else: the views, sockets, services and
commands read the state from here, and only the extension (which builds it)
imports them all.
"""

from __future__ import annotations

import dataclasses
import typing as t

from flask import current_app
from flask import Flask

if t.TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

    from .background import Jobs
    from .extension import LiveHelp
    from .hub import Hub
    from .i18n import LiveHelpDomain
    from .models import Models
    from .services.audit import AuditService
    from .services.conversations import ConversationService
    from .services.history import HistoryService
    from .services.inbound import InboundService
    from .services.knowledge import KnowledgeService
    from .services.limits import Limits
    from .services.limits import OpenSockets
    from .services.mail import MailService
    from .services.offline import OfflineService
    from .services.operators import OperatorService
    from .services.presence import PresenceService
    from .services.reports import ReportService
    from .services.settings import SettingsService
    from .services.transfers import TransferService
    from .services.visitors import VisitorService


@dataclasses.dataclass
class LiveHelpState:
    """What Flask-LiveHelp keeps for one app, as ``app.extensions["livehelp"]``.

    Read it with :func:`get_state`.
    """

    extension: LiveHelp
    db: SQLAlchemy
    models: Models
    hub: Hub
    domain: LiveHelpDomain
    operators: OperatorService
    presence: PresenceService
    visitors: VisitorService
    conversations: ConversationService
    settings: SettingsService
    transfers: TransferService
    jobs: Jobs
    #: The outbox: every mail we send.
    mail: MailService
    offline: OfflineService
    #: Replies by mail (IMAP and the webhook).
    inbound: InboundService
    #: Who did what that must be accounted for.
    audit: AuditService
    #: Finding, exporting, deleting and erasing chats; the retention.
    history: HistoryService
    #: Canned responses and help articles.
    knowledge: KnowledgeService
    #: The managers' report.
    reports: ReportService
    #: How often a visitor or an address may do something, in every process.
    limits: Limits
    #: Sockets open in this process, by client IP address.
    sockets: OpenSockets


def get_state(app: Flask | None = None) -> LiveHelpState:
    """The Flask-LiveHelp state of ``app``, or of the current app."""
    try:
        return t.cast(LiveHelpState, (app or current_app).extensions["livehelp"])
    except KeyError:
        raise RuntimeError(
            "Flask-LiveHelp is not set up on this app. Call"
            " 'livehelp.init_app(app)' in your app factory."
        ) from None
