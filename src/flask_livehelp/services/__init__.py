"""The rules of the chat, free of HTTP.

Every service takes plain arguments, commits its own work and publishes what
changed through the hub, so the views, the sockets, the CLI and the
background loop all behave the same.
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from flask import current_app
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session

from ..config import config_value
from ..hub import Hub
from ..models import Models
from ..models import rows_changed

_Row = t.TypeVar("_Row")
#: What every service is made with: the host's db, our models and the hub.
Basics: t.TypeAlias = tuple[SQLAlchemy, Models, Hub]


class Service:
    """Base of the services: gives them the database, the models and the hub."""

    def __init__(self, db: SQLAlchemy, models: Models, hub: Hub) -> None:
        self.db = db
        self.models = models
        self.hub = hub

    @property
    def session(self) -> sa_orm.scoped_session[Session]:
        return self.db.session

    def page_of(
        self, query: sa.Select[_Row], page: int, per_page: int
    ) -> tuple[list[_Row], int]:
        """One page of the rows ``query`` selects, and how many there are."""
        total = self.session.execute(
            sa.select(sa.func.count()).select_from(query.order_by(None).subquery())
        ).scalar_one()
        query = query.offset((max(page, 1) - 1) * per_page).limit(per_page)
        return list(self.session.execute(query).scalars()), total

    def row(self, model: type[_Row], key: object) -> _Row:
        """The row ``key`` of ``model``, which the caller knows is there.

        ``Session.get_one`` only from SQLAlchemy 2.0.22; we allow 2.0.16.
        """
        found = self.session.get(model, key)
        if found is None:
            raise LookupError(f"No {model.__name__} with the key {key}.")
        return found

    def changed(self, statement: sa.Executable) -> int:
        """Run an UPDATE or DELETE in the session; how many rows it matched."""
        return rows_changed(self.session, statement)

    def setting(self, key: str) -> t.Any:  # Any: each setting has its own type
        return config_value(key, current_app)
