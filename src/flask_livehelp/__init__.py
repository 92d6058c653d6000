"""Flask-LiveHelp: live chat for Flask web shops."""

from __future__ import annotations

from .errors import NotAllowed
from .errors import NotFound
from .errors import Refused
from .extension import LiveHelp
from .hub import Hub
from .models import build_models
from .models import Models
from .state import get_state
from .state import LiveHelpState

__all__ = [
    "Hub",
    "LiveHelp",
    "LiveHelpState",
    "Models",
    "NotAllowed",
    "NotFound",
    "Refused",
    "build_models",
    "get_state",
]
