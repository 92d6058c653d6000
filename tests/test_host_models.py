"""Our tables are ours, whatever model base class the host's db has.

Shops subclass Flask-SQLAlchemy's model class to give every model an integer
``id``, timestamps, a ``__tablename__`` rule or a metaclass of their own, or
build ``db`` on a ``DeclarativeBase``. None of that may reach our tables: each
host kind below gets exactly the schema our migrations make, and a panel
that goes online, settings that save and a lease that is taken.
"""

from __future__ import annotations

import collections.abc as c
import datetime as dt
import typing as t

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.model import DefaultMeta
from flask_sqlalchemy.model import Model

from conftest import _empty
from flask_livehelp import get_state
from flask_livehelp import LiveHelp
from flask_livehelp import migrations
from flask_livehelp.background import hold_lease
from test_migrations import differences


class TimestampedModel(Model):
    """Every row an integer id and two timestamps, as many shops do."""

    id = sa.Column(sa.Integer, primary_key=True)
    created_at = sa.Column(sa.DateTime, default=dt.datetime.now)
    updated_at = sa.Column(sa.DateTime, default=dt.datetime.now)


class PluralTables(Model):
    """Table names made by a rule instead of written out."""

    @sa_orm.declared_attr.directive
    def __tablename__(cls) -> str:  # noqa: N805 - SQLAlchemy passes the class
        return cls.__name__.lower() + "s"


class AuditedMeta(DefaultMeta):
    """A metaclass of the shop's own, that adds a column to every model."""

    def __init__(cls, name: str, bases: t.Any, namespace: t.Any, **kw: t.Any) -> None:
        if "__tablename__" in namespace and "changed_by" not in namespace:
            cls.changed_by = sa.Column(sa.String(80))
        super().__init__(name, bases, namespace, **kw)


def declarative_base() -> SQLAlchemy:
    # A new class per app: a DeclarativeBase carries its own metadata.
    class Base(sa_orm.DeclarativeBase):
        pass

    return SQLAlchemy(model_class=Base)


def declarative_base_no_meta() -> SQLAlchemy:
    class Base(sa_orm.DeclarativeBaseNoMeta):
        pass

    return SQLAlchemy(model_class=Base)


def declarative_with_metaclass() -> SQLAlchemy:
    return SQLAlchemy(
        model_class=sa_orm.declarative_base(cls=Model, metaclass=AuditedMeta)
    )


HOSTS: dict[str, c.Callable[[], SQLAlchemy]] = {
    "integer-id-and-timestamps": lambda: SQLAlchemy(model_class=TimestampedModel),
    "tablename-rule": lambda: SQLAlchemy(model_class=PluralTables),
    "custom-metaclass": declarative_with_metaclass,
    "declarative-base": declarative_base,
    "declarative-base-no-meta": declarative_base_no_meta,
}


@pytest.fixture(params=sorted(HOSTS))
def host(request: pytest.FixtureRequest, empty_database_uri: str) -> c.Iterator[Flask]:
    database_uri = empty_database_uri
    db = HOSTS[request.param]()
    # LiveHelp(db=db) first, as the README has it: our models are declared
    # before the host's own, which must not change them either.
    livehelp = LiveHelp(db=db)

    class Product(db.Model):  # type: ignore[name-defined, misc]
        __tablename__ = "product"
        if request.param != "integer-id-and-timestamps":
            id = sa.Column(sa.Integer, primary_key=True)
        name = sa.Column(sa.String(80))

    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI=database_uri, TESTING=True)
    db.init_app(app)
    livehelp.init_app(app)
    yield app
    with app.app_context():
        _empty(db)
        db.drop_all()


def test_our_tables_are_exactly_what_our_migrations_make(host: Flask) -> None:
    migrations.upgrade(host)
    assert differences(host) == []


def test_the_panel_settings_and_jobs_work_on_tables_made_by_create_all(
    host: Flask,
) -> None:
    with host.app_context():
        get_state().db.create_all()
        state = get_state()
        operator = state.operators.create_operator(
            name="Mette", email="mette@example.com", password="correct horse"
        )
        # A hex connection id: an integer column took it for a number.
        connection = state.presence.open_connection(operator.id)
        state.presence.set_status(operator.id, "online")
        assert state.presence.widget_state().state == "online"
        state.presence.close_connection(connection, operator.id)
        state.settings.set("WIDGET_COLOR", "#123456", "da")
        assert state.settings.get("WIDGET_COLOR", "da") == "#123456"
        assert hold_lease(state, "purge", 60, "here")
        table = state.models.connection.__table__
        assert [column.name for column in table.primary_key] == ["id"]
        assert isinstance(table.c.id.type, sa.String)
        assert "updated_at" not in state.models.operator.__table__.c
        assert state.models.setting.__table__.primary_key.columns.keys() == [
            "key",
            "lang",
        ]
