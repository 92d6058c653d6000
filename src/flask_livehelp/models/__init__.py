"""The tables of Flask-LiveHelp, beside the host's in its Flask-SQLAlchemy ``db``.

Our models are declared on a base of their own whose tables go into the
host's metadata (for our bind key), so ``db.create_all()``, the engines and
Flask-Migrate see them. They never inherit the host's ``db.Model``: a shop's
``model_class`` that adds an ``id``, timestamps, a ``__tablename__`` rule or a
metaclass must leave our schema exactly as our migrations define it.

The columns of each table are mixins (:mod:`.mixins`), on a column type and
values of :mod:`.columns`; :mod:`.tables` declares the concrete classes of
one ``db`` from them. What a host or another module may use is here.
"""

from __future__ import annotations

from .changes import rows_changed
from .columns import AUTHORS
from .columns import CONVERSATION_STATUSES
from .columns import ONE_OPEN
from .columns import OPERATOR_STATUSES
from .columns import ROLES
from .columns import UTCDateTime
from .columns import utcnow
from .mixins import AuditMixin
from .mixins import CannedResponseMixin
from .mixins import ConnectionMixin
from .mixins import ConversationMixin
from .mixins import DepartmentMixin
from .mixins import HelpArticleMixin
from .mixins import LeaseMixin
from .mixins import LoginAttemptMixin
from .mixins import MailMixin
from .mixins import MessageMixin
from .mixins import OperatorMixin
from .mixins import SettingMixin
from .mixins import TagMixin
from .mixins import TransferMixin
from .mixins import VisitorMixin
from .tables import build_models
from .tables import Models
from .tables import shared_metadata

__all__ = [
    "AUTHORS",
    "AuditMixin",
    "CONVERSATION_STATUSES",
    "CannedResponseMixin",
    "ConnectionMixin",
    "ConversationMixin",
    "DepartmentMixin",
    "HelpArticleMixin",
    "LeaseMixin",
    "LoginAttemptMixin",
    "MailMixin",
    "MessageMixin",
    "Models",
    "ONE_OPEN",
    "OPERATOR_STATUSES",
    "OperatorMixin",
    "ROLES",
    "SettingMixin",
    "TagMixin",
    "TransferMixin",
    "UTCDateTime",
    "VisitorMixin",
    "build_models",
    "rows_changed",
    "shared_metadata",
    "utcnow",
]
