"""The rules of the chat, free of HTTP.

Every service takes plain arguments, commits its own work and publishes what
changed through the hub, so the views, the sockets, the CLI and the
background loop all behave the same.
"""

from __future__ import annotations

import typing as t

from flask import current_app
from flask_sqlalchemy import SQLAlchemy

from ..config import config_value
from ..hub import Hub
from ..models import Models


class Service:
    """Base of the services: gives them the database, the models and the hub."""

    def __init__(self, db: SQLAlchemy, models: Models, hub: Hub) -> None:
        self.db = db
        self.models = models
        self.hub = hub

    @property
    def session(self) -> t.Any:
        return self.db.session

    def setting(self, key: str) -> t.Any:
        return config_value(key, current_app)
