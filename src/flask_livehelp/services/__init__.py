"""The rules of the chat, free of HTTP.

Every service takes plain arguments, commits its own work and publishes what
changed through the hub, so the views, the sockets, the CLI and the
background loop all behave the same.
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
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

    def page_of(
        self, query: t.Any, page: int, per_page: int
    ) -> tuple[list[t.Any], int]:
        """One page of the rows ``query`` selects, and how many there are."""
        total = self.session.execute(
            sa.select(sa.func.count()).select_from(query.order_by(None).subquery())
        ).scalar_one()
        query = query.offset((max(page, 1) - 1) * per_page).limit(per_page)
        return list(self.session.execute(query).scalars()), total

    def setting(self, key: str) -> t.Any:
        return config_value(key, current_app)
